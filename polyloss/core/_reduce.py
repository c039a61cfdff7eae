"""Reductions and small numerically-safe building blocks shared by the core."""

from __future__ import annotations

from typing import Any


def reduce(xp: Any, loss: Any, reduction: str, normalizer: Any = None) -> Any:
    """Apply ``reduction`` to the unreduced ``loss``.

    ``"mean"`` divides the sum by ``normalizer`` when given (a weight sum); a
    zero normaliser (every sample ignored or zero-weighted) gives 0, not NaN.
    """
    if reduction == "none":
        return loss
    if reduction == "mean" and normalizer is None:
        return xp.mean(loss)
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    return safe_divide(xp, total, normalizer)


def safe_divide(xp: Any, numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, and 0 (with zero gradient) where denominator == 0."""
    nonzero = denominator != 0
    return xp.where(nonzero, numerator / xp.where(nonzero, denominator, 1.0), 0.0)


def relu(xp: Any, x: Any) -> Any:
    """max(x, 0) with gradient 0 at x == 0 on every backend (``maximum`` disagrees there)."""
    return xp.where(x > 0, x, 0.0)


def safe_pow(xp: Any, base: Any, exponent: float) -> Any:
    """base ** exponent for base >= 0, with 0 ** 0 = 1 and a finite (zero) gradient at base == 0."""
    if exponent == 0:
        return xp.ones_like(base)
    if exponent == 1:
        return base
    positive = base > 0
    return xp.where(positive, xp.where(positive, base, 1.0) ** exponent, 0.0)


def along_axis(xp: Any, vector: Any, axis: int, ndim: int) -> Any:
    """Reshape a 1-D ``vector`` so it broadcasts along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return xp.reshape(vector, tuple(shape))
