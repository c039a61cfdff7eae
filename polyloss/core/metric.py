"""Metric learning: pairs, triplets, in-batch mining and margin-softmax heads.

Embeddings carry their dimension on the last axis; pair and triplet losses give
one value per row (``reduction="none"``). Distances are Euclidean unless a
loss says otherwise, computed so that coincident embeddings (distance 0) have
a finite gradient: 0, the subgradient of the norm at 0, on every backend.
Labels of ranking losses (``cosine_embedding``, ``margin_ranking``) are 1 or -1;
other values raise ``ValueError`` in eager mode and give NaN under tracing.

Conventions (tested by ``tests/test_input_dtypes.py``, ``tests/test_bad_inputs.py`` and the
edge-case corpus): an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty ``"none"`` (torch's
``triplet_margin_loss`` gives NaN); embeddings must be floating, while ranking labels,
``contrastive``'s ``similar`` and mined-triplet labels may be integers (or ``bool`` where they are
0/1); anchors, positives and negatives never broadcast (torch's ``triplet_margin_loss`` broadcasts
a ``(1, D)`` positive); a zero vector in ``cosine_embedding`` has cosine 0 with gradient 0 (torch's
slope there is ``1/sqrt(1e-8)`` per coordinate).
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_floating,
    check_ndim,
    check_same_shape,
    check_shape,
    check_signs,
    check_unit_interval,
    class_labels,
    finite_number,
    group_labels,
    guard_traced_labels,
    is_integer,
    nonnegative_number,
    number_in,
    one_of,
    positive_number,
)
from polyloss.core._reduce import l2_normalize, reduce, safe_pow, safe_sqrt, softmax_cross_entropy
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend

_MINING = ("batch_hard", "batch_all", "semi_hard")
_COSINE_EPS = 1e-12  # torch's cosine_embedding_loss: added to each squared magnitude


# --------------------------------------------------------------------------- helpers


def _check_rows(xp: Any, name: str, x: Array, ndim: int | None = None) -> None:
    check_floating(xp, name, x)
    if ndim is not None:
        check_ndim(name, x, ndim, "(N, D)")
    elif len(x.shape) < 1:
        raise ValueError(f"{name} must have at least 1 dimension (the embedding axis), got a scalar")


def _check_row_labels(xp: Any, name: str, labels: Array, embeddings: Array, *, floating: bool) -> Array:
    """Per-row labels: the embeddings' shape without the last axis."""
    check_shape(name, labels, tuple(embeddings.shape[:-1]))
    if not floating:
        return labels
    if not (xp.isdtype(labels.dtype, "real floating") or is_integer(xp, labels) or labels.dtype == xp.bool):
        raise TypeError(f"{name} must be real numbers, got dtype {labels.dtype}")
    return xp.astype(labels, embeddings.dtype) if labels.dtype != embeddings.dtype else labels


def _squared_distance(xp: Any, x: Array, y: Array) -> Array:
    difference = x - y
    return xp.sum(difference * difference, axis=-1)


def _pairwise_distance(b: Backend, x: Array, y: Array, p: float, eps: float) -> Array:
    """``torch.nn.functional.pairwise_distance``: ||x - y + eps||_p over the last axis."""
    xp = b.xp
    difference = x - y + eps
    if p == 2.0:
        return safe_sqrt(xp, xp.sum(difference * difference, axis=-1))
    magnitude = b.abs(difference)
    if p == 1.0:
        return xp.sum(magnitude, axis=-1)
    return safe_pow(xp, xp.sum(safe_pow(xp, magnitude, p), axis=-1), 1.0 / p)


def _exact_squared_distances(b: Backend, embeddings: Array) -> Array:
    """(N, N) squared distances from explicit differences, a few rows at a time (about 2**24
    differences at once): exact 0 on the diagonal and between coincident rows, where
    ``|a|^2 + |b|^2 - 2 a.b`` leaves rounding noise. Values only (no gradient is taken through it)."""
    xp = b.xp
    n, dim = embeddings.shape
    parts: list[Array] = []
    for start, stop in _row_chunks(n, n * max(dim, 1)):
        # ordered after the previous part (a finite 0/1 flag: a distance may overflow to inf)
        rows = _in_order(xp, embeddings[start:stop, ...], parts[-1][:1, :1] == 0 if parts else None)
        parts.append(_squared_distance(xp, rows[:, None, :], embeddings[None, :, :]))
    if not parts:
        return xp.zeros((0, 0), dtype=embeddings.dtype, device=b.device(embeddings))
    return xp.concat(parts, axis=0)


def _cross_distances(b: Backend, embeddings: Array, squared: bool) -> Array:
    """(N, N) Euclidean (or squared) distances in O(N^2) memory: the values exact
    (:func:`_exact_squared_distances`, a backend may use its own kernel), the derivatives (first and
    second) those of ``|a|^2 + |b|^2 - 2 a.b``, the same function, whose autograd keeps the (N, D)
    embeddings where the explicit differences' kept (N, N, D)."""
    xp = b.xp
    exact = b.fused("cross_squared_distances", _exact_squared_distances, b.stop_gradient(embeddings))
    norms = xp.sum(embeddings * embeddings, axis=1)
    smooth = norms[:, None] + norms[None, :] - 2.0 * xp.matmul(embeddings, xp.matrix_transpose(embeddings))
    squared_distance = exact + (smooth - b.stop_gradient(smooth))
    return squared_distance if squared else safe_sqrt(xp, squared_distance)


def _sign_target(b: Backend, target: Array, like: Array) -> tuple[Array, Array | None]:
    """Validate a +-1 target (eagerly) and return it in ``like``'s dtype, plus the mask
    of valid entries when traced (invalid ones give NaN)."""
    xp = b.xp
    check_signs(b, "target", target)
    target = xp.astype(target, like.dtype) if target.dtype != like.dtype else target
    if not b.is_opaque(target):
        return target, None
    return target, (target == 1.0) | (target == -1.0)


def _nan_where_invalid(xp: Any, loss_values: Array, valid: Array | None) -> Array:
    return loss_values if valid is None else xp.where(valid, loss_values, xp.nan)


# --------------------------------------------------------------------------- pairs and triplets


@loss("metric", settings={"margin": nonnegative_number(arrays=True), "eps": nonnegative_number()})
def contrastive(
    b: Backend,
    x1: Array,
    x2: Array,
    similar: Array,
    *,
    margin: float | Array = 1.0,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Array:
    r"""Contrastive loss of Siamese pairs (Hadsell, Chopra, LeCun, 2006).

    .. math:: \ell_i = s_i\, d_i^2 + (1 - s_i) \max(0, m - d_i)^2,
              \qquad d_i = \lVert x_{1i} - x_{2i} + \epsilon \rVert_2

    Args:
        x1: embeddings ``(..., D)``.
        x2: embeddings, same shape.
        similar: :math:`s` per pair, shape ``(...)``: 1 for a similar pair,
            0 for a dissimilar one (values in [0, 1] interpolate); other values
            raise ``ValueError`` in eager mode.
        margin: :math:`m \ge 0`, the distance dissimilar pairs are pushed beyond.
        eps: added to the difference, as ``F.pairwise_distance`` does (default 1e-6).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The loss; per pair with ``reduction="none"``. Identical pairs have a
        finite gradient (``d^2`` is differentiated directly, never through ``sqrt``).

    Study-hub's ``ContrastiveLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions") and the
    ``contrastive_loss`` of the "Loss Functions" interview-prep overview (both
    built on ``F.pairwise_distance``, so with its ``eps``).
    """
    xp = b.xp
    _check_rows(xp, "x1", x1)
    _check_rows(xp, "x2", x2)
    check_same_shape("x1", x1, "x2", x2)
    similar = _check_row_labels(xp, "similar", similar, x1, floating=True)
    check_unit_interval(b, "similar", similar)
    difference = x1 - x2 + eps
    squared_distance = xp.sum(difference * difference, axis=-1)
    short = b.relu(margin - safe_sqrt(xp, squared_distance))
    return reduce(xp, similar * squared_distance + (1.0 - similar) * (short * short), reduction)


@loss(
    "metric",
    settings={
        "squared": boolean(),
        "margin": nonnegative_number(arrays=True),
        "p": positive_number(),
        "eps": nonnegative_number(),
        "swap": boolean(),
    },
)
def triplet(
    b: Backend,
    anchor: Array,
    positive: Array,
    negative: Array,
    *,
    margin: float | Array = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    squared: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Triplet margin loss (Schroff et al., FaceNet, 2015).

    .. math:: \ell_i = \max\big(0,\ d(a_i, p_i) - d(a_i, n_i) + m\big),
              \qquad d(x, y) = \lVert x - y + \epsilon \rVert_p

    With ``swap`` (Balntas et al., 2016) :math:`d(a_i, n_i)` is replaced by
    :math:`\min(d(a_i, n_i), d(p_i, n_i))`. With ``squared`` :math:`d(x, y) =
    \lVert x - y \rVert_2^2` (no :math:`\epsilon`).

    Args:
        anchor: embeddings ``(..., D)``.
        positive: embeddings of the same identity, same shape.
        negative: embeddings of another identity, same shape.
        margin: :math:`m \ge 0` (default 1).
        p: the norm's order, > 0 (default 2); must be 2 with ``squared``.
        eps: added to each difference, as ``F.pairwise_distance`` (default 1e-6).
        swap: use the distance swap.
        squared: squared Euclidean distances.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per triplet).

    Returns:
        The loss; per triplet with ``reduction="none"``.

    With ``squared=False`` equals ``torch.nn.functional.triplet_margin_loss(anchor,
    positive, negative, margin=margin, p=p, eps=eps, swap=swap)``; with
    ``squared=True`` study-hub's ``TripletLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions").

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> anchor = np.array([[0.0, 0.0], [1.0, 1.0]])
        >>> positive = np.array([[0.0, 1.0], [1.0, 2.0]])
        >>> negative = np.array([[1.0, 0.0], [3.0, 1.0]])
        >>> round(float(pl.triplet(anchor, positive, negative, margin=1.0)), 6)
        0.5
    """
    xp = b.xp
    for name, x in (("anchor", anchor), ("positive", positive), ("negative", negative)):
        _check_rows(xp, name, x)
    check_same_shape("anchor", anchor, "positive", positive)
    check_same_shape("anchor", anchor, "negative", negative)
    if squared and p != 2.0:
        raise ValueError(f"squared=True uses squared Euclidean distances and needs p=2.0, got p={p!r}")

    def distance(x: Array, y: Array) -> Array:
        return _squared_distance(xp, x, y) if squared else _pairwise_distance(b, x, y, p, eps)

    d_positive = distance(anchor, positive)
    d_negative = distance(anchor, negative)
    if swap:
        d_swap = distance(positive, negative)
        d_negative = xp.where(d_swap < d_negative, d_swap, d_negative)
    return reduce(xp, b.relu(d_positive - d_negative + margin), reduction)


#: the (anchor, positive, negative) comparisons made at once when mining: 16 M booleans
_TRIPLETS_AT_ONCE = 1 << 24


def _row_chunks(n: int, per_row: int) -> list[tuple[int, int]]:
    """[start, stop) of N rows taken a few at a time, about 2**24 values of ``per_row`` each at once."""
    size = max(1, _TRIPLETS_AT_ONCE // max(per_row, 1))
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _anchor_chunks(n: int) -> list[tuple[int, int]]:
    return _row_chunks(n, n * n)


def _in_order(xp: Any, chunk: Array, previous: Array | None) -> Array:
    """``chunk``, made to wait for ``previous`` (an ``(n, N)`` count or index of the chunk before):
    XLA would otherwise compute every chunk at once and keep all of them (1 GiB instead of 130 MiB
    for batch_all at N = 512). ``0 * count`` is 0 (a count is finite), and XLA does not fold a
    floating ``0 * x``; eager backends just add 0."""
    if previous is None:
        return chunk
    return chunk + 0.0 * xp.astype(previous[:1, :1], chunk.dtype)


def _active_triplets(
    b: Backend, distance: Array, positive: Array, negative: Array, margin: float
) -> tuple[Array, Array, Array]:
    """batch_all's active triplets (``d_ap - d_an + m > 0``), counted a few anchors at a time:
    per (anchor, positive) the number of active negatives, per (anchor, negative) the number of
    active positives (both ``(N, N)``), and each anchor's summed loss."""
    xp = b.xp
    by_positive: list[Array] = []
    by_negative, values = [], []
    for start, stop in _anchor_chunks(distance.shape[0]):
        d = _in_order(xp, distance[start:stop, ...], by_positive[-1] if by_positive else None)
        hinge = d[:, :, None] - d[:, None, :] + margin
        active = positive[start:stop, :, None] & negative[start:stop, None, :] & (hinge > 0)
        weights = xp.astype(active, d.dtype)
        by_positive.append(xp.sum(weights, axis=2))
        by_negative.append(xp.sum(weights, axis=1))
        values.append(xp.sum(xp.sum(xp.where(active, hinge, 0.0), axis=2), axis=1))
    return xp.concat(by_positive), xp.concat(by_negative), xp.concat(values)


def _semi_hard_negatives(b: Backend, distance: Array, negative: Array) -> Array:
    """The ``(N, N)`` index of each (anchor, positive) pair's semi-hard negative: the closest one
    farther than the positive (the first in index order among equals), else the farthest.

    Sorted, not compared triplet by triplet: per anchor, the negatives' distances sorted once and
    each candidate positive's distance ranked among them, in O(N^2 log N) time and O(N^2) memory
    (one stable sort of the negatives and the positives together: a negative at the same distance
    as a positive ranks before it, so the rank counts the negatives no farther than it)."""
    xp = b.xp
    n = distance.shape[0]
    farthest = xp.argmax(xp.where(negative, distance, -1.0), axis=1)
    negative_distance = xp.where(negative, distance, math.inf)  # the others sort last
    by_distance = xp.argsort(negative_distance, axis=1, stable=True)
    keys = xp.concat([negative_distance, distance], axis=1)  # (N, 2N): the negatives, then every pair
    flags = xp.concat([xp.astype(negative, xp.int64), xp.zeros_like(xp.astype(negative, xp.int64))], axis=1)
    order = xp.argsort(keys, axis=1, stable=True)
    negatives_so_far = b.cumulative_sum(b.take_along_axis(flags, order, 1), 1)
    position = xp.argsort(order, axis=1, stable=True)[:, n:]  # where each pair's distance sorted to
    no_farther = b.take_along_axis(negatives_so_far, position, 1)  # negatives with d_an <= d_ap
    count = xp.sum(xp.astype(negative, xp.int64), axis=1, keepdims=True)
    # no_farther <= count <= N - 1 (an anchor is not its own negative): always an index
    nearest = b.take_along_axis(by_distance, no_farther, 1)
    return xp.where(no_farther < count, nearest, farthest[:, None])


@loss("metric", settings={"mining": one_of(*_MINING), "margin": nonnegative_number(), "squared": boolean()})
def triplet_mined(
    b: Backend,
    embeddings: Array,
    labels: Array,
    *,
    margin: float = 1.0,
    mining: str = "batch_hard",
    squared: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Triplet loss with online mining inside the batch (fixed-shape masks: jit/vmap safe).

    With :math:`d_{ij} = \lVert e_i - e_j \rVert_2` (squared with ``squared``),
    :math:`P(a)` the positives of anchor :math:`a` (same label, :math:`j \ne a`)
    and :math:`N(a)` its negatives (other labels):

    .. math::
        \text{batch\_hard:}\quad \ell_a = \max\big(0,\ \max_{p \in P(a)} d_{ap}
            - \min_{n \in N(a)} d_{an} + m\big)

        \text{batch\_all:}\quad \ell_a = \textstyle\sum_{p \in P(a)} \sum_{n \in N(a)}
            \max(0,\ d_{ap} - d_{an} + m)

        \text{semi\_hard:}\quad \ell_a = \textstyle\sum_{p \in P(a)} \max(0,\ d_{ap} - d_{a n^*(a,p)} + m)

    where :math:`n^*(a, p)` is the closest negative farther than :math:`p`
    (:math:`d_{an} > d_{ap}`), or the farthest negative if there is none
    (FaceNet's semi-hard rule). An anchor without a positive or without a
    negative contributes nothing. ``"mean"`` divides the sum by: batch_hard,
    the number of anchors with both; batch_all, the number of triplets with a
    positive loss; semi_hard, the number of positive pairs whose anchor has a
    negative. A batch without a valid triplet gives 0, with zero gradient.

    Args:
        embeddings: ``(N, D)``.
        labels: ``(N,)`` integer identities.
        margin: :math:`m \ge 0` (default 1).
        mining: ``"batch_hard"``, ``"batch_all"`` or ``"semi_hard"``.
        squared: squared Euclidean distances.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per anchor, ``(N,)``).

    Returns:
        The loss; per anchor with ``reduction="none"``.

    ``batch_hard`` is study-hub's ``OnlineTripletLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions") (Hermans
    et al., *In Defense of the Triplet Loss*, 2017); ``semi_hard`` is TensorFlow
    Addons' ``triplet_semihard_loss`` except that anchors without a negative
    contribute nothing (TFA gives them ``m + d_ap``) and an empty batch gives 0
    (TFA: NaN); ``batch_all`` averages over the triplets with a positive loss.
    Memory: ``O(N^2)``. The distances are computed a few anchors at a time (about 2**24 differences
    at once), their gradient through the Gram matrix. ``batch_all`` compares the ``(anchor, positive,
    negative)`` triplets a few anchors at a time (about 2**24 at once) without gradient and keeps
    ``(N, N)`` counts: ``O(N^3)`` time. ``semi_hard`` ranks each positive's distance among its anchor's
    sorted negatives: ``O(N^2 log N)`` time, as ``batch_hard``'s reductions.
    """
    xp = b.xp
    _check_rows(xp, "embeddings", embeddings, ndim=2)
    group_labels(xp, "labels", labels, embeddings.shape[0], what="identities")

    n = embeddings.shape[0]
    distance = _cross_distances(b, embeddings, squared)
    same = labels[:, None] == labels[None, :]
    positive = same & ~xp.eye(n, dtype=xp.bool, device=b.device(embeddings))
    negative = ~same
    has_negative = xp.any(negative, axis=1)
    if n == 0:  # no anchor: the empty batch (a max or min over no sample has no value)
        return reduce(xp, xp.sum(distance, axis=1), reduction)

    if mining == "batch_hard":
        valid = xp.any(positive, axis=1) & has_negative
        # distances are >= 0, so 0 is a neutral fill for the max; +inf for the min
        hardest_positive = xp.max(xp.where(positive, distance, 0.0), axis=1)
        hardest_negative = xp.min(xp.where(negative, distance, math.inf), axis=1)
        hardest_negative = xp.where(has_negative, hardest_negative, 0.0)
        per_anchor = xp.where(valid, b.relu(hardest_positive - hardest_negative + margin), 0.0)
        count = xp.sum(xp.astype(valid, distance.dtype))
    elif mining == "batch_all":
        # the loss is linear in the distances given which triplets are active (positive loss): count
        # them anchor by anchor (no gradient), then sum the distances weighted by those counts
        by_positive, by_negative, values = _active_triplets(b, b.stop_gradient(distance), positive, negative, margin)
        linear = xp.sum(distance * (by_positive - by_negative), axis=1) + margin * xp.sum(by_positive, axis=1)
        # the value summed term by term (exact), the gradient of the linear form (the same)
        per_anchor = values + (linear - b.stop_gradient(linear))
        count = xp.sum(by_positive)
    else:
        chosen = b.take_along_axis(distance, _semi_hard_negatives(b, b.stop_gradient(distance), negative), 1)
        valid = positive & has_negative[:, None]
        per_pair = xp.where(valid, b.relu(distance - chosen + margin), 0.0)
        per_anchor = xp.sum(per_pair, axis=1)
        count = xp.sum(xp.astype(valid, distance.dtype))
    return reduce(xp, per_anchor, reduction, normalizer=count)


@loss("metric", settings={"margin": number_in(-1.0, 1.0, arrays=True)})
def cosine_embedding(
    b: Backend, x1: Array, x2: Array, target: Array, *, margin: float | Array = 0.0, reduction: str = "mean"
) -> Array:
    r"""Cosine embedding loss: pull similar pairs to cosine 1, push dissimilar ones below a margin.

    .. math:: \ell_i = \begin{cases} 1 - \cos_i & y_i = 1 \\ \max(0, \cos_i - m) & y_i = -1 \end{cases},
              \qquad \cos_i = \frac{x_{1i} \cdot x_{2i}}
              {\sqrt{(\lVert x_{1i} \rVert^2 + \epsilon)(\lVert x_{2i} \rVert^2 + \epsilon)}}

    with :math:`\epsilon = 10^{-12}` as in torch. A zero vector gives :math:`\cos = 0` with
    gradient 0 for both vectors: the cosine has no limit there, and torch's slope
    :math:`1/\sqrt{\epsilon}` is an artefact of the guard (it overflows float16 gradients).

    Args:
        x1: embeddings ``(..., D)``.
        x2: embeddings, same shape.
        target: :math:`y`, 1 (similar) or -1 (dissimilar) per pair, shape ``(...)``.
        margin: :math:`m` in [-1, 1] (default 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The loss; per pair with ``reduction="none"``.

    Equals ``torch.nn.functional.cosine_embedding_loss``, except that a target
    other than 1 or -1 raises ``ValueError`` (torch silently gives it loss 0),
    and the gradient at a zero vector (above).
    """
    xp = b.xp
    _check_rows(xp, "x1", x1)
    _check_rows(xp, "x2", x2)
    check_same_shape("x1", x1, "x2", x2)
    _check_row_labels(xp, "target", target, x1, floating=False)
    target, valid = _sign_target(b, target, x1)
    squared1, squared2 = xp.sum(x1 * x1, axis=-1), xp.sum(x2 * x2, axis=-1)
    magnitudes = (squared1 + _COSINE_EPS) * (squared2 + _COSINE_EPS)
    # with a zero vector: cosine 0 (torch's value) with gradient 0, not torch's 1/sqrt(eps) slope
    cosine = xp.where((squared1 > 0) & (squared2 > 0), xp.sum(x1 * x2, axis=-1) / xp.sqrt(magnitudes), 0.0)
    per_pair = xp.where(target > 0, 1.0 - cosine, b.relu(cosine - margin))
    return reduce(xp, _nan_where_invalid(xp, per_pair, valid), reduction)


@loss("metric", settings={"margin": finite_number(arrays=True)})
def margin_ranking(
    b: Backend, x1: Array, x2: Array, target: Array, *, margin: float | Array = 0.0, reduction: str = "mean"
) -> Array:
    r"""Margin ranking loss: score ``x1`` above ``x2`` by a margin where ``y = 1`` (below where -1).

    .. math:: \ell_i = \max\big(0,\ -y_i (x_{1i} - x_{2i}) + m\big)

    Args:
        x1: scores, any shape.
        x2: scores, same shape.
        target: :math:`y`, 1 or -1 per element, same shape.
        margin: :math:`m`, finite (default 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    Equals ``torch.nn.functional.margin_ranking_loss``, except that a target
    other than 1 or -1 raises ``ValueError`` (torch accepts any number).
    """
    xp = b.xp
    check_floating(xp, "x1", x1)
    check_floating(xp, "x2", x2)
    check_same_shape("x1", x1, "x2", x2)
    check_same_shape("x1", x1, "target", target)
    target, valid = _sign_target(b, target, x1)
    per_element = b.relu(margin - target * (x1 - x2))
    return reduce(xp, _nan_where_invalid(xp, per_element, valid), reduction)


@loss("metric", settings={"margin": finite_number(arrays=True)})
def hinge_embedding(
    b: Backend, distance: Array, target: Array, *, margin: float | Array = 1.0, reduction: str = "mean"
) -> Array:
    r"""Hinge embedding loss: pull similar pairs' distances down, push dissimilar ones past a margin.

    .. math:: \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0,\ m - x_i) & y_i = -1 \end{cases}

    Args:
        distance: :math:`x`, a distance (or dissimilarity) per pair, any shape (e.g. an L1 or L2
            distance between two embeddings).
        target: :math:`y`, 1 (similar) or -1 (dissimilar) per element, same shape.
        margin: :math:`m` (default 1).
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss. The derivative at the kink :math:`x = m` is 0.

    Equals ``torch.nn.functional.hinge_embedding_loss(distance, target, margin=margin)``. Targets
    other than +-1 raise ``ValueError`` in eager mode and give NaN when traced (torch adds both
    terms for them).
    """
    xp = b.xp
    check_floating(xp, "distance", distance)
    check_same_shape("distance", distance, "target", target)
    target, valid = _sign_target(b, target, distance)
    per_element = xp.where(target == 1.0, distance, b.relu(margin - distance))
    return reduce(xp, _nan_where_invalid(xp, per_element, valid), reduction)


# --------------------------------------------------------------------------- margin softmax


def _check_margin_softmax(
    b: Backend, embeddings: Array, class_weights: Array, labels: Array
) -> tuple[Array, Array | None]:
    xp = b.xp
    _check_rows(xp, "embeddings", embeddings, ndim=2)
    check_floating(xp, "class_weights", class_weights)
    if class_weights.ndim != 2 or class_weights.shape[1] != embeddings.shape[1]:
        raise ValueError(
            f"class_weights must have shape (C, {embeddings.shape[1]}) (one row per class, the embeddings' "
            f"dimension), got {tuple(class_weights.shape)}"
        )
    num_classes = class_weights.shape[0]
    class_labels(b, "labels", labels, num_classes=num_classes, shape=tuple(embeddings.shape[:1]))
    return guard_traced_labels(b, labels, num_classes)


def _cosines(xp: Any, embeddings: Array, class_weights: Array) -> Array:
    """(N, C) cosines between the normalised embeddings and class weights."""
    return xp.matmul(l2_normalize(xp, embeddings), xp.matrix_transpose(l2_normalize(xp, class_weights)))


def _target_mask(b: Backend, index: Array, num_classes: int) -> Array:
    xp = b.xp
    return index[:, None] == xp.arange(num_classes, dtype=index.dtype, device=b.device(index))[None, :]


def _margin_cross_entropy(
    b: Backend,
    cosine: Array,
    target_logit: Array,
    index: Array,
    valid: Array | None,
    scale: float | Array,
    reduction: str,
) -> Array:
    """Cross-entropy of ``scale`` times the cosines, ``target_logit`` in place of each sample's class."""
    xp = b.xp
    logits = scale * xp.where(_target_mask(b, index, cosine.shape[1]), target_logit, cosine)
    return softmax_cross_entropy(b, logits, index, 1, reduction, valid=valid)


@loss("metric", settings={"scale": positive_number(arrays=True), "margin": finite_number(minimum=0.0)})
def arcface(
    b: Backend,
    embeddings: Array,
    class_weights: Array,
    labels: Array,
    *,
    scale: float | Array = 64.0,
    margin: float = 0.5,
    reduction: str = "mean",
) -> Array:
    r"""ArcFace: softmax cross-entropy with an additive angular margin on the target class.

    With :math:`\cos\theta_{ic}` the cosine between embedding :math:`i` and class
    weight :math:`c`, the target logit :math:`\cos\theta_{iy}` becomes

    .. math:: \phi = \begin{cases} \cos(\theta + m) & \cos\theta > \cos(\pi - m) \\
              \cos\theta - m \sin(\pi - m) & \text{otherwise} \end{cases},
              \qquad \ell_i = \mathrm{CE}\big(s \cdot [\phi \text{ at } y_i,\ \cos\theta \text{ elsewhere}],\ y_i\big)

    (``easy_margin=False``: past :math:`\theta = \pi - m` the angle would wrap,
    so a linear penalty takes over). :math:`\cos(\theta + m)` is
    :math:`\cos\theta \cos m - \sin\theta \sin m` with :math:`\sin\theta =
    \sqrt{1 - \cos^2\theta}` whose gradient is kept finite at
    :math:`\cos\theta = \pm 1`.

    Args:
        embeddings: ``(N, D)``, normalised inside (a zero row has cosine 0, with gradient 0).
        class_weights: ``(C, D)``, one row per class, normalised inside.
        labels: ``(N,)`` integer classes in ``[0, C)``.
        scale: :math:`s > 0` (default 64).
        margin: :math:`m` in [0, pi) radians (default 0.5).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; per sample with ``reduction="none"``.

    The ``ArcMarginProduct`` (``easy_margin=False``) of insightface and
    arcface-pytorch followed by cross-entropy. Deng et al., *ArcFace: Additive
    Angular Margin Loss for Deep Face Recognition*, 2019.
    """
    xp = b.xp
    index, valid = _check_margin_softmax(b, embeddings, class_weights, labels)
    if margin >= math.pi:
        raise ValueError(f"margin must be in [0, pi) radians, got {margin!r}")
    cosine = _cosines(xp, embeddings, class_weights)
    sine = safe_sqrt(xp, 1.0 - cosine * cosine)  # cosine may exceed 1 by rounding: sine 0 there
    shifted = cosine * math.cos(margin) - sine * math.sin(margin)
    shifted = xp.where(cosine > math.cos(math.pi - margin), shifted, cosine - math.sin(math.pi - margin) * margin)
    return _margin_cross_entropy(b, cosine, shifted, index, valid, scale, reduction)


@loss("metric", settings={"scale": positive_number(arrays=True), "margin": nonnegative_number(arrays=True)})
def cosface(
    b: Backend,
    embeddings: Array,
    class_weights: Array,
    labels: Array,
    *,
    scale: float | Array = 64.0,
    margin: float | Array = 0.35,
    reduction: str = "mean",
) -> Array:
    r"""CosFace (large margin cosine loss): cross-entropy with a cosine margin on the target class.

    .. math:: \ell_i = \mathrm{CE}\big(s \cdot [\cos\theta_{iy} - m \text{ at } y_i,\
              \cos\theta_{ic} \text{ elsewhere}],\ y_i\big)

    Args:
        embeddings: ``(N, D)``, normalised inside (a zero row has cosine 0, with gradient 0).
        class_weights: ``(C, D)``, one row per class, normalised inside.
        labels: ``(N,)`` integer classes in ``[0, C)``.
        scale: :math:`s > 0` (default 64).
        margin: :math:`m \ge 0` (default 0.35).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; per sample with ``reduction="none"``.

    The ``AddMarginProduct`` of arcface-pytorch followed by cross-entropy.
    Wang et al., *CosFace: Large Margin Cosine Loss for Deep Face Recognition*, 2018.
    """
    xp = b.xp
    index, valid = _check_margin_softmax(b, embeddings, class_weights, labels)
    cosine = _cosines(xp, embeddings, class_weights)
    return _margin_cross_entropy(b, cosine, cosine - margin, index, valid, scale, reduction)


def _labelled_cosines(b: Backend, embeddings: Array, labels: Array) -> tuple[Array, Array, Array]:
    """A labelled batch's cosine similarities ``(N, N)``, its same-label mask and its positive-pair
    mask (same label, not the anchor itself)."""
    xp = b.xp
    unit = l2_normalize(xp, embeddings)
    similarity = xp.matmul(unit, xp.matrix_transpose(unit))
    rows = xp.arange(embeddings.shape[0], device=b.device(embeddings))
    same = labels[:, None] == labels[None, :]
    return similarity, same, same & (rows[:, None] != rows[None, :])


@loss("metric", settings={"m": number_in(0.0, 1.0), "gamma": positive_number()})
def circle(
    b: Backend, embeddings: Array, labels: Array, *, m: float = 0.4, gamma: float = 80.0, reduction: str = "mean"
) -> Array:
    r"""Circle loss (Sun et al., 2020) on the cosine similarities of a labelled batch.

    For anchor :math:`i` with positive similarities :math:`s_p` (same label) and negative ones
    :math:`s_n`, :math:`\alpha_p = [1 + m - s_p]_+`, :math:`\alpha_n = [s_n + m]_+` (held
    constant), :math:`\Delta_p = 1 - m`, :math:`\Delta_n = m`:

    .. math:: \ell_i = \operatorname{softplus}\Bigl(
              \log \sum_p e^{-\gamma \alpha_p (s_p - \Delta_p)} + \log \sum_n e^{\gamma \alpha_n (s_n - \Delta_n)}\Bigr)

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here: cosine similarities).
        labels: ``(N,)`` integer class labels.
        m: the relaxation margin in [0, 1] (default 0.4).
        gamma: the scale :math:`\gamma > 0` (default 80).
        reduction: ``"mean"`` (over the anchors with a positive and a negative), ``"sum"`` or
            ``"none"`` (per anchor; 0 for an anchor without a positive or a negative).

    Returns:
        The loss. As the paper's, the weights :math:`\alpha` are held constant: the gradient is
        not the derivative of the value (the finite-difference checks do not apply; the
        re-typed reference checks the gradient).

    Equals pytorch-metric-learning's ``CircleLoss(m, gamma)`` (its ``AvgNonZeroReducer`` averages
    the positive losses: the anchors with a positive and a negative, each loss being a softplus).
    """
    xp = b.xp
    _check_rows(xp, "embeddings", embeddings, ndim=2)
    group_labels(xp, "labels", labels, embeddings.shape[0])
    if embeddings.shape[0] == 0:
        return reduce(xp, xp.sum(embeddings, axis=1), reduction)
    similarity, same, positive = _labelled_cosines(b, embeddings, labels)
    negative = ~same
    held = b.stop_gradient(similarity)
    positive_logits = -gamma * b.relu(1.0 + m - held) * (similarity - (1.0 - m))
    negative_logits = gamma * b.relu(held + m) * (similarity - m)
    valid = xp.any(positive, axis=1) & xp.any(negative, axis=1)
    # rows without a positive or a negative: a finite stand-in (their loss is 0) so no -inf row is reduced
    positive_logits = xp.where(valid[:, None], xp.where(positive, positive_logits, -math.inf), 0.0)
    negative_logits = xp.where(valid[:, None], xp.where(negative, negative_logits, -math.inf), 0.0)
    per_anchor = b.softplus(b.logsumexp(positive_logits, 1) + b.logsumexp(negative_logits, 1))
    per_anchor = xp.where(valid, per_anchor, 0.0)
    if reduction != "mean":
        return reduce(xp, per_anchor, reduction)
    return reduce(xp, per_anchor, reduction, xp.sum(xp.astype(valid, per_anchor.dtype)))


@loss(
    "metric",
    settings={"alpha": positive_number(), "beta": positive_number(), "base": finite_number()},
)
def multi_similarity(
    b: Backend,
    embeddings: Array,
    labels: Array,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    reduction: str = "mean",
) -> Array:
    r"""Multi-similarity loss (Wang et al., 2019) on the cosine similarities of a labelled batch.

    For anchor :math:`i` with positives :math:`P_i` (same label, not itself) and negatives :math:`N_i`:

    .. math:: \ell_i = \frac{1}{\alpha} \log\Bigl(1 + \sum_{p \in P_i} e^{-\alpha (s_{ip} - \lambda)}\Bigr)
              + \frac{1}{\beta} \log\Bigl(1 + \sum_{n \in N_i} e^{\beta (s_{in} - \lambda)}\Bigr)

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here: cosine similarities).
        labels: ``(N,)`` integer class labels.
        alpha: the positive pairs' scale :math:`\alpha > 0` (default 2).
        beta: the negative pairs' scale :math:`\beta > 0` (default 50).
        base: the similarity threshold :math:`\lambda` (default 0.5).
        reduction: ``"mean"`` (over anchors), ``"sum"`` or ``"none"`` (per anchor).

    Returns:
        The loss; an anchor without positives (or negatives) has that term 0.

    Equals pytorch-metric-learning's ``MultiSimilarityLoss(alpha, beta, base)`` (all pairs, no miner;
    its ``MeanReducer``).
    """
    xp = b.xp
    _check_rows(xp, "embeddings", embeddings, ndim=2)
    group_labels(xp, "labels", labels, embeddings.shape[0])
    if embeddings.shape[0] == 0:
        return reduce(xp, xp.sum(embeddings, axis=1), reduction)
    similarity, same, positive = _labelled_cosines(b, embeddings, labels)
    one = xp.zeros((embeddings.shape[0], 1), dtype=similarity.dtype, device=b.device(embeddings))  # "1 +" in the logs

    def soft_sum(kept: Array, logits: Array) -> Array:
        return b.logsumexp(xp.concat([one, xp.where(kept, logits, -math.inf)], axis=1), 1)

    per_anchor = (
        soft_sum(positive, alpha * (base - similarity)) / alpha + soft_sum(~same, beta * (similarity - base)) / beta
    )
    return reduce(xp, per_anchor, reduction)
