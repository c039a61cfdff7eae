"""The record of a loss's spec: :class:`LossSpec` and its parts (cases, variants, layouts, means,
half-precision facts), read by every check. Registered with :func:`polyloss.verify.specs.register`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from polyloss.core._typing import RegisteredLoss
from polyloss.verify.specs.edges import EdgeCase
from polyloss.verify.specs.references import Reference


@dataclass(frozen=True)
class Case:
    """One concrete input: numpy arrays (float64/int64) and static keyword parameters."""

    arrays: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)
    # floating inputs whose gradients this case does not check: its variant's ``not_differentiable``
    not_differentiable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """A family of cases: fixed parameters, random arrays of batch size ``n``."""

    name: str
    make: Callable[[np.random.Generator, int], Case]
    # floating inputs whose gradients are not checked in this variant's cases, each with the
    # mathematical reason (an input drawn at a point where the loss has no derivative in it)
    not_differentiable: dict[str, str] = field(default_factory=dict)

    def excluding(self, **reasons: str) -> Variant:
        """This variant with the inputs ``reasons`` names not differentiated, for those reasons."""
        return replace(self, not_differentiable={**self.not_differentiable, **reasons})


@dataclass(frozen=True)
class Layout:
    """How one case of a loss is laid out along the batch (read by the invariance tests).

    ``per_sample``: inputs indexed by the sample on ``axes.get(name, 0)``;
    ``shared``: inputs common to every sample (class weights, shared negatives, scales);
    ``none``: how ``reduction="none"`` follows a permutation of the samples:
    ``"rows"`` (its axis 0 is permuted), ``"halves"`` (``(2N,)``, each half permuted),
    ``"pooled"`` (one value per group pooled over the batch: unchanged) or ``None`` (no "none");
    ``coupled``: why one sample's loss depends on the others (None: samples are independent).
    """

    per_sample: tuple[str, ...]
    shared: tuple[str, ...] = ()
    none: str | None = "rows"
    coupled: str | None = None
    axes: dict[str, int] = field(default_factory=dict)


#: a loss's layout: one for every case, or one per case (a variant's parameters or shapes decide)
LayoutRule = Layout | Callable[[Case], Layout]

#: ``evaluate(params, reduction)``: the loss, in float64, of the case's arrays with ``params``
Evaluate = Callable[[dict[str, Any], str], np.ndarray]


@dataclass(frozen=True)
class Mean:
    """What ``reduction="mean"`` is, as the docstring says.

    ``"sum"`` divided by ``normaliser(case, none)`` (by the number of elements of ``"none"`` when
    ``normaliser`` is None; 0 when the normaliser is 0), or, for a mean that is not one sum over one
    normaliser, ``expected(case, values, evaluate)`` with ``values`` the loss for every reduction.
    """

    doc: str
    normaliser: Callable[[Case, np.ndarray], float] | None = None
    expected: Callable[[Case, dict[str, np.ndarray], Evaluate], float] | None = None


ELEMENT_MEAN = Mean("the number of elements of 'none'")

#: an in-place edit of a case's arrays (a copy of them)
Edit = Callable[[dict[str, np.ndarray]], None]


@dataclass(frozen=True)
class ZeroCase:
    """A zero (or an exact tie) where a guard or an epsilon matters, fed in half precision: the loss
    and its gradients stay finite.

    ``variant``: the variant (by name) whose first case (seed 0, n = 2) ``edits`` change, with
    ``params`` added; ``zero_row_gradients``: inputs whose listed rows are zero vectors and have
    gradient exactly 0; ``float16_gradient_beyond_range``: inputs whose true slope there exceeds
    float16's range, with the documented bound on max |float32 gradient| (+-inf in float16).
    """

    label: str
    variant: str
    edits: tuple[Edit, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    zero_row_gradients: dict[str, tuple[int, ...]] = field(default_factory=dict)
    float16_gradient_beyond_range: dict[str, float] = field(default_factory=dict)


#: the factor over the first-order rounding bound that half-precision inputs keep to (tests/test_mixed_precision.py)
DEFAULT_ROUNDING_FACTOR = 2.0


@dataclass(frozen=True)
class HalfPrecision:
    """What the mixed-precision test runs besides the first variant (n = 3): ``variants`` (by name,
    n = 2) with extreme or special inputs, ``zero_cases``; and ``rounding_factor``, the C of
    ``|half - float32| <= C u sum|dL/dx||x| + float32 floor`` (a loss that needs more than the
    default states its measured error and the reason)."""

    variants: tuple[str, ...] = ()
    zero_cases: tuple[ZeroCase, ...] = ()
    rounding_factor: float = DEFAULT_ROUNDING_FACTOR


@dataclass(frozen=True)
class Plot:
    """The docs' picture of a loss, drawn from ``polyloss.numpy`` when the site is built
    (``polyloss.verify.plots``): the loss and its derivative along one natural scalar axis ``x``, one
    curve per value of a hyper-parameter.

    ``axis``: what ``x`` is (the horizontal label: "logit of the true class", "error", "offset of
    the second box"); ``inputs(x)``: the loss's arrays at ``x`` (float64 or integer numpy arrays);
    ``span``: the range of ``x``; ``params``: fixed keyword arguments; ``sweep``: the hyper-parameter
    drawn as several curves and its values (None: one curve at the defaults; an input's name sweeps
    that input, e.g. a pair's label); ``reduction``: the one
    plotted (the default, ``"mean"``, unless the loss has no mean).
    """

    axis: str
    inputs: Callable[[float], dict[str, np.ndarray]]
    span: tuple[float, float] = (-4.0, 4.0)
    sweep: tuple[str, tuple[Any, ...]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reduction: str = "mean"


DEFAULT_TOLERANCES = {
    # (rtol, atol): |a - b| <= atol + rtol * |b|
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 1e-6),
}


@dataclass(frozen=True)
class LossSpec:
    name: str
    variants: tuple[Variant, ...]
    references: tuple[Reference, ...] = ()
    # floating inputs whose gradients are not checked, each with the mathematical reason (printed on
    # the docs page); every other floating input of a case is differentiable (differentiable_in)
    not_differentiable: dict[str, str] = field(default_factory=dict)
    tolerances: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    second_order: bool = True  # twice differentiable away from kinks: also check second derivatives
    # False where the gradient is deliberately not that of the value (a coefficient held
    # constant, as CIoU's alpha): finite differences are then n/a, references still compare.
    finite_differences: bool = True
    notes: str = ""
    # batch layout (None: every input per sample on axis 0, "none" per sample, samples independent)
    layout: LayoutRule | None = None
    mean: Mean = ELEMENT_MEAN  # what "mean" divides "sum" by
    # inputs that, all ones, equal leaving them out (per-sample, per-class and positive-class weights)
    unit_weights: tuple[str, ...] = ()
    # why a ``weight`` parameter is not in unit_weights (e.g. a scalar coefficient)
    weight_is_not_a_weight: str = ""
    # inputs whose rows (last axis) may be scaled by positive factors without changing the loss
    scale_invariant: tuple[str, ...] = ()
    half_precision: HalfPrecision = field(default_factory=HalfPrecision)
    # singular and extreme inputs with their asserted outcomes (polyloss.verify.specs.edges): register()
    # puts the family corpus's cases stated under the spec's name first, then these
    edge_cases: tuple[EdgeCase, ...] = ()
    # the docs' plot of the loss and its derivative (every loss has one: tests/test_plots.py)
    plot: Plot | None = None

    def differentiable_in(self, case: Case) -> tuple[str, ...]:
        """The inputs of ``case`` whose gradients are checked: every floating array but the
        :attr:`not_differentiable` ones (the spec's and the case's variant's), in the case's order."""
        return tuple(
            name
            for name, value in case.arrays.items()
            if np.issubdtype(value.dtype, np.floating)
            and name not in self.not_differentiable
            and name not in case.not_differentiable
        )

    def layout_of(self, case: Case) -> Layout:
        """The layout of ``case``; every input is either per sample or shared."""
        rule = self.layout
        # a 0-d input is a hyper-parameter given as an array: shared by every sample
        scalars = tuple(name for name, value in case.arrays.items() if value.ndim == 0)
        if rule is None:
            return Layout(tuple(name for name in case.arrays if name not in scalars), shared=scalars)
        layout = rule(case) if callable(rule) else rule
        extra = tuple(name for name in scalars if name not in layout.per_sample + layout.shared)
        layout = replace(layout, shared=layout.shared + extra)
        unknown = set(case.arrays) - set(layout.per_sample) - set(layout.shared)
        if unknown:
            raise ValueError(f"{self.name}: inputs {sorted(unknown)} are neither per-sample nor shared in its layout")
        return layout

    def core(self) -> RegisteredLoss:
        from polyloss.core import CORE_LOSSES

        return CORE_LOSSES[self.name]

    @property
    def family(self) -> str:
        """The family the core registration declares (``@loss(family)``)."""
        return self.core().family

    @property
    def reductions(self) -> tuple[str, ...]:
        """The reductions the core registration declares (``@loss(..., reductions=...)``)."""
        return tuple(self.core().reductions)
