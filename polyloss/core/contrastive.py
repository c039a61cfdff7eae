"""In-batch contrast: InfoNCE, NT-Xent, CLIP and SigLIP over similarity matrices.

Embeddings are ``(N, D)``; row ``i`` of one input is the positive of row ``i``
of the other, every other row in the batch a negative. ``normalize`` maps each
row to unit length (``x / max(||x||, 1e-12)``, as ``F.normalize``), so
similarities are cosines. A zero row stays 0 with gradient 0 (``F.normalize``'s
slope there is 1e12, an artefact of its floor). Each loss is a
softmax (or sigmoid) cross-entropy per anchor, through the backend's fused
kernel; ``reduction="none"`` gives one value per anchor.

Distributed: with ``group`` (a ``torch.distributed`` process group, in ``polyloss.torch``) or
``axis_name`` (a mesh axis bound by ``shard_map``/``pmap``, in ``polyloss.jax``), each device passes
its local shard of the batch (``n`` rows, the same ``n`` on every device) and the negatives are the
whole global batch of ``size * n`` rows: the shards concatenated in rank order. ``"mean"`` and
``"sum"`` return the global batch's loss on every device, ``"none"`` this device's per-sample
losses; the gradient each device gets for its shard (and its part of a replicated ``logit_scale``'s,
summed over devices by the framework) is its slice of the single-device gradient of the global
batch. Each device forms only its ``n x (size * n)`` block of logits (open_clip's ``local_loss``),
never the global matrix; SigLIP passes the text shards around a ring instead (``exchange="ring"``,
Zhai et al. 2023, section 3.3), so that no device holds more than its own shard and one neighbour's
at a time in the forward pass.

Conventions (tested by the edge-case corpus, ``tests/test_bad_inputs.py`` and
``tests/test_input_dtypes.py``): an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty
``"none"``; embeddings must be floating (``TypeError`` naming them); the two views never broadcast;
a one-row batch of NT-Xent has no negative and gives 0, and so does a labelled NT-Xent whose samples
all share one label. NT-Xent's ``labels`` are gathered with the embeddings when distributed, and its
``"mean"`` divides by the global number of positive pairs.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_floating,
    check_ndim,
    check_same_shape,
    finite_number,
    group_labels,
    one_of,
    positive_number,
)
from polyloss.core._devices import devices_of, reduce_across
from polyloss.core._reduce import is_empty, l2_normalize, reduce, safe_divide, safe_logaddexp, softmax_cross_entropy
from polyloss.core._registry import loss
from polyloss.core._typing import Array, AxisName, Backend, Devices, ProcessGroup
from polyloss.core.classification import chunked_cross_entropy


def _check_views(xp: Any, name_a: str, a: Array, name_b: str, b: Array) -> None:
    check_floating(xp, name_a, a)
    check_floating(xp, name_b, b)
    check_same_shape(name_a, a, name_b, b)
    check_ndim(name_a, a, 2, "(N, D)")


def _similarities(xp: Any, a: Array, b: Array) -> Array:
    return xp.matmul(a, xp.matrix_transpose(b))


def _normalized(xp: Any, normalize: bool, *arrays: Array) -> tuple[Array, ...]:
    return tuple(l2_normalize(xp, x) for x in arrays) if normalize else arrays


def _cross_entropy_rows(
    b: Backend, rows: Array, columns: Array, index: Array, chunk_size: int | None, scale: Any
) -> Array:
    """Each row's cross-entropy of the logits ``scale * rows @ columns.T`` at ``index``: dense, or
    ``chunk_size`` rows at a time (their logits recomputed in the backward pass, never stored)."""
    if chunk_size is None:
        return softmax_cross_entropy(b, scale * _similarities(b.xp, rows, columns), index, 1)
    return chunked_cross_entropy(b, scale * rows, columns, index, chunk_size)


def _global_rows(b: Backend, devices: Devices, like: Array) -> Array:
    """The global indices of this device's rows: ``rank * n + arange(n)``."""
    n = like.shape[0]
    return devices.rank() * n + b.xp.arange(n, device=b.device(like))


class _SigLipBlocks:
    """SigLIP's per-image loss against one visiting text shard, and its gradient
    (:class:`polyloss.core._typing.RingBlocks`): ``local = (images, scale, bias)``,
    ``visiting = (texts,)``; only this device's own shard holds the matching pairs (its diagonal)."""

    def __init__(self, b: Backend) -> None:
        self.b = b

    def _signed_logits(self, local: tuple[Array, ...], texts: Array, own: bool) -> tuple[Array, Array, Array]:
        """(``z L`` with ``z = -1`` on the matching pairs, ``z``, the similarities)."""
        xp = self.b.xp
        images, scale, bias = local
        similarities = _similarities(xp, images, texts)
        logits = scale * similarities + bias
        if not own:
            return logits, xp.ones_like(logits), similarities
        matching = xp.eye(images.shape[0], texts.shape[0], dtype=xp.bool, device=self.b.device(images))
        sign = xp.where(matching, -xp.ones_like(logits), xp.ones_like(logits))
        return sign * logits, sign, similarities

    def forward(self, local: tuple[Array, ...], visiting: tuple[Array, ...], own: bool) -> Array:
        # -log sigmoid(z L) = softplus(-z L); the sign here is -z
        signed, _, _ = self._signed_logits(local, visiting[0], own)
        return self.b.xp.sum(self.b.softplus(signed), axis=1)

    def backward(
        self, local: tuple[Array, ...], visiting: tuple[Array, ...], own: bool, cotangent: Array
    ) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        xp = self.b.xp
        images, scale, _ = local
        (texts,) = visiting
        signed, sign, similarities = self._signed_logits(local, texts, own)
        # d softplus(s L) / dL = s sigmoid(s L), times each image's cotangent
        d_logits = cotangent[:, None] * sign * self.b.sigmoid(signed)
        grad_images = scale * xp.matmul(d_logits, texts)
        grad_texts = scale * xp.matmul(xp.matrix_transpose(d_logits), images)
        return (grad_images, xp.sum(d_logits * similarities), xp.sum(d_logits)), (grad_texts,)


@loss("contrastive", settings={"temperature": positive_number(arrays=True), "normalize": boolean()})
def infonce(
    b: Backend,
    query: Array,
    key: Array,
    *,
    negatives: Array | None = None,
    temperature: float | Array = 0.1,
    normalize: bool = True,
    chunk_size: int | None = None,
    group: ProcessGroup = None,
    axis_name: AxisName = None,
    reduction: str = "mean",
) -> Array:
    r"""InfoNCE: pick each query's positive key out of the negatives (van den Oord et al., 2018).

    With :math:`s(u, v)` the dot product (of unit vectors when ``normalize``)
    and temperature :math:`\tau`:

    .. math:: \ell_i = -\log \frac{\exp(s(q_i, k_i) / \tau)}
              {\exp(s(q_i, k_i) / \tau) + \sum_{n} \exp(s(q_i, n) / \tau)}

    where the negatives :math:`n` are the other keys of the batch
    (``negatives=None``: logits :math:`q k^\top / \tau`, positives on the
    diagonal), the rows of ``negatives`` ``(M, D)`` shared by every query, or
    ``negatives[i]`` ``(M, D)`` of query :math:`i` for ``(N, M, D)``.

    Args:
        query: ``(N, D)``.
        key: ``(N, D)``, ``key[i]`` the positive of ``query[i]``.
        negatives: ``None``, ``(M, D)`` or ``(N, M, D)``.
        temperature: :math:`\tau > 0` (default 0.1).
        normalize: use cosine similarities (default True).
        chunk_size: ``None`` (default) forms the logits at once; an int computes them
            ``chunk_size`` rows at a time, forward and backward (recomputed, never stored):
            memory ``chunk_size x N`` logits instead of ``N x N`` (``negatives=None`` only).
        group: a ``torch.distributed`` process group (``polyloss.torch``): the devices the
            batch is spread over, every device's keys the negatives of every query
            (``negatives=None`` only); ``None`` (default) for one device.
        axis_name: a mesh axis name bound by ``shard_map`` or ``pmap`` (``polyloss.jax``),
            the same for JAX; ``None`` (default) for one device.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per query; this device's queries
            when distributed).

    Returns:
        The loss; per query with ``reduction="none"``.

    The definition of the ``info-nce-pytorch`` package (``info_nce(query,
    positive_key, negative_keys, negative_mode="unpaired"/"paired")``).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> query = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> key = np.array([[0.8, 0.6], [0.6, 0.8]])
        >>> round(float(pl.infonce(query, key, temperature=0.1)), 6)  # log(1 + exp(-2))
        0.126928
    """
    xp = b.xp
    _check_views(xp, "query", query, "key", key)
    n, dim = query.shape
    devices = devices_of(b, group, axis_name)
    devices.check_same_rows("query", query)
    if negatives is None:
        query, key = _normalized(xp, normalize, query, key)
        index = _global_rows(b, devices, query)
        per_query = _cross_entropy_rows(b, query, devices.all_gather(key), index, chunk_size, 1.0 / temperature)
        return reduce_across(xp, devices, per_query, reduction, n)

    if chunk_size is not None:
        raise ValueError(f"chunk_size must be None with explicit negatives, got {chunk_size!r}")
    if devices.size > 1:
        raise ValueError("negatives must be None with group or axis_name: every device's keys are the negatives")
    check_floating(xp, "negatives", negatives)
    shared = negatives.ndim == 2 and negatives.shape[1] == dim
    per_query = negatives.ndim == 3 and negatives.shape[0] == n and negatives.shape[2] == dim
    if not (shared or per_query):
        raise ValueError(f"negatives must have shape (M, {dim}) or ({n}, M, {dim}), got {tuple(negatives.shape)}")
    query, key, negatives = _normalized(xp, normalize, query, key, negatives)
    positive = xp.sum(query * key, axis=1, keepdims=True)
    if negatives.ndim == 2:
        negative = _similarities(xp, query, negatives)
    else:
        negative = xp.squeeze(xp.matmul(query[:, None, :], xp.matrix_transpose(negatives)), axis=1)
    logits = xp.concat([positive, negative], axis=1) / temperature
    index = xp.zeros(n, dtype=xp.int64, device=b.device(query))
    return softmax_cross_entropy(b, logits, index, 1, reduction)


@loss("contrastive", settings={"temperature": positive_number(arrays=True)})
def nt_xent(
    b: Backend,
    z1: Array,
    z2: Array,
    labels: Array | None = None,
    *,
    temperature: float | Array = 0.5,
    group: ProcessGroup = None,
    axis_name: AxisName = None,
    reduction: str = "mean",
) -> Array:
    r"""NT-Xent, SimCLR's normalized temperature-scaled cross-entropy over 2N views.

    With :math:`z = [\hat z_1; \hat z_2]` (``(2N, D)``, rows normalised) and
    :math:`j(i)` the other view of sample :math:`i`:

    .. math:: \ell_i = -\log \frac{\exp(z_i \cdot z_{j(i)} / \tau)}
              {\sum_{k \ne i} \exp(z_i \cdot z_k / \tau)}, \qquad i = 1 \dots 2N

    Self-similarity is excluded (a ``-inf`` logit); every other view in the
    batch is a negative. ``"mean"`` averages over the 2N anchors.

    With ``labels``, every view of a sample with the same label is a positive too, and each
    positive pair :math:`(i, p)` is contrasted with the negatives :math:`\mathcal{N}(i)` (the views
    with another label) only:

    .. math:: \ell_{ip} = -\log \frac{\exp(z_i \cdot z_p / \tau)}
              {\exp(z_i \cdot z_p / \tau) + \sum_{k \in \mathcal{N}(i)} \exp(z_i \cdot z_k / \tau)}

    ``"none"`` sums them per anchor and ``"mean"`` averages over the positive pairs
    (pytorch-metric-learning's ``NTXentLoss`` and ``optax.losses.ntxent``); with distinct labels
    this is the loss without them.

    Args:
        z1: ``(N, D)`` embeddings of the first view.
        z2: ``(N, D)`` embeddings of the second view.
        labels: optional ``(N,)`` integer labels of the samples (both views share them).
        temperature: :math:`\tau > 0` (default 0.5).
        group: a ``torch.distributed`` process group (``polyloss.torch``): the devices the
            batch is spread over; ``None`` (default) for one device.
        axis_name: a mesh axis name bound by ``shard_map`` or ``pmap`` (``polyloss.jax``),
            the same for JAX; ``None`` (default) for one device.
        reduction: ``"mean"`` (over the 2N anchors; with ``labels``, over the positive pairs, 0
            when there is none), ``"sum"`` or ``"none"`` (``(2N,)``, the rows of ``z``;
            distributed, ``(2n,)``: this device's rows of ``z1``, then of ``z2``).

    Returns:
        The loss; per anchor with ``reduction="none"``. With ``N = 1`` each
        anchor's only candidate is its positive: the loss is 0; so is a positive pair with no
        negative (every label the same).

    Numerically study-hub's ``InfoNCELoss`` class (eunsu-park/study-hub, lesson 24 "Loss Functions") once its labels
    account for the removed diagonal (``N + i - 1`` for the first N rows; as
    printed it raises ``IndexError``), and ``optax.losses.ntxent`` with labels
    pairing the two views (except for rows shorter than about 1.5e-8, which
    optax's norm floor ``sqrt(finfo.eps)`` treats differently). Chen et al., *A Simple Framework for Contrastive
    Learning of Visual Representations*, 2020.
    """
    xp = b.xp
    _check_views(xp, "z1", z1, "z2", z2)
    if labels is not None:
        group_labels(xp, "labels", labels, z1.shape[0], what="labels")
    devices = devices_of(b, group, axis_name)
    devices.check_same_rows("z1", z1)
    z1, z2 = _normalized(xp, True, z1, z2)
    n, total = z1.shape[0], z1.shape[0] * devices.size
    anchors = xp.concat([z1, z2], axis=0)
    candidates = xp.concat([devices.all_gather(z1), devices.all_gather(z2)], axis=0)
    rows = _global_rows(b, devices, z1)
    own = xp.concat([rows, rows + total])
    self_pair = xp.arange(2 * total, device=b.device(z1))[None, :] == own[:, None]
    logits = xp.where(self_pair, -math.inf, _similarities(xp, anchors, candidates) / temperature)
    if labels is None:
        per_anchor = softmax_cross_entropy(b, logits, xp.concat([rows + total, rows]), 1)
        return reduce_across(xp, devices, per_anchor, reduction, 2 * n)
    if is_empty(logits):  # no sample anywhere (every device holds the same number of rows)
        return reduce(xp, xp.sum(logits, axis=1), reduction)
    global_labels = devices.all_gather(labels)
    same = xp.concat([labels, labels])[:, None] == xp.concat([global_labels, global_labels])[None, :]
    positive = same & ~self_pair
    per_anchor = _labelled_pairs(b, logits, positive, ~same)
    if reduction != "mean":
        return reduce_across(xp, devices, per_anchor, reduction, 2 * n)
    pairs = xp.sum(xp.astype(positive, per_anchor.dtype))
    return safe_divide(xp, devices.sum(xp.sum(per_anchor)), devices.sum(pairs))


def _labelled_pairs(b: Backend, logits: Array, positive: Array, negative: Array) -> Array:
    """Each anchor's sum over its positive pairs of ``log(e^{l_p} + sum_neg e^{l_k}) - l_p``; a pair
    without negatives is 0 (``-inf`` logits and empty rows guarded: zero gradients, never NaN)."""
    xp = b.xp
    top = b.stop_gradient(xp.max(xp.where(negative, logits, -math.inf), axis=1, keepdims=True))
    top = xp.where(top > -math.inf, top, 0.0)
    exps = xp.where(negative, xp.exp(xp.where(negative, logits, top) - top), 0.0)
    negatives = xp.sum(exps, axis=1, keepdims=True)
    some = negatives > 0
    log_negatives = xp.where(some, top + xp.log(xp.where(some, negatives, 1.0)), -math.inf)
    positive_logits = xp.where(positive, logits, 0.0)
    pair_losses = safe_logaddexp(b, positive_logits, log_negatives) - positive_logits
    return xp.sum(xp.where(positive, pair_losses, 0.0), axis=1)


@loss("contrastive", settings={"normalize": boolean(), "logit_scale": positive_number(arrays=True)})
def clip(
    b: Backend,
    image_emb: Array,
    text_emb: Array,
    *,
    logit_scale: float | Array,
    normalize: bool = True,
    chunk_size: int | None = None,
    group: ProcessGroup = None,
    axis_name: AxisName = None,
    reduction: str = "mean",
) -> Array:
    r"""CLIP's symmetric contrastive loss (Radford et al., 2021).

    With logits :math:`L = s\, \hat I \hat T^\top` (:math:`s` = ``logit_scale``):

    .. math:: \ell_i = \tfrac12 \big(\mathrm{CE}(L_{i,:}, i) + \mathrm{CE}(L_{:,i}, i)\big)

    Args:
        image_emb: ``(N, D)`` image embeddings.
        text_emb: ``(N, D)`` text embeddings; pair ``i`` matches.
        logit_scale: :math:`s`, the multiplier itself (already exponentiated,
            as open_clip passes ``logit_scale.exp()``): a float > 0 or a 0-d
            array (learnable; its gradient flows).
        normalize: normalise the embeddings first (default True; open_clip's
            models normalise before the loss).
        chunk_size: ``None`` (default) forms the logits at once; an int computes them
            ``chunk_size`` rows at a time, forward and backward (recomputed, never stored):
            memory ``chunk_size x N`` logits instead of ``N x N``.
        group: a ``torch.distributed`` process group (``polyloss.torch``): the devices the
            batch is spread over; ``None`` (default) for one device.
        axis_name: a mesh axis name bound by ``shard_map`` or ``pmap`` (``polyloss.jax``),
            the same for JAX; ``None`` (default) for one device.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per pair; this device's pairs when
            distributed).

    Returns:
        The loss; per pair with ``reduction="none"``.

    open_clip's single-process ``ClipLoss`` on the embeddings its models
    return (already normalised, so ``normalize=True`` changes nothing there);
    with ``normalize=False``, ``ClipLoss`` on whatever is passed. Distributed, open_clip's
    ``ClipLoss(local_loss=True, gather_with_grad=True)``: each device's images against every
    text, and its texts against every image.
    """
    xp = b.xp
    _check_views(xp, "image_emb", image_emb, "text_emb", text_emb)
    devices = devices_of(b, group, axis_name)
    devices.check_same_rows("image_emb", image_emb)
    image_emb, text_emb = _normalized(xp, normalize, image_emb, text_emb)
    index = _global_rows(b, devices, image_emb)
    if devices.size == 1 and chunk_size is None:  # one product: the texts' logits are its columns
        logits = logit_scale * _similarities(xp, image_emb, text_emb)
        per_image = softmax_cross_entropy(b, logits, index, 1)
        per_text = softmax_cross_entropy(b, logits, index, 0)
    else:
        all_texts, all_images = devices.all_gather(text_emb), devices.all_gather(image_emb)
        per_image = _cross_entropy_rows(b, image_emb, all_texts, index, chunk_size, logit_scale)
        per_text = _cross_entropy_rows(b, text_emb, all_images, index, chunk_size, logit_scale)
    return reduce_across(xp, devices, 0.5 * (per_image + per_text), reduction, image_emb.shape[0])


@loss(
    "contrastive",
    settings={
        "normalize": boolean(),
        "logit_scale": positive_number(arrays=True),
        "logit_bias": finite_number(arrays=True),
        "exchange": one_of("ring", "all_gather"),
    },
)
def siglip(
    b: Backend,
    image_emb: Array,
    text_emb: Array,
    *,
    logit_scale: float | Array,
    logit_bias: float | Array,
    normalize: bool = True,
    group: ProcessGroup = None,
    axis_name: AxisName = None,
    exchange: str = "ring",
    reduction: str = "mean",
) -> Array:
    r"""SigLIP's pairwise sigmoid loss (Zhai et al., 2023).

    With logits :math:`L = s\, \hat I \hat T^\top + b` and :math:`z_{ij} = 1`
    for matching pairs (:math:`i = j`), -1 otherwise:

    .. math:: \ell_i = -\sum_j \log \sigma(z_{ij} L_{ij})

    Every pair is an independent binary problem: no softmax over the batch.

    Args:
        image_emb: ``(N, D)`` image embeddings.
        text_emb: ``(N, D)`` text embeddings; pair ``i`` matches.
        logit_scale: :math:`s`, the multiplier (already exponentiated): a
            float > 0 or a 0-d array (learnable).
        logit_bias: :math:`b`, a float or a 0-d array (learnable; SigLIP starts at -10).
        normalize: normalise the embeddings first (default True).
        group: a ``torch.distributed`` process group (``polyloss.torch``): the devices the
            batch is spread over; ``None`` (default) for one device.
        axis_name: a mesh axis name bound by ``shard_map`` or ``pmap`` (``polyloss.jax``),
            the same for JAX; ``None`` (default) for one device.
        exchange: how the devices see each other's texts: ``"ring"`` (default: each device
            passes its text shard to the next, ``size - 1`` times; the forward pass holds
            two shards) or ``"all_gather"`` (every text at once, one collective).
        reduction: ``"mean"`` (the sum over all pairs divided by N, as SigLIP),
            ``"sum"`` or ``"none"`` (per image: its row's sum; this device's images when
            distributed).

    Returns:
        The loss; per image with ``reduction="none"``.

    open_clip's single-process ``SigLipLoss`` on the normalised embeddings its
    models return; with ``normalize=False``, ``SigLipLoss`` on whatever is passed. Distributed,
    open_clip's ``SigLipLoss`` with its neighbour exchange (``exchange="ring"``, or its
    ``dist_impl="gather"`` for ``"all_gather"``).
    """
    xp = b.xp
    _check_views(xp, "image_emb", image_emb, "text_emb", text_emb)
    devices = devices_of(b, group, axis_name)
    devices.check_same_rows("image_emb", image_emb)
    image_emb, text_emb = _normalized(xp, normalize, image_emb, text_emb)

    if exchange == "ring" and devices.size > 1:
        local = tuple(
            v if hasattr(v, "shape") else xp.asarray(v, dtype=image_emb.dtype, device=b.device(image_emb))
            for v in (logit_scale, logit_bias)
        )
        per_image = b.ring_sum(_SigLipBlocks(b), devices, (image_emb, *local), (text_emb,))
        return reduce_across(xp, devices, per_image, reduction, image_emb.shape[0])
    if devices.size > 1:  # all_gather: every text at once; the matching pairs at this device's rows
        texts = devices.all_gather(text_emb)
        columns = xp.arange(texts.shape[0], device=b.device(texts))
        matching = columns[None, :] == _global_rows(b, devices, image_emb)[:, None]
    else:
        texts = text_emb
        matching = xp.eye(image_emb.shape[0], dtype=xp.bool, device=b.device(image_emb))
    logits = logit_scale * _similarities(xp, image_emb, texts) + logit_bias
    # -log sigmoid(z L) = softplus(-z L)
    per_image = xp.sum(b.softplus(xp.where(matching, -logits, logits)), axis=1)
    return reduce_across(xp, devices, per_image, reduction, image_emb.shape[0])


@loss(
    "contrastive",
    settings={
        "temperature": positive_number(arrays=True),
        "base_temperature": positive_number(),
        "normalize": boolean(),
    },
)
def supcon(
    b: Backend,
    features: Array,
    labels: Array | None = None,
    *,
    temperature: float | Array = 0.07,
    base_temperature: float = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Supervised contrastive loss (SupCon; Khosla et al., 2020), over any number of views.

    With the :math:`M = NV` view embeddings :math:`z` (rows normalised), :math:`P(a)` the other views
    sharing anchor :math:`a`'s label and :math:`A(a)` every view but :math:`a` itself:

    .. math:: \ell_a = -\frac{\tau}{\tau_b} \frac{1}{|P(a)|} \sum_{p \in P(a)}
              \log \frac{\exp(z_a \cdot z_p / \tau)}{\sum_{k \in A(a)} \exp(z_a \cdot z_k / \tau)}

    and :math:`\ell_a = 0` for an anchor without a positive. Without ``labels`` each sample is its
    own class: the views of one sample are the positives (SimCLR's NT-Xent for two views).

    Args:
        features: ``(N, V, D)``: :math:`V` views of each of :math:`N` samples.
        labels: optional ``(N,)`` integer class labels.
        temperature: :math:`\tau > 0` (default 0.07).
        base_temperature: :math:`\tau_b > 0`, the scale's reference (default 0.07: the factor is 1).
        normalize: L2-normalise the embeddings first (default True; the reference code expects them
            normalised).
        reduction: ``"mean"`` (over the :math:`NV` anchors), ``"sum"`` or ``"none"`` (per anchor,
            ``(N, V)``).

    Returns:
        The loss.

    Equals ``SupConLoss(temperature, contrast_mode="all", base_temperature)`` of the authors'
    repository (HobbitLong/SupContrast, ``losses.py``), whose "mean" averages over every anchor
    including those without a positive (they contribute 0).
    """
    xp = b.xp
    check_floating(xp, "features", features)
    if features.ndim != 3:
        raise ValueError(f"features must be (N, V, D): V views of N samples, got shape {tuple(features.shape)}")
    n, views, _ = features.shape
    if labels is not None:
        group_labels(xp, "labels", labels, n)
    (features,) = _normalized(xp, normalize, features)
    # anchors in view-major order, as the reference's torch.cat(torch.unbind(features, 1), 0)
    anchors = xp.reshape(xp.permute_dims(features, (1, 0, 2)), (views * n, features.shape[2]))
    if views * n <= 1:  # no anchor has a positive (nor, for one view, anything to contrast with)
        return reduce(xp, 0.0 * xp.sum(features, axis=2), reduction)  # zeros of (N, V), with zero gradients
    samples = xp.arange(n, device=b.device(features))
    groups = xp.tile(samples if labels is None else labels, (views,))
    rows = xp.arange(views * n, device=b.device(features))
    other = rows[:, None] != rows[None, :]
    positive = (groups[:, None] == groups[None, :]) & other
    logits = xp.where(other, _similarities(xp, anchors, anchors) / temperature, -math.inf)
    log_probs = b.log_softmax(logits, 1)
    positive_log_probs = xp.sum(xp.where(positive, log_probs, 0.0), axis=1)
    count = xp.sum(xp.astype(positive, features.dtype), axis=1)
    per_anchor = -(temperature / base_temperature) * positive_log_probs / xp.where(count > 0, count, 1.0)
    return reduce(xp, xp.permute_dims(xp.reshape(per_anchor, (views, n)), (1, 0)), reduction)
