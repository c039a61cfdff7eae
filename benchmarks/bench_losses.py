"""Forward + backward time of polyloss's losses against what a user calls today, in three modes.

``torch-eager``: ``x.grad = None; loss(x, ...).backward()`` for the polyloss function and for
``torch.nn.functional`` (or torchvision's, or the keras formula in torch); ``torch-compile``: both
under ``torch.compile(fullgraph=True)``; ``jax-jit``: ``jax.jit(jax.value_and_grad(...))`` of
``polyloss.jax`` and of optax's loss followed by the mean (or the formula in ``jax.numpy`` where optax
has none). Interleaved in one process (medians, ratio = polyloss / native, and the spread of the
paired ratios). Float32, "mean" reduction, CPU unless ``--device``. Measures, never asserts.

    PYTHONPATH=. python benchmarks/bench_losses.py                 # every loss, mode and size
    PYTHONPATH=. python benchmarks/bench_losses.py --losses huber,mae --sizes 4096x1000 --modes torch-eager
    PYTHONPATH=. python benchmarks/bench_losses.py --quick --write-readme   # regenerate the README table
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _harness import compare_jax, compare_torch, jax_device, repeats_and_warmup

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


# ----------------------------------------------------------------------------- the JAX side


def _optax() -> Any:
    import optax

    return optax


def _jnp() -> Any:
    import jax.numpy as jnp

    return jnp


def _plj() -> Any:
    import polyloss.jax as plj

    return plj


def _jax_ce_ignore(x: Any, t: Any) -> Any:
    """optax's integer-label cross-entropy over the kept rows (label -100 ignored), their mean."""
    jnp, optax = _jnp(), _optax()
    kept = t != -100
    losses = optax.losses.softmax_cross_entropy_with_integer_labels(x, jnp.where(kept, t, 0))
    return jnp.sum(jnp.where(kept, losses, 0.0)) / jnp.maximum(jnp.sum(kept), 1)


def _jax_nll(x: Any, t: Any) -> Any:
    jnp = _jnp()
    return -jnp.mean(jnp.take_along_axis(x, t[:, None], axis=-1))


@dataclass(frozen=True)
class Pair:
    """One loss: polyloss's and the native call in torch, and (where JAX has a counterpart) in JAX.
    Every call takes the inputs ``make`` draws, the first one differentiated."""

    torch_ours: Callable[..., torch.Tensor]
    torch_native: Callable[..., torch.Tensor]
    make: Callable[[int, int, torch.Generator], Inputs]
    jax_ours: Callable[..., Any] | None = None
    jax_native: Callable[..., Any] | None = None
    native_name: str = ""


LOSSES: dict[str, Pair] = {
    "mse": Pair(
        pt.mse,
        F.mse_loss,
        _regression,
        lambda x, t: _plj().mse(x, t),
        lambda x, t: _optax().losses.squared_error(x, t).mean(),
        "F.mse_loss / optax squared_error",
    ),
    "mae": Pair(
        pt.mae,
        F.l1_loss,
        _regression,
        lambda x, t: _plj().mae(x, t),
        lambda x, t: _jnp().mean(_jnp().abs(x - t)),
        "F.l1_loss / jnp formula",
    ),
    "huber": Pair(
        pt.huber,
        F.huber_loss,
        _regression,
        lambda x, t: _plj().huber(x, t),
        lambda x, t: _optax().losses.huber_loss(x, t, delta=1.0).mean(),
        "F.huber_loss / optax huber_loss",
    ),
    "smooth_l1": Pair(
        pt.smooth_l1,
        F.smooth_l1_loss,
        _regression,
        lambda x, t: _plj().smooth_l1(x, t),
        lambda x, t: _optax().losses.huber_loss(x, t, delta=1.0).mean(),
        "F.smooth_l1_loss / optax huber_loss",
    ),
    "bce_with_logits": Pair(
        pt.bce_with_logits,
        F.binary_cross_entropy_with_logits,
        _binary,
        lambda x, t: _plj().bce_with_logits(x, t),
        lambda x, t: _optax().losses.sigmoid_binary_cross_entropy(x, t).mean(),
        "F.binary_cross_entropy_with_logits / optax sigmoid_binary_cross_entropy",
    ),
    "bce": Pair(
        pt.bce,
        F.binary_cross_entropy,
        _probabilities,
        lambda x, t: _plj().bce(x, t),
        lambda x, t: -_jnp().mean(t * _jnp().log(x) + (1 - t) * _jnp().log1p(-x)),
        "F.binary_cross_entropy / jnp formula",
    ),
    "sigmoid_focal": Pair(
        pt.sigmoid_focal,
        lambda x, t: _sigmoid_focal_torchvision(x, t).mean(),
        _binary,
        lambda x, t: _plj().sigmoid_focal(x, t),
        lambda x, t: _optax().losses.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0).mean(),
        "torchvision sigmoid_focal_loss / optax sigmoid_focal_loss",
    ),
    "hinge": Pair(
        pt.hinge,
        lambda x, t: F.relu(1 - x * t).mean(),
        _signs,
        lambda x, t: _plj().hinge(x, t),
        lambda x, t: _optax().losses.hinge_loss(x, t).mean(),
        "keras formula / optax hinge_loss",
    ),
    "margin_ranking": Pair(
        pt.margin_ranking,
        F.margin_ranking_loss,
        _ranking,
        lambda a, b, t: _plj().margin_ranking(a, b, t),
        lambda a, b, t: _jnp().mean(_jnp().maximum(0.0, -t * (a - b))),
        "F.margin_ranking_loss / jnp formula",
    ),
    "cross_entropy ignore_index": Pair(
        lambda x, t: pt.cross_entropy(x, t, ignore_index=-100),
        lambda x, t: F.cross_entropy(x, t, ignore_index=-100),
        _labels,
        lambda x, t: _plj().cross_entropy(x, t, ignore_index=-100),
        _jax_ce_ignore,
        "F.cross_entropy / optax softmax_cross_entropy_with_integer_labels",
    ),
    "nll": Pair(pt.nll, F.nll_loss, _log_probs, lambda x, t: _plj().nll(x, t), _jax_nll, "F.nll_loss / jnp formula"),
    "kl_div": Pair(
        pt.kl_div,
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        _distributions,
        lambda x, t: _plj().kl_div(x, t),
        lambda x, t: _optax().losses.kl_divergence(x, t).mean(),
        "F.kl_div / optax kl_divergence",
    ),
}

MODES = ("torch-eager", "torch-compile", "jax-jit")


def _run(name: str, mode: str, n: int, c: int, device: str, repeats: int, warmup: int) -> dict[str, Any] | None:
    """compare_torch's or compare_jax's result for one loss, mode and size (None: no JAX counterpart)."""
    pair = LOSSES[name]
    first, *rest = (v.to(device) for v in pair.make(n, c, torch.Generator().manual_seed(0)))
    if mode == "jax-jit":
        if pair.jax_ours is None or pair.jax_native is None:
            return None
        import jax

        on = jax_device(device)
        inputs = [jax.device_put(v.cpu().numpy(), on) for v in (first, *rest)]
        ours, native = jax.jit(jax.value_and_grad(pair.jax_ours)), jax.jit(jax.value_and_grad(pair.jax_native))
        return compare_jax(ours, native, inputs, repeats, warmup, False)
    ours_fn, native_fn = pair.torch_ours, pair.torch_native
    if mode == "torch-compile":
        torch._dynamo.reset()
        ours_fn, native_fn = torch.compile(ours_fn, fullgraph=True), torch.compile(native_fn, fullgraph=True)
    first.requires_grad_(True)
    return compare_torch(ours_fn, native_fn, first, rest, torch.device(device), repeats, warmup, False)


#: the markers around the generated table in benchmarks/README.md
TABLE_BEGIN = "<!-- bench_losses: generated by `python benchmarks/bench_losses.py --write-readme`; do not edit -->"
TABLE_END = "<!-- /bench_losses -->"


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    return f"{r['ratio']:.2f} ({r['paired_ratio_p25']:.2f}-{r['paired_ratio_p75']:.2f})"


def markdown_table(
    results: dict[tuple[str, str, str], dict[str, Any] | None], sizes: list[str], modes: list[str]
) -> str:
    names = list(dict.fromkeys(name for name, _, _ in results))
    header = ["loss", "native / reference", *(f"{mode} {size}" for mode in modes for size in sizes)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        cells = [_cell(results.get((name, mode, size))) for mode in modes for size in sizes]
        lines.append(f"| `{name}` | {LOSSES[name].native_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_readme(
    table: str, header: str, path: Path, table_begin: str = TABLE_BEGIN, table_end: str = TABLE_END
) -> None:
    """Replace what lies between the markers ``table_begin`` and ``table_end`` in ``path``."""
    text = path.read_text()
    begin, end = text.find(table_begin), text.find(table_end)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path} has no {table_begin!r} ... {table_end!r} block")
    path.write_text(text[: begin + len(table_begin)] + "\n" + header + "\n\n" + table + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--losses", default=",".join(LOSSES), help="comma-separated names (default: all)")
    parser.add_argument("--sizes", default="16x10,256x1000,4096x1000", help="NxC[,NxC...]")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and warm-up calls")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--write-readme", action="store_true", help="rewrite the table in benchmarks/README.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes, modes = args.sizes.split(","), args.modes.split(",")
    unknown = [m for m in modes if m not in MODES] + [n for n in args.losses.split(",") if n not in LOSSES]
    if unknown or not all(re.fullmatch(r"\d+x\d+", size) for size in sizes):
        parser.error(f"unknown mode or loss {unknown}, or a size not written NxC in {sizes}")
    repeats, warmup = repeats_and_warmup(False, args.quick, None)
    header = (
        f"torch {torch.__version__}, torch threads: {torch.get_num_threads()}, {args.device}, float32, "
        "forward+backward, 'mean'; cells: median ratio polyloss / native (p25-p75 of the paired ratios)"
    )
    print(header)
    results: dict[tuple[str, str, str], dict[str, Any] | None] = {}
    for mode in modes:
        for size in sizes:
            n, c = (int(v) for v in size.split("x"))
            for name in args.losses.split(","):
                r = _run(name, mode, n, c, args.device, repeats, warmup)
                results[(name, mode, size)] = r
                differs = (
                    ""
                    if r is None or r["max_abs_diff_loss"] < 1e-4
                    else f"  loss differs by {r['max_abs_diff_loss']:.2g}"
                )
                print(f"{mode:<14} {name:<28} {size:>11} {_cell(r):>20}{differs}", flush=True)
    table = markdown_table(results, sizes, modes)
    print(table)
    if args.write_readme:
        write_readme(table, header, Path(__file__).with_name("README.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
