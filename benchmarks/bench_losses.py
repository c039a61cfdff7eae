"""Forward + backward time of polyloss's elementwise losses against torch's own kernels, in torch eager.

Each row times ``x.grad = None; loss(x, ...).backward()`` for the polyloss function and for what a torch
user calls today (``torch.nn.functional``, torchvision), interleaved in one process (medians, ratio =
polyloss / native). Float32, "mean" reduction. Measures, never asserts.

    PYTHONPATH=. python benchmarks/bench_losses.py                 # every loss, 16x10 and 4096x1000
    PYTHONPATH=. python benchmarks/bench_losses.py --losses huber,mae --sizes 4096x1000 --quick
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _harness import compare_torch, repeats_and_warmup

import polyloss.torch as pt

Inputs = tuple[torch.Tensor, ...]


def _regression(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.randn(n, c, generator=g), torch.randn(n, c, generator=g)


def _binary(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.randn(n, c, generator=g), (torch.rand(n, c, generator=g) > 0.5).float()


def _probabilities(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.rand(n, c, generator=g) * 0.98 + 0.01, (torch.rand(n, c, generator=g) > 0.5).float()


def _signs(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.randn(n, c, generator=g), torch.randint(0, 2, (n, c), generator=g).float() * 2 - 1


def _ranking(n: int, c: int, g: torch.Generator) -> Inputs:
    x1, x2 = torch.randn(n * c, generator=g), torch.randn(n * c, generator=g)
    return x1, x2, torch.randint(0, 2, (n * c,), generator=g).float() * 2 - 1


def _labels(n: int, c: int, g: torch.Generator) -> Inputs:
    target = torch.randint(0, c, (n,), generator=g)
    target[::7] = -100  # one row in seven ignored
    return torch.randn(n, c, generator=g), target


def _log_probs(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.log_softmax(torch.randn(n, c, generator=g), -1), torch.randint(0, c, (n,), generator=g)


def _distributions(n: int, c: int, g: torch.Generator) -> Inputs:
    return torch.log_softmax(torch.randn(n, c, generator=g), -1), torch.softmax(torch.randn(n, c, generator=g), -1)


def _sigmoid_focal_torchvision(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss (gamma 2, alpha 0.25, mean), re-typed to avoid the dependency."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** 2)
    return (0.25 * t + 0.75 * (1 - t)) * loss


#: name -> (polyloss call, native call, inputs); the first input is differentiated
LOSSES: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor], Callable[..., Inputs]]] = {
    "mse": (pt.mse, F.mse_loss, _regression),
    "mae": (pt.mae, F.l1_loss, _regression),
    "huber": (pt.huber, F.huber_loss, _regression),
    "smooth_l1": (pt.smooth_l1, F.smooth_l1_loss, _regression),
    "bce_with_logits": (pt.bce_with_logits, F.binary_cross_entropy_with_logits, _binary),
    "bce": (pt.bce, F.binary_cross_entropy, _probabilities),
    "sigmoid_focal": (pt.sigmoid_focal, lambda x, t: _sigmoid_focal_torchvision(x, t).mean(), _binary),
    "hinge": (pt.hinge, lambda x, t: F.relu(1 - x * t).mean(), _signs),
    "margin_ranking": (pt.margin_ranking, F.margin_ranking_loss, _ranking),
    "cross_entropy ignore_index": (
        lambda x, t: pt.cross_entropy(x, t, ignore_index=-100),
        lambda x, t: F.cross_entropy(x, t, ignore_index=-100),
        _labels,
    ),
    "nll": (pt.nll, F.nll_loss, _log_probs),
    "kl_div": (pt.kl_div, lambda x, t: F.kl_div(x, t, reduction="batchmean"), _distributions),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma-separated names (default: all)")
    parser.add_argument("--sizes", default="16x10,4096x1000", help="NxC[,NxC...]")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and warm-up calls")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, warmup = repeats_and_warmup(False, args.quick, None)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32, forward+backward, 'mean'")
    print(f"{'loss':<28} {'N x C':>11} {'polyloss':>10} {'native':>10} {'ratio':>6}  (p25-p75)")
    for size in args.sizes.split(","):
        n, c = (int(v) for v in size.split("x"))
        for name in args.losses.split(","):
            ours, native, make = LOSSES[name]
            first, *rest = make(n, c, torch.Generator().manual_seed(0))
            first.requires_grad_(True)
            r: dict[str, Any] = compare_torch(ours, native, first, rest, torch.device("cpu"), repeats, warmup, False)
            print(
                f"{name:<28} {size:>11} {r['candidate_s'] * 1e3:>8.3f}ms {r['reference_s'] * 1e3:>8.3f}ms "
                f"{r['ratio']:>6.2f}  ({r['paired_ratio_p25']:.2f}-{r['paired_ratio_p75']:.2f})"
                + ("" if r["max_abs_diff_loss"] < 1e-4 else f"  loss differs by {r['max_abs_diff_loss']:.2g}"),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
