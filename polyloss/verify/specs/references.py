"""Upstream references of a spec: :class:`Reference`, the exception a reference raises when it cannot
express a case, and the reduction of an unreduced reference output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Arrays = dict[str, Any]


class NotApplicable(Exception):
    """Raised by a reference that cannot express a case (the check is counted as n/a)."""


@dataclass(frozen=True)
class Reference:
    """An upstream implementation to match.

    ``fn(m, arrays, params, reduction)`` gets ``m``, the framework's modules
    (``m.torch``, ``m.F`` for torch; ``m.jax``, ``m.jnp``, ``m.optax`` for jax;
    ``m.np`` for numpy), the case's arrays converted to that framework in
    float64, and returns the loss or raises :class:`NotApplicable`. Gradients
    are compared too when the framework has autodiff and ``grads`` is true:
    those of every differentiable input, or of ``grads_of`` only where the
    upstream function cannot differentiate in the others (torch's ``nll_loss``
    in its class weights); torch and JAX against each other and against finite
    differences still cover every differentiable input.
    """

    name: str
    framework: str
    fn: Callable[[Any, Arrays, dict[str, Any], str], Any]
    grads: bool = True
    grads_of: tuple[str, ...] | None = None  # None: every differentiable input

    def compares_gradient_of(self, name: str) -> bool:
        """Whether this reference's gradient with respect to input ``name`` is compared."""
        return self.grads and (self.grads_of is None or name in self.grads_of)


def reduce_reference(xp: Any, out: Any, reduction: str) -> Any:
    """Apply a reduction to an unreduced reference output (optax returns per-sample losses)."""
    if reduction == "none":
        return out
    return xp.sum(out) if reduction == "sum" else xp.mean(out)


def reduce_kept_reference(values: list[float], kept: int, reduction: str) -> np.ndarray:
    """A loop reference's per-sample values reduced, ``"mean"`` over the ``kept`` samples only (0 if none)."""
    out = np.array(values)
    if reduction == "mean":
        return np.asarray(out.sum() / kept if kept else 0.0)
    return np.asarray(reduce_reference(np, out, reduction))
