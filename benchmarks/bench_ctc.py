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

import argparse
import gc
import json
import os
import platform
import sys
import time
from typing import Any, Callable

# Make ``import polyloss`` work when run as ``python benchmarks/bench_ctc.py``
# from a checkout without PYTHONPATH.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# On a GPU, JAX would otherwise grab 75% of the device memory at its first use and
# starve torch (both run in this process); allocate on demand instead.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _timing import _fmt_time, _jax_device, compare  # noqa: E402  (benchmarks/_timing.py)
import torch.nn.functional as F  # noqa: E402

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


# ----------------------------------------------------------------------------- timing


# ----------------------------------------------------------------------------- torch


def _torch_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _torch_losses(
    targets: torch.Tensor, input_lengths: torch.Tensor, target_lengths: torch.Tensor
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    import polyloss.torch as pt

    def candidate(logits: torch.Tensor) -> torch.Tensor:
        return pt.ctc(F.log_softmax(logits, -1), targets, input_lengths, target_lengths)

    def reference(logits: torch.Tensor) -> torch.Tensor:
        return F.ctc_loss(F.log_softmax(logits, -1).transpose(0, 1), targets, input_lengths, target_lengths)

    return candidate, reference


def _torch_step(fn: Callable[..., torch.Tensor], logits: torch.Tensor) -> Callable[[], Any]:
    def step() -> torch.Tensor:
        logits.grad = None
        loss = fn(logits)
        loss.backward()
        return loss

    return step


def _torch_check(cand: Callable[..., Any], ref: Callable[..., Any], logits: torch.Tensor) -> dict[str, float]:
    """Max abs difference of loss and gradient (a sanity check, not a test)."""
    logits.grad = None
    loss_a = cand(logits)
    loss_a.backward()
    grad_a = logits.grad
    logits.grad = None
    loss_b = ref(logits)
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
    mode: str, size: tuple[int, int, int, int], device: torch.device, repeats: int, warmup: int
) -> dict[str, Any]:
    arrays = make_inputs(*size)
    logits = torch.as_tensor(arrays["logits"], device=device).requires_grad_(True)
    rest = [torch.as_tensor(arrays[k], device=device) for k in ("targets", "input_lengths", "target_lengths")]
    cand_fn, ref_fn = _torch_losses(*rest)
    if mode == "torch-compile":
        torch._dynamo.reset()
        cand_fn = torch.compile(cand_fn, fullgraph=True, dynamic=False)
        ref_fn = torch.compile(ref_fn, dynamic=False)  # aten._ctc_loss cannot be captured in a full graph
    sync = _torch_sync(device)
    t0 = time.perf_counter()
    check = _torch_check(cand_fn, ref_fn, logits)  # also the first (compiling) call
    first_call_s = time.perf_counter() - t0
    result = compare(_torch_step(cand_fn, logits), _torch_step(ref_fn, logits), sync, repeats, warmup, False)
    result.update(check)
    result["first_calls_s"] = first_call_s
    logits.grad = None
    del logits, rest, cand_fn, ref_fn
    if mode == "torch-compile":
        torch._dynamo.reset()
    return result


# ----------------------------------------------------------------------------- jax


def bench_jax(size: tuple[int, int, int, int], device_name: str, repeats: int, warmup: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    import polyloss.jax as pj

    arrays = make_inputs(*size)
    _, frames, _, width = size
    device = _jax_device(device_name)
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

    t0 = time.perf_counter()
    loss_a, grad_a = jax.block_until_ready(cand(logits))
    loss_b, grad_b = jax.block_until_ready(ref(logits))
    first_call_s = time.perf_counter() - t0
    check = {
        "max_abs_diff_loss": float(jnp.abs(loss_a - loss_b)),
        "max_abs_diff_grad": float(jnp.max(jnp.abs(grad_a - grad_b))),
    }
    del loss_a, grad_a, loss_b, grad_b

    def cand_step() -> Any:
        return jax.block_until_ready(cand(logits))

    def ref_step() -> Any:
        return jax.block_until_ready(ref(logits))

    result = compare(cand_step, ref_step, lambda: None, repeats, warmup, False)
    result.update(check)
    result["first_calls_s"] = first_call_s
    result["jax_device"] = str(device)
    logits.delete()
    del logits, cand, ref
    jax.clear_caches()
    return result


# ----------------------------------------------------------------------------- output


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["mode"], r["size"], "error", "", "", "", "", "", r["error"][:60]])
            continue
        rows.append(
            [
                r["mode"],
                r["size"],
                _fmt_time(r["candidate_s"]),
                _fmt_time(r["reference_s"]),
                f"{r['ratio']:.2f}x",
                "-",
                "-",
                f"{r['paired_ratio_p25']:.2f}-{r['paired_ratio_p75']:.2f}",
                f"{r['k']}x{r['repeats']}",
            ]
        )
    return rows


_HEADERS = ["mode", "N x T x C x S", "polyloss", "reference", "ratio", "target", "met", "spread", "k x reps"]
_TITLE = "ctc forward+backward (d/dlogits), float32 (median per call; ratio = polyloss / reference)"


def print_table(results: list[dict[str, Any]], use_rich: bool) -> None:
    rows = _rows(results)
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            use_rich = False
    if use_rich:
        table = Table(title=_TITLE)
        for h in _HEADERS:
            table.add_column(h, justify="left" if h in ("mode", "N x T x C x S") else "right")
        for row in rows:
            table.add_row(*row)
        console = Console()
        if not console.is_terminal:  # piped / redirected: do not squeeze the table to 80 columns
            console = Console(width=160)
        console.print(table)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(_HEADERS)]
    print(_TITLE)
    print("  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


# ----------------------------------------------------------------------------- main


def parse_sizes(text: str) -> list[tuple[int, int, int, int]]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            n, t, c, s = (int(v) for v in part.split("x"))
        except ValueError:
            raise SystemExit(f"--sizes: expected NxTxCxS[,...] (e.g. 16x100x30x30), got {part!r}")
        if not (c >= 2 and 1 <= s and 2 * s <= t):
            raise SystemExit(f"--sizes: need C >= 2 and 1 <= S <= T / 2 (every alignment possible), got {part!r}")
        sizes.append((n, t, c, s))
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu); jax uses its GPU for cuda",
    )
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated NxTxCxS (default {DEFAULT_SIZES})")
    parser.add_argument(
        "--modes",
        default=",".join(DEFAULT_MODES),
        help=f"comma-separated subset of {','.join(MODES)} (default {','.join(DEFAULT_MODES)})",
    )
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

    repeats = args.repeats if args.repeats is not None else (9 if args.quick else 31)
    warmup = 3 if args.quick else 10
    results: list[dict[str, Any]] = []
    for size in sizes:
        for mode in modes:
            label = "x".join(map(str, size))
            print(f"  {mode:14s} {label:>14s} ...", end="", flush=True)
            t0 = time.perf_counter()
            try:
                if mode == "jax-jit":
                    r = bench_jax(size, args.device, repeats, warmup)
                else:
                    r = bench_torch(mode, size, device, repeats, warmup)
            except Exception as exc:  # a benchmark reports failures, it does not stop at them
                r = {"error": f"{type(exc).__name__}: {exc}"}
            r.update(
                {"mode": mode, "size": label, "N": size[0], "T": size[1], "C": size[2], "S": size[3], "target": None}
            )
            results.append(r)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if "error" in r:
                print(f" error: {r['error']}", flush=True)
            else:
                print(
                    f" {r['ratio']:.2f}x  ({time.perf_counter() - t0:.1f} s, first calls {r['first_calls_s']:.1f} s; "
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
