"""What the value checks cost per call: forward + backward with the checks that read array values
(class indices in range, targets in [0, 1], box corners in order, CTC lengths) against the same call
with them left out, in torch eager, interleaved in one process (medians, ratio = checked / unchecked).

On CPU polyloss always reads the values (no device to synchronise); "unchecked" here is what an
accelerator does by default: the backend reports the arrays as opaque, as it does for CUDA arrays
outside ``polyloss.checks(values=True)``. On CUDA (when available) the script times the real choice:
the default (no synchronisation) against ``polyloss.checks(values=True)`` (one host read per check).
Measures, never asserts.

    PYTHONPATH=. python benchmarks/bench_value_checks.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from _timing import compare

import polyloss
import polyloss.torch as pt
from polyloss.backends.torch import BACKEND


@contextlib.contextmanager
def values_unread() -> Iterator[None]:
    """Every array opaque to the checks, as an accelerator array is by default."""
    original = BACKEND.is_opaque
    BACKEND.is_opaque = lambda x: True  # type: ignore[method-assign]
    try:
        yield
    finally:
        BACKEND.is_opaque = original  # type: ignore[method-assign]


def _cases(n: int, c: int, device: torch.device) -> dict[str, tuple[Callable[..., torch.Tensor], tuple[Any, ...]]]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, generator=g)
    labels = torch.randint(0, c, (n,), generator=g)
    targets = (torch.rand(n, c, generator=g) > 0.5).float()
    corner = torch.rand(n, 2, generator=g)
    boxes = torch.cat([corner, corner + torch.rand(n, 2, generator=g) + 0.1], dim=1)
    frames, batch, symbols = 50, max(1, n // 64), 20
    log_probs = torch.randn(batch, frames, symbols, generator=g).log_softmax(-1)
    ctc_targets = torch.randint(1, symbols, (batch, 10), generator=g)
    lengths = (torch.full((batch,), frames), torch.full((batch,), 10))
    cases = {
        "cross_entropy": (pt.cross_entropy, (logits, labels)),
        "focal": (pt.focal, (logits, labels)),
        "bce_with_logits": (pt.bce_with_logits, (logits, targets)),
        "box_giou": (pt.box_giou, (boxes, boxes.flip(0))),
        "ctc": (pt.ctc, (log_probs, ctc_targets, *lengths)),
    }
    return {name: (fn, tuple(a.to(device) for a in arrays)) for name, (fn, arrays) in cases.items()}


def _step(fn: Callable[..., torch.Tensor], arrays: tuple[torch.Tensor, ...]) -> Callable[[], None]:
    x = arrays[0].clone().requires_grad_(True)
    rest = arrays[1:]

    def step() -> None:
        x.grad = None
        fn(x, *rest).backward()

    return step


def _unchecked(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    def run() -> None:
        if device.type == "cpu":
            with values_unread():
                step()
        else:
            step()  # the default on an accelerator: nothing read

    return run


def _checked(step: Callable[[], None], device: torch.device) -> Callable[[], None]:
    def run() -> None:
        if device.type == "cpu":
            step()  # the default on CPU: values read
        else:
            with polyloss.checks(values=True):
                step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    repeats, warmup = (5, 2) if args.quick else (15, 5)
    print(f"torch {torch.__version__}, {args.threads} thread(s); ratio = with value checks / without")
    print(f"{'device':6} {'size':>10} {'loss':16} {'checked ms':>11} {'unchecked ms':>13} {'ratio':>6}")
    for device in devices:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        for n, c in ((256, 1000), (4096, 1000)):
            for name, (fn, arrays) in _cases(n, c, device).items():
                step = _step(fn, arrays)
                result = compare(_checked(step, device), _unchecked(step, device), sync, repeats, warmup, False)
                checked, unchecked = 1e3 * result["candidate_s"], 1e3 * result["reference_s"]
                print(
                    f"{device.type:6} {f'{n}x{c}':>10} {name:16} {checked:11.3f} {unchecked:13.3f} "
                    f"{result['ratio']:6.2f}"
                )


if __name__ == "__main__":
    main()
