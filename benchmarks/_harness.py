"""What the benchmarks share around the timing: the command line, the environment header, the loop over
sizes and modes, the candidate/reference agreement check, the results table and the JSON file.

A ``bench_*.py`` script describes itself as a :class:`Benchmark` (its sizes, modes, targets and the two
functions that time one pair) and hands it to :func:`main`. Imported by ``bench_*.py`` (run as scripts, so
this folder is on ``sys.path``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from _timing import compare

# Make ``import polyloss`` work when a benchmark is run as ``python benchmarks/bench_*.py`` from a
# checkout without PYTHONPATH (polyloss is only imported inside the benchmark functions).
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

# On a GPU, JAX would otherwise grab 75% of the device memory at its first use and
# starve torch (both run in this process); allocate on demand instead. JAX is only
# imported later, inside functions, so this is still in time.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

Size = tuple[int, ...]
# run_torch(mode, size, device, repeats, warmup, huge) and run_jax(size, device_name, repeats, warmup, huge):
# time one candidate/reference pair and return compare()'s result plus the agreement check.
TorchRun = Callable[[str, Size, torch.device, int, int, bool], dict[str, Any]]
JaxRun = Callable[[Size, str, int, int, bool], dict[str, Any]]
JAX_MODE = "jax-jit"


def _no_target(mode: str, size: Size) -> float | None:
    return None


def _never_huge(size: Size) -> bool:
    return False


def _any_size(size: Size) -> str | None:
    return None


@dataclass(frozen=True)
class Benchmark:
    """What one benchmark script has of its own; everything else is in this module."""

    description: str  # the --help text
    title: str  # the results table's title
    size_names: tuple[str, ...]  # the letters of one size, e.g. ("N", "C"): column header and JSON fields
    size_syntax: str  # how --sizes is written, for its error message, e.g. "NxC[,NxC...] (e.g. 16x10)"
    default_sizes: str
    modes: tuple[str, ...]
    default_modes: tuple[str, ...]
    run_torch: TorchRun
    run_jax: JaxRun
    target_for: Callable[[str, Size], float | None] = _no_target
    # A "huge" size gets k = 1 call per repeat and fewer repeats and warm-up calls.
    is_huge: Callable[[Size], bool] = _never_huge
    # Why a size cannot be run (the --sizes error message), or None.
    size_problem: Callable[[Size], str | None] = _any_size
    progress_label_width: int = 12  # width of the size in the progress lines
    progress_first_calls: bool = False  # also show the first (compiling) calls' time in the progress lines

    @property
    def size_header(self) -> str:
        return " x ".join(self.size_names)


# ----------------------------------------------------------------------------- devices and formats


def jax_device(requested: str) -> Any:
    """The JAX device matching a torch device name: its GPU for ``cuda[:i]``, its CPU otherwise."""
    import jax

    want = "gpu" if requested.startswith("cuda") else "cpu"
    try:
        devices = jax.devices(want)
    except RuntimeError:
        devices = jax.devices()
    index = int(requested.split(":")[1]) if ":" in requested else 0
    return devices[min(index, len(devices) - 1)]


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.3f} s"


# ----------------------------------------------------------------------------- torch


def _torch_sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _torch_step(fn: Callable[..., torch.Tensor], logits: torch.Tensor, *rest: torch.Tensor) -> Callable[[], Any]:
    def step() -> torch.Tensor:
        logits.grad = None
        loss = fn(logits, *rest)
        loss.backward()
        return loss

    return step


def _torch_check(
    candidate: Callable[..., Any], reference: Callable[..., Any], logits: torch.Tensor, *rest: torch.Tensor
) -> dict[str, float]:
    """Max abs difference of loss and gradient (a sanity check, not a test)."""
    logits.grad = None
    loss_a = candidate(logits, *rest)
    loss_a.backward()
    grad_a = logits.grad
    logits.grad = None
    loss_b = reference(logits, *rest)
    loss_b.backward()
    grad_b = logits.grad
    logits.grad = None
    return {
        "max_abs_diff_loss": float((loss_a.detach() - loss_b.detach()).abs()),
        "max_abs_diff_grad": float((grad_a - grad_b).abs().max()),
    }


def compare_torch(
    candidate: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    logits: torch.Tensor,
    rest: Sequence[torch.Tensor],
    device: torch.device,
    repeats: int,
    warmup: int,
    huge: bool,
) -> dict[str, Any]:
    """Check, then time, the steps ``logits.grad = None; f(logits, *rest).backward()`` of two losses."""
    t0 = time.perf_counter()
    check = _torch_check(candidate, reference, logits, *rest)  # also the first (compiling) call
    first_call_s = time.perf_counter() - t0
    result = compare(
        _torch_step(candidate, logits, *rest),
        _torch_step(reference, logits, *rest),
        _torch_sync(device),
        repeats,
        warmup,
        huge,
    )
    result.update(check)
    result["first_calls_s"] = first_call_s
    logits.grad = None
    return result


# ----------------------------------------------------------------------------- jax


def compare_jax(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    inputs: Sequence[Any],
    repeats: int,
    warmup: int,
    huge: bool,
) -> dict[str, Any]:
    """Check, then time, two jitted ``value_and_grad`` functions of ``*inputs``, waiting for their outputs."""
    import jax
    import jax.numpy as jnp

    t0 = time.perf_counter()
    loss_a, grad_a = jax.block_until_ready(candidate(*inputs))
    loss_b, grad_b = jax.block_until_ready(reference(*inputs))
    first_call_s = time.perf_counter() - t0
    check = {
        "max_abs_diff_loss": float(jnp.abs(loss_a - loss_b)),
        "max_abs_diff_grad": float(jnp.max(jnp.abs(grad_a - grad_b))),
    }
    del loss_a, grad_a, loss_b, grad_b  # free them before timing

    def candidate_step() -> Any:
        return jax.block_until_ready(candidate(*inputs))

    def reference_step() -> Any:
        return jax.block_until_ready(reference(*inputs))

    result = compare(candidate_step, reference_step, lambda: None, repeats, warmup, huge)
    result.update(check)
    result["first_calls_s"] = first_call_s
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
                format_time(r["candidate_s"]),
                format_time(r["reference_s"]),
                f"{r['ratio']:.2f}x",
                "-" if target is None else f"<= {target:.2f}x",
                verdict,
                f"{r['paired_ratio_p25']:.2f}-{r['paired_ratio_p75']:.2f}",
                f"{r['k']}x{r['repeats']}",
            ]
        )
    return rows


def print_table(results: list[dict[str, Any]], bench: Benchmark, use_rich: bool) -> None:
    headers = ["mode", bench.size_header, "polyloss", "reference", "ratio", "target", "met", "spread", "k x reps"]
    rows = _rows(results)
    if use_rich:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            use_rich = False
    if use_rich:
        table = Table(title=bench.title)
        for h in headers:
            table.add_column(h, justify="left" if h in ("mode", bench.size_header) else "right")
        for row in rows:
            style = "red" if row[6] == "NO" else None
            table.add_row(*row, style=style)
        console = Console()
        if not console.is_terminal:  # piped / redirected: do not squeeze the table to 80 columns
            console = Console(width=160)
        console.print(table)
        return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    print(bench.title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


# ----------------------------------------------------------------------------- command line


def _parser(bench: Benchmark) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=bench.description)
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu); jax uses its GPU for cuda",
    )
    size_pattern = "x".join(bench.size_names)
    parser.add_argument(
        "--sizes", default=bench.default_sizes, help=f"comma-separated {size_pattern} (default {bench.default_sizes})"
    )
    modes_help = f"comma-separated subset of {','.join(bench.modes)}"
    if bench.default_modes != bench.modes:
        modes_help += f" (default {','.join(bench.default_modes)})"
    parser.add_argument("--modes", default=",".join(bench.default_modes), help=modes_help)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and warm-up calls")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per pair (overrides the default)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) (default: torch's choice)")
    parser.add_argument("--no-rich", action="store_true", help="plain-text table even if rich is installed")
    return parser


def parse_sizes(text: str, bench: Benchmark) -> list[Size]:
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            size = tuple(int(v) for v in part.split("x"))
            if len(size) != len(bench.size_names):
                raise ValueError(part)
        except ValueError:
            raise SystemExit(f"--sizes: expected {bench.size_syntax}, got {part!r}") from None
        problem = bench.size_problem(size)
        if problem is not None:
            raise SystemExit(f"--sizes: {problem}, got {part!r}")
        sizes.append(size)
    return sizes


def parse_modes(text: str, bench: Benchmark) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = set(modes) - set(bench.modes)
    if unknown:
        raise SystemExit(f"--modes: unknown {sorted(unknown)}; choose from {bench.modes}")
    return modes


def repeats_and_warmup(huge: bool, quick: bool, repeats: int | None) -> tuple[int, int]:
    """Repeats per pair (``repeats`` if given) and warm-up calls: fewer for huge sizes and for --quick."""
    if repeats is None:
        if huge:
            repeats = 3 if quick else 7
        else:
            repeats = 9 if quick else 31
    warmup = (1 if huge else 3) if quick else (2 if huge else 10)
    return repeats, warmup


# ----------------------------------------------------------------------------- main


def environment(device: torch.device, device_name: str, modes: list[str]) -> dict[str, Any]:
    """The machine and library versions, printed first and stored with the results."""
    import jax
    import optax

    return {
        "device": str(device)
        + (
            f" ({torch.cuda.get_device_name(device)})"
            if device.type == "cuda"
            else f" ({platform.processor() or platform.machine()})"
        ),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "jax": jax.__version__,
        "jax_device": str(jax_device(device_name)) if JAX_MODE in modes else None,
        "optax": optax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def _run_one(bench: Benchmark, mode: str, size: Size, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """Time one mode at one size; a failure becomes an ``error`` entry (a benchmark reports, it does not stop)."""
    huge = bench.is_huge(size)
    repeats, warmup = repeats_and_warmup(huge, args.quick, args.repeats)
    label = "x".join(map(str, size))
    print(f"  {mode:14s} {label:>{bench.progress_label_width}s} ...", end="", flush=True)
    t0 = time.perf_counter()
    try:
        if mode == JAX_MODE:
            r = bench.run_jax(size, args.device, repeats, warmup, huge)
        else:
            r = bench.run_torch(mode, size, device, repeats, warmup, huge)
    except Exception as exc:
        r = {"error": f"{type(exc).__name__}: {exc}"}
    r.update(
        {
            "mode": mode,
            "size": label,
            **dict(zip(bench.size_names, size, strict=True)),
            "target": bench.target_for(mode, size),
        }
    )
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if "error" in r:
        print(f" error: {r['error']}", flush=True)
    else:
        took = f"{time.perf_counter() - t0:.1f} s"
        if bench.progress_first_calls:
            took += f", first calls {r['first_calls_s']:.1f} s"
        print(
            f" {r['ratio']:.2f}x  ({took}; |dloss| {r['max_abs_diff_loss']:.1e}, |dgrad| {r['max_abs_diff_grad']:.1e})",
            flush=True,
        )
    return r


def main(bench: Benchmark, argv: list[str] | None = None) -> int:
    """Parse the command line, time every mode at every size, print the table, write the JSON file."""
    args = _parser(bench).parse_args(argv)
    sizes = parse_sizes(args.sizes, bench)
    modes = parse_modes(args.modes, bench)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    header = environment(device, args.device, modes)
    print(", ".join(f"{k}: {v}" for k, v in header.items() if v is not None), flush=True)
    results = [_run_one(bench, mode, size, device, args) for size in sizes for mode in modes]

    print()
    print_table(results, bench, use_rich=not args.no_rich)
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
