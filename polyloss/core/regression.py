"""Regression losses: elementwise in (pred, target), then reduced.

Every function here takes the backend ``b`` first; ``polyloss.<framework>``
binds it. With ``reduction="none"`` the loss comes back per element, with the
prediction's shape.

Conventions (each answer is tested: ``tests/test_input_dtypes.py``, ``tests/test_bad_inputs.py``,
``tests/test_weight_broadcasting.py`` and the edge-case corpus):

* **empty batch**: ``"sum"`` and ``"mean"`` 0, ``"none"`` empty (torch's ``mse_loss`` gives NaN
  for the mean of nothing);
* **integers**: targets (and ``gaussian_nll``'s ``var``) may be integers, read as the prediction's
  floating dtype as torch promotes them; predictions must be floating (``TypeError``; torch's
  ``l1_loss`` takes integer predictions but cannot differentiate them);
* **broadcasting**: ``pred`` and ``target`` never broadcast (``ValueError``; torch broadcasts
  ``(N, 1)`` against ``(N,)`` with a warning, a classic silent bug); ``weight`` broadcasts to
  ``pred`` as torch's ``weight=``, and ``"mean"`` divides by the broadcast weight's sum (0 when
  every weight is 0);
* **zeros and limits**: the derivative of ``|e|`` at ``e = 0`` is 0 (torch's; ``jnp.abs`` gives 1);
  ``poisson_nll`` with ``log_input=False`` takes ``log(rate + eps)`` and ``gaussian_nll`` clamps the
  variance at ``eps``, both as torch. optax's regression losses are elementwise: polyloss's
  ``"mean"`` is theirs followed by ``.mean()``.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_broadcasts,
    check_floating,
    check_nonnegative_values,
    check_same_shape,
    nonnegative_number,
    number_in,
    positive_number,
)
from polyloss.core._reduce import reduce
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_pair(b: Backend, pred: Array, target: Array, weight: Array | None) -> None:
    check_floating(b.xp, "pred", pred)
    check_same_shape("pred", pred, "target", target)
    if weight is not None:
        check_broadcasts("weight", weight, "pred", pred)


# Elementwise definitions, passed to ``b.fused``: a backend may compute them with its own kernel.


def _squared_error(b: Backend, pred: Array, target: Array) -> Array:
    error = pred - target
    return error * error


def _absolute_error(b: Backend, pred: Array, target: Array) -> Array:
    return b.abs(pred - target)


def _huber(b: Backend, pred: Array, target: Array, *, delta: float | Array) -> Array:
    error = pred - target
    abs_error = b.abs(error)
    return b.xp.where(abs_error < delta, 0.5 * error * error, delta * (abs_error - 0.5 * delta))


def _smooth_l1(b: Backend, pred: Array, target: Array, *, beta: float) -> Array:
    error = pred - target
    abs_error = b.abs(error)
    return b.xp.where(abs_error < beta, 0.5 * error * error / beta, abs_error - 0.5 * beta)


def _reduced(
    b: Backend,
    kernel: str,
    definition: Any,
    pred: Array,
    target: Array,
    weight: Array | None,
    reduction: str,
    **params: Any,
) -> Array:
    """The elementwise loss ``definition`` (``b.fused``'s ``kernel``), reduced; without a weight the
    backend's kernel may include the reduction (one pass fewer each way)."""
    if weight is None:
        return b.fused(kernel, definition, pred, target, reduction=reduction, **params)
    return _weighted_reduce(b.xp, b.fused(kernel, definition, pred, target, **params), weight, reduction)


def _weighted_reduce(xp: Any, elementwise: Array, weight: Array | None, reduction: str) -> Array:
    """``"mean"`` with a weight is sum(w * loss) / sum(w) over the weight broadcast to the loss's
    shape (0 when every weight is 0)."""
    if weight is None:
        return reduce(xp, elementwise, reduction)
    weight = xp.broadcast_to(weight, tuple(elementwise.shape))
    return reduce(xp, elementwise * weight, reduction, normalizer=xp.sum(weight))


@loss("regression")
def mse(b: Backend, pred: Array, target: Array, *, weight: Array | None = None, reduction: str = "mean") -> Array:
    r"""Mean squared error.

    .. math:: \ell_i = w_i (\hat y_i - y_i)^2

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred`` (never broadcast).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (default; with ``weight``: sum(w * l) / sum(w)),
            ``"sum"`` or ``"none"`` (per element, ``pred``'s shape).

    Returns:
        The loss; a scalar unless ``reduction="none"``.

    Matches ``torch.nn.functional.mse_loss(pred, target, weight=weight, reduction=reduction)``
    (torch >= 2.8 weighted mean included) and ``optax.losses.squared_error(pred, target)``
    followed by the mean.
    """
    _check_pair(b, pred, target, weight)
    return _reduced(b, "squared_error", _squared_error, pred, target, weight, reduction)


@loss("regression", settings={"over_penalty": nonnegative_number(arrays=True)})
def asymmetric_mse(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    over_penalty: float | Array = 2.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Asymmetric squared error: overestimates cost ``over_penalty`` times more.

    .. math:: \ell_i = w_i\, k^{[\hat y_i > y_i]} (\hat y_i - y_i)^2

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        over_penalty: :math:`k \ge 0`, the factor on positive errors (default 2;
            1 gives :func:`mse`, below 1 penalises underestimates more).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"``
            or ``"none"`` (per element).

    Returns:
        The loss. Continuous, with a continuous gradient (0 at zero error).

    Study-hub's ``AsymmetricMSELoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions").
    """
    _check_pair(b, pred, target, weight)
    error = pred - target
    squared = error * error
    return _weighted_reduce(b.xp, b.xp.where(error > 0, over_penalty * squared, squared), weight, reduction)


@loss("regression")
def mae(b: Backend, pred: Array, target: Array, *, weight: Array | None = None, reduction: str = "mean") -> Array:
    r"""Mean absolute error (L1).

    .. math:: \ell_i = w_i |\hat y_i - y_i|

    The gradient at ``pred == target`` is 0 on every backend, as in torch.

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.l1_loss(pred, target, weight=weight, reduction=reduction)``.
    """
    _check_pair(b, pred, target, weight)
    return _reduced(b, "absolute_error", _absolute_error, pred, target, weight, reduction)


@loss("regression", settings={"delta": positive_number(arrays=True)})
def huber(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    delta: float | Array = 1.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Huber loss.

    .. math::
        \ell_i = w_i \begin{cases} \tfrac12 e_i^2 & |e_i| < \delta \\
                 \delta (|e_i| - \tfrac12 \delta) & \text{otherwise} \end{cases},
        \quad e_i = \hat y_i - y_i

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        delta: threshold between the quadratic and linear parts, > 0 (default 1.0).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.huber_loss(pred, target, delta=delta)`` and
    ``optax.losses.huber_loss(pred, target, delta)`` followed by the mean.
    Deliberate difference: with ``weight`` and ``"mean"`` polyloss divides by
    sum(w), like ``F.mse_loss(weight=)``; ``F.huber_loss(weight=)`` divides by N.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> pred = np.array([0.0, 2.0, 5.0])
        >>> target = np.array([0.5, 0.0, 1.0])
        >>> round(float(pl.huber(pred, target)), 6)
        1.708333
        >>> round(float(pl.huber(pred, target, delta=2.0)), 6)
        2.708333
    """
    _check_pair(b, pred, target, weight)
    return _reduced(b, "huber", _huber, pred, target, weight, reduction, delta=delta)


@loss("regression", settings={"beta": nonnegative_number()})
def smooth_l1(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    beta: float = 1.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Smooth L1 loss (Huber divided by ``beta``).

    .. math::
        \ell_i = w_i \begin{cases} \tfrac12 e_i^2 / \beta & |e_i| < \beta \\
                 |e_i| - \tfrac12 \beta & \text{otherwise} \end{cases}

    ``beta = 0`` is exactly the L1 loss.

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        beta: threshold, >= 0 (default 1.0).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.smooth_l1_loss(pred, target, beta=beta)``.
    """
    _check_pair(b, pred, target, weight)
    if beta == 0.0:
        return _reduced(b, "absolute_error", _absolute_error, pred, target, weight, reduction)
    return _reduced(b, "smooth_l1", _smooth_l1, pred, target, weight, reduction, beta=beta)


@loss("regression")
def log_cosh(b: Backend, pred: Array, target: Array, *, weight: Array | None = None, reduction: str = "mean") -> Array:
    r"""Log-cosh loss.

    .. math:: \ell_i = w_i \log\cosh(e_i) = w_i\,(\operatorname{logaddexp}(e_i, -e_i) - \log 2)

    Written with ``logaddexp`` so that large errors never overflow ``cosh``:
    for ``|e| = 1e4`` the loss is ``|e| - log 2``, finite, with gradient ``tanh(e)``.

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``optax.losses.log_cosh(pred, target)`` followed by the mean.
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    error = pred - target
    return _weighted_reduce(xp, xp.logaddexp(error, -error) - _LOG_2, weight, reduction)


@loss("regression", settings={"q": number_in(0.0, 1.0, arrays=True)})
def quantile(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    q: float | Array = 0.5,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Quantile (pinball) loss.

    .. math:: \ell_i = w_i \max\big(q\,(y_i - \hat y_i),\; (q - 1)(y_i - \hat y_i)\big)

    Minimising it estimates the ``q``-quantile; ``q = 0.5`` is half the L1 loss.
    No anchor library has it: tests compare with a direct loop over the formula.

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        q: the quantile, in [0, 1] (default 0.5).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    residual = target - pred
    elementwise = xp.where(residual >= 0, q * residual, (q - 1.0) * residual)
    return _weighted_reduce(xp, elementwise, weight, reduction)


@loss("regression", settings={"log_input": boolean(), "full": boolean(), "eps": positive_number()})
def poisson_nll(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> Array:
    r"""Poisson negative log-likelihood.

    .. math::
        \ell_i = \begin{cases} e^{\hat y_i} - y_i \hat y_i & \text{log\_input} \\
                 \hat y_i - y_i \log(\hat y_i + \varepsilon) & \text{otherwise} \end{cases}
                 \;+\; [\text{full}]\,[y_i > 1]\,\big(y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)\big)

    Args:
        pred: the rate's logarithm (``log_input=True``) or the rate itself (>= 0).
        target: observed counts, same shape as ``pred``.
        log_input: whether ``pred`` is the log-rate (default True).
        full: add the Stirling approximation of ``log(target!)`` for targets > 1.
        eps: added to the rate before the log when ``log_input=False``, > 0.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.poisson_nll_loss(pred, target, log_input, full, eps=eps)``.
    At a rate of exactly 0 (``log_input=False``) the slope is ``1 - target / eps``, the
    clamp's finite stand-in for an infinite one: float16 inputs (computed in float32) get a
    finite loss and, where it exceeds float16's range, an ``inf`` gradient.
    """
    _check_pair(b, pred, target, None)
    xp = b.xp
    if log_input:
        elementwise = xp.exp(pred) - target * pred
    else:
        elementwise = pred - target * xp.log(pred + eps)
    if full:
        above_one = target > 1
        t = xp.where(above_one, target, 1.0)  # double where: log(t) stays finite where masked
        stirling = t * xp.log(t) - t + 0.5 * xp.log(2.0 * math.pi * t)
        elementwise = elementwise + xp.where(above_one, stirling, 0.0)
    return reduce(xp, elementwise, reduction)


@loss("regression", settings={"full": boolean(), "eps": positive_number()})
def gaussian_nll(
    b: Backend,
    pred: Array,
    target: Array,
    var: Array,
    *,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    r"""Gaussian negative log-likelihood with predicted variance.

    .. math::
        \ell_i = \tfrac12\big(\log \max(\sigma_i^2, \varepsilon)
                 + (\hat y_i - y_i)^2 / \max(\sigma_i^2, \varepsilon)\big)
                 \;+\; [\text{full}]\,\tfrac12 \log 2\pi

    As in torch, the clamp at ``eps`` changes the value only: the gradient
    flows to ``var`` as if it were not clamped (straight-through).

    Args:
        pred: predicted means, shape ``(..., D)``.
        target: targets, same shape as ``pred``.
        var: predicted variances (>= 0): ``pred``'s shape, or ``(..., 1)``, or
            ``pred.shape[:-1]`` (one variance per sample, shared over the last axis).
        full: add the constant ``0.5 * log(2 pi)``.
        eps: variance floor, > 0 (default 1e-6).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``pred``'s shape).

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.gaussian_nll_loss(pred, target, var, full=full, eps=eps)``.
    At a variance below ``eps`` the slope in ``pred`` is ``(pred - target) / eps`` (infinite in
    the limit): float16 inputs (computed in float32) get a finite loss and, where that slope
    exceeds float16's range, an ``inf`` gradient.
    """
    _check_pair(b, pred, target, None)
    xp = b.xp
    shape, var_shape = tuple(pred.shape), tuple(var.shape)
    if var_shape == shape[:-1] and len(shape) > 0:
        var = xp.expand_dims(var, axis=-1)
    elif not (var_shape == shape or (var_shape == (*shape[:-1], 1) and len(shape) > 0)):
        raise ValueError(
            f"var must have shape {shape}, {(*shape[:-1], 1)} or {shape[:-1]} for pred of "
            f"shape {shape}, got {var_shape}"
        )
    check_nonnegative_values(b, "var", var)
    # Clamp the value, keep the identity gradient (torch clamps in-place under no_grad).
    clamped = b.stop_gradient(xp.where(var < eps, eps, var))
    var = clamped + (var - b.stop_gradient(var))
    error = pred - target
    elementwise = 0.5 * (xp.log(var) + error * error / var)
    if full:
        elementwise = elementwise + _HALF_LOG_2PI
    return reduce(xp, elementwise, reduction)


@loss("regression", settings={"epsilon": positive_number()})
def mape(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    epsilon: float = 1e-7,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Mean absolute percentage error, in percent.

    .. math:: \ell_i = 100\, w_i \frac{|y_i - \hat y_i|}{\max(|y_i|, \epsilon)}

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        epsilon: :math:`\epsilon > 0`, the floor on :math:`|y_i|` (default 1e-7, keras's
            ``backend.epsilon()``): a target of 0 divides by it.
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss in percent; large but finite at a target of 0 (``100 |pred| / epsilon``).

    keras's ``MeanAbsolutePercentageError`` (``keras.losses.mean_absolute_percentage_error``, which
    averages the last axis first: the same mean for inputs of one shape). The derivative in the
    target is taken through the floor (0 where :math:`|y_i| < \epsilon`) and, at zero error, is 0.
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    magnitude = b.abs(target)
    scale = xp.where(magnitude > epsilon, magnitude, epsilon)
    return _weighted_reduce(xp, 100.0 * b.abs(target - pred) / scale, weight, reduction)


@loss("regression", settings={"epsilon": positive_number()})
def msle(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    epsilon: float = 1e-7,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Mean squared logarithmic error.

    .. math:: \ell_i = w_i \bigl(\log(1 + \max(\hat y_i, \epsilon)) - \log(1 + \max(y_i, \epsilon))\bigr)^2

    For non-negative quantities whose relative error matters (counts, prices).

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        epsilon: the floor both are clamped at (default 1e-7, keras's): a negative value counts as
            :math:`\epsilon` (derivative 0 there), never a NaN log.
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss.

    keras's ``MeanSquaredLogarithmicError`` (``keras.losses.mean_squared_logarithmic_error``,
    clamping both at ``epsilon`` and averaging the last axis first: the same mean for inputs of one
    shape).
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    error = xp.log1p(xp.where(pred > epsilon, pred, epsilon)) - xp.log1p(xp.where(target > epsilon, target, epsilon))
    return _weighted_reduce(xp, error * error, weight, reduction)


@loss("regression", settings={"scale": positive_number(arrays=True)})
def charbonnier(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    scale: float | Array = 1.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Charbonnier (pseudo-Huber, L1-L2) loss: quadratic near 0, linear far away, smooth everywhere.

    .. math:: \ell_i = w_i \Bigl(\sqrt{(e_i / c)^2 + 1} - 1\Bigr), \qquad e_i = \hat y_i - y_i

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        scale: :math:`c > 0`, where the quadratic bowl turns linear (default 1).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; its gradient is bounded by :math:`1 / c`.

    kornia's ``charbonnier_loss`` at :math:`c = 1`; Barron, *A General and Adaptive Robust Loss
    Function* (2019), :math:`\alpha = 1`. Computed as :math:`u^2 / (\sqrt{u^2 + 1} + 1)` with
    :math:`u = e / c`, which keeps tiny errors' precision.
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    u = (pred - target) / scale
    squared = u * u
    return _weighted_reduce(xp, squared / (xp.sqrt(squared + 1.0) + 1.0), weight, reduction)


@loss("regression", settings={"scale": positive_number(arrays=True)})
def cauchy(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    scale: float | Array = 1.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Cauchy (Lorentzian) loss: logarithmic in large errors, so outliers barely pull.

    .. math:: \ell_i = w_i \log\Bigl(\tfrac12 (e_i / c)^2 + 1\Bigr), \qquad e_i = \hat y_i - y_i

    Args:
        pred: predictions, any shape, floating.
        target: targets, same shape as ``pred``.
        scale: :math:`c > 0` (default 1).
        weight: optional elementwise weights, broadcasting to ``pred``.
        reduction: ``"mean"`` (with ``weight``: sum(w * l) / sum(w)), ``"sum"`` or ``"none"``.

    Returns:
        The loss; non-convex, its gradient vanishes for large errors.

    kornia's ``cauchy_loss`` at :math:`c = 1`; Barron, *A General and Adaptive Robust Loss
    Function* (2019), :math:`\alpha = 0`.
    """
    _check_pair(b, pred, target, weight)
    xp = b.xp
    u = (pred - target) / scale
    return _weighted_reduce(xp, xp.log1p(0.5 * u * u), weight, reduction)
