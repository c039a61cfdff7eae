"""Reductions and the safe primitives: every guard around a singular point lives here, once.

Each primitive is exact away from its singular point and, at it, returns the
documented value with a finite gradient on every backend (the double ``where``:
the branch not taken never sees the singular argument, so its gradient is 0,
not ``0 * inf = NaN``). ``tests/test_primitives.py`` checks each one at its
singular point on numpy, array-api-strict, torch and JAX.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._typing import Array, Backend


def reduce(xp: Any, loss: Array, reduction: str, normalizer: Array | None = None) -> Array:
    """Apply ``reduction`` to the unreduced ``loss``.

    ``"mean"`` divides the sum by ``normalizer`` when given (a weight sum); a
    zero normaliser (every sample ignored or zero-weighted) gives 0, not NaN, and so
    does the mean of an empty batch (see :func:`mean`).
    """
    if reduction == "none":
        return loss
    if reduction == "mean" and normalizer is None:
        return mean(xp, loss)
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    return safe_divide(xp, total, normalizer)


def masked_rows(xp: Any, x: Array, mask: Array | None, axis: int) -> Array:
    """``x`` with the rows of masked-out samples (``mask`` False, classes on ``axis``) set to 0, so
    that whatever they held (padding, NaN, -inf) reaches no value and no gradient."""
    return x if mask is None else xp.where(xp.expand_dims(mask, axis=axis), x, 0.0)


def reduce_kept(xp: Any, per_sample: Array, mask: Array | None, reduction: str) -> Array:
    """``reduction`` of ``per_sample`` with the masked-out samples 0 and left out of ``"mean"``
    (which divides by the number of kept samples; 0 when none is kept)."""
    if mask is None:
        return reduce(xp, per_sample, reduction)
    per_sample = xp.where(mask, per_sample, 0.0)
    if reduction != "mean":
        return reduce(xp, per_sample, reduction)
    return reduce(xp, per_sample, reduction, normalizer=xp.sum(xp.astype(mask, per_sample.dtype)))


def is_empty(x: Array) -> bool:
    """Whether ``x`` has no elements: decided on its static shape, never on its values, so it holds
    under jax.jit and torch.compile alike."""
    return math.prod(x.shape) == 0


def mean(xp: Any, x: Array) -> Array:
    """The mean of ``x``, and 0 (with an empty gradient) for an empty ``x``: the empty-batch policy
    (``xp.mean`` of nothing is NaN with a warning)."""
    return xp.sum(x) if is_empty(x) else xp.mean(x)


def softmax_cross_entropy(
    b: Backend,
    logits: Array,
    index: Array,
    axis: int,
    reduction: str = "none",
    valid: Array | None = None,
    kept: Array | None = None,
) -> Array:
    """``b.softmax_cross_entropy`` under the empty-batch policy: with no sample (``index`` empty) the
    per-sample losses are the empty array and ``"mean"`` is 0 (the frameworks' max over an empty
    class axis raises, and their mean of nothing is NaN)."""
    if is_empty(index):
        return reduce(b.xp, b.xp.sum(logits, axis=axis), reduction)
    return b.softmax_cross_entropy(logits, index, axis, reduction, valid=valid, kept=kept)


def safe_divide(xp: Any, numerator: Array, denominator: Array, default: float = 0.0) -> Array:
    """numerator / denominator, and ``default`` (with zero gradient) where denominator == 0."""
    nonzero = denominator != 0
    return xp.where(nonzero, numerator / xp.where(nonzero, denominator, 1.0), default)


def zero_times(xp: Any, coefficient: Array, value: Array, nonfinite: Array | None = None) -> Array:
    """coefficient * value, and exactly 0 where coefficient == 0 and value is infinite or NaN:
    the ``0 * log 0 = 0`` convention.

    Wherever value is finite this is the plain product, in value and in both derivatives (the
    derivative with respect to the coefficient is ``value`` at coefficient == 0 too: a target
    entry of exactly 0 still has its gradient). Only at the guarded entries are both derivatives
    0 (double where: the product never sees the infinite value, so no ``0 * inf = NaN``).

    ``nonfinite``: where ``value`` is infinite or NaN, when the inputs tell it (softplus(x) is
    infinite exactly where x is +inf or NaN): the same result, but a compiler (inductor, XLA) need
    not keep ``value`` for the backward pass only to find the guarded entries again.
    """
    if nonfinite is None:
        # ~isfinite as ~(|v| < inf): the same mask (NaN compares False), but torch.compile's CPU
        # code vectorises it where it writes isfinite element by element (compiled kl_div
        # differentiating both inputs: 2.6x of F.kl_div's time with isfinite, 0.9x with this)
        nonfinite = ~(xp.abs(value) < math.inf)
    guarded = (coefficient == 0) & nonfinite
    return xp.where(guarded, 0.0, coefficient * xp.where(guarded, 0.0, value))


def safe_pow(xp: Any, base: Array, exponent: float | Array) -> Array:
    """base ** exponent for base >= 0, with 0 ** 0 = 1 and a finite (zero) gradient at base == 0,
    in the base and in an array exponent (a 0-d hyper-parameter)."""
    if isinstance(exponent, (int, float)):
        if exponent == 0:
            return xp.ones_like(base)
        if exponent == 1:
            return base
        at_zero: Any = 0.0
    else:
        at_zero = xp.astype(exponent == 0, base.dtype)  # 0 ** 0 = 1
    positive = base > 0
    return xp.where(positive, xp.where(positive, base, 1.0) ** exponent, at_zero)


def along_axis(xp: Any, vector: Array, axis: int, ndim: int) -> Array:
    """Reshape a 1-D ``vector`` so it broadcasts along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = vector.shape[0]
    return xp.reshape(vector, tuple(shape))


def safe_sqrt(xp: Any, x: Array) -> Array:
    """sqrt(x) for x >= 0 with gradient 0 (not inf) at x == 0: the subgradient a norm takes at 0."""
    positive = x > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, x, 1.0)), 0.0)


def safe_norm(xp: Any, x: Array, axis: int = -1) -> Array:
    """Euclidean norm along ``axis`` with gradient 0 at the zero vector on every backend
    (``jnp.linalg.norm`` and ``torch.linalg.vector_norm`` disagree there)."""
    return safe_sqrt(xp, xp.sum(x * x, axis=axis))


#: ``F.normalize``'s floor on the norm.
NORMALIZE_EPS = 1e-12


def l2_normalize(xp: Any, x: Array, axis: int = -1) -> Array:
    """x / max(||x||, 1e-12) along ``axis`` (``torch.nn.functional.normalize``); the zero vector maps
    to 0 with gradient 0.

    x / ||x|| has no limit at 0; ``F.normalize``'s floor gives it the slope 1/1e-12 there, an
    artefact of the guard that overflows float16 gradients to inf. Elsewhere, including norms
    below the floor, this is ``F.normalize`` in value and gradient.
    """
    norm = safe_norm(xp, x, axis)
    nonzero = xp.expand_dims(norm > 0, axis=axis)
    return xp.where(nonzero, x / xp.expand_dims(xp.where(norm > NORMALIZE_EPS, norm, NORMALIZE_EPS), axis=axis), 0.0)


def xlogy(xp: Any, x: Array, y: Array) -> Array:
    """x * log(y) with 0 * log 0 = 0, for y >= 0.

    Exact in value and both derivatives wherever log y is finite (d/dx = log y at x == 0 too);
    at x == y == 0 the value is 0 with zero gradients (the subgradient of x log x at 0, whose
    derivative is -inf); where x != 0 and y == 0 it is x * (-inf), as the maths says.
    """
    singular = (x == 0) & (y == 0)
    return xp.where(singular, 0.0, x * xp.log(xp.where(singular, 1.0, y)))


def safe_logaddexp(b: Backend, *terms: Array) -> Array:
    """log(sum(exp(terms))) elementwise; -inf with zero gradient where every term is -inf
    (``logaddexp(-inf, -inf)``'s gradient is NaN in torch and JAX)."""
    xp = b.xp
    top = terms[0]
    for term in terms[1:]:
        top = xp.maximum(top, term)
    top = b.stop_gradient(xp.where(top > -math.inf, top, 0.0))
    total = xp.exp(terms[0] - top)
    for term in terms[1:]:
        total = total + xp.exp(term - top)
    reached = total > 0
    return xp.where(reached, top + xp.log(xp.where(reached, total, 1.0)), -math.inf)


def safe_atan2(xp: Any, y: Array, x: Array) -> Array:
    """atan2(y, x), and 0 with zero gradient at the origin (where its gradient is 0/0)."""
    origin = (y == 0) & (x == 0)
    return xp.atan2(xp.where(origin, 0.0, y), xp.where(origin, 1.0, x))


_LOG_FLOOR = -100.0
_EXP_LOG_FLOOR = 3.720075976020836e-44  # exp(-100)


def clamped_log(xp: Any, p: Array) -> Array:
    """max(log p, -100) as torch's binary cross-entropy, with a finite gradient at p == 0 (double where)."""
    above = p > _EXP_LOG_FLOOR
    return xp.where(above, xp.log(xp.where(above, p, 1.0)), _LOG_FLOOR)


def clamped_bce(xp: Any, p: Array, t: Array) -> Array:
    """Elementwise binary cross-entropy of probabilities ``p`` against targets ``t``, the logs
    clamped at -100 as torch's ``binary_cross_entropy``."""
    return -(t * clamped_log(xp, p) + (1.0 - t) * clamped_log(xp, 1.0 - p))
