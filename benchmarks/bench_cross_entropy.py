"""Forward + backward time of polyloss ``cross_entropy`` against the native references.

Three pairs, each timed as candidate (polyloss) vs reference, float32:

* ``torch-eager``:   ``polyloss.torch.cross_entropy``  vs ``torch.nn.functional.cross_entropy``,
  one step = ``logits.grad = None; loss = f(logits, target); loss.backward()``;
* ``torch-compile``: the same two functions through ``torch.compile(fullgraph=True, dynamic=False)``
  (compilation is done during warm-up and never timed);
* ``jax-jit``:       ``jax.jit(jax.value_and_grad(polyloss.jax.cross_entropy))`` vs
  ``jax.jit(jax.value_and_grad(optax ... softmax_cross_entropy_with_integer_labels(...).mean()))``,
  outputs waited for with ``jax.block_until_ready``.

Method: one size at a time (tensors freed between sizes); candidate and reference
are warmed up, then interleaved in the same process (A B, B A, A B, ... one pair
per repeat, so drift and order effects hit both alike); each repeat times a loop
of ``k`` calls with ``k`` chosen so a repeat lasts about 30 ms (``k`` = 1 for the
huge size); the reported time is the median over repeats of the per-call time,
and the ratio is candidate median / reference median. ``spread`` is the
25th-75th percentile of the per-repeat paired ratios, a noise indicator.

This is a benchmark, not a test: nothing here asserts on time. The ``target``
column only shows the project's goals next to the measured ratio.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_cross_entropy.py
    PYTHONPATH=. python benchmarks/bench_cross_entropy.py --sizes 16x10,4096x1000 --quick
    PYTHONPATH=. python benchmarks/bench_cross_entropy.py --device cuda --json results.json
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _harness  # benchmarks/_harness.py: command line, loop, table; also puts the checkout on sys.path
import torch
import torch.nn.functional as F

DEFAULT_SIZES = "16x10,4096x1000,8192x32000"
MODES = ("torch-eager", "torch-compile", "jax-jit")
# A size is "huge" (k = 1 call per repeat, fewer repeats) from this many logits on.
HUGE_ELEMENTS = 64 * 1024 * 1024
# A size is "small" (the Python-overhead-bound regime) up to this many logits.
SMALL_ELEMENTS = 64 * 1024


def target_for(mode: str, size: tuple[int, ...]) -> float | None:
    """The project's goal for candidate/reference, or None where none is set."""
    n, c = size
    small = n * c <= SMALL_ELEMENTS
    if mode == "jax-jit":
        return 1.05  # within 1.05x of optax under jit, every size
    if mode == "torch-eager":
        return 1.5 if small else 1.05
    if mode == "torch-compile":
        return None if small else 1.05
    return None


def is_huge(size: tuple[int, ...]) -> bool:
    n, c = size
    return n * c >= HUGE_ELEMENTS


def bench_torch(
    mode: str, size: tuple[int, ...], device: torch.device, repeats: int, warmup: int, huge: bool
) -> dict[str, Any]:
    import polyloss.torch as pt

    n, c = size
    gen = torch.Generator(device=device).manual_seed(0)
    logits = torch.randn(n, c, device=device, dtype=torch.float32, generator=gen).requires_grad_(True)
    target = torch.randint(0, c, (n,), device=device, generator=gen)
    if mode == "torch-eager":
        cand_fn: Callable[..., Any] = pt.cross_entropy
        ref_fn: Callable[..., Any] = F.cross_entropy
    else:
        torch._dynamo.reset()
        cand_fn = torch.compile(pt.cross_entropy, fullgraph=True, dynamic=False)
        ref_fn = torch.compile(F.cross_entropy, fullgraph=True, dynamic=False)
    result = _harness.compare_torch(cand_fn, ref_fn, logits, [target], device, repeats, warmup, huge)
    del logits, target, cand_fn, ref_fn
    if mode == "torch-compile":
        torch._dynamo.reset()
    return result


def bench_jax(size: tuple[int, ...], device_name: str, repeats: int, warmup: int, huge: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import polyloss.jax as pj

    n, c = size
    device = _harness.jax_device(device_name)
    with jax.default_device(device):
        key_x, key_y = jax.random.split(jax.random.PRNGKey(0))
        logits = jax.block_until_ready(jax.random.normal(key_x, (n, c), dtype=jnp.float32))
        target = jax.block_until_ready(jax.random.randint(key_y, (n,), 0, c, dtype=jnp.int32))

    cand = jax.jit(jax.value_and_grad(lambda x, y: pj.cross_entropy(x, y)))
    ref = jax.jit(jax.value_and_grad(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()))
    result = _harness.compare_jax(cand, ref, (logits, target), repeats, warmup, huge)
    result["jax_device"] = str(device)
    logits.delete()
    target.delete()
    del logits, target, cand, ref
    jax.clear_caches()
    return result


BENCHMARK = _harness.Benchmark(
    description=__doc__.split("\n\n")[0],
    title="cross_entropy forward+backward, float32 (median per call; ratio = polyloss / reference)",
    size_names=("N", "C"),
    size_syntax="NxC[,NxC...] (e.g. 16x10,4096x1000)",
    default_sizes=DEFAULT_SIZES,
    modes=MODES,
    default_modes=MODES,
    run_torch=bench_torch,
    run_jax=bench_jax,
    target_for=target_for,
    is_huge=is_huge,
)


def main(argv: list[str] | None = None) -> int:
    return _harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
