"""Declarative specs: one per loss, from which every conformance check derives.

A :class:`LossSpec` names the core loss, its input generators (variants), which
inputs are differentiable, its upstream references and its tolerances. The
checks in :mod:`polyloss.verify.conformance` (run by the test-suite and by
``python -m polyloss verify``) read nothing else. Specs import no framework:
reference callables receive the framework modules as their first argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyloss.core._typing import RegisteredLoss

Arrays = dict[str, Any]


class NotApplicable(Exception):
    """Raised by a reference that cannot express a case (the check is counted as n/a)."""


@dataclass(frozen=True)
class Case:
    """One concrete input: numpy arrays (float64/int64) and static keyword parameters."""

    arrays: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """A family of cases: fixed parameters, random arrays of batch size ``n``."""

    name: str
    make: Callable[[np.random.Generator, int], Case]


@dataclass(frozen=True)
class Reference:
    """An upstream implementation to match.

    ``fn(m, arrays, params, reduction)`` gets ``m``, the framework's modules
    (``m.torch``, ``m.F`` for torch; ``m.jax``, ``m.jnp``, ``m.optax`` for jax;
    ``m.np`` for numpy), the case's arrays converted to that framework in
    float64, and returns the loss or raises :class:`NotApplicable`. Gradients
    are compared too when the framework has autodiff and ``grads`` is true.
    """

    name: str
    framework: str
    fn: Callable[[Any, Arrays, dict[str, Any], str], Any]
    grads: bool = True


DEFAULT_TOLERANCES = {
    # (rtol, atol): |a - b| <= atol + rtol * |b|
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 1e-6),
}


@dataclass(frozen=True)
class LossSpec:
    name: str
    variants: tuple[Variant, ...]
    differentiable: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    tolerances: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    second_order: bool = True  # twice differentiable away from kinks: also check second derivatives
    # False where the gradient is deliberately not that of the value (a coefficient held
    # constant, as CIoU's alpha): finite differences are then n/a, references still compare.
    finite_differences: bool = True
    notes: str = ""

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


SPECS: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> LossSpec:
    if spec.name in SPECS:
        raise RuntimeError(f"spec {spec.name!r} registered twice")
    SPECS[spec.name] = spec
    return spec


def reduce_reference(xp: Any, out: Any, reduction: str) -> Any:
    """Apply a reduction to an unreduced reference output (optax returns per-sample losses)."""
    if reduction == "none":
        return out
    return xp.sum(out) if reduction == "sum" else xp.mean(out)


# registers the specs
from polyloss.verify.specs import (  # noqa: E402
    box,
    classification,
    contrastive,
    distribution,
    generative,
    metric,
    multitask,
    regression,
    segmentation,
    sequence,
)

__all__ = [
    "SPECS",
    "Case",
    "LossSpec",
    "NotApplicable",
    "Reference",
    "Variant",
    "box",
    "classification",
    "contrastive",
    "distribution",
    "generative",
    "metric",
    "multitask",
    "reduce_reference",
    "register",
    "regression",
    "segmentation",
    "sequence",
]
