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


def safe_sqrt(xp: Any, x: Any) -> Any:
    """sqrt(x) for x >= 0 with gradient 0 (not inf) at x == 0: the subgradient a norm takes at 0."""
    positive = x > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, x, 1.0)), 0.0)


def safe_norm(xp: Any, x: Any, axis: int = -1) -> Any:
    """Euclidean norm along ``axis`` with gradient 0 at the zero vector on every backend
    (``jnp.linalg.norm`` and ``torch.linalg.vector_norm`` disagree there)."""
    return safe_sqrt(xp, xp.sum(x * x, axis=axis))


#: ``F.normalize``'s floor on the norm.
NORMALIZE_EPS = 1e-12


def l2_normalize(xp: Any, x: Any, axis: int = -1) -> Any:
    """x / max(||x||, 1e-12) along ``axis`` (``torch.nn.functional.normalize``): the zero vector maps to 0."""
    norm = safe_norm(xp, x, axis)
    return x / xp.expand_dims(xp.where(norm > NORMALIZE_EPS, norm, NORMALIZE_EPS), axis=axis)


def xlogy(xp: Any, x: Any, y: Any) -> Any:
    """x * log(y) with 0 * log(anything) = 0, for y >= 0: finite value and gradient where x == 0."""
    nonzero = x != 0
    return xp.where(nonzero, x * xp.log(xp.where(nonzero, y, 1.0)), 0.0)


_LOG_FLOOR = -100.0
_EXP_LOG_FLOOR = 3.720075976020836e-44  # exp(-100)


def clamped_log(xp: Any, p: Any) -> Any:
    """max(log p, -100) as torch's binary cross-entropy, with a finite gradient at p == 0 (double where)."""
    above = p > _EXP_LOG_FLOOR
    return xp.where(above, xp.log(xp.where(above, p, 1.0)), _LOG_FLOOR)
