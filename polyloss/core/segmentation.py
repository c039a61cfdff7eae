"""Overlap losses for segmentation: Dice, Tversky, focal Tversky, Jaccard, generalized Dice, Lovász.

Two input forms, chosen by the target's dtype:

* **probabilities**: ``pred`` in [0, 1] and a floating ``target`` of the same
  shape (a binary mask, or soft labels). Every element is pooled into one
  score (study-hub's ``DiceLoss``, eunsu-park/study-hub lesson 24);
* **logits and class indices**: ``pred`` holds logits with classes on ``axis``
  and ``target`` integer labels (``pred``'s shape without ``axis``). ``pred``
  is softmaxed over ``axis``, the labels one-hot encoded, and each class gets
  its own score (study-hub's ``MultiClassDiceLoss``).

With ``per_sample=True`` the scores are computed per sample (axis 0 is the
batch) instead of over the whole batch. ``reduction="none"`` returns the
losses per group: a scalar (probabilities), ``(C,)`` (classes), ``(N,)`` or
``(N, C)`` with ``per_sample``; ``"mean"`` and ``"sum"`` reduce them.

Scores are computed from sums of products, :math:`TP = \\sum p t`,
:math:`FP = \\sum p (1 - t)`, :math:`FN = \\sum (1 - p) t`. An empty group
(no predicted and no target mass) with ``smooth=0`` scores 1 (loss 0), never
0/0, and its gradient is 0; with ``smooth > 0`` it scores 1 by construction and
keeps the true gradient there (``1/s`` per unit of predicted mass for Dice and
Jaccard, ``alpha/s`` for Tversky), which pushes an empty prediction to stay empty. Predicting foreground
on an empty target is penalised (unlike implementations that drop classes
absent from the target).

The Lovász losses (Berman et al., 2018) take logits: ``lovasz_hinge`` with a binary mask of
``pred``'s shape, ``lovasz_softmax`` with class indices. Each group's errors are sorted (the order
carries no gradient; equal errors give the same value in any order) and dotted with the increments
of the Jaccard loss, so they are piecewise linear (hinge) or piecewise smooth (softmax) and work
under ``jax.jit`` and ``torch.compile`` (a sort of static size, no data-dependent shapes). Ignored
pixels take error 0 and rank after every other pixel, where they change nothing.

Conventions (tested by ``tests/test_input_dtypes.py``, ``tests/test_bad_inputs.py`` and the
edge-case corpus): an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty ``"none"``;
class-index targets may have any integer dtype, and a ``bool`` or integer target of ``pred``'s own
shape is a 0/1 mask; ``pred`` must be floating; ``pred`` and a mask never broadcast. Where the
maths differs from segmentation_models_pytorch on purpose: its ``DiceLoss`` drops the classes
absent from the target, polyloss scores them (predicted mass there is penalised).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from polyloss.core._checks import (
    CAST_HINT,
    as_binary_target,
    boolean,
    check_axis,
    check_binary,
    check_floating,
    check_ignore_index,
    check_not_float_indices,
    check_same_shape,
    check_shape,
    check_unit_interval,
    class_labels,
    guard_traced_labels,
    is_integer,
    nonnegative_number,
    one_of,
    positive_number,
)
from polyloss.core._reduce import reduce, safe_divide, safe_pow
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend
from polyloss.core.classification import cross_entropy, fused_cross_entropy


class _Overlap(NamedTuple):
    tp: Array  # sum p t
    fp: Array  # sum p (1 - t)
    fn: Array  # sum (1 - p) t
    pred_sum: Array  # sum p
    target_sum: Array  # sum t


def _class_probabilities(
    b: Backend, logits: Array, target: Array, axis: Any, per_sample: bool, ignore_index: int | None = None
) -> tuple[Array, Array]:
    """Softmax probabilities and one-hot targets, classes moved last; the pixels labelled
    ``ignore_index`` are zero in both (they count nowhere)."""
    xp = b.xp
    axis = check_axis("pred", logits, axis)
    if per_sample and axis == 0:
        raise ValueError("axis must not be 0 with per_sample=True: axis 0 is the batch axis")
    class_labels(b, "target", target, logits=logits, axis=axis, ignore_index=ignore_index)
    num_classes = logits.shape[axis]
    kept = None if ignore_index is None else target != ignore_index
    index, valid = guard_traced_labels(b, target if kept is None else xp.where(kept, target, 0), num_classes)
    # permute_dims, not moveaxis: torch.func.vmap has no batching rule for moveaxis
    order = (*(i for i in range(logits.ndim) if i != axis), axis)
    probs = xp.permute_dims(b.softmax(logits, axis), order)
    if valid is not None:  # out-of-range traced labels poison their group with NaN
        probs = xp.where(valid[..., None], probs, xp.nan)
    onehot = b.one_hot(index, num_classes, probs.dtype)
    if kept is not None:
        probs = xp.where(kept[..., None], probs, 0.0)
        onehot = xp.where(kept[..., None], onehot, 0.0)
    return probs, onehot


def _overlap(
    b: Backend,
    pred: Array,
    target: Array,
    axis: Any,
    per_sample: Any,
    *,
    labels_only: bool = False,
    ignore_index: int | None = None,
    per_class: bool = False,
) -> _Overlap:
    """The overlap sums of each group. ``ignore_index`` and ``per_class`` (a class weight or
    ``ignore_background`` is given) need class-index targets."""
    xp = b.xp
    check_floating(xp, "pred", pred)
    if per_sample and pred.ndim == 0:
        raise ValueError("per_sample=True needs a batch axis 0, got a 0-d pred")
    check_ignore_index(ignore_index)
    # integers of pred's own shape are a mask (an integer mask is common in datasets), not class
    # indices, whose shape lacks the class axis
    mask_of_integers = is_integer(xp, target) and tuple(target.shape) == tuple(pred.shape) and not labels_only
    if is_integer(xp, target) and not mask_of_integers:
        probs, onehot = _class_probabilities(b, pred, target, axis, per_sample, ignore_index)
        summed = tuple(range(1 if per_sample else 0, probs.ndim - 1))  # keep the class axis
    elif ignore_index is not None or per_class:
        given = "ignore_index" if ignore_index is not None else "class_weight and ignore_background"
        raise ValueError(
            f"{given} apply to integer class-index targets (pred holding logits), got a target of pred's shape"
        )
    elif labels_only:
        raise TypeError(
            f"target must hold integer class indices (pred holds logits), got dtype {target.dtype}{CAST_HINT}"
        )
    else:
        target = xp.astype(target, pred.dtype) if mask_of_integers else as_binary_target(xp, target, pred)
        check_not_float_indices("target", "pred", pred, target, axis)
        check_floating(xp, "target", target)
        check_same_shape("pred", pred, "target", target)
        check_unit_interval(b, "pred", pred)
        check_unit_interval(b, "target", target)
        probs, onehot = pred, target
        summed = tuple(range(1 if per_sample else 0, probs.ndim))
    tp = xp.sum(probs * onehot, axis=summed)
    return _Overlap(
        tp=tp,
        fp=xp.sum(probs * (1.0 - onehot), axis=summed),
        fn=xp.sum((1.0 - probs) * onehot, axis=summed),
        pred_sum=xp.sum(probs, axis=summed),
        target_sum=xp.sum(onehot, axis=summed),
    )


def _per_class(xp: Any, losses: Array, class_weight: Array | None, ignore_background: bool, reduction: str) -> Array:
    """The per-class losses (classes last) weighted by ``class_weight``, without class 0 when
    ``ignore_background``, then reduced (optax's ``dice_loss``: ``"mean"`` is the plain mean of
    the weighted terms)."""
    if class_weight is not None:
        check_floating(xp, "class_weight", class_weight)
        check_shape("class_weight", class_weight, (losses.shape[-1],))
        losses = losses * class_weight
    if ignore_background:
        if losses.shape[-1] < 2:
            raise ValueError(f"ignore_background needs at least 2 classes, got {losses.shape[-1]}")
        losses = losses[..., 1:]
    return reduce(xp, losses, reduction)


def _score(xp: Any, numerator: Array, denominator: Array) -> Array:
    """numerator / denominator, and 1 (a perfect score, zero gradient) where both sides are empty."""
    return safe_divide(xp, numerator, denominator, default=1.0)


def _dice_loss(xp: Any, o: _Overlap, smooth: float | Array) -> Array:
    """1 - the soft Dice score of each group."""
    return 1.0 - _score(xp, 2.0 * o.tp + smooth, o.pred_sum + o.target_sum + smooth)


def _tversky_index(xp: Any, o: _Overlap, alpha: float | Array, beta: float | Array, smooth: float | Array) -> Array:
    return _score(xp, o.tp + smooth, o.tp + alpha * o.fp + beta * o.fn + smooth)


#: the settings every overlap loss shares, and the Tversky family's weights of false positives and negatives
_OVERLAP_SETTINGS = {"per_sample": boolean(), "smooth": nonnegative_number(arrays=True)}
#: the options of the per-class losses (dice, tversky, jaccard)
_TVERSKY_SETTINGS = {
    **_OVERLAP_SETTINGS,
    "alpha": nonnegative_number(arrays=True),
    "beta": nonnegative_number(arrays=True),
}


@loss("segmentation", settings={**_OVERLAP_SETTINGS, "ignore_background": boolean()})
def dice(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    smooth: float | Array = 1.0,
    axis: int = -1,
    per_sample: bool = False,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    ignore_background: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Soft Dice loss (Milletari et al., V-Net, 2016).

    .. math:: \ell = 1 - \frac{2 \sum p t + s}{\sum p + \sum t + s}

    summed over every element (probabilities) or per class (logits with class
    indices), optionally per sample.

    Args:
        pred: probabilities in [0, 1], or logits with classes on ``axis`` when
            ``target`` holds class indices.
        target: a floating mask of ``pred``'s shape, or integer class indices
            (``pred``'s shape without ``axis``).
        smooth: :math:`s \ge 0`, added to numerator and denominator (default 1).
        axis: the class axis of logits (integer targets only; default -1).
        per_sample: one score per sample (axis 0) instead of one over the batch.
        ignore_index: with class indices, the label of pixels that count nowhere (the void
            label 255 of VOC and Cityscapes); ``None``: none.
        class_weight: with class indices, optional ``(C,)`` weights of the per-class losses
            (optax's ``class_weights``: ``"mean"`` is the mean of the weighted terms).
        ignore_background: with class indices, leave class 0 out (MONAI's
            ``include_background=False``, optax's ``ignore_background``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (the losses per group:
            scalar, ``(C,)``, ``(N,)`` or ``(N, C)``; ``C - 1`` classes without the background).

    Returns:
        The loss in [0, 1]; 0 for an empty prediction of an empty mask.

    With probabilities it is study-hub's ``DiceLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions"); with logits
    and class indices, ``axis=1`` and ``reduction="mean"`` its
    ``MultiClassDiceLoss`` (the mean of the per-class losses). With ``ignore_index`` it is
    segmentation_models_pytorch's ``DiceLoss(ignore_index=...)`` (which, unlike polyloss, also drops
    the classes absent from the target). optax's ``dice_loss`` places the smoothing differently,
    :math:`(I + s) / (\tfrac12 \sum p + \tfrac12 \sum t + s)`: polyloss's ``smooth=s`` with
    ``per_sample=True`` and classes last is optax's ``smooth=s / 2`` (``class_weights`` and
    ``ignore_background`` as here).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> pred = np.array([0.9, 0.8, 0.1, 0.2])
        >>> target = np.array([1.0, 1.0, 0.0, 0.0])
        >>> round(float(pl.dice(pred, target)), 6)  # 1 - (2 * 1.7 + 1) / (2.0 + 2.0 + 1)
        0.12
    """
    per_class = class_weight is not None or ignore_background
    o = _overlap(b, pred, target, axis, per_sample, ignore_index=ignore_index, per_class=per_class)
    return _per_class(b.xp, _dice_loss(b.xp, o, smooth), class_weight, ignore_background, reduction)


@loss(
    "segmentation",
    settings={**_TVERSKY_SETTINGS, "ignore_background": boolean()},
)
def tversky(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    alpha: float | Array = 0.5,
    beta: float | Array = 0.5,
    smooth: float | Array = 1.0,
    axis: int = -1,
    per_sample: bool = False,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    ignore_background: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Tversky loss (Salehi et al., 2017): Dice with weighted false positives and negatives.

    .. math:: \ell = 1 - \frac{TP + s}{TP + \alpha FP + \beta FN + s}

    With :math:`\alpha = \beta = 0.5` and :math:`s = 0` it equals :func:`dice`;
    :math:`\alpha = \beta = 1` gives :func:`jaccard`.

    Args:
        pred: probabilities, or logits with classes on ``axis`` (see :func:`dice`).
        target: a floating mask of ``pred``'s shape, or integer class indices.
        alpha: :math:`\alpha \ge 0`, the weight of false positives (default 0.5).
        beta: :math:`\beta \ge 0`, the weight of false negatives (default 0.5).
        smooth: :math:`s \ge 0` (default 1).
        axis: the class axis of logits (integer targets only; default -1).
        per_sample: one score per sample instead of one over the batch.
        ignore_index: with class indices, the label of pixels that count nowhere (see :func:`dice`).
        class_weight: with class indices, optional ``(C,)`` weights of the per-class losses.
        ignore_background: with class indices, leave class 0 out.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per group).

    Returns:
        The loss in [0, 1]; 0 for an empty prediction of an empty mask. With ``alpha``, ``beta``,
        ``class_weight`` and ``ignore_background`` it is optax's ``dice_loss`` on softmaxed
        logits (per sample).

    The ``TverskyLoss`` exercise of study-hub (eunsu-park/study-hub, lesson 24 "Loss Functions").
    """
    per_class = class_weight is not None or ignore_background
    o = _overlap(b, pred, target, axis, per_sample, ignore_index=ignore_index, per_class=per_class)
    losses = 1.0 - _tversky_index(b.xp, o, alpha, beta, smooth)
    return _per_class(b.xp, losses, class_weight, ignore_background, reduction)


@loss(
    "segmentation",
    settings={**_TVERSKY_SETTINGS, "gamma": positive_number(arrays=True)},
)
def focal_tversky(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    alpha: float | Array = 0.5,
    beta: float | Array = 0.5,
    gamma: float | Array = 0.75,
    smooth: float | Array = 1.0,
    axis: int = -1,
    per_sample: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Focal Tversky loss (Abraham & Khan, 2019).

    .. math:: \ell = (1 - TI)^{\gamma}, \qquad TI = \frac{TP + s}{TP + \alpha FP + \beta FN + s}

    :math:`\gamma < 1` emphasises groups that are already fairly well
    segmented (the paper's :math:`1/\gamma` with its :math:`\gamma = 4/3`).
    The power is guarded: a perfect group (:math:`TI = 1`) has gradient 0, not
    ``inf``.

    Args:
        pred: probabilities, or logits with classes on ``axis`` (see :func:`dice`).
        target: a floating mask of ``pred``'s shape, or integer class indices.
        alpha: weight of false positives, >= 0 (default 0.5).
        beta: weight of false negatives, >= 0 (default 0.5).
        gamma: :math:`\gamma > 0` (default 0.75; 1 gives :func:`tversky`).
        smooth: :math:`s \ge 0` (default 1).
        axis: the class axis of logits (integer targets only; default -1).
        per_sample: one score per sample instead of one over the batch.
        ignore_index: with class indices, the label of pixels that count nowhere (see :func:`dice`).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per group).

    Returns:
        The loss in [0, 1].
    """
    o = _overlap(b, pred, target, axis, per_sample, ignore_index=ignore_index)
    xp = b.xp
    return reduce(xp, safe_pow(xp, 1.0 - _tversky_index(xp, o, alpha, beta, smooth), gamma), reduction)


@loss("segmentation", settings={**_OVERLAP_SETTINGS, "ignore_background": boolean()})
def jaccard(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    smooth: float | Array = 1.0,
    axis: int = -1,
    per_sample: bool = False,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    ignore_background: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Soft Jaccard (IoU) loss.

    .. math:: \ell = 1 - \frac{\sum p t + s}{\sum p + \sum t - \sum p t + s}

    Args:
        pred: probabilities, or logits with classes on ``axis`` (see :func:`dice`).
        target: a floating mask of ``pred``'s shape, or integer class indices.
        smooth: :math:`s \ge 0` (default 1).
        axis: the class axis of logits (integer targets only; default -1).
        per_sample: one score per sample instead of one over the batch.
        ignore_index: with class indices, the label of pixels that count nowhere (see :func:`dice`).
        class_weight: with class indices, optional ``(C,)`` weights of the per-class losses.
        ignore_background: with class indices, leave class 0 out.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per group).

    Returns:
        The loss in [0, 1]; 0 for an empty prediction of an empty mask.
    """
    per_class = class_weight is not None or ignore_background
    o = _overlap(b, pred, target, axis, per_sample, ignore_index=ignore_index, per_class=per_class)
    xp = b.xp
    losses = 1.0 - _score(xp, o.tp + smooth, o.pred_sum + o.target_sum - o.tp + smooth)
    return _per_class(xp, losses, class_weight, ignore_background, reduction)


@loss("segmentation", settings=_OVERLAP_SETTINGS)
def generalized_dice(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    smooth: float | Array = 1e-5,
    axis: int = -1,
    per_sample: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Generalized Dice loss (Sudre et al., 2017) with class weights :math:`1 / V_c^2`.

    .. math:: \ell = 1 - \frac{2 \sum_c w_c \sum p_c t_c + s}{\sum_c w_c \sum (p_c + t_c) + s},
              \qquad w_c = \frac{1}{(\sum t_c)^2}

    A class absent from the target (:math:`V_c = 0`) takes the largest weight
    of the present classes, as MONAI does; if every class is absent the loss is 0.

    Args:
        pred: logits with classes on ``axis``.
        target: integer class indices, ``pred``'s shape without ``axis``.
        smooth: :math:`s \ge 0`, MONAI's ``smooth_nr = smooth_dr`` (default 1e-5).
        axis: the class axis (default -1).
        per_sample: one loss per sample (MONAI's ``batch=False``) instead of
            one over the batch (``batch=True``).
        ignore_index: the label of pixels that count nowhere, in the volumes and the overlaps
            (the void label 255); ``None``: none.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (scalar, or ``(N,)`` with ``per_sample``).

    Returns:
        The loss in [0, 1].

    Equals MONAI's ``GeneralizedDiceLoss(softmax=True, to_onehot_y=True,
    w_type="square", smooth_nr=smooth, smooth_dr=smooth, batch=not per_sample)``.
    """
    o = _overlap(b, pred, target, axis, per_sample, labels_only=True, ignore_index=ignore_index)
    xp = b.xp
    volume = o.target_sum  # the weights depend on the labels only: no gradient flows through them
    absent = volume == 0
    weight = xp.where(absent, 0.0, 1.0 / xp.where(absent, 1.0, volume * volume))
    weight = xp.where(absent, xp.max(weight, axis=-1, keepdims=True), weight)
    numerator = 2.0 * xp.sum(weight * o.tp, axis=-1) + smooth
    denominator = xp.sum(weight * (o.pred_sum + o.target_sum), axis=-1) + smooth
    return reduce(xp, 1.0 - _score(xp, numerator, denominator), reduction)


@loss(
    "segmentation",
    reductions=("mean", "sum"),
    why_not="a per-pixel and a per-class term",
    settings={
        "ce_weight": nonnegative_number(arrays=True),
        "dice_weight": nonnegative_number(arrays=True),
        "smooth": nonnegative_number(arrays=True),
        "ignore_background": boolean(),
    },
)
def dice_ce(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    ce_weight: float | Array = 0.5,
    dice_weight: float | Array = 0.5,
    smooth: float | Array = 1.0,
    axis: int = -1,
    ignore_index: int | None = None,
    class_weight: Array | None = None,
    ignore_background: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Cross-entropy plus multi-class Dice: the CE + Dice combination for segmentation.

    .. math:: \ell = w_{ce}\, \mathrm{CE}(x, y) + w_{dice}\, \mathrm{Dice}(\operatorname{softmax}(x), y)

    with CE averaged over every pixel and Dice the mean over classes of
    :func:`dice` on the whole batch.

    Args:
        pred: logits with classes on ``axis``.
        target: integer class indices, ``pred``'s shape without ``axis``.
        ce_weight: weight of the cross-entropy term, >= 0 (default 0.5).
        dice_weight: weight of the Dice term, >= 0 (default 0.5).
        smooth: Dice's :math:`s \ge 0` (default 1).
        axis: the class axis (default -1).
        ignore_index: the label of pixels that count nowhere, in either term (the void label 255);
            CE's ``"mean"`` then divides by the kept pixels, as torch's.
        class_weight: optional ``(C,)`` weights of the Dice term's per-class losses (the CE term is
            unweighted).
        ignore_background: leave class 0 out of the Dice term.
        reduction: ``"mean"`` (CE over pixels, Dice over classes) or ``"sum"``
            (both summed); the two terms have different shapes, so there is no
            ``"none"``.

    Returns:
        The scalar loss.

    With ``axis=1`` and the default weights, study-hub's ``CombinedLoss``
    (eunsu-park/study-hub, lesson 24 "Loss Functions"): ``nn.CrossEntropyLoss()``
    plus its ``MultiClassDiceLoss``.
    """
    per_class = class_weight is not None or ignore_background
    o = _overlap(b, pred, target, axis, False, labels_only=True, ignore_index=ignore_index, per_class=per_class)
    dice_loss = _per_class(b.xp, _dice_loss(b.xp, o, smooth), class_weight, ignore_background, reduction)
    if ignore_index is None:
        ce = fused_cross_entropy(b, pred, target, check_axis("pred", pred, axis), reduction)
    else:
        ce = cross_entropy(b, pred, target, axis=axis, ignore_index=ignore_index, reduction=reduction)
    return ce_weight * ce + dice_weight * dice_loss


# --------------------------------------------------------------------------- Lovász


def _lovasz_gradient(b: Backend, foreground: Array) -> Array:
    """Berman et al.'s Algorithm 1 along the last axis: the increments of the Jaccard loss
    :math:`\\Delta_J(M_k) = |M_k| / |F \\cup M_k|` as the pixels, ordered by decreasing error, join
    the mispredicted set :math:`M_k` (``foreground``: 0/1 in that order)."""
    xp = b.xp
    total = xp.sum(foreground, axis=-1, keepdims=True)
    intersection = total - b.cumulative_sum(foreground, -1)
    union = total + b.cumulative_sum(1.0 - foreground, -1)  # >= 1 at every position: no 0/0
    jaccard = 1.0 - intersection / union
    return xp.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)


def _lovasz_extension(b: Backend, errors: Array, foreground: Array) -> Array:
    """The Lovász extension of the Jaccard loss at ``errors`` (>= 0), along the last axis: the
    errors sorted in decreasing order, dotted with :func:`_lovasz_gradient`. The order and the
    labels carry no gradient; ties (equal errors) give the same value in any order."""
    xp = b.xp
    order = xp.argsort(b.stop_gradient(errors), axis=-1, descending=True, stable=True)
    ranked_foreground = b.take_along_axis(b.stop_gradient(foreground), order, -1)
    increments = b.stop_gradient(_lovasz_gradient(b, ranked_foreground))
    return xp.sum(b.take_along_axis(errors, order, -1) * increments, axis=-1)


def _groups(xp: Any, x: Array, per_sample: bool, lead: int = 0) -> Array:
    """``x`` flattened into its groups along the last axis: one over the batch, or one per
    sample (axis 0); ``lead`` trailing axes are kept last-but-one (the classes)."""
    kept = tuple(x.shape[x.ndim - lead :])
    pixels = math.prod(x.shape[1 if per_sample else 0 : x.ndim - lead])
    shape = (x.shape[0], pixels, *kept) if per_sample else (pixels, *kept)
    grouped = xp.reshape(x, shape)
    if lead:  # pixels last
        order = tuple(i for i in range(grouped.ndim) if i != grouped.ndim - lead - 1)
        grouped = xp.permute_dims(grouped, (*order, grouped.ndim - lead - 1))
    return grouped


@loss("segmentation", settings={"per_sample": boolean()})
def lovasz_hinge(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    per_sample: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Lovász hinge loss (Berman et al., 2018): a convex surrogate of the binary Jaccard loss.

    With the hinge errors :math:`m_i = \max(1 - x_i s_i, 0)`, :math:`s_i = 2 t_i - 1 \in \{-1, 1\}`,
    sorted so that :math:`m_{\pi(1)} \ge m_{\pi(2)} \ge \dots`:

    .. math:: \ell = \sum_k m_{\pi(k)} \bigl(\Delta_J(M_k) - \Delta_J(M_{k-1})\bigr),
              \qquad \Delta_J(M) = \frac{|M|}{|F \cup M|}

    with :math:`M_k = \{\pi(1), \dots, \pi(k)\}` and :math:`F` the foreground: the Lovász extension
    of the Jaccard loss :math:`\Delta_J` at the errors. Computed over every pixel of the batch, or
    per sample.

    Args:
        pred: logits, any shape (``(N, H, W)`` for a batch of masks), floating.
        target: the binary mask, ``pred``'s shape: 0/1 floating, ``bool`` or integers (which may
            hold ``ignore_index``).
        per_sample: one loss per sample (axis 0; smp's ``per_image=True``), then reduced, instead
            of one over the batch.
        ignore_index: with an integer target, the label of pixels that count nowhere (255);
            ``None``: none.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the scalar, or ``(N,)`` with
            ``per_sample``).

    Returns:
        The loss, >= 0; 0 when every pixel is ignored (zero gradient). Piecewise linear in ``pred``.

    Equals segmentation_models_pytorch's ``LovaszLoss(mode="binary", per_image=per_sample,
    ignore_index=ignore_index)`` and Berman's reference ``lovasz_hinge`` (bermanmaxim/LovaszSoftmax).
    Berman, Rannen Triki & Blaschko, *The Lovász-Softmax loss: A tractable surrogate for the
    optimization of the intersection-over-union measure in neural networks*, CVPR 2018.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> pred = np.array([2.0, -1.0, 0.5])
        >>> target = np.array([1.0, 0.0, 0.0])
        >>> float(pl.lovasz_hinge(pred, target))  # errors (0, 0, 1.5): 1.5 * (1/2 - 0)
        0.75
    """
    xp = b.xp
    check_floating(xp, "pred", pred)
    target = as_binary_target(xp, target, pred)
    check_same_shape("pred", pred, "target", target)
    if per_sample and pred.ndim == 0:
        raise ValueError("per_sample=True needs a batch axis 0, got a 0-d pred")
    check_ignore_index(ignore_index)
    if ignore_index is not None and not is_integer(xp, target):
        raise ValueError(f"ignore_index needs an integer target, got dtype {target.dtype}")
    check_binary(b, "target", target, ignore_index)
    foreground = xp.astype(target == 1, pred.dtype)
    errors = 1.0 - pred * (2.0 * foreground - 1.0)
    if ignore_index is not None:  # an ignored pixel: no error, ranked after every positive one
        errors = xp.where(target != ignore_index, errors, 0.0)
    losses = _lovasz_extension(b, b.relu(_groups(xp, errors, per_sample)), _groups(xp, foreground, per_sample))
    if b.is_opaque(target):  # traced labels outside {0, 1, ignore_index} make their group NaN
        allowed = (target == 0) | (target == 1)
        if ignore_index is not None:
            allowed = allowed | (target == ignore_index)
        unexpected = xp.any(~_groups(xp, allowed, per_sample), axis=-1)
        losses = xp.where(unexpected, xp.nan, losses)
    return reduce(xp, losses, reduction)


@loss("segmentation", settings={"per_sample": boolean(), "classes": one_of("present", "all")})
def lovasz_softmax(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    axis: int = -1,
    classes: str = "present",
    per_sample: bool = False,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Lovász-softmax loss (Berman et al., 2018): a surrogate of the multi-class Jaccard loss.

    For each class :math:`c`, with the softmax probabilities :math:`p_{ic}` and the errors
    :math:`m_i = |[y_i = c] - p_{ic}|` sorted in decreasing order (see :func:`lovasz_hinge`):

    .. math:: \ell_c = \sum_k m_{\pi(k)} \bigl(\Delta_J(M_k) - \Delta_J(M_{k-1})\bigr), \qquad
              \ell = \frac{1}{|\mathcal{C}|} \sum_{c \in \mathcal{C}} \ell_c

    averaged over the classes present in the labels (``classes="present"``) or over all of them.

    Args:
        pred: logits with classes on ``axis`` (softmaxed here).
        target: integer class indices, ``pred``'s shape without ``axis``.
        axis: the class axis (default -1; 1 for ``(N, C, H, W)``).
        classes: ``"present"`` (default: the classes present in the group's labels; a group with
            none scores 0) or ``"all"``.
        per_sample: one loss per sample (axis 0; smp's ``per_image=True``), then reduced.
        ignore_index: the label of pixels that count nowhere (255); ``None``: none.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the scalar, or ``(N,)`` with
            ``per_sample``).

    Returns:
        The loss in [0, 1]; 0 when every pixel is ignored (zero gradient).

    Equals segmentation_models_pytorch's ``LovaszLoss(mode="multiclass", per_image=per_sample,
    ignore_index=ignore_index)`` with ``axis=1`` and Berman's reference ``lovasz_softmax`` on the
    softmaxed logits (bermanmaxim/LovaszSoftmax).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> pred = np.array([[0.0, 0.0], [0.0, 0.0]])  # two pixels, each p = (1/2, 1/2)
        >>> target = np.array([0, 1])
        >>> float(pl.lovasz_softmax(pred, target))  # each class, ties in order: 0.5 * 1 + 0.5 * 0
        0.5
    """
    xp = b.xp
    check_floating(xp, "pred", pred)
    check_ignore_index(ignore_index)
    if per_sample and pred.ndim < 2:
        raise ValueError(f"per_sample=True needs a batch axis 0 and a class axis, got a {pred.ndim}-d pred")
    probs, onehot = _class_probabilities(b, pred, target, axis, per_sample, ignore_index)
    probs, onehot = _groups(xp, probs, per_sample, lead=1), _groups(xp, onehot, per_sample, lead=1)
    per_class = _lovasz_extension(b, b.abs(onehot - probs), onehot)  # (groups..., C)
    if classes == "all":
        return reduce(xp, xp.mean(per_class, axis=-1), reduction)
    present = xp.sum(onehot, axis=-1) > 0
    count = xp.sum(xp.astype(present, per_class.dtype), axis=-1)
    return reduce(xp, safe_divide(xp, xp.sum(xp.where(present, per_class, 0.0), axis=-1), count), reduction)
