"""Learning-to-rank losses over lists: scores ``(..., L)`` and relevance labels ``(..., L)``.

Each list is the last axis; ``mask`` (optax's and Rax's ``where``) marks the real items of padded
lists. Listwise losses (``ranking_softmax``, ``listmle``, ``approx_ndcg``) give one value per list; pairwise losses
(``pairwise_logistic``, ``pairwise_hinge``) one value per pair of items whose labels differ, summed
per list for ``"none"``.

Conventions (tested by the edge-case corpus, ``tests/test_input_dtypes.py`` and
``tests/test_bad_inputs.py``):

* **empty batch**: ``"sum"`` and ``"mean"`` 0, ``"none"`` empty; a list whose items are all masked
  contributes 0 and is left out of ``"mean"`` (as Rax's ``safe_reduce``); a batch without a single
  valid pair gives 0 for the pairwise losses;
* **integers**: scores must be floating; labels may be integer grades (read as the scores' dtype)
  or floating; the mask ``bool`` (or 0/1 integers);
* **broadcasting**: scores, labels and mask share one shape;
* **ties**: ``listmle`` ranks tied labels in their order of appearance (Rax without a ``key``); the
  pairwise losses skip pairs of equal labels.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import check_floating, check_same_shape, is_integer, positive_number
from polyloss.core._reduce import reduce, reduce_kept, safe_divide
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend


def _lists(b: Backend, scores: Array, labels: Array, mask: Array | None) -> tuple[Array, Array]:
    """The labels in the scores' dtype and the boolean mask of real items (all true without one)."""
    xp = b.xp
    check_floating(xp, "scores", scores)
    if scores.ndim < 1:
        raise ValueError("scores must have a list axis (..., L), got a 0-d array")
    check_same_shape("scores", scores, "labels", labels)
    if not is_integer(xp, labels) and labels.dtype != xp.bool:
        check_floating(xp, "labels", labels)
    labels = xp.astype(labels, scores.dtype) if labels.dtype != scores.dtype else labels
    if mask is None:
        return labels, xp.ones(scores.shape, dtype=xp.bool, device=b.device(scores))
    check_same_shape("scores", scores, "mask", mask)
    if mask.dtype != xp.bool and not is_integer(xp, mask):
        raise TypeError(f"mask must be bool (or 0/1 integers), got dtype {mask.dtype}")
    return labels, mask if mask.dtype == xp.bool else mask != 0


def _per_list(xp: Any, per_list: Array, valid: Array, reduction: str) -> Array:
    """Lists without a valid item are 0 and left out of ``"mean"``."""
    return reduce_kept(xp, per_list, xp.any(valid, axis=-1), reduction)


@loss("ranking")
def ranking_softmax(
    b: Backend, scores: Array, labels: Array, *, mask: Array | None = None, reduction: str = "mean"
) -> Array:
    r"""Listwise softmax cross-entropy between the relevance labels and the softmax of the scores.

    .. math:: \ell_k = -\sum_{i \in k} y_i \log \frac{e^{s_i}}{\sum_{j \in k} e^{s_j}}

    over the valid items of list :math:`k` (the labels are not normalised: graded relevance weighs
    its items, as Rax's and optax's default).

    Args:
        scores: ``(..., L)`` item scores.
        labels: ``(..., L)`` relevance labels (>= 0; integer grades or floats).
        mask: optional ``(..., L)`` ``bool``: True for real items, False for padding.
        reduction: ``"mean"`` (over lists with a valid item), ``"sum"`` or ``"none"`` (per list).

    Returns:
        The loss; 0 for a list with no valid item.

    Equals ``rax.softmax_loss(scores, labels, where=mask)`` and
    ``optax.losses.ranking_softmax_loss(scores, labels, where=mask)``. Cao et al., *Learning to
    Rank: From Pairwise Approach to Listwise Approach*, 2007.
    """
    xp = b.xp
    labels, valid = _lists(b, scores, labels, mask)
    masked = xp.where(valid, scores, -math.inf)
    any_valid = xp.any(valid, axis=-1, keepdims=True)
    log_probs = b.log_softmax(xp.where(any_valid, masked, 0.0), -1)  # an all-padding row: no -inf row
    terms = xp.where(valid, labels * xp.where(valid, log_probs, 0.0), 0.0)
    return _per_list(xp, -xp.sum(terms, axis=-1), valid, reduction)


@loss("ranking")
def listmle(b: Backend, scores: Array, labels: Array, *, mask: Array | None = None, reduction: str = "mean") -> Array:
    r"""ListMLE: the negative log-likelihood of the labels' ranking under the Plackett-Luce model.

    With the valid items of list :math:`k` sorted by decreasing label, :math:`\pi(1), \pi(2), \dots`:

    .. math:: \ell_k = -\sum_{r} \Bigl(s_{\pi(r)} - \log \sum_{r' \ge r} e^{s_{\pi(r')}}\Bigr)

    Args:
        scores: ``(..., L)`` item scores.
        labels: ``(..., L)`` relevance labels; tied labels keep their order of appearance.
        mask: optional ``(..., L)`` ``bool``: True for real items, False for padding.
        reduction: ``"mean"`` (over lists with a valid item), ``"sum"`` or ``"none"`` (per list).

    Returns:
        The loss; 0 for a list with no valid item. Piecewise smooth in the scores; the labels only
        order the items (no gradient).

    Equals ``rax.listmle_loss(scores, labels, where=mask)`` (without a tie-breaking ``key``). Xia
    et al., *Listwise Approach to Learning to Rank: Theory and Algorithm*, 2008.
    """
    xp = b.xp
    labels, valid = _lists(b, scores, labels, mask)
    # valid items first, by decreasing label, ties in order of appearance (a stable sort)
    key = xp.where(valid, labels, -math.inf)
    order = xp.argsort(b.stop_gradient(key), axis=-1, descending=True, stable=True)
    ranked = b.take_along_axis(xp.where(valid, scores, 0.0), order, -1)
    ranked_valid = b.take_along_axis(xp.astype(valid, scores.dtype), order, -1) > 0
    top = b.stop_gradient(xp.max(xp.where(ranked_valid, ranked, -math.inf), axis=-1, keepdims=True))
    top = xp.where(top > -math.inf, top, 0.0)
    exps = xp.where(ranked_valid, xp.exp(xp.where(ranked_valid, ranked - top, 0.0)), 0.0)
    remaining = xp.flip(b.cumulative_sum(xp.flip(exps, axis=-1), -1), axis=-1)  # sum over r' >= r
    log_remaining = top + xp.log(xp.where(ranked_valid, remaining, 1.0))
    terms = xp.where(ranked_valid, ranked - log_remaining, 0.0)
    return _per_list(xp, -xp.sum(terms, axis=-1), valid, reduction)


def _pairwise(b: Backend, scores: Array, labels: Array, mask: Array | None, pair_loss: Any, reduction: str) -> Array:
    """``pair_loss(s_i - s_j)`` over the pairs of valid items with ``y_i > y_j``, summed per list;
    ``"mean"`` divides by the number of such pairs in the batch (0 when there is none)."""
    xp = b.xp
    labels, valid = _lists(b, scores, labels, mask)
    score_gap = scores[..., :, None] - scores[..., None, :]
    ordered = (labels[..., :, None] > labels[..., None, :]) & valid[..., :, None] & valid[..., None, :]
    per_pair = xp.where(ordered, pair_loss(xp.where(ordered, score_gap, 0.0)), 0.0)
    per_list = xp.sum(per_pair, axis=(-2, -1))
    if reduction != "mean":
        return reduce(xp, per_list, reduction)
    return safe_divide(xp, xp.sum(per_list), xp.sum(xp.astype(ordered, scores.dtype)))


@loss("ranking")
def pairwise_logistic(
    b: Backend, scores: Array, labels: Array, *, mask: Array | None = None, reduction: str = "mean"
) -> Array:
    r"""Pairwise logistic loss (RankNet): every better-labelled item should outscore every worse one.

    .. math:: \ell = \sum_{i, j:\ y_i > y_j} \log\bigl(1 + e^{-(s_i - s_j)}\bigr)

    Args:
        scores: ``(..., L)`` item scores.
        labels: ``(..., L)`` relevance labels (pairs of equal labels are skipped).
        mask: optional ``(..., L)`` ``bool``: True for real items, False for padding.
        reduction: ``"mean"`` (over the valid pairs of the whole batch), ``"sum"`` or ``"none"``
            (per list: the sum over its pairs).

    Returns:
        The loss; 0 when no pair is ordered.

    Equals ``rax.pairwise_logistic_loss(scores, labels, where=mask)`` ("mean"). Burges et al.,
    *Learning to Rank using Gradient Descent*, 2005.
    """
    return _pairwise(b, scores, labels, mask, lambda gap: b.softplus(-gap), reduction)


@loss("ranking")
def pairwise_hinge(
    b: Backend, scores: Array, labels: Array, *, mask: Array | None = None, reduction: str = "mean"
) -> Array:
    r"""Pairwise hinge loss (RankSVM): a margin of 1 between every better and worse item.

    .. math:: \ell = \sum_{i, j:\ y_i > y_j} \max\bigl(0,\ 1 - (s_i - s_j)\bigr)

    Args:
        scores: ``(..., L)`` item scores.
        labels: ``(..., L)`` relevance labels (pairs of equal labels are skipped).
        mask: optional ``(..., L)`` ``bool``: True for real items, False for padding.
        reduction: ``"mean"`` (over the valid pairs of the whole batch), ``"sum"`` or ``"none"``
            (per list: the sum over its pairs).

    Returns:
        The loss; 0 when no pair is ordered. The derivative at the kink is 0.

    Equals ``rax.pairwise_hinge_loss(scores, labels, where=mask)`` ("mean"). Herbrich, Graepel,
    Obermayer, *Large Margin Rank Boundaries for Ordinal Regression*, 2000.
    """
    return _pairwise(b, scores, labels, mask, lambda gap: b.relu(1.0 - gap), reduction)


@loss("ranking", settings={"temperature": positive_number(arrays=True)})
def approx_ndcg(
    b: Backend,
    scores: Array,
    labels: Array,
    *,
    temperature: float | Array = 1.0,
    mask: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""ApproxNDCG: minus NDCG with each rank replaced by a smooth approximation (Qin et al., 2010).

    With the approximate rank :math:`\hat r_i = 1 + \sum_{j \ne i} \sigma\bigl((s_j - s_i) / T\bigr)`
    over the valid items of the list, the gains :math:`g_i = 2^{y_i} - 1` and :math:`\mathrm{IDCG}`
    the DCG of the items ordered by their gains:

    .. math:: \ell = -\frac{1}{\mathrm{IDCG}} \sum_i \frac{g_i}{\log_2(1 + \hat r_i)}

    Args:
        scores: ``(..., L)`` item scores.
        labels: ``(..., L)`` graded relevance labels (>= 0).
        temperature: :math:`T > 0`, the sigmoid's temperature (default 1; smaller is closer to
            the true ranks and steeper).
        mask: optional ``(..., L)`` ``bool``: True for real items, False for padding.
        reduction: ``"mean"`` (over lists with a valid item), ``"sum"`` or ``"none"`` (per list).

    Returns:
        The loss in [-1, 0] (minus a smooth NDCG, as Rax and TF-Ranking return it); 0 for a list
        without a relevant item (IDCG = 0) or without a valid item.

    Equals ``rax.approx_t12n(rax.ndcg_metric, temperature)(scores, labels, where=mask)``: Rax's
    ``ndcg_metric`` with ``rank_fn=rax.utils.approx_ranks`` and ``step_fn = sigmoid(x / T)``
    (without ``topn``). Qin, Liu & Li, *A general approximation framework for direct optimization
    of information retrieval measures*, 2010.
    """
    xp = b.xp
    labels, valid = _lists(b, scores, labels, mask)
    pairs = valid[..., :, None] & valid[..., None, :]
    size = scores.shape[-1]
    pairs = pairs & ~xp.eye(size, dtype=xp.bool, device=b.device(scores))
    above = b.sigmoid((scores[..., None, :] - scores[..., :, None]) / temperature)  # [i, j]: s_j over s_i
    ranks = 1.0 + xp.sum(xp.where(pairs, above, 0.0), axis=-1)
    gains = xp.where(valid, 2.0**labels - 1.0, 0.0)
    dcg = xp.sum(gains / xp.log2(1.0 + ranks), axis=-1)
    # the ideal DCG: the gains in decreasing order at ranks 1, 2, ... (padding's gain 0 ranks last)
    order = xp.argsort(b.stop_gradient(gains), axis=-1, descending=True, stable=True)
    ideal_gains = b.take_along_axis(gains, order, -1)
    positions = xp.arange(1, size + 1, dtype=scores.dtype, device=b.device(scores))
    ideal = xp.sum(ideal_gains / xp.log2(1.0 + positions), axis=-1)
    return _per_list(xp, -safe_divide(xp, dcg, ideal), valid, reduction)
