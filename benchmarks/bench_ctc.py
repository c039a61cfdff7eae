"""Forward + backward time of polyloss ``ctc`` against the native references.

Pairs, each timed as candidate (polyloss) vs reference, float32, with the
gradient taken with respect to the logits behind a ``log_softmax`` (the
quantity both references differentiate; see ``polyloss/verify/specs/sequence.py``):

* ``torch-eager``:   ``polyloss.torch.ctc(F.log_softmax(logits, -1), ...)`` vs
  ``F.ctc_loss(F.log_softmax(logits, -1).transpose(0, 1), ...)`` (torch's fused kernel),
  one step = ``logits.grad = None; loss = f(logits); loss.backward()``;
* ``jax-jit``:       ``jax.jit(jax.value_and_grad(polyloss.jax.ctc(jax.nn.log_softmax(x), ...)))`` vs
  ``jax.jit(jax.value_and_grad(mean(optax.losses.ctc_loss(x, paddings...) / max(S_n, 1))))``
  (optax applies the ``log_softmax`` itself), outputs waited for with ``jax.block_until_ready``;
* ``torch-compile`` (opt-in, not in the default ``--modes``): ``torch.compile(fullgraph=True,
  dynamic=False)`` of the polyloss step vs ``torch.compile`` of the ``F.ctc_loss`` step (not
  ``fullgraph``: ``aten._ctc_loss`` is a data-dependent-shape operator dynamo cannot capture, so the
  reference graph breaks around the fused kernel). Compiling polyloss's loop unrolls all T frames: at
  T = 100 the first call took about 9 minutes on the 2-core CPU machine, hence opt-in.

Both losses use the "mean" reduction (per-sample loss / max(target length, 1), then the batch
mean: torch's definition; the optax side divides the same way).

Method (as ``bench_cross_entropy.py``): one size at a time; candidate and reference
are warmed up, then interleaved in the same process (A B, B A, A B, ... one pair
per repeat, so drift and order effects hit both alike); each repeat times a loop
of ``k`` calls with ``k`` chosen so a repeat lasts about 30 ms; the reported time
is the median over repeats of the per-call time, and the ratio is candidate
median / reference median. ``spread`` is the 25th-75th percentile of the
per-repeat paired ratios, a noise indicator.

This is a benchmark, not a test: nothing here asserts on time. No target is set
for CTC (the ``target`` column shows ``-``).

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_ctc.py
    PYTHONPATH=. python benchmarks/bench_ctc.py --quick --no-rich
    PYTHONPATH=. python benchmarks/bench_ctc.py --sizes 16x100x30x30 --modes torch-eager,torch-compile
    PYTHONPATH=. python benchmarks/bench_ctc.py --device cuda --json results.json
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _harness  # benchmarks/_harness.py: command line, loop, table; also puts the checkout on sys.path
import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_SIZES = "16x100x30x30"  # N x T x C x S
MODES = ("torch-eager", "torch-compile", "jax-jit")
DEFAULT_MODES = ("torch-eager", "jax-jit")  # torch-compile is opt-in (minutes of compilation, see above)


# ----------------------------------------------------------------------------- inputs


def make_inputs(n: int, t: int, c: int, s: int, seed: int = 0) -> dict[str, np.ndarray]:
    """float32 logits (N, T, C), padded targets (N, S) of random lengths in [1, S] (labels in [1, C),
    blank 0, padding 0), every input T frames long (S <= T / 2 keeps every alignment possible)."""
    rng = np.random.default_rng(seed)
    target_lengths = rng.integers(1, s + 1, size=n).astype(np.int64)
    targets = rng.integers(1, c, size=(n, s)).astype(np.int64)
    targets[np.arange(s)[None, :] >= target_lengths[:, None]] = 0
    return {
        "logits": rng.normal(size=(n, t, c)).astype(np.float32),
        "targets": targets,
        "input_lengths": np.full(n, t, dtype=np.int64),
        "target_lengths": target_lengths,
    }


def size_problem(size: tuple[int, ...]) -> str | None:
    _, t, c, s = size
    if not (c >= 2 and 1 <= s and 2 * s <= t):
        return "need C >= 2 and 1 <= S <= T / 2 (every alignment possible)"
    return None


# ----------------------------------------------------------------------------- torch


def _torch_losses(
    targets: torch.Tensor, input_lengths: torch.Tensor, target_lengths: torch.Tensor
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    import polyloss.torch as pt

    def candidate(logits: torch.Tensor) -> torch.Tensor:
        return pt.ctc(F.log_softmax(logits, -1), targets, input_lengths, target_lengths)

    def reference(logits: torch.Tensor) -> torch.Tensor:
        return F.ctc_loss(F.log_softmax(logits, -1).transpose(0, 1), targets, input_lengths, target_lengths)

    return candidate, reference


def bench_torch(
    mode: str, size: tuple[int, ...], device: torch.device, repeats: int, warmup: int, huge: bool
) -> dict[str, Any]:
    arrays = make_inputs(*size)
    logits = torch.as_tensor(arrays["logits"], device=device).requires_grad_(True)
    rest = [torch.as_tensor(arrays[k], device=device) for k in ("targets", "input_lengths", "target_lengths")]
    cand_fn, ref_fn = _torch_losses(*rest)
    if mode == "torch-compile":
        torch._dynamo.reset()
        cand_fn = torch.compile(cand_fn, fullgraph=True, dynamic=False)
        ref_fn = torch.compile(ref_fn, dynamic=False)  # aten._ctc_loss cannot be captured in a full graph
    result = _harness.compare_torch(cand_fn, ref_fn, logits, [], device, repeats, warmup, huge)
    del logits, rest, cand_fn, ref_fn
    if mode == "torch-compile":
        torch._dynamo.reset()
    return result


# ----------------------------------------------------------------------------- jax


def bench_jax(size: tuple[int, ...], device_name: str, repeats: int, warmup: int, huge: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import polyloss.jax as pj

    arrays = make_inputs(*size)
    _, frames, _, width = size
    device = _harness.jax_device(device_name)
    with jax.default_device(device):
        logits = jax.block_until_ready(jnp.asarray(arrays["logits"]))
        targets, input_lengths, target_lengths = (
            jax.block_until_ready(jnp.asarray(arrays[k], dtype=jnp.int32))
            for k in ("targets", "input_lengths", "target_lengths")
        )
        logit_paddings = (jnp.arange(frames)[None, :] >= input_lengths[:, None]).astype(jnp.float32)
        label_paddings = (jnp.arange(width)[None, :] >= target_lengths[:, None]).astype(jnp.float32)

    def candidate(x: Any) -> Any:
        return pj.ctc(jax.nn.log_softmax(x, axis=-1), targets, input_lengths, target_lengths)

    def reference(x: Any) -> Any:
        per_sample = optax.losses.ctc_loss(x, logit_paddings, targets, label_paddings)
        return jnp.mean(per_sample / jnp.maximum(target_lengths, 1))

    cand = jax.jit(jax.value_and_grad(candidate))
    ref = jax.jit(jax.value_and_grad(reference))
    result = _harness.compare_jax(cand, ref, (logits,), repeats, warmup, huge)
    result["jax_device"] = str(device)
    logits.delete()
    del logits, cand, ref
    jax.clear_caches()
    return result


# ----------------------------------------------------------------------------- main


BENCHMARK = _harness.Benchmark(
    description=__doc__.split("\n\n")[0],
    title="ctc forward+backward (d/dlogits), float32 (median per call; ratio = polyloss / reference)",
    size_names=("N", "T", "C", "S"),
    size_syntax="NxTxCxS[,...] (e.g. 16x100x30x30)",
    default_sizes=DEFAULT_SIZES,
    modes=MODES,
    default_modes=DEFAULT_MODES,
    run_torch=bench_torch,
    run_jax=bench_jax,
    size_problem=size_problem,
    progress_label_width=14,
    progress_first_calls=True,  # torch-compile's first call can take minutes
)


def main(argv: list[str] | None = None) -> int:
    return _harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    raise SystemExit(main())
