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

import argparse
import gc
import json
import os
import platform
import sys
import time
from typing import Any, Callable

# Make ``import polyloss`` work when run as ``python benchmarks/bench_cross_entropy.py``
# from a checkout without PYTHONPATH.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# On a GPU, JAX would otherwise grab 75% of the device memory at its first use and
# starve torch (both run in this process); allocate on demand instead.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import torch  # noqa: E402
from _timing import _fmt_time, _jax_device, compare  # noqa: E402  (benchmarks/_timing.py)
import torch.nn.functional as F  # noqa: E402

DEFAULT_SIZES = "16x10,4096x1000,8192x32000"
MODES = ("torch-eager", "torch-compile", "jax-jit")
# A size is "huge" (k = 1 call per repeat, fewer repeats) from this many logits on.
HUGE_ELEMENTS = 64 * 1024 * 1024
# A size is "small" (the Python-overhead-bound regime) up to this many logits.
SMALL_ELEMENTS = 64 * 1024


# ----------------------------------------------------------------------------- targets


def target_for(mode: str, n: int, c: int) -> float | None:
    """The project's goal for candidate/reference, or None where none is set."""
    small = n * c <= SMALL_ELEMENTS
    if mode == "jax-jit":
        return 1.05  # within 1.05x of optax under jit, every size
    if mode == "torch-eager":
        return 1.5 if small else 1.05
    if mode == "torch-compile":
        return None if small else 1.05
    return None


# ----------------------------------------------------------------------------- timing


# ----------------------------------------------------------------------------- torch


def _torch_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _torch_step(fn: Callable[..., torch.Tensor], logits: torch.Tensor, target: torch.Tensor) -> Callable[[], Any]:
    def step() -> torch.Tensor:
        logits.grad = None
        loss = fn(logits, target)
        loss.backward()
        return loss

    return step


def _torch_check(
    cand: Callable[..., Any], ref: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor
) -> dict[str, float]:
    """Max abs difference of loss and gradient (a sanity check, not a test)."""
    logits.grad = None
    loss_a = cand(logits, target)
    loss_a.backward()
    grad_a = logits.grad
    logits.grad = None
    loss_b = ref(logits, target)
    loss_b.backward()
    grad_b = logits.grad
    logits.grad = None
    out = {
        "max_abs_diff_loss": float((loss_a.detach() - loss_b.detach()).abs()),
        "max_abs_diff_grad": float((grad_a - grad_b).abs().max()),
    }
    del grad_a, grad_b, loss_a, loss_b
    return out


def bench_torch(
    mode: str, n: int, c: int, device: torch.device, repeats: int, warmup: int, huge: bool
) -> dict[str, Any]:
    import polyloss.torch as pt

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
    sync = _torch_sync(device)
    t0 = time.perf_counter()
    check = _torch_check(cand_fn, ref_fn, logits, target)  # also the first (compiling) call
    first_call_s = time.perf_counter() - t0
    result = compare(
        _torch_step(cand_fn, logits, target), _torch_step(ref_fn, logits, target), sync, repeats, warmup, huge
    )
    result.update(check)
    result["first_calls_s"] = first_call_s
    logits.grad = None
    del logits, target, cand_fn, ref_fn
    if mode == "torch-compile":
        torch._dynamo.reset()
    return result


# ----------------------------------------------------------------------------- jax


def bench_jax(n: int, c: int, device_name: str, repeats: int, warmup: int, huge: bool) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import polyloss.jax as pj

    device = _jax_device(device_name)
    with jax.default_device(device):
        key_x, key_y = jax.random.split(jax.random.PRNGKey(0))
        logits = jax.block_until_ready(jax.random.normal(key_x, (n, c), dtype=jnp.float32))
        target = jax.block_until_ready(jax.random.randint(key_y, (n,), 0, c, dtype=jnp.int32))

    cand = jax.jit(jax.value_and_grad(lambda x, y: pj.cross_entropy(x, y)))
    ref = jax.jit(jax.value_and_grad(lambda x, y: optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()))

    t0 = time.perf_counter()
    loss_a, grad_a = jax.block_until_ready(cand(logits, target))
    loss_b, grad_b = jax.block_until_ready(ref(logits, target))
    first_call_s = time.perf_counter() - t0
    check = {
        "max_abs_diff_loss": float(jnp.abs(loss_a - loss_b)),
        "max_abs_diff_grad": float(jnp.max(jnp.abs(grad_a - grad_b))),
    }
    del loss_a, grad_a, loss_b, grad_b

    def cand_step() -> Any:
        return jax.block_until_ready(cand(logits, target))

    def ref_step() -> Any:
        return jax.block_until_ready(ref(logits, target))

    result = compare(cand_step, ref_step, lambda: None, repeats, warmup, huge)
    result.update(check)
    result["first_calls_s"] = first_call_s
    result["jax_device"] = str(device)
    logits.delete()
    target.delete()
    del logits, target, cand, ref
    jax.clear_caches()
    return result


# ----------------------------------------------------------------------------- output


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        target = r["target"]
        if "error" in r:
            rows.append([r["mode"], r["size"], "error", "", "", "", "", "", r["error"][:60]])
            continue
        verdict = "-" if target is None else ("yes" if r["ratio"] <= target else "NO")
        rows.append(
            [
                r["mode"],
                r["size"],
                _fmt_time(r["candidate_s"]),
                _fmt_time(r["reference_s"]),
                f"{r['ratio']:.2f}x",
                "-" if target is None else f"<= {target:.2f}x",
                verdict,
                f"{r['paired_ratio_p25']:.2f}-{r['paired_ratio_p75']:.2f}",
                f"{r['k']}x{r['repeats']}",
            ]
        )
    return rows


_HEADERS = ["mode", "N x C", "polyloss", "reference", "ratio", "target", "met", "spread", "k x reps"]


def print_table(results: list[dict[str, Any]], use_rich: bool) -> None:
    rows = _rows(results)
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            use_rich = False
    if use_rich:
        table = Table(title="cross_entropy forward+backward, float32 (median per call; ratio = polyloss / reference)")
        for h in _HEADERS:
            table.add_column(h, justify="left" if h in ("mode", "N x C") else "right")
        for row in rows:
            style = "red" if row[6] == "NO" else None
            table.add_row(*row, style=style)
        console = Console()
        if not console.is_terminal:  # piped / redirected: do not squeeze the table to 80 columns
            console = Console(width=160)
        console.print(table)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(_HEADERS)]
    print("cross_entropy forward+backward, float32 (median per call; ratio = polyloss / reference)")
    print("  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


# ----------------------------------------------------------------------------- main


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            n, c = part.split("x")
            sizes.append((int(n), int(c)))
        except ValueError:
            raise SystemExit(f"--sizes: expected NxC[,NxC...] (e.g. 16x10,4096x1000), got {part!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu); jax uses its GPU for cuda",
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated NxC (default {DEFAULT_SIZES})")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and warm-up calls")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per pair (overrides the default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) (default: torch's choice)")
    parser.add_argument("--no-rich", action="store_true", help="plain-text table even if rich is installed")
    args = parser.parse_args(argv)

    sizes = parse_sizes(args.sizes)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; choose from {MODES}")
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    import jax
    import optax

    header = {
        "device": str(device)
        + (
            f" ({torch.cuda.get_device_name(device)})"
            if device.type == "cuda"
            else f" ({platform.processor() or platform.machine()})"
        ),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "jax": jax.__version__,
        "jax_device": str(_jax_device(args.device)) if "jax-jit" in modes else None,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    print(", ".join(f"{k}: {v}" for k, v in header.items() if v is not None), flush=True)

    results: list[dict[str, Any]] = []
    for n, c in sizes:
        huge = n * c >= HUGE_ELEMENTS
        if args.repeats is not None:
            repeats = args.repeats
        elif huge:
            repeats = 3 if args.quick else 7
        else:
            repeats = 9 if args.quick else 31
        warmup = (1 if huge else 3) if args.quick else (2 if huge else 10)
        for mode in modes:
            label = f"{n}x{c}"
            print(f"  {mode:14s} {label:>12s} ...", end="", flush=True)
            t0 = time.perf_counter()
            try:
                if mode == "jax-jit":
                    r = bench_jax(n, c, args.device, repeats, warmup, huge)
                else:
                    r = bench_torch(mode, n, c, device, repeats, warmup, huge)
            except Exception as exc:  # a benchmark reports failures, it does not stop at them
                r = {"error": f"{type(exc).__name__}: {exc}"}
            r.update({"mode": mode, "size": label, "N": n, "C": c, "target": target_for(mode, n, c)})
            results.append(r)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if "error" in r:
                print(f" error: {r['error']}", flush=True)
            else:
                print(
                    f" {r['ratio']:.2f}x  ({time.perf_counter() - t0:.1f} s; "
                    f"|dloss| {r['max_abs_diff_loss']:.1e}, |dgrad| {r['max_abs_diff_grad']:.1e})",
                    flush=True,
                )

    print()
    print_table(results, use_rich=not args.no_rich)
    if hasattr(os, "getloadavg"):
        print(
            f"load average (1 min) at start {header['load_avg_1min']}, at end {os.getloadavg()[0]:.2f} "
            f"(a busy machine makes the absolute times noisy; the interleaved ratios less so)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"environment": header, "results": results}, fh, indent=2)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
