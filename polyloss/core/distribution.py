"""Divergences between distributions given as log-probabilities.

Each loss sums its per-element terms over the class ``axis`` (one divergence
per sample, the input's shape without ``axis``), then applies ``reduction``
over the samples: ``"mean"`` is the mean over samples, which for ``(N, C)``
inputs is torch's ``reduction="batchmean"``, not its elementwise ``"mean"``
(that one divides by ``N * C`` and is not a divergence).

``0 log 0 = 0``: a class with zero target probability contributes exactly 0,
with finite gradients, even where the other distribution's log-probability
is ``-inf`` (masked classes).

Conventions (tested by the edge-case corpus, ``tests/test_input_dtypes.py`` and
``tests/test_bad_inputs.py``): an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty
``"none"``; integer inputs raise ``TypeError`` (torch: "Integral inputs not supported"); the two
distributions never broadcast. A zero target probability against a ``-inf`` log-probability
gives 0 (torch's ``kl_div`` gives NaN there). The derivative in ``p`` at ``p = 0`` is ``-inf``
(``d/dp p log p``), so the checks differentiate ``p`` away from 0.
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_axis,
    check_floating,
    check_same_shape,
    check_unit_interval,
    class_labels,
    number_in,
    positive_number,
    sample_mask,
)
from polyloss.core._reduce import masked_rows, reduce, reduce_kept, safe_logaddexp, xlogy, zero_times
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend
from polyloss.core.classification import fused_cross_entropy

_LOG_2 = math.log(2.0)


def _kl_terms(b: Backend, log_q: Array, p: Array) -> Array:
    """Elementwise p (log p - log q) from probabilities ``p``; 0 where p == 0 (even where
    log q = -inf), and the gradient with respect to ``p`` is -log q there (0 where log q = -inf).
    Passed to ``b.fused``: a backend may compute it with its own kernel."""
    xp = b.xp
    return xlogy(xp, p, p) - zero_times(xp, p, log_q)


def _kl_terms_log_target(xp: Any, log_q: Array, log_p: Array) -> Array:
    """Elementwise exp(log p) (log p - log q); 0 where log p == -inf."""
    impossible = log_p == -math.inf  # (-inf) - (-inf) would be NaN (and warn) before being masked
    return zero_times(xp, xp.exp(log_p), log_p - xp.where(impossible, 0.0, log_q))


def _check_pair(xp: Any, name_a: str, a: Array, name_b: str, b: Array, axis: Any) -> int:
    check_floating(xp, name_a, a)
    check_floating(xp, name_b, b)
    check_same_shape(name_a, a, name_b, b)
    return check_axis(name_a, a, axis)


@loss("distribution", settings={"log_target": boolean()})
def kl_div(
    b: Backend,
    log_q: Array,
    p: Array,
    *,
    log_target: bool = False,
    axis: int = -1,
    mask: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Kullback-Leibler divergence KL(p || q) of a target ``p`` from a model ``q``.

    .. math:: \ell_i = \sum_c p_{ic} \left(\log p_{ic} - \log q_{ic}\right),
              \qquad 0 \log 0 = 0

    Args:
        log_q: the model's log-probabilities (e.g. ``log_softmax`` output).
        p: the target's probabilities, or its log-probabilities with
            ``log_target=True``; same shape as ``log_q``. Probabilities
            outside [0, 1] raise ``ValueError`` in eager mode.
        log_target: ``p`` holds log-probabilities (``-inf`` for impossible classes).
        axis: the class axis, summed over (default -1).
        mask: optional ``bool`` of the input's shape without ``axis`` (optax's ``where``): False
            samples count nowhere (value 0, gradient 0; ``"mean"`` over the kept samples).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (one
            divergence per sample: the input's shape without ``axis``).

    Returns:
        The divergence, finite wherever ``p == 0``; ``inf`` where ``p > 0`` and
        ``log_q == -inf`` (the divergence is infinite there).

    ``"mean"`` equals ``torch.nn.functional.kl_div(log_q, p, reduction="batchmean",
    log_target=log_target)`` for 2-D inputs (classes last) and the mean of
    ``optax.losses.kl_divergence(log_q, p)`` (or ``kl_divergence_with_log_targets``).
    torch's ``reduction="mean"`` divides by the number of elements instead and
    is not copied. Unlike torch, a zero target probability with ``log_q = -inf``
    gives 0, not NaN. The gradient with respect to ``p`` is 0 where ``p == 0``.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> log_q = np.log(np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3]]))
        >>> p = np.array([[0.5, 0.25, 0.25], [0.3, 0.4, 0.3]])
        >>> round(float(pl.kl_div(log_q, p)), 6)  # the mean over the 2 samples
        0.058311
    """
    xp = b.xp
    axis = _check_pair(xp, "log_q", log_q, "p", p, axis)
    kept = sample_mask(xp, mask, tuple(s for i, s in enumerate(log_q.shape) if i != axis))
    log_q, p = masked_rows(xp, log_q, kept, axis), masked_rows(xp, p, kept, axis)
    if not log_target:
        check_unit_interval(b, "p", p)
        terms = b.fused("kl_terms", _kl_terms, log_q, p)
    else:
        terms = _kl_terms_log_target(xp, log_q, p)
    return reduce_kept(xp, xp.sum(terms, axis=axis), kept, reduction)


@loss("distribution")
def js_div(b: Backend, log_p: Array, log_q: Array, *, axis: int = -1, reduction: str = "mean") -> Array:
    r"""Jensen-Shannon divergence of two distributions given as log-probabilities.

    .. math:: \ell_i = \tfrac12 \mathrm{KL}(p_i \,\|\, m_i) + \tfrac12 \mathrm{KL}(q_i \,\|\, m_i),
              \qquad m = \tfrac12 (p + q)

    Symmetric in ``p`` and ``q``, in :math:`[0, \log 2]` (natural log), 0 exactly
    when ``p == q``. :math:`\log m` is ``logaddexp(log p, log q) - log 2``, so
    tiny probabilities keep their precision.

    Args:
        log_p: log-probabilities of the first distribution (``-inf`` allowed).
        log_q: log-probabilities of the second, same shape.
        axis: the class axis, summed over (default -1).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The divergence; finite, with finite gradients, for any pattern of zero
        probabilities (classes impossible under both contribute 0).

    Equals the square of ``scipy.spatial.distance.jensenshannon(p, q)`` (base e).
    """
    xp = b.xp
    axis = _check_pair(xp, "log_p", log_p, "log_q", log_q, axis)
    log_m = safe_logaddexp(b, log_p, log_q) - _LOG_2  # -inf, not NaN gradients, where both are -inf
    terms = _kl_terms_log_target(xp, log_m, log_p) + _kl_terms_log_target(xp, log_m, log_q)
    return reduce(xp, 0.5 * xp.sum(terms, axis=axis), reduction)


@loss("distribution", settings={"temperature": positive_number(arrays=True), "alpha": number_in(0.0, 1.0, arrays=True)})
def distillation(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    target: Array | None = None,
    *,
    temperature: float | Array = 3.0,
    alpha: float | Array = 0.1,
    axis: int = -1,
    reduction: str = "mean",
) -> Array:
    r"""Knowledge distillation (Hinton et al.): softened teacher KL plus hard-label CE.

    With temperature :math:`T`, :math:`p = \operatorname{softmax}(t / T)` from the
    teacher and :math:`q = \operatorname{softmax}(s / T)` from the student:

    .. math:: \ell_i = \alpha\, T^2\, \mathrm{KL}(p_i \,\|\, q_i)
                       + (1 - \alpha)\, \mathrm{CE}(s_i, y_i)

    and without ``target`` :math:`\ell_i = T^2\, \mathrm{KL}(p_i \,\|\, q_i)`
    (``alpha`` does not scale it). :math:`T^2` keeps the soft gradients'
    magnitude independent of :math:`T`. The teacher's gradient is stopped.

    Args:
        student_logits: the student's unnormalised scores, classes on ``axis``.
        teacher_logits: the teacher's scores, same shape (``-inf`` allowed for
            classes the teacher rules out).
        target: optional integer class indices, the logits' shape without ``axis``.
        temperature: :math:`T > 0` (default 3).
        alpha: weight of the soft term in [0, 1] when ``target`` is given (default 0.1).
        axis: the class axis (default -1).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; per sample with ``reduction="none"``.

    With ``reduction="mean"`` it is exactly the ``distillation_step`` loss of the
    guide "SFT: Comprehensive Loss Functions for Better Model Training"
    (``sft_loss_function.md``): ``KLDivLoss(reduction="batchmean")`` of the
    log-softmaxed student against the softmaxed teacher times ``T * T * alpha``,
    plus ``CrossEntropyLoss()`` times ``1 - alpha``. Hinton, Vinyals, Dean,
    *Distilling the Knowledge in a Neural Network*, 2015.
    """
    xp = b.xp
    axis = _check_pair(xp, "student_logits", student_logits, "teacher_logits", teacher_logits, axis)
    log_q = b.log_softmax(student_logits / temperature, axis)
    log_p = b.log_softmax(b.stop_gradient(teacher_logits) / temperature, axis)
    soft = (temperature * temperature) * xp.sum(_kl_terms_log_target(xp, log_q, log_p), axis=axis)
    if target is None:
        return reduce(xp, soft, reduction)

    class_labels(b, "target", target, logits=student_logits, axis=axis)
    hard = fused_cross_entropy(b, student_logits, target, axis, "none")
    return reduce(xp, alpha * soft + (1.0 - alpha) * hard, reduction)
