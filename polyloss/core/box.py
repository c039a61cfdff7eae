"""Bounding-box regression losses on ``(..., 4)`` boxes in ``(x1, y1, x2, y2)`` form.

One loss per box pair (``reduction="none"`` gives the boxes' shape without
the last axis). Boxes must satisfy ``x1 <= x2`` and ``y1 <= y2``; inverted
boxes raise ``ValueError`` in eager mode (under tracing nothing is checked). Integer (pixel)
boxes are promoted as torchvision promotes them: to the other input's floating dtype, or to the
framework's default floating dtype (float32 in torch and JAX, float64 in NumPy).
``eps`` is torchvision's: added to the union (and to the enclosing box's area
or squared diagonal), so zero-area and non-overlapping boxes give finite
values and gradients. The coordinates' ``max``/``min`` split the gradient
evenly at ties (identical edges), as torch and JAX both do.

Conventions (tested by ``tests/test_box.py``, ``tests/test_input_dtypes.py`` and the edge-case
corpus): zero boxes give ``"sum"`` and ``"mean"`` 0 and an empty ``"none"`` (torchvision gives 0
too); predicted and target boxes never broadcast; ``box_ciou``'s zero-height box has a finite
gradient (torchvision's is NaN there).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from polyloss.core._checks import check_floating, check_same_shape, is_integer, nonnegative_number
from polyloss.core._reduce import reduce, safe_atan2, safe_divide
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend

_FOUR_OVER_PI_SQUARED = 4.0 / math.pi**2


class _Boxes(NamedTuple):
    x1: Array
    y1: Array
    x2: Array
    y2: Array


class _Geometry(NamedTuple):
    pred: _Boxes
    target: _Boxes
    iou: Array
    union: Array
    enclosing_width: Array
    enclosing_height: Array


def _check_ordered(b: Backend, name: str, boxes: Array) -> None:
    """x1 <= x2 and y1 <= y2 for every box (eager mode only)."""
    if b.is_opaque(boxes) or math.prod(boxes.shape) == 0:
        return
    xp = b.xp
    extent = xp.concat([boxes[..., 2:3] - boxes[..., 0:1], boxes[..., 3:4] - boxes[..., 1:2]], axis=-1)
    low, _ = b.float_range(extent)
    if not low >= 0:
        raise ValueError(
            f"{name} boxes must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, got a box of width or height {low!r}"
        )


def _unpack(boxes: Array) -> _Boxes:
    return _Boxes(boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3])


def _floating_boxes(b: Backend, pred: Array, target: Array) -> tuple[Array, Array]:
    """Integer (pixel) boxes promoted as torchvision's box losses do: to the other input's floating
    dtype, or to the framework's default floating dtype when both are integers (float32 in torch and
    JAX, float64 in NumPy and under ``jax_enable_x64``)."""
    xp = b.xp
    if is_integer(xp, pred) and is_integer(xp, target):
        default = xp.asarray(0.0, device=b.device(pred)).dtype
        return xp.astype(pred, default), xp.astype(target, default)
    if is_integer(xp, pred):
        return xp.astype(pred, target.dtype), target
    if is_integer(xp, target):
        return pred, xp.astype(target, pred.dtype)
    return pred, target


def _geometry(b: Backend, pred: Array, target: Array, eps: float) -> _Geometry:
    xp = b.xp
    pred, target = _floating_boxes(b, pred, target)
    check_floating(xp, "pred", pred)
    check_floating(xp, "target", target)
    check_same_shape("pred", pred, "target", target)
    if pred.ndim == 0 or pred.shape[-1] != 4:
        raise ValueError(f"pred must have shape (..., 4) (x1, y1, x2, y2), got {tuple(pred.shape)}")
    _check_ordered(b, "pred", pred)
    _check_ordered(b, "target", target)
    p, t = _unpack(pred), _unpack(target)
    overlap_width = b.relu(xp.minimum(p.x2, t.x2) - xp.maximum(p.x1, t.x1))
    overlap_height = b.relu(xp.minimum(p.y2, t.y2) - xp.maximum(p.y1, t.y1))
    intersection = overlap_width * overlap_height
    union = (p.x2 - p.x1) * (p.y2 - p.y1) + (t.x2 - t.x1) * (t.y2 - t.y1) - intersection
    iou = safe_divide(xp, intersection, union + eps)  # 0 for two empty boxes with eps = 0
    return _Geometry(
        pred=p,
        target=t,
        iou=iou,
        union=union,
        enclosing_width=xp.maximum(p.x2, t.x2) - xp.minimum(p.x1, t.x1),
        enclosing_height=xp.maximum(p.y2, t.y2) - xp.minimum(p.y1, t.y1),
    )


def _center_penalty(xp: Any, g: _Geometry, eps: float) -> Array:
    """DIoU's squared center distance over the enclosing box's squared diagonal."""
    p, t = g.pred, g.target
    dx = (p.x1 + p.x2) / 2 - (t.x1 + t.x2) / 2
    dy = (p.y1 + p.y2) / 2 - (t.y1 + t.y2) / 2
    diagonal = g.enclosing_width**2 + g.enclosing_height**2 + eps
    return safe_divide(xp, dx * dx + dy * dy, diagonal)


def _aspect_angle(xp: Any, width: Array, height: Array) -> Array:
    """atan(width / height) as atan2: pi/2 (finite gradient) for zero height; 0 for a point box."""
    return safe_atan2(xp, width, height)


def _prepare(b: Backend, pred: Array, target: Array, eps: Any) -> tuple[_Geometry, float]:
    return _geometry(b, pred, target, eps), eps


@loss("box", settings={"eps": nonnegative_number()})
def box_iou(b: Backend, pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean") -> Array:
    r"""IoU loss: one minus intersection over union.

    .. math:: \ell = 1 - \frac{|P \cap T|}{|P \cup T| + \epsilon}

    Args:
        pred: predicted boxes ``(..., 4)``, ``(x1, y1, x2, y2)``.
        target: target boxes, same shape.
        eps: :math:`\epsilon \ge 0` added to the union (default 1e-7, torchvision's).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per box).

    Returns:
        The loss in [0, 1]; 1 for disjoint boxes (no gradient pulls them together:
        use :func:`box_giou` or :func:`box_diou` for that).

    With ``eps=1e-6`` and ``"mean"`` study-hub's ``iou_loss`` (eunsu-park/study-hub, lesson 24 "Loss Functions");
    the IoU term of torchvision's ``generalized_box_iou_loss``.
    """
    g, _ = _prepare(b, pred, target, eps)
    return reduce(b.xp, 1.0 - g.iou, reduction)


@loss("box", settings={"eps": nonnegative_number()})
def box_giou(b: Backend, pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean") -> Array:
    r"""Generalized IoU loss (Rezatofighi et al., 2019).

    .. math:: \ell = 1 - \mathrm{IoU} + \frac{|C| - |P \cup T|}{|C| + \epsilon}

    where :math:`C` is the smallest box enclosing both.

    Args:
        pred: predicted boxes ``(..., 4)``, ``(x1, y1, x2, y2)``.
        target: target boxes, same shape.
        eps: :math:`\epsilon \ge 0` (default 1e-7).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per box).

    Returns:
        The loss in [0, 2].

    Equals ``torchvision.ops.generalized_box_iou_loss`` (whose default
    reduction is ``"none"``).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> pred = np.array([[0.0, 0.0, 2.0, 2.0]])
        >>> target = np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.box_giou(pred, target)), 6)  # 1 - (1/7 - 2/9) = 68/63
        1.079365
    """
    g, eps = _prepare(b, pred, target, eps)
    xp = b.xp
    enclosing = g.enclosing_width * g.enclosing_height
    return reduce(xp, 1.0 - g.iou + safe_divide(xp, enclosing - g.union, enclosing + eps), reduction)


@loss("box", settings={"eps": nonnegative_number()})
def box_diou(b: Backend, pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean") -> Array:
    r"""Distance IoU loss (Zheng et al., 2020).

    .. math:: \ell = 1 - \mathrm{IoU} + \frac{\rho^2(c_P, c_T)}{d_C^2 + \epsilon}

    with :math:`\rho` the distance between the box centers and :math:`d_C` the
    diagonal of the smallest enclosing box.

    Args:
        pred: predicted boxes ``(..., 4)``, ``(x1, y1, x2, y2)``.
        target: target boxes, same shape.
        eps: :math:`\epsilon \ge 0` (default 1e-7).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per box).

    Returns:
        The loss in [0, 2).

    Equals ``torchvision.ops.distance_box_iou_loss``.
    """
    g, eps = _prepare(b, pred, target, eps)
    return reduce(b.xp, 1.0 - g.iou + _center_penalty(b.xp, g, eps), reduction)


@loss("box", settings={"eps": nonnegative_number()})
def box_ciou(b: Backend, pred: Array, target: Array, *, eps: float = 1e-7, reduction: str = "mean") -> Array:
    r"""Complete IoU loss (Zheng et al., 2020): DIoU plus an aspect-ratio term.

    .. math:: \ell = \ell_{\mathrm{DIoU}} + \alpha v, \qquad
              v = \frac{4}{\pi^2}\left(\arctan\frac{w_T}{h_T} - \arctan\frac{w_P}{h_P}\right)^2,
              \qquad \alpha = \frac{v}{1 - \mathrm{IoU} + v + \epsilon}

    :math:`\alpha` is a trade-off coefficient held constant in the gradient
    (as in the paper and torchvision). :math:`\arctan(w/h)` is computed as
    ``atan2(w, h)``: a zero-height box has angle :math:`\pi/2` and a finite
    gradient (torchvision: NaN), a zero-size box angle 0.

    Args:
        pred: predicted boxes ``(..., 4)``, ``(x1, y1, x2, y2)``.
        target: target boxes, same shape.
        eps: :math:`\epsilon \ge 0` (default 1e-7).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per box).

    Returns:
        The loss in [0, 3).

    Equals ``torchvision.ops.complete_box_iou_loss`` in value and gradient
    (because of the constant :math:`\alpha` the gradient is not that of the
    value: finite differences do not apply).
    """
    g, eps = _prepare(b, pred, target, eps)
    xp = b.xp
    p, t = g.pred, g.target
    angle_gap = _aspect_angle(xp, t.x2 - t.x1, t.y2 - t.y1) - _aspect_angle(xp, p.x2 - p.x1, p.y2 - p.y1)
    v = _FOUR_OVER_PI_SQUARED * angle_gap * angle_gap
    alpha = b.stop_gradient(safe_divide(xp, v, 1.0 - g.iou + v + eps))
    return reduce(xp, 1.0 - g.iou + _center_penalty(xp, g, eps) + alpha * v, reduction)
