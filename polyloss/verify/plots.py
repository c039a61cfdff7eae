"""The docs' pictures, computed from the code when the site is built: every loss and its derivative
along its natural axis (its spec's :class:`~polyloss.verify.specs.Plot`), and each family's comparison
plots (:data:`COMPARISONS`). Values come from ``polyloss.numpy`` (float64), derivatives from central
differences of those values (``polyloss.torch`` and autograd for a loss that needs autodiff);
nothing drawn is committed, so nothing drawn can drift from the code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyloss.verify.specs import SPECS, Plot

#: points per curve
POINTS = 161


@dataclass(frozen=True)
class Curve:
    """One curve of a plot: its label, the axis values, the loss and its derivative there."""

    label: str
    x: np.ndarray
    value: np.ndarray
    derivative: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """Several losses of one family on one axis (each drawn with its own spec's ``Plot.inputs``, which
    must share the ``axis``): ``curves`` are ``(label, loss, params)``."""

    family: str
    slug: str
    title: str
    curves: tuple[tuple[str, str, dict[str, Any]], ...]
    span: tuple[float, float] | None = None


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "classification",
        "ce-focal-poly1",
        "Cross-entropy, focal (gamma 0.5, 1, 2, 5) and poly-1",
        (
            ("cross_entropy", "cross_entropy", {}),
            *((f"focal, gamma {g:g}", "focal", {"gamma": g}) for g in (0.5, 1.0, 2.0, 5.0)),
            ("poly1, epsilon 1", "poly1", {"epsilon": 1.0}),
        ),
    ),
    Comparison(
        "segmentation",
        "dice-tversky",
        "Dice, Tversky (alpha 0.7) and focal Tversky (gamma 0.75)",
        (
            ("dice", "dice", {}),
            ("tversky, alpha 0.7, beta 0.3", "tversky", {"alpha": 0.7, "beta": 0.3}),
            ("focal_tversky, gamma 0.75", "focal_tversky", {"gamma": 0.75}),
        ),
    ),
    Comparison(
        "regression",
        "robust",
        "MSE, MAE, Huber, log-cosh and quantile (q 0.8)",
        (
            ("mse", "mse", {}),
            ("mae", "mae", {}),
            ("huber, delta 1", "huber", {"delta": 1.0}),
            ("log_cosh", "log_cosh", {}),
            ("quantile, q 0.8", "quantile", {"q": 0.8}),
        ),
    ),
    Comparison(
        "box",
        "iou-family",
        "IoU, GIoU, DIoU and CIoU losses of two sliding boxes",
        (
            ("box_iou", "box_iou", {}),
            ("box_giou", "box_giou", {}),
            ("box_diou", "box_diou", {}),
            ("box_ciou", "box_ciou", {}),
        ),
    ),
    Comparison(
        "contrastive",
        "infonce-temperature",
        "InfoNCE against the temperature",
        tuple((f"infonce, temperature {t:g}", "infonce", {"temperature": t}) for t in (0.05, 0.1, 0.5, 1.0)),
    ),
)


def plot_of(name: str) -> Plot:
    plot = SPECS[name].plot
    if plot is None:
        raise LookupError(f"the spec of {name!r} declares no plot")
    return plot


def _evaluator(name: str) -> Callable[..., float]:
    """``f(**arrays_and_params) -> float``: the loss in float64, from ``polyloss.numpy`` (or, for a loss
    that needs autodiff, ``polyloss.torch`` through the torch harness's conversions)."""
    if not SPECS[name].core().needs_autodiff:
        fn = getattr(importlib.import_module("polyloss.numpy"), name)
        return lambda **kwargs: float(fn(**kwargs))
    harness = importlib.import_module("polyloss.verify.harness.torch").HARNESS
    torch_fn = getattr(importlib.import_module("polyloss.torch"), name)

    def evaluate(**kwargs: Any) -> float:
        converted = {k: harness.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        return float(harness.to_numpy(torch_fn(**converted)))

    return evaluate


def curve(name: str, params: dict[str, Any], label: str, span: tuple[float, float] | None = None) -> Curve:
    """The loss ``name`` along its plot's axis with ``params`` added to the plot's own."""
    plot = plot_of(name)
    evaluate = _evaluator(name)
    kwargs = {**plot.params, **params, "reduction": plot.reduction}

    def at(x: float) -> float:
        return evaluate(**{**plot.inputs(x), **kwargs})  # a swept input replaces the drawn one

    lo, hi = span or plot.span
    xs = np.linspace(lo, hi, POINTS)
    values = np.array([at(float(x)) for x in xs])
    steps = 1e-6 * np.maximum(1.0, np.abs(xs))
    derivative = np.array([(at(float(x + h)) - at(float(x - h))) / (2 * h) for x, h in zip(xs, steps, strict=True)])
    return Curve(label, xs, values, derivative)


def _shown(value: Any) -> str:
    """A swept value as the legend shows it: numbers short, a one-element array as its number."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def loss_curves(name: str) -> list[Curve]:
    """The curves of the loss's own plot: one per value of its sweep (or one)."""
    plot = plot_of(name)
    if plot.sweep is None:
        return [curve(name, {}, name)]
    key, values = plot.sweep
    return [curve(name, {key: value}, f"{key} = {_shown(value)}") for value in values]


def comparison_curves(comparison: Comparison) -> list[Curve]:
    axes = {plot_of(name).axis for _, name, _ in comparison.curves}
    if len(axes) != 1:
        raise ValueError(f"comparison {comparison.slug!r} mixes axes {sorted(axes)}")
    return [curve(name, params, label, comparison.span) for label, name, params in comparison.curves]


def draw(curves: list[Curve], axis: str, title: str, path: Path, derivative: str = "derivative") -> Path:
    """The loss (left) and its derivative (right) against ``axis``, as an SVG at ``path``; ``derivative``
    titles the right panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.2), constrained_layout=True)
    for c in curves:
        left.plot(c.x, c.value, label=c.label, linewidth=1.6)
        right.plot(c.x, c.derivative, label=c.label, linewidth=1.6)
    for ax, what in ((left, "loss"), (right, derivative)):
        ax.set_xlabel(axis)
        ax.set_title(what, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
    if len(curves) > 1:
        left.legend(fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    # no timestamp or random ids in the file: the same code draws the same bytes
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_loss(name: str, out: Path) -> Path:
    # where the gradient deliberately is not the value's (a coefficient held constant, as CIoU's
    # alpha), the panel shows the value's derivative and says so
    derivative = "derivative" if SPECS[name].finite_differences else "derivative of the value (not its gradient)"
    return draw(loss_curves(name), plot_of(name).axis, name, out / f"{name}.svg", derivative)


def draw_comparison(comparison: Comparison, out: Path) -> Path:
    axis = plot_of(comparison.curves[0][1]).axis
    return draw(comparison_curves(comparison), axis, comparison.title, out / f"compare-{comparison.slug}.svg")


@dataclass
class Drawn:
    """What :func:`draw_all` wrote: the loss plots by name, the comparisons by family."""

    losses: dict[str, Path] = field(default_factory=dict)
    comparisons: dict[str, list[tuple[Comparison, Path]]] = field(default_factory=dict)


def draw_all(out: Path) -> Drawn:
    drawn = Drawn()
    for name, spec in SPECS.items():
        if spec.plot is not None:
            drawn.losses[name] = draw_loss(name, out)
    for comparison in COMPARISONS:
        drawn.comparisons.setdefault(comparison.family, []).append((comparison, draw_comparison(comparison, out)))
    return drawn
