"""Classification losses: logits (or probabilities) with class or binary targets.

Conventions shared by ``cross_entropy``, ``nll`` and ``focal``:

* the class axis is ``axis`` (default -1); integer targets have the logits'
  shape without that axis, probability targets the logits' shape;
* ``ignore_index`` samples contribute exactly zero value and zero gradient, even
  when their logits are ``-inf``;
* ``"mean"`` divides by the sum of the weights of the non-ignored samples
  (class ``weight`` or per-class ``alpha`` of each sample's target, else 1),
  as torch does; when that sum is 0 (every sample ignored) the loss is 0;
* class indices outside ``[0, num_classes)`` raise ``ValueError`` when the
  labels are concrete; under ``jax.jit``/``jax.vmap``/``torch.compile``/
  ``torch.func.vmap`` no value check can run and those samples' loss is NaN.

Conventions of the family (each answer is tested: ``tests/test_input_dtypes.py``,
``tests/test_bad_inputs.py``, ``tests/test_weight_broadcasting.py`` and the edge-case corpus):

* **empty batch**: ``"sum"`` and ``"mean"`` 0, ``"none"`` empty; an all-ignored batch gives 0 as
  well (torch's ``cross_entropy`` gives NaN for both);
* **integers**: class indices of any integer dtype (``int8`` to ``int64``, ``uint8``) on every
  backend (torch's kernels take ``int64``: converted); class indices stored as floats raise a
  ``TypeError`` that gives the cast; binary targets (``bce``, ``bce_with_logits``,
  ``sigmoid_focal``, ``hinge``) may be ``bool`` or integer 0/1 (torch refuses integer targets
  there); logits and probabilities must be floating;
* **broadcasting**: logits and targets never broadcast; ``bce``'s and ``bce_with_logits``'
  ``weight`` broadcasts to the input and ``pos_weight`` along the last (class) axis (``()``,
  ``(1,)``, ``(C,)``), as torch's; class weights are ``(C,)``;
* **zero probabilities**: a zero target probability contributes exactly 0 (``0 log 0 = 0``), even
  against a ``-inf`` (masked) logit, and its derivative is the finite ``-log p``; a ``-inf`` logit at
  the target class gives ``inf``; ``bce`` clamps its logs at -100, as torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from polyloss.core._checks import (
    as_binary_target,
    check_axis,
    check_broadcasts,
    check_class_target,
    check_floating,
    check_ignore_index,
    check_nonnegative,
    check_not_float_indices,
    check_positive,
    check_same_shape,
    check_shape,
    check_unit_interval,
    class_labels,
    finite_number,
    guard_traced_labels,
    is_integer,
    is_static_zero,
    nonnegative_number,
    number_in,
    positive_number,
    sample_mask,
)
from polyloss.core._reduce import (
    along_axis,
    clamped_bce,
    masked_rows,
    reduce,
    reduce_kept,
    safe_divide,
    safe_pow,
    softmax_cross_entropy,
    zero_times,
)
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend, RowGrads, SharedGrads, TransposedProduct

# --------------------------------------------------------------------------- helpers

#: the label a masked-out sample takes when no ``ignore_index`` is given: never a class
_MASKED = -1


def _check_class_vector(name: str, vector: Array, num_classes: int) -> None:
    check_shape(name, vector, (num_classes,))


class _Picked(NamedTuple):
    nll: Array  # -log p of each sample's class; NaN for out-of-range traced labels
    index: Array  # the class index actually used (always in range)
    keep: Array | None  # True for samples not ignored; None when nothing is ignored


def _mask_ignored_rows(b: Backend, x: Array, target: Array, axis: int, ignore_index: int | None) -> Array:
    """Zero the logits of ignored samples so ``-inf`` rows give no NaN gradient."""
    if ignore_index is None:
        return x
    xp = b.xp
    return xp.where(xp.expand_dims(target != ignore_index, axis=axis), x, 0.0)


def _nll_of_logits(b: Backend, logits: Array, index: Array, axis: int) -> Array:
    return softmax_cross_entropy(b, logits, index, axis)


def _nll_of_log_probs(b: Backend, log_probs: Array, index: Array, axis: int) -> Array:
    xp = b.xp
    return -xp.squeeze(b.take_along_axis(log_probs, xp.expand_dims(index, axis=axis), axis), axis=axis)


def _pick(b: Backend, x: Array, target: Array, axis: int, ignore_index: int | None, nll_at: Any) -> _Picked:
    """-log p at each sample's class, without wrapping, clamping or silent zeros.

    ``nll_at`` is :func:`_nll_of_logits` (fused per backend) or :func:`_nll_of_log_probs`.
    """
    xp = b.xp
    keep = None
    index = target
    if ignore_index is not None:
        keep = target != ignore_index
        index = xp.where(keep, target, 0)
    index, valid = guard_traced_labels(b, index, x.shape[axis])
    nll = nll_at(b, x, index, axis)
    if valid is not None:
        nll = xp.where(valid, nll, xp.nan)
    return _Picked(nll, index, keep)


def _take_class_vector(xp: Any, vector: Array, index: Array) -> Array:
    return xp.reshape(xp.take(vector, xp.reshape(index, (-1,)), axis=0), index.shape)


def _reduce_classes(xp: Any, per_sample: Array, picked: _Picked, sample_weight: Array | None, reduction: str) -> Array:
    """The shared ignore/weight rule of nll, cross_entropy and focal.

    ``per_sample`` already carries ``sample_weight``; ignored samples become
    exactly 0 and ``"mean"`` divides by the sum of the kept samples' weights.
    """
    keep = picked.keep
    if keep is not None:
        per_sample = xp.where(keep, per_sample, 0.0)
        if sample_weight is None:
            sample_weight = xp.astype(keep, per_sample.dtype)
        else:
            sample_weight = xp.where(keep, sample_weight, 0.0)
    if sample_weight is None or reduction != "mean":
        return reduce(xp, per_sample, reduction)
    return reduce(xp, per_sample, reduction, normalizer=xp.sum(sample_weight))


def fused_cross_entropy(b: Backend, logits: Array, target: Array, axis: int, reduction: str) -> Array:
    """The plain cross-entropy of validated class indices: the backend's fused kernel,
    reduction included (NaN for out-of-range traced labels)."""
    index, valid = guard_traced_labels(b, target, logits.shape[axis])
    return softmax_cross_entropy(b, logits, index, axis, reduction, valid=valid)


def _bce_terms(b: Backend, logits: Array, target: Array, pos_weight: Array | None) -> Array:
    """-(p_w t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), exact at +-inf (a backend may use
    its fused kernel: see :func:`_bce_definition`)."""
    return b.fused("bce_with_logits", _bce_definition, logits, target, pos_weight=pos_weight)


def _bce_definition(b: Backend, logits: Array, target: Array, *, pos_weight: Array | None) -> Array:
    """The definition of :func:`_bce_terms`: a zero coefficient times an infinite softplus is 0,
    never NaN. softplus(-x) is infinite (or NaN) exactly where x is -inf (or NaN), softplus(x) where
    x is +inf: the guards read the logits, not the softplus values."""
    xp = b.xp
    positive = target * pos_weight if pos_weight is not None else target
    negative = 1.0 - target
    return zero_times(xp, positive, b.softplus(-logits), ~(logits > -math.inf)) + zero_times(
        xp, negative, b.softplus(logits), ~(logits < math.inf)
    )


# --------------------------------------------------------------------------- losses


@loss(
    "classification",
    settings={"label_smoothing": number_in(0.0, 1.0, arrays=True), "z_loss": nonnegative_number(arrays=True)},
)
def cross_entropy(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float | Array = 0.0,
    z_loss: float | Array = 0.0,
    mask: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Softmax cross-entropy with class-index or probability targets.

    With class indices :math:`y_i`, :math:`K` classes, smoothing :math:`\varepsilon`
    and class weights :math:`w`:

    .. math::
        \ell_i = -(1-\varepsilon)\, w_{y_i} \log p_{i y_i}
                 - \tfrac{\varepsilon}{K} \textstyle\sum_c w_c \log p_{ic}
                 + z\, w_{y_i} (\operatorname{logsumexp}_c x_{ic})^2,
        \qquad p_i = \operatorname{softmax}(x_i)

    ``"mean"`` is :math:`\sum_i \ell_i / \sum_i w_{y_i}` over non-ignored samples.
    With probability targets :math:`t`: :math:`\ell_i = -\sum_c w_c \tilde t_{ic}
    \log p_{ic}`, :math:`\tilde t = (1-\varepsilon) t + \varepsilon / K`, and
    ``"mean"`` divides by the number of samples.

    Args:
        logits: unnormalised scores, classes on ``axis``.
        target: integer class indices (the logits' shape without ``axis``) or
            class probabilities (the logits' shape, floating).
        axis: the class axis (default -1; pass 1 for torch's ``(N, C, ...)``).
        weight: optional per-class weights, shape ``(K,)``.
        ignore_index: a class index whose samples are ignored (integer targets only).
        label_smoothing: :math:`\varepsilon` in [0, 1], mass spread over all K classes.
        z_loss: coefficient (>= 0) of PaLM's auxiliary ``logsumexp(logits)^2``
            term, weighted like its sample; no anchor library has it.
        mask: optional ``bool`` of the logits' shape without ``axis`` (optax's ``where``): False
            samples count nowhere, as ignored ones do (value 0, gradient 0 whatever their logits
            and targets hold; ``"mean"`` over the kept samples).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample: the logits'
            shape without ``axis``).

    Returns:
        The loss; per sample with ``reduction="none"`` (0 for ignored and masked samples).

    Matches ``torch.nn.functional.cross_entropy(moveaxis(logits, axis, 1), target,
    weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing)``
    (``ignore_index=None`` is torch's ``-100`` never occurring) and
    ``optax.losses.softmax_cross_entropy_with_integer_labels`` /
    ``optax.losses.softmax_cross_entropy`` followed by the mean. Deliberate
    differences: an all-ignored batch gives 0 with zero gradient (torch: NaN);
    ignored rows with ``-inf`` logits give zero gradient (torch: NaN).
    Shift-invariant: adding a constant to every logit changes nothing beyond
    the rounding of the shifted logits themselves (log-softmax, not
    logsumexp minus the target logit, which cancels catastrophically).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
        >>> labels = np.array([0, 1])
        >>> round(float(pl.cross_entropy(logits, labels)), 6)
        0.31854
        >>> round(float(pl.cross_entropy(logits, labels, label_smoothing=0.1)), 6)
        0.436873
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    axis = check_axis("logits", logits, axis)
    check_ignore_index(ignore_index)
    num_classes = logits.shape[axis]
    if weight is not None:
        _check_class_vector("weight", weight, num_classes)
    kept = sample_mask(xp, mask, tuple(s for i, s in enumerate(logits.shape) if i != axis))

    if not is_integer(xp, target):
        return _cross_entropy_soft(
            b, logits, target, axis, weight, ignore_index, label_smoothing, z_loss, reduction, kept
        )

    if kept is not None:  # a masked sample is an ignored one (whatever label it holds)
        check_class_target(logits, target, axis)
        ignore_index = _MASKED if ignore_index is None else ignore_index
        target = xp.where(kept, target, ignore_index)
    class_labels(b, "target", target, logits=logits, axis=axis, ignore_index=ignore_index)
    if weight is None and is_static_zero(label_smoothing) and is_static_zero(z_loss):
        if ignore_index is None:
            return fused_cross_entropy(b, logits, target, axis, reduction)
        # the kernel skips the ignored samples itself (torch's ignore_index)
        kept = target != ignore_index
        index, valid = guard_traced_labels(b, xp.where(kept, target, 0), num_classes)
        return softmax_cross_entropy(b, logits, index, axis, reduction, valid=valid, kept=kept)
    logits = _mask_ignored_rows(b, logits, target, axis, ignore_index)
    if not is_static_zero(label_smoothing):  # the smoothing term needs every log-probability
        log_probs = b.log_softmax(logits, axis)
        picked = _pick(b, log_probs, target, axis, ignore_index, _nll_of_log_probs)
    else:
        picked = _pick(b, logits, target, axis, ignore_index, _nll_of_logits)
    class_weight = None if weight is None else _take_class_vector(xp, weight, picked.index)
    per_sample = picked.nll if class_weight is None else picked.nll * class_weight
    if not is_static_zero(label_smoothing):
        weighted = log_probs if weight is None else log_probs * along_axis(xp, weight, axis, logits.ndim)
        smooth = -xp.sum(weighted, axis=axis)
        per_sample = (1.0 - label_smoothing) * per_sample + (label_smoothing / num_classes) * smooth
    if not is_static_zero(z_loss):
        log_z = b.logsumexp(logits, axis)
        z_term = z_loss * log_z * log_z
        per_sample = per_sample + (z_term if class_weight is None else z_term * class_weight)
    return _reduce_classes(xp, per_sample, picked, class_weight, reduction)


def _probability_targets(
    xp: Any,
    logits: Array,
    target: Array,
    axis: int,
    ignore_index: int | None,
    label_smoothing: float | Array,
    kept: Array | None = None,
) -> Array:
    """Checked probability targets, the rows not ``kept`` zeroed, label-smoothed: ``target (1 - e) + e / C``."""
    check_not_float_indices("target", "logits", logits, target, axis)
    check_floating(xp, "target", target)
    check_same_shape("logits", logits, "target", target)
    if ignore_index is not None:
        raise ValueError(
            f"ignore_index applies to integer class targets only, got ignore_index={ignore_index} "
            "with probability targets (zero the rows instead)"
        )
    target = masked_rows(xp, target, kept, axis)
    if is_static_zero(label_smoothing):
        return target
    return target * (1.0 - label_smoothing) + label_smoothing / logits.shape[axis]


def _cross_entropy_soft(
    b: Backend,
    logits: Array,
    target: Array,
    axis: int,
    weight: Array | None,
    ignore_index: int | None,
    label_smoothing: float | Array,
    z_loss: float | Array,
    reduction: str,
    kept: Array | None = None,
) -> Array:
    xp = b.xp
    coef = _probability_targets(xp, logits, target, axis, ignore_index, label_smoothing, kept)
    logits = masked_rows(xp, logits, kept, axis)
    log_probs = b.log_softmax(logits, axis)
    if weight is not None:
        coef = coef * along_axis(xp, weight, axis, logits.ndim)
    # 0 * log 0 = 0: classes with zero target mass may have -inf logits.
    per_sample = -xp.sum(zero_times(xp, coef, log_probs), axis=axis)
    if not is_static_zero(z_loss):
        log_z = b.logsumexp(logits, axis)
        per_sample = per_sample + z_loss * log_z * log_z
    return reduce_kept(xp, per_sample, kept, reduction)


# --------------------------------------------------------------------------- linear cross-entropy

#: the elements of one chunk's logits (rows x vocabulary) when ``chunk_size`` is not given:
#: 16 MiB in float32, so a chunk's working set (logits, probabilities, their gradient) stays
#: under 64 MiB whatever the vocabulary
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class _LinearCrossEntropyChunks:
    """One chunk of :func:`linear_cross_entropy`'s tokens: rows ``(hidden, index)``, shared arrays
    ``(weight, bias, class_weight)``; the backends' ``rows_in_chunks`` loops over chunks."""

    b: Backend
    label_smoothing: float
    z_loss: float
    softcap: float | None

    def logits(self, rows: tuple[Array, ...], shared: tuple[Array | None, ...]) -> Array:
        xp = self.b.xp
        logits = xp.matmul(rows[0], xp.matrix_transpose(shared[0]))
        if shared[1] is not None:
            logits = logits + shared[1]
        return logits if self.softcap is None else self.softcap * xp.tanh(logits / self.softcap)

    def forward(self, rows: tuple[Array, ...], shared: tuple[Array | None, ...]) -> tuple[Array, Array]:
        """Each row's cross-entropy and its log-sum-exp (all the backward pass keeps of the chunk)."""
        return self._loss(self.logits(rows, shared), rows[1], shared[2])

    def backward(
        self, rows: tuple[Array, ...], shared: tuple[Array | None, ...], log_z: Array, cotangent: Array
    ) -> tuple[RowGrads, SharedGrads]:
        return self._gradients(self.logits(rows, shared), log_z, rows, shared, cotangent)

    def forward_and_backward(
        self, rows: tuple[Array, ...], shared: tuple[Array | None, ...], cotangent: Array
    ) -> tuple[Array, RowGrads, SharedGrads]:
        """:meth:`forward` and :meth:`backward` from one product ``hidden @ weight.T``."""
        logits = self.logits(rows, shared)
        values, log_z = self._loss(logits, rows[1], shared[2])
        return (values, *self._gradients(logits, log_z, rows, shared, cotangent))

    def _loss(self, logits: Array, index: Array, class_weight: Array | None) -> tuple[Array, Array]:
        b, xp = self.b, self.b.xp
        log_z = b.logsumexp(logits, 1)
        picked = xp.squeeze(b.take_along_axis(logits, xp.expand_dims(index, axis=1), 1), axis=1)
        target_weight = None if class_weight is None else _take_class_vector(xp, class_weight, index)
        per_row = log_z - picked if target_weight is None else (log_z - picked) * target_weight
        eps = self.label_smoothing
        if eps > 0.0:
            # -sum_c w_c log p_c as sum_c w_c (logsumexp - x_c): no cancellation between two sums
            minus_log_probs = xp.expand_dims(log_z, axis=1) - logits
            if class_weight is not None:
                minus_log_probs = minus_log_probs * class_weight
            per_row = (1.0 - eps) * per_row + (eps / logits.shape[1]) * xp.sum(minus_log_probs, axis=1)
        if self.z_loss > 0.0:
            z_term = self.z_loss * log_z * log_z
            per_row = per_row + (z_term if target_weight is None else z_term * target_weight)
        return per_row, log_z

    def _gradients(
        self,
        logits: Array,
        log_z: Array,
        rows: tuple[Array, ...],
        shared: tuple[Array | None, ...],
        cotangent: Array,
    ) -> tuple[RowGrads, SharedGrads]:
        """The gradients of ``sum(cotangent * per_row)``:
        ``d/dx_c = (1-eps) w_y (p_c - [c = y]) + eps/V (sum_k w_k p_c - w_c) + 2 z w_y lse p_c``,
        times ``1 - (x_c / cap)^2`` through the soft cap."""
        b, xp = self.b, self.b.xp
        hidden, index = rows
        weight, bias, class_weight = shared
        num_classes = logits.shape[1]
        probs = xp.exp(logits - xp.expand_dims(log_z, axis=1))
        target_coef = cotangent if class_weight is None else cotangent * _take_class_vector(xp, class_weight, index)
        eps = self.label_smoothing
        prob_coef = (1.0 - eps) * target_coef
        if self.z_loss > 0.0:
            prob_coef = prob_coef + (2.0 * self.z_loss) * target_coef * log_z
        grad = xp.expand_dims(prob_coef, axis=1) * probs
        classes = xp.arange(num_classes, dtype=index.dtype, device=b.device(index))
        is_target = xp.expand_dims(index, axis=1) == classes
        grad = grad - xp.where(is_target, xp.expand_dims((1.0 - eps) * target_coef, axis=1), 0.0)
        if eps > 0.0:
            smooth = eps / num_classes * xp.expand_dims(cotangent, axis=1)
            if class_weight is None:
                grad = grad + smooth * (num_classes * probs - 1.0)
            else:
                grad = grad + smooth * (xp.sum(class_weight) * probs - class_weight)
        if self.softcap is not None:
            ratio = logits / self.softcap
            grad = grad * (1.0 - ratio * ratio)
        grad_hidden = xp.matmul(grad, weight)
        grad_weight = TransposedProduct(grad, hidden)  # summed over the chunks in place by the backend
        grad_bias = None if bias is None else xp.sum(grad, axis=0)
        grad_class_weight = None
        if class_weight is not None:
            # d/dw_c: the target terms of the rows of class c, and the smoothing term of every row
            picked = xp.squeeze(b.take_along_axis(logits, xp.expand_dims(index, axis=1), 1), axis=1)
            target_terms = (1.0 - eps) * (log_z - picked)
            if self.z_loss > 0.0:
                target_terms = target_terms + self.z_loss * log_z * log_z
            per_class = xp.where(is_target, xp.expand_dims(cotangent * target_terms, axis=1), 0.0)
            grad_class_weight = xp.sum(per_class, axis=0)
            if eps > 0.0:
                grad_class_weight = grad_class_weight + xp.sum(
                    smooth * (xp.expand_dims(log_z, axis=1) - logits), axis=0
                )
        return (grad_hidden, None), (grad_weight, grad_bias, grad_class_weight)


def _check_chunk_size(chunk_size: Any) -> None:
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int or None, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size!r}")


def chunked_cross_entropy(b: Backend, hidden: Array, weight: Array, index: Array, chunk_size: int | None) -> Array:
    """Each row's cross-entropy of the logits ``hidden @ weight.T`` at the class indices ``index``
    (already in range), ``chunk_size`` rows at a time (``None``: about 2**22 logits per chunk), through
    :func:`linear_cross_entropy`'s primitive ``b.rows_in_chunks``: one chunk's logits in memory, never
    all of them, in the forward and the backward pass."""
    _check_chunk_size(chunk_size)
    n, num_classes = hidden.shape[0], weight.shape[0]
    size = max(1, min(n, _CHUNK_ELEMENTS // max(num_classes, 1))) if chunk_size is None else chunk_size
    chunks = _LinearCrossEntropyChunks(b, 0.0, 0.0, None)
    return b.rows_in_chunks(chunks, (hidden, index), (weight, None, None), size)


@loss("classification", settings={"label_smoothing": number_in(0.0, 1.0), "z_loss": nonnegative_number()})
def linear_cross_entropy(
    b: Backend,
    hidden: Array,
    weight: Array,
    target: Array,
    *,
    bias: Array | None = None,
    class_weight: Array | None = None,
    sample_weight: Array | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    chunk_size: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Cross-entropy of a linear layer's logits, never holding all of them: the language-model head's loss.

    With logits :math:`x = h W^\top + b` (soft-capped to :math:`c \tanh(x / c)` when
    ``softcap`` is :math:`c`), the value is :func:`cross_entropy` of those logits with
    the same options, each token's loss times its ``sample_weight`` :math:`s_i`:

    .. math::
        \ell_i = s_i \big( -(1-\varepsilon)\, w_{y_i} \log p_{i y_i}
                 - \tfrac{\varepsilon}{V} \textstyle\sum_c w_c \log p_{ic}
                 + z\, w_{y_i} (\operatorname{logsumexp}_c x_{ic})^2 \big)

    and ``"mean"`` is :math:`\sum_i \ell_i / \sum_i s_i w_{y_i}` over the tokens not ignored
    (0 when that sum is 0). The tokens are processed ``chunk_size`` at a time: no
    ``(N, V)`` array of logits or of their gradient exists, only one chunk's, and the
    backward pass keeps one log-sum-exp per token. With ``"mean"`` or ``"sum"`` the
    gradients are computed during the forward pass (one matrix product fewer than
    recomputing them, as Liger-Kernel's fused linear cross-entropy); with ``"none"`` the
    backward pass recomputes each chunk's logits (as Cut Cross-Entropy does).

    Args:
        hidden: the last hidden states ``(..., H)``, floating.
        weight: the output layer's weight ``(V, H)``: ``lm_head.weight`` of an
            ``nn.Linear(H, V)`` or a tied embedding.
        target: integer token ids, ``hidden``'s shape without ``H``.
        bias: optional output bias ``(V,)``.
        class_weight: optional per-class weights ``(V,)``, as :func:`cross_entropy`'s ``weight``.
        sample_weight: optional per-token weights, ``target``'s shape.
        ignore_index: a token id whose tokens are ignored (value and gradient 0).
        label_smoothing: :math:`\varepsilon` in [0, 1], spread over all V classes.
        z_loss: coefficient (>= 0) of PaLM's ``logsumexp(logits)^2`` term.
        softcap: :math:`c > 0`, Gemma 2's logit soft-capping, or ``None``.
        chunk_size: tokens per chunk (>= 1); ``None`` picks about 2**22 / V.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per token: ``target``'s shape).

    Returns:
        The loss, with gradients with respect to every floating input.

    Equals ``cross_entropy(hidden @ weight.T + bias, target, ...)`` and, for the options
    it has, ``torch.nn.functional.linear_cross_entropy`` (torch >= 2.13). In a torch
    model, ``F.cross_entropy(lm_head(h), y)`` becomes
    ``polyloss.torch.linear_cross_entropy(h, lm_head.weight, y, bias=lm_head.bias)``.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> hidden = np.eye(2)  # so that the logits are weight.T: those of cross_entropy's example
        >>> weight = np.array([[2.0, 0.5], [1.0, 2.5], [0.1, 0.3]])
        >>> labels = np.array([0, 1])
        >>> round(float(pl.linear_cross_entropy(hidden, weight, labels)), 6)
        0.31854
        >>> round(float(pl.linear_cross_entropy(hidden, weight, labels, chunk_size=1)), 6)
        0.31854
    """
    xp = b.xp
    check_floating(xp, "hidden", hidden)
    check_floating(xp, "weight", weight)
    if hidden.ndim < 1:
        raise ValueError(f"hidden must have a last axis of features (..., H), got shape {tuple(hidden.shape)}")
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must have shape (V, H) with H = {hidden.shape[-1]} (hidden's last axis), "
            f"got shape {tuple(weight.shape)}"
        )
    num_classes = weight.shape[0]
    if bias is not None:
        check_floating(xp, "bias", bias)
        check_shape("bias", bias, (num_classes,))
    if class_weight is not None:
        _check_class_vector("class_weight", class_weight, num_classes)
    check_ignore_index(ignore_index)
    class_labels(
        b, "target", target, num_classes=num_classes, shape=tuple(hidden.shape[:-1]), ignore_index=ignore_index
    )
    if sample_weight is not None:
        check_floating(xp, "sample_weight", sample_weight)
        check_shape("sample_weight", sample_weight, tuple(target.shape))
    chunks = _LinearCrossEntropyChunks(
        b,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
        softcap=None if softcap is None else check_positive("softcap", softcap),
    )
    _check_chunk_size(chunk_size)

    n = math.prod(target.shape)
    labels = xp.reshape(target, (n,))
    keep = None if ignore_index is None else labels != ignore_index
    index = labels if keep is None else xp.where(keep, labels, 0)
    index, valid = guard_traced_labels(b, index, num_classes)
    size = max(1, min(n, _CHUNK_ELEMENTS // num_classes)) if chunk_size is None else chunk_size
    rows = (xp.reshape(hidden, (n, hidden.shape[-1])), index)
    shared = (weight, bias, class_weight)

    # each token's factor: kept (0/1) times its sample weight; None when every factor is 1
    factor = None if keep is None else xp.astype(keep, hidden.dtype)
    if sample_weight is not None:
        weights = xp.reshape(sample_weight, (n,))
        factor = weights if factor is None else factor * weights
    if valid is not None:  # out-of-range traced labels: NaN, never a wrapped class
        ones = xp.ones((n,), dtype=hidden.dtype, device=b.device(hidden))
        factor = xp.where(valid, ones if factor is None else factor, xp.nan)

    if reduction == "none":
        per_token = b.rows_in_chunks(chunks, rows, shared, size)
        if factor is not None:
            per_token = per_token * factor
        return xp.reshape(per_token, tuple(target.shape))
    row_weights = xp.ones((n,), dtype=hidden.dtype, device=b.device(hidden)) if factor is None else factor
    if reduction == "mean":
        counted = row_weights if class_weight is None else row_weights * _take_class_vector(xp, class_weight, index)
        row_weights = safe_divide(xp, row_weights, xp.sum(counted))
    return b.rows_in_chunks(chunks, rows, shared, size, row_weights=row_weights)


@loss("classification")
def nll(
    b: Backend,
    log_probs: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Negative log-likelihood of class indices given log-probabilities.

    .. math:: \ell_i = -w_{y_i} \log p_{i y_i}, \qquad
              \text{mean} = \textstyle\sum_i \ell_i / \sum_i w_{y_i}

    Args:
        log_probs: log-probabilities, classes on ``axis``.
        target: integer class indices, ``log_probs``' shape without ``axis``.
        axis: the class axis (default -1).
        weight: optional per-class weights, shape ``(K,)``.
        ignore_index: a class index whose samples are ignored.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; per sample with ``reduction="none"``.

    Matches ``torch.nn.functional.nll_loss(moveaxis(log_probs, axis, 1), target,
    weight=weight, ignore_index=ignore_index)``, except that an all-ignored
    batch gives 0 (torch: NaN).
    """
    xp = b.xp
    check_floating(xp, "log_probs", log_probs)
    axis = check_axis("log_probs", log_probs, axis)
    check_ignore_index(ignore_index)
    if weight is not None:
        _check_class_vector("weight", weight, log_probs.shape[axis])
    class_labels(b, "target", target, logits=log_probs, axis=axis, ignore_index=ignore_index)
    picked = _pick(b, log_probs, target, axis, ignore_index, _nll_of_log_probs)
    class_weight = None if weight is None else _take_class_vector(xp, weight, picked.index)
    per_sample = picked.nll if class_weight is None else picked.nll * class_weight
    return _reduce_classes(xp, per_sample, picked, class_weight, reduction)


def _focal_terms(
    b: Backend, logits: Array, coef: Array, axis: int, gamma: float | Array, alpha: float | Array | None
) -> Array:
    """-sum_c alpha_c coef_c (1 - p_c)^gamma log p_c over the class ``axis``; a zero coefficient times a
    -inf log-probability is 0."""
    xp = b.xp
    log_probs = b.log_softmax(logits, axis)
    if alpha is not None and not isinstance(alpha, (int, float)):
        coef = coef * along_axis(xp, alpha, axis, logits.ndim)
    # the guard first: a zero coefficient with a -inf log-probability is 0, with zero gradients
    terms = safe_pow(xp, -xp.expm1(log_probs), gamma) * zero_times(xp, coef, log_probs)
    per_sample = -xp.sum(terms, axis=axis)
    return alpha * per_sample if isinstance(alpha, (int, float)) else per_sample


def _focal_soft(
    b: Backend,
    logits: Array,
    target: Array,
    axis: int,
    gamma: float | Array,
    alpha: float | Array | None,
    ignore_index: int | None,
    label_smoothing: float | Array,
    reduction: str,
) -> Array:
    """:func:`focal` with probability targets (keras's ``CategoricalFocalCrossentropy``)."""
    coef = _probability_targets(b.xp, logits, target, axis, ignore_index, label_smoothing)
    return reduce(b.xp, _focal_terms(b, logits, coef, axis, gamma, alpha), reduction)


@loss(
    "classification",
    settings={"gamma": nonnegative_number(arrays=True), "label_smoothing": number_in(0.0, 1.0, arrays=True)},
)
def focal(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    gamma: float | Array = 2.0,
    alpha: float | Array | None = None,
    axis: int = -1,
    ignore_index: int | None = None,
    label_smoothing: float | Array = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Multi-class softmax focal loss.

    .. math:: \ell_i = -\alpha_{y_i} (1 - p_{i y_i})^\gamma \log p_{i y_i}

    and with probability targets :math:`t` (or smoothing :math:`\varepsilon`, which makes
    :math:`\tilde t = (1 - \varepsilon)\, \mathrm{onehot}(y) + \varepsilon / K` of class indices) the
    sum over classes, as keras's ``CategoricalFocalCrossentropy``:

    .. math:: \ell_i = -\sum_c \alpha_c\, \tilde t_{ic} (1 - p_{ic})^\gamma \log p_{ic}

    :math:`1 - p` is computed as ``-expm1(log p)`` (no cancellation) and its
    power with a guarded ``pow``, so the gradient stays finite as
    :math:`p \to 1` for every :math:`\gamma \ge 0`.

    Args:
        logits: unnormalised scores, classes on ``axis``.
        target: integer class indices (the logits' shape without ``axis``) or class
            probabilities (the logits' shape, floating).
        gamma: focusing parameter, >= 0 (default 2; 0 gives cross-entropy).
        alpha: ``None`` (no weighting), a float scaling every sample, or
            per-class weights of shape ``(K,)``. A float scales the loss and
            ``"mean"`` divides by the number of kept samples; per-class
            weights act like ``cross_entropy``'s ``weight`` (``"mean"`` divides
            by their sum over the kept samples).
        axis: the class axis (default -1).
        ignore_index: a class index whose samples are ignored (integer targets only).
        label_smoothing: :math:`\varepsilon` in [0, 1], mass spread over all K classes.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample). With probability
            targets ``"mean"`` divides by the number of samples.

    Returns:
        The loss; per sample with ``reduction="none"``.

    With probability targets or smoothing it equals keras's
    ``CategoricalFocalCrossentropy(alpha, gamma, from_logits=True, label_smoothing)`` for a float
    ``alpha`` (keras's default alpha is 0.25, polyloss's None, that is 1; keras clips the
    probabilities at 1e-7). With ``alpha=1.0`` it is the ``FocalLoss`` of the guide "SFT: Comprehensive
    Loss Functions for Better Model Training" (``sft_loss_function.md``); with
    ``alpha=0.25`` study-hub's ``FocalLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions")
    (both: ``alpha * (1 - exp(-CE))**gamma * CE``). Lin et al., *Focal Loss for
    Dense Object Detection*, 2017.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
        >>> labels = np.array([0, 1])
        >>> round(float(pl.focal(logits, labels, gamma=2.0)), 6)
        0.028539
        >>> round(float(pl.focal(logits, labels, gamma=0.0)), 6)  # gamma 0: cross-entropy
        0.31854
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    axis = check_axis("logits", logits, axis)
    check_ignore_index(ignore_index)
    num_classes = logits.shape[axis]
    if alpha is not None and not isinstance(alpha, (int, float)):
        _check_class_vector("alpha", alpha, num_classes)
    elif alpha is not None:
        alpha = check_nonnegative("alpha", alpha)
    if not is_integer(xp, target):
        return _focal_soft(b, logits, target, axis, gamma, alpha, ignore_index, label_smoothing, reduction)
    class_labels(b, "target", target, logits=logits, axis=axis, ignore_index=ignore_index)

    logits = _mask_ignored_rows(b, logits, target, axis, ignore_index)
    picked = _pick(b, logits, target, axis, ignore_index, _nll_of_logits)
    if not is_static_zero(label_smoothing):
        classes = along_axis(xp, xp.arange(num_classes, device=b.device(logits)), axis, logits.ndim)
        one_hot = xp.astype(xp.expand_dims(picked.index, axis=axis) == classes, logits.dtype)
        coef = one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes
        per_sample = _focal_terms(b, logits, coef, axis, gamma, alpha)
        per_class = alpha is not None and not isinstance(alpha, float)
        class_weight = _take_class_vector(xp, alpha, picked.index) if per_class else None
        return _reduce_classes(xp, per_sample, picked, class_weight, reduction)
    # 1 - p = -expm1(log p): no cancellation as p -> 1
    per_sample = safe_pow(xp, -xp.expm1(-picked.nll), gamma) * picked.nll
    class_weight = None
    if isinstance(alpha, float):
        per_sample = alpha * per_sample
    elif alpha is not None:
        class_weight = _take_class_vector(xp, alpha, picked.index)
        per_sample = per_sample * class_weight
    return _reduce_classes(xp, per_sample, picked, class_weight, reduction)


@loss("classification")
def bce(b: Backend, probs: Array, target: Array, *, weight: Array | None = None, reduction: str = "mean") -> Array:
    r"""Binary cross-entropy on probabilities.

    .. math:: \ell_i = -w_i\big(t_i \max(\log p_i, -100) + (1 - t_i) \max(\log(1 - p_i), -100)\big)

    The logs are clamped at -100 as in torch, so ``p`` of exactly 0 or 1 gives
    a finite loss. Prefer :func:`bce_with_logits` for training.

    Args:
        probs: probabilities in [0, 1]; values outside raise ``ValueError``
            in eager mode (under jit they give NaN).
        target: targets in [0, 1], same shape as ``probs``.
        weight: optional elementwise weights, broadcasting to ``probs`` (as torch's).
        reduction: ``"mean"`` (of ``w * l``, divided by the number of
            elements, as torch), ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.binary_cross_entropy(probs, target, weight=weight)``
    in value; its gradient equals torch's except where a log is clamped.
    """
    xp = b.xp
    check_floating(xp, "probs", probs)
    check_same_shape("probs", probs, "target", target)
    target = as_binary_target(xp, target, probs)
    if weight is not None:
        check_broadcasts("weight", weight, "probs", probs)
    check_unit_interval(b, "probs", probs)
    elementwise = clamped_bce(xp, probs, target)
    if weight is not None:
        elementwise = elementwise * weight
    return reduce(xp, elementwise, reduction)


@loss("classification", settings={"label_smoothing": number_in(0.0, 1.0, arrays=True)})
def bce_with_logits(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float | Array = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Binary cross-entropy on logits.

    .. math::
        \ell_i = w_i\big(p_w \tilde t_i \operatorname{softplus}(-x_i)
                 + (1 - \tilde t_i) \operatorname{softplus}(x_i)\big),
        \qquad \tilde t = t (1 - \varepsilon) + \varepsilon / 2

    Exact for logits of +-1000; at +-inf the loss is 0 with zero gradient on
    the correct side and +inf (never NaN) on the wrong side.

    Args:
        logits: unnormalised scores, any shape.
        target: targets in [0, 1], same shape as ``logits``.
        weight: optional elementwise weights, broadcasting to ``logits`` (as torch's).
        pos_weight: optional weight of positive examples, broadcasting to ``logits``:
            ``()``, ``(1,)`` or ``(C,)`` along the class (last) axis, as torch's.
        label_smoothing: :math:`\varepsilon` in [0, 1]: targets move towards 1/2
            (torch has no such argument).
        reduction: ``"mean"`` (of ``w * l`` over all elements, as torch),
            ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torch.nn.functional.binary_cross_entropy_with_logits(logits, target,
    weight=weight, pos_weight=pos_weight)`` and ``optax.losses.sigmoid_binary_cross_entropy``
    followed by the mean.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> logits = np.array([1.0, -2.0, 0.5])
        >>> target = np.array([1.0, 0.0, 1.0])
        >>> round(float(pl.bce_with_logits(logits, target)), 6)
        0.304756
        >>> round(float(pl.bce_with_logits(logits, target, pos_weight=np.full(3, 2.0))), 6)
        0.567202
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    check_same_shape("logits", logits, "target", target)
    target = as_binary_target(xp, target, logits)
    if weight is not None:
        check_broadcasts("weight", weight, "logits", logits)
    if pos_weight is not None:  # (), (1,), (C,) or anything broadcasting along the class axis, as torch
        check_broadcasts("pos_weight", pos_weight, "logits", logits)
    if not is_static_zero(label_smoothing):
        target = target * (1.0 - label_smoothing) + 0.5 * label_smoothing
    elementwise = _bce_terms(b, logits, target, pos_weight)
    if weight is not None:
        elementwise = elementwise * weight
    return reduce(xp, elementwise, reduction)


@loss(
    "classification",
    settings={"gamma": nonnegative_number(arrays=True), "alpha": number_in(0.0, 1.0, arrays=True, optional=True)},
)
def sigmoid_focal(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    gamma: float | Array = 2.0,
    alpha: float | Array | None = 0.25,
    reduction: str = "mean",
) -> Array:
    r"""Binary (sigmoid) focal loss, elementwise.

    .. math::
        \ell_i = \alpha_t (1 - p_t)^\gamma\, \mathrm{BCE}(x_i, t_i), \quad
        1 - p_t = t\,\sigma(-x) + (1 - t)\,\sigma(x), \quad
        \alpha_t = \alpha t + (1 - \alpha)(1 - t)

    :math:`1 - p_t` is formed from sigmoids of both signs (no ``1 - p``
    cancellation) and raised with a guarded ``pow``: gradients stay finite at
    saturated logits for every :math:`\gamma \ge 0`, including 0.5 where
    torchvision's formula gives NaN.

    Args:
        logits: unnormalised scores, any shape.
        target: binary (or soft) targets in [0, 1], same shape.
        gamma: focusing parameter, >= 0 (default 2).
        alpha: balance of positives in [0, 1] (default 0.25), or ``None`` to disable
            (torchvision's ``alpha < 0``).
        reduction: ``"mean"`` (default here; torchvision defaults to ``"none"``),
            ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    Matches ``torchvision.ops.sigmoid_focal_loss(logits, target, alpha, gamma, reduction)``
    (``alpha=-1`` for ``None``) and ``optax.losses.sigmoid_focal_loss`` followed by the mean.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    check_same_shape("logits", logits, "target", target)
    target = as_binary_target(xp, target, logits)
    elementwise = _bce_terms(b, logits, target, None)
    one_minus_pt = target * b.sigmoid(-logits) + (1.0 - target) * b.sigmoid(logits)
    elementwise = elementwise * safe_pow(xp, one_minus_pt, gamma)
    if alpha is not None:
        elementwise = (alpha * target + (1.0 - alpha) * (1.0 - target)) * elementwise
    return reduce(xp, elementwise, reduction)


@loss("classification", settings={"epsilon": finite_number(minimum=-1.0, arrays=True)})
def poly1(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    epsilon: float | Array = 1.0,
    axis: int = -1,
    mask: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Poly-1 loss: cross-entropy plus a first-order polynomial term.

    .. math:: \ell_i = \mathrm{CE}_i + \epsilon \textstyle\sum_c t_{ic} (1 - p_{ic})

    (for class indices: :math:`\mathrm{CE}_i + \epsilon (1 - p_{i y_i})`).

    Args:
        logits: unnormalised scores, classes on ``axis``.
        target: integer class indices (logits' shape without ``axis``) or
            one-hot / probability targets (logits' shape).
        epsilon: coefficient of the polynomial term, finite and >= -1 (default 1.0,
            the paper's Poly-1; optax defaults to 2.0).
        axis: the class axis (default -1).
        mask: optional ``bool`` of the logits' shape without ``axis`` (optax's ``where``): False
            samples count nowhere (value 0, gradient 0; ``"mean"`` over the kept samples).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; per sample with ``reduction="none"``.

    Matches ``optax.losses.poly_loss_cross_entropy(logits, one_hot(target), epsilon=epsilon,
    where=mask)`` followed by the mean (over the kept samples). Leng et al., *PolyLoss*, 2022.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    axis = check_axis("logits", logits, axis)
    kept = sample_mask(xp, mask, tuple(s for i, s in enumerate(logits.shape) if i != axis))
    logits = masked_rows(xp, logits, kept, axis)
    if is_integer(xp, target):
        if kept is not None:  # a masked sample's label may be anything (padding): class 0 stands in
            check_class_target(logits, target, axis)
            target = xp.where(kept, target, 0)
        class_labels(b, "target", target, logits=logits, axis=axis)
        nll = _pick(b, logits, target, axis, None, _nll_of_logits).nll
        per_sample = nll - epsilon * xp.expm1(-nll)
    else:
        check_not_float_indices("target", "logits", logits, target, axis)
        check_floating(xp, "target", target)
        check_same_shape("logits", logits, "target", target)
        target = masked_rows(xp, target, kept, axis)
        log_probs = b.log_softmax(logits, axis)
        cross_entropy_ = -xp.sum(zero_times(xp, target, log_probs), axis=axis)
        per_sample = cross_entropy_ - epsilon * xp.sum(target * xp.expm1(log_probs), axis=axis)
    return reduce_kept(xp, per_sample, kept, reduction)


def _hinge_margin(b: Backend, scores: Array, target: Array) -> Array:
    xp = b.xp
    check_floating(xp, "scores", scores)
    check_same_shape("scores", scores, "target", target)
    target = xp.astype(target, scores.dtype)
    if b.is_opaque(target):  # keras: {0, 1} labels become {-1, 1}
        binary = xp.all((target == 0) | (target == 1))
        return b.relu(1.0 - xp.where(binary, 2.0 * target - 1.0, target) * scores)
    # eager: one answer read on the host (never the labels themselves, unless they are wrong)
    if b.all_in(target, (0, 1)):
        target = 2.0 * target - 1.0
    elif not b.all_in(target, (-1, 1)):
        labels = sorted(set(b.host_values(target)))
        raise ValueError(f"target must hold labels in {{-1, 1}} or in {{0, 1}}, got {labels[:5]}")
    return b.relu(1.0 - target * scores)


@loss("classification")
def hinge(b: Backend, scores: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""Hinge loss, elementwise.

    .. math:: \ell_i = \max(0, 1 - t_i s_i), \qquad t_i \in \{-1, 1\}

    Targets in {0, 1} (all of them) are mapped to {-1, 1}, as keras does.

    Args:
        scores: real-valued scores, any shape.
        target: labels in {-1, 1} or {0, 1}, same shape (other values raise in eager mode).
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    ``"mean"`` equals ``keras.losses.Hinge()(target, scores)`` (mean over the
    last axis, then over the rest). The gradient at the kink is 0.
    """
    return reduce(b.xp, _hinge_margin(b, scores, target), reduction)


@loss("classification")
def squared_hinge(b: Backend, scores: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""Squared hinge loss, elementwise.

    .. math:: \ell_i = \max(0, 1 - t_i s_i)^2, \qquad t_i \in \{-1, 1\}

    Args:
        scores: real-valued scores, any shape.
        target: labels in {-1, 1} or {0, 1} (mapped to {-1, 1}), same shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; per element with ``reduction="none"``.

    ``"mean"`` equals ``keras.losses.SquaredHinge()(target, scores)``.
    """
    margin = _hinge_margin(b, scores, target)
    return reduce(b.xp, margin * margin, reduction)


# --------------------------------------------------------------------------- second wave: torch's margin
# losses, keras's categorical hinge and generalized cross-entropy, timm's asymmetric loss


@loss("classification")
def soft_margin(b: Backend, scores: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""Soft-margin (logistic) loss of a two-class problem with labels :math:`\pm 1`.

    .. math:: \ell_i = \log(1 + e^{-t_i s_i}) = \operatorname{softplus}(-t_i s_i)

    Args:
        scores: real-valued scores, any shape.
        target: labels :math:`t_i`, 1 or -1, same shape (any real value is accepted, as torch's).
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"`` (per element).

    Returns:
        The loss; exact for margins of +-1e4 (no ``exp`` overflow).

    Equals ``torch.nn.functional.soft_margin_loss(scores, target)``.
    """
    xp = b.xp
    check_floating(xp, "scores", scores)
    check_same_shape("scores", scores, "target", target)
    target = xp.astype(target, scores.dtype) if target.dtype != scores.dtype else target
    return reduce(xp, b.softplus(-target * scores), reduction)


@loss("classification")
def multilabel_soft_margin(
    b: Backend, logits: Array, target: Array, *, weight: Array | None = None, reduction: str = "mean"
) -> Array:
    r"""Multi-label one-versus-all logistic loss, averaged over the classes of each sample.

    .. math:: \ell_i = \frac{1}{C} \sum_c w_c \bigl(-t_{ic} \log \sigma(x_{ic})
              - (1 - t_{ic}) \log \sigma(-x_{ic})\bigr)

    Args:
        logits: ``(N, C)`` scores (any leading shape, classes last).
        target: 0/1 labels (or probabilities), same shape (``bool`` and integers read as 0/1).
        weight: optional per-class weights ``(C,)``.
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample: ``logits``'
            shape without the class axis).

    Returns:
        The loss.

    Equals ``torch.nn.functional.multilabel_soft_margin_loss(logits, target, weight=weight)``: the
    class-mean of ``binary_cross_entropy_with_logits``.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    check_same_shape("logits", logits, "target", target)
    if logits.ndim < 1:
        raise ValueError("logits must have a class axis (..., C), got a 0-d array")
    target = as_binary_target(xp, target, logits)
    num_classes = logits.shape[-1]
    terms = _bce_terms(b, logits, target, None)
    if weight is not None:
        _check_class_vector("weight", weight, num_classes)
        terms = terms * weight
    return reduce(xp, xp.sum(terms, axis=-1) / max(num_classes, 1), reduction)


@loss("classification", settings={"margin": finite_number(arrays=True)})
def multi_margin(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    p: int = 1,
    margin: float | Array = 1.0,
    weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Multi-class margin (Weston-Watkins hinge) loss over class indices.

    .. math:: \ell_i = \frac{1}{C} \sum_{j \ne y_i} w_{y_i} \max(0,\ m - x_{i y_i} + x_{ij})^p

    Args:
        logits: ``(N, C)`` class scores.
        target: ``(N,)`` integer class indices.
        p: 1 (hinge, default) or 2 (squared hinge).
        margin: :math:`m` (default 1).
        weight: optional per-class weights ``(C,)``, applied by the target's class.
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss. At a kink the derivative is 0 (as torch's).

    Equals ``torch.nn.functional.multi_margin_loss(logits, target, p=p, margin=margin, weight=weight)``
    (whose weight multiplies the power: its documentation writes it inside).
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    class_labels(b, "target", target, logits=logits, axis=1)
    num_classes = logits.shape[1]
    index, valid = guard_traced_labels(b, target, num_classes)
    target_logit = b.take_along_axis(logits, index[:, None], 1)
    hinge = b.relu(margin - target_logit + logits)
    if p == 2:
        hinge = hinge * hinge
    others = xp.arange(num_classes, device=b.device(logits))[None, :] != index[:, None]
    per_sample = xp.sum(xp.where(others, hinge, 0.0), axis=1) / max(num_classes, 1)
    if weight is not None:
        _check_class_vector("weight", weight, num_classes)
        per_sample = per_sample * _take_class_vector(xp, weight, index)
    if valid is not None:
        per_sample = xp.where(valid, per_sample, xp.nan)
    return reduce(xp, per_sample, reduction)


@loss("classification")
def categorical_hinge(b: Backend, logits: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""Categorical hinge loss (keras): the true class's score against the best other score.

    .. math:: \ell_i = \max\bigl(0,\ 1 + \max_j (1 - t_{ij}) x_{ij} - \textstyle\sum_j t_{ij} x_{ij}\bigr)

    With one-hot :math:`t` this is :math:`\max(0, 1 + \max(0, \max_{j \ne y} x_{ij}) - x_{iy})`: the
    true class's own entry counts as 0 in the max (keras's formula), so it equals Crammer and
    Singer's hinge (optax's ``multiclass_hinge_loss``) wherever some other score is >= 0.

    Args:
        logits: ``(..., C)`` class scores.
        target: integer class indices (the logits' shape without ``C``) or one-hot/probability
            rows of the logits' shape.
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss. At ties and kinks the derivative is the one-sided one JAX and torch pick.

    Equals ``keras.losses.categorical_hinge(one_hot(target), logits)``.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    if logits.ndim < 1:
        raise ValueError("logits must have a class axis (..., C), got a 0-d array")
    num_classes = logits.shape[-1]
    if is_integer(xp, target):
        class_labels(b, "target", target, logits=logits, axis=logits.ndim - 1)
        index, valid = guard_traced_labels(b, target, num_classes)
        target = b.one_hot(index, num_classes, logits.dtype)
        if valid is not None:
            target = xp.where(valid[..., None], target, xp.nan)
    else:
        check_not_float_indices("target", "logits", logits, target, logits.ndim - 1)
        check_floating(xp, "target", target)
        check_same_shape("logits", logits, "target", target)
    positive = xp.sum(target * logits, axis=-1)
    negative = xp.max((1.0 - target) * logits, axis=-1)
    return reduce(xp, b.relu(negative - positive + 1.0), reduction)


@loss("classification", settings={"q": number_in(0.0, 1.0)})
def generalized_cross_entropy(
    b: Backend, logits: Array, target: Array, *, q: float = 0.7, axis: int = -1, reduction: str = "mean"
) -> Array:
    r"""Generalized cross-entropy (Zhang and Sabuncu, 2018), robust to noisy labels.

    .. math:: \ell_i = \frac{1 - p_{i y_i}^{\,q}}{q}, \qquad p_i = \operatorname{softmax}(x_i)

    Between cross-entropy (:math:`q \to 0`, and exactly at :math:`q = 0`) and the mean absolute
    error of the probabilities (:math:`q = 1`).

    Args:
        logits: unnormalised scores, classes on ``axis``.
        target: integer class indices, the logits' shape without ``axis``.
        q: :math:`q` in [0, 1] (default 0.7, the paper's).
        axis: the class axis (default -1).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss, in :math:`[0, 1/q]`; computed as :math:`-\operatorname{expm1}(q \log p_{iy_i}) / q`
        from the log-softmax, exact for saturated logits.

    keras's ``CategoricalGeneralizedCrossEntropy`` on ``softmax(logits)`` (keras takes
    probabilities; its default ``q`` is 0.5).
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    axis = check_axis("logits", logits, axis)
    class_labels(b, "target", target, logits=logits, axis=axis)
    nll = _pick(b, logits, target, axis, None, _nll_of_logits).nll  # -log p_y
    if q == 0:
        return reduce(xp, nll, reduction)
    return reduce(xp, -xp.expm1(-q * nll) / q, reduction)


def _clamped_log(xp: Any, p: Array, eps: float) -> Array:
    """log(max(p, eps)), derivative 0 below eps (timm's ``log(p.clamp(min=eps))``)."""
    above = p > eps
    return xp.where(above, xp.log(xp.where(above, p, 1.0)), math.log(eps))


@loss(
    "classification",
    settings={
        "gamma_pos": nonnegative_number(arrays=True),
        "gamma_neg": nonnegative_number(arrays=True),
        "clip": number_in(0.0, 1.0),
        "eps": positive_number(),
    },
)
def asymmetric(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    gamma_pos: float | Array = 1.0,
    gamma_neg: float | Array = 4.0,
    clip: float = 0.05,
    eps: float = 1e-8,
    reduction: str = "sum",
) -> Array:
    r"""Asymmetric loss (ASL) for multi-label classification (Ridnik et al., 2021).

    With :math:`p = \sigma(x)`, the shifted negative probability
    :math:`p_m = \min(1 - p + m, 1)` (``clip`` :math:`m`) and :math:`\gamma_\pm`:

    .. math:: \ell_{ic} = -t\,(1 - p)^{\gamma_+} \log p - (1 - t)\, (1 - p_m)^{\gamma_-} \log p_m

    written, as timm does, with the focusing weight :math:`(1 - p_t)^{\gamma_t}`,
    :math:`p_t = t p + (1 - t) p_m`, :math:`\gamma_t = t \gamma_+ + (1 - t) \gamma_-`, and both logs
    clamped at ``eps``.

    Args:
        logits: scores, any shape (``(N, C)``: one binary problem per class).
        target: 0/1 labels (or probabilities), same shape (``bool`` and integers read as 0/1).
        gamma_pos: :math:`\gamma_+ \ge 0` (default 1, timm's).
        gamma_neg: :math:`\gamma_- \ge 0` (default 4, timm's).
        clip: :math:`m` in [0, 1], the probability margin that discards easy negatives (default 0.05).
        eps: the floor of the logs' arguments (default 1e-8).
        reduction: ``"sum"`` (default, as timm's ``-loss.sum()``), ``"mean"`` (over elements) or
            ``"none"`` (per element).

    Returns:
        The loss.

    Equals timm's ``AsymmetricLossMultiLabel(gamma_neg, gamma_pos, clip, eps)`` (the focusing weight
    differentiated: ``disable_torch_grad_focal_loss=False``, its default). With both gammas and
    ``clip`` 0 it is binary cross-entropy with logs clamped at ``eps``.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    check_same_shape("logits", logits, "target", target)
    target = as_binary_target(xp, target, logits)
    positive = b.sigmoid(logits)
    negative = 1.0 - positive
    if clip > 0:
        negative = xp.where(negative + clip < 1.0, negative + clip, 1.0)
    loss_values = target * _clamped_log(xp, positive, eps) + (1.0 - target) * _clamped_log(xp, negative, eps)
    if not (is_static_zero(gamma_pos) and is_static_zero(gamma_neg)):
        p_t = positive * target + negative * (1.0 - target)
        gamma_t = gamma_pos * target + gamma_neg * (1.0 - target)
        loss_values = loss_values * _focusing_weight(xp, 1.0 - p_t, gamma_t)
    return reduce(xp, -loss_values, reduction)


@loss(
    "classification",
    settings={
        "gamma_pos": nonnegative_number(arrays=True),
        "gamma_neg": nonnegative_number(arrays=True),
        "label_smoothing": number_in(0.0, 1.0, arrays=True),
    },
)
def asymmetric_single_label(
    b: Backend,
    logits: Array,
    target: Array,
    *,
    gamma_pos: float | Array = 1.0,
    gamma_neg: float | Array = 4.0,
    label_smoothing: float | Array = 0.1,
    axis: int = -1,
    reduction: str = "mean",
) -> Array:
    r"""Asymmetric loss (ASL) for single-label classification (Ridnik et al., 2021): softmax
    cross-entropy whose true class is weighted by :math:`(1 - p_y)^{\gamma_+}` and every other class
    by :math:`p_c^{\gamma_-}`.

    With :math:`p = \operatorname{softmax}(x)` and the smoothed targets
    :math:`\tilde t = (1 - \varepsilon)\, \mathrm{onehot}(y) + \varepsilon / K`:

    .. math:: \ell_i = -\tilde t_{iy}\, (1 - p_{iy})^{\gamma_+} \log p_{iy}
              - \sum_{c \ne y} \tilde t_{ic}\, p_{ic}^{\gamma_-} \log p_{ic}

    Args:
        logits: ``(N, K)`` scores (classes on ``axis``).
        target: integer class indices, ``logits``' shape without ``axis``.
        gamma_pos: :math:`\gamma_+ \ge 0` (default 1, timm's).
        gamma_neg: :math:`\gamma_- \ge 0` (default 4, timm's).
        label_smoothing: :math:`\varepsilon` in [0, 1] (default 0.1: timm's ``eps``, which is a label
            smoothing here); with 0 only the true class counts and this is :func:`focal` with
            ``gamma=gamma_pos``.
        axis: the class axis (default -1).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; finite for saturated logits (a zero weight times a ``-inf`` log-probability is 0).

    Equals timm's ``AsymmetricLossSingleLabel(gamma_pos, gamma_neg, eps=label_smoothing,
    reduction)`` (timm/loss/asymmetric_loss.py) with ``axis=-1``; its ``"sum"`` (any reduction but
    ``"mean"``) is the per-sample loss, polyloss's ``"none"``. For multi-label problems see
    :func:`asymmetric`.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    axis = check_axis("logits", logits, axis)
    class_labels(b, "target", target, logits=logits, axis=axis)
    num_classes = logits.shape[axis]
    index, valid = guard_traced_labels(b, target, num_classes)
    classes = along_axis(xp, xp.arange(num_classes, device=b.device(logits)), axis, logits.ndim)
    true_class = xp.expand_dims(index, axis=axis) == classes
    log_probs = b.log_softmax(logits, axis)
    probs = xp.exp(log_probs)
    # the true class's focusing base is 1 - p = -expm1(log p) (no cancellation as p -> 1)
    base = xp.where(true_class, -xp.expm1(log_probs), probs)
    onehot = xp.astype(true_class, logits.dtype)
    weight = _focusing_weight(xp, base, gamma_pos * onehot + gamma_neg * (1.0 - onehot))
    smoothed = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
    per_sample = -xp.sum(zero_times(xp, smoothed * weight, log_probs), axis=axis)
    if valid is not None:  # out-of-range traced labels: NaN, never a wrapped class
        per_sample = xp.where(valid, per_sample, xp.nan)
    return reduce(xp, per_sample, reduction)


def _focusing_weight(xp: Any, base: Array, exponent: Array) -> Array:
    """base ** exponent for base >= 0 and an elementwise exponent, as exp(exponent log base): torch's
    ``pow`` drops the second derivative in the exponent where the exponent is exactly 0 (its backward
    masks ``exponent * base ** (exponent - 1)`` there), which a 0/1 target times a gamma of 0 hits.
    0 ** e is 0 (1 for e == 0) with zero gradient (double where)."""
    positive = base > 0
    raised = xp.exp(exponent * xp.log(xp.where(positive, base, 1.0)))
    return xp.where(positive, raised, xp.astype(exponent == 0, base.dtype))


def _sparsemax(b: Backend, scores: Array) -> Array:
    """The Euclidean projection of each row (last axis) onto the probability simplex (Martins and
    Astudillo, 2016): ``relu(z - tau)`` with the threshold from the sorted scores."""
    xp = b.xp
    num_classes = scores.shape[-1]
    ordered = xp.sort(scores, axis=-1, descending=True)
    cumulative = b.cumulative_sum(ordered, -1)
    rank = xp.arange(1, num_classes + 1, dtype=scores.dtype, device=b.device(scores))
    in_support = 1.0 + rank * ordered > cumulative
    support_size = xp.sum(xp.astype(in_support, scores.dtype), axis=-1, keepdims=True)
    last = xp.astype(support_size, xp.int64) - 1
    tau = (b.take_along_axis(cumulative, last, -1) - 1.0) / support_size
    return b.relu(scores - tau)


def _sparse_plus(xp: Any, x: Array) -> Array:
    """0 for x <= -1, (x + 1)^2 / 4 on (-1, 1), x from 1 on (``jax.nn.sparse_plus``)."""
    middle = 0.25 * (x + 1.0) * (x + 1.0)
    return xp.where(x <= -1.0, 0.0, xp.where(x < 1.0, middle, x))


@loss("classification")
def sparsemax_loss(b: Backend, logits: Array, target: Array, *, reduction: str = "mean") -> Array:
    r"""Sparsemax loss (Martins and Astudillo, 2016): the Fenchel-Young loss of sparsemax.

    Multi-class, with integer labels :math:`y_i` and :math:`p_i = \operatorname{sparsemax}(x_i)`:

    .. math:: \ell_i = \sum_c p_{ic} (x_{ic} - x_{iy_i}) + \tfrac12 \bigl(1 - \lVert p_i \rVert^2\bigr)

    whose gradient is :math:`p_i - e_{y_i}` (0 once the label has all the mass). Binary, with 0/1
    labels of the logits' shape: :math:`\ell = \operatorname{sparse\_plus}(\pm x)`, :math:`-x` for
    label 1 (0 for :math:`x \ge 1`, quadratic on :math:`(-1, 1)`, linear below).

    Args:
        logits: scores: ``(N, C)`` (classes last) with integer labels, or any shape with 0/1 labels.
        target: integer class indices ``(N,)`` (multi-class), or 0/1 labels (``bool`` or integer)
            of the logits' shape (binary).
        reduction: ``"mean"`` (over samples, or elements when binary), ``"sum"`` or ``"none"``.

    Returns:
        The loss, >= 0; exactly 0 where the prediction is the label (sparse: not only in the limit).

    Equals ``optax.losses.multiclass_sparsemax_loss(logits, target)`` (multi-class) and
    ``optax.losses.sparsemax_loss(logits, target)`` (binary). At ties in the scores (where the
    support changes) the derivative is one-sided.
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    if tuple(target.shape) == tuple(logits.shape):
        if not is_integer(xp, target) and target.dtype != xp.bool:
            raise TypeError(f"target of the logits' shape must hold 0/1 labels, got dtype {target.dtype}")
        positive = target if target.dtype == xp.bool else target != 0
        return reduce(xp, _sparse_plus(xp, xp.where(positive, -logits, logits)), reduction)
    if logits.ndim < 1:
        raise ValueError("logits must have a class axis (..., C), got a 0-d array")
    class_labels(b, "target", target, logits=logits, axis=logits.ndim - 1)
    index, valid = guard_traced_labels(b, target, logits.shape[-1])
    if math.prod(logits.shape) == 0:
        return reduce(xp, xp.sum(logits, axis=-1), reduction)
    probabilities = _sparsemax(b, logits)
    relative = logits - b.take_along_axis(logits, index[..., None], -1)
    per_sample = xp.sum(probabilities * relative, axis=-1) + 0.5 * (
        1.0 - xp.sum(probabilities * probabilities, axis=-1)
    )
    if valid is not None:
        per_sample = xp.where(valid, per_sample, xp.nan)
    return reduce(xp, per_sample, reduction)
