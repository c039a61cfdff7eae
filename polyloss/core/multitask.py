"""Composing losses: uncertainty weighting of tasks, curriculum weighting of samples.

These take losses already computed (one per task, or one per sample) and
return their weighted combination, so they compose with any loss of the
catalogue (``reduction="none"`` for per-sample losses).

``curriculum`` follows the empty-batch policy of every loss (no sample: ``"mean"`` and
``"sum"`` 0, ``"none"`` empty); ``uncertainty_weighting`` has no batch axis (its inputs are
one per task), so the policy does not apply to it.

Conventions: the combined losses must be floating (``TypeError`` naming them, tested by
``tests/test_input_dtypes.py``).
"""

from __future__ import annotations

from polyloss.core._checks import check_floating, check_interval, check_same_shape
from polyloss.core._reduce import reduce
from polyloss.core._registry import helper, loss
from polyloss.core._typing import Array, Backend

_CURRICULUM_EPS = 1e-6  # study-hub's CurriculumLoss guard on the weight sum


@loss("multitask")
def uncertainty_weighting(b: Backend, losses: Array, log_vars: Array, *, reduction: str = "sum") -> Array:
    r"""Homoscedastic uncertainty weighting of task losses (Kendall, Gal & Cipolla, 2018).

    .. math:: \ell = \sum_t \left(e^{-s_t} L_t + s_t\right), \qquad s_t = \log \sigma_t^2

    The learnable :math:`s_t` trade each task's loss against a penalty on its
    uncertainty; gradients flow to both ``losses`` and ``log_vars``.

    Args:
        losses: the task losses :math:`L_t`, shape ``(T,)`` (any shape works).
        log_vars: :math:`s_t`, one learnable log-variance per task, same shape.
        reduction: ``"sum"`` (the default here: the paper's total), ``"mean"``
            or ``"none"`` (per task).

    Returns:
        The weighted total.

    Study-hub's ``MultiTaskLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions", section 7.1).
    """
    xp = b.xp
    check_floating(xp, "losses", losses)
    check_floating(xp, "log_vars", log_vars)
    check_same_shape("losses", losses, "log_vars", log_vars)
    return reduce(xp, xp.exp(-log_vars) * losses + log_vars, reduction)


@helper("multitask")
def curriculum_weights(b: Backend, difficulty: Array, *, progress: float) -> Array:
    r"""Curriculum sample weights: keep the samples no harder than the progress, renormalised.

    .. math:: w_i = N \frac{[d_i \le p]}{\sum_j [d_j \le p] + 10^{-6}}

    so the kept samples' weights sum to (almost) :math:`N` and a batch with
    none kept gets all-zero weights. The weights are piecewise constant in
    :math:`d` (no gradient).

    Args:
        difficulty: :math:`d_i` per sample, ``(N,)``, in [0, 1] by convention.
        progress: :math:`p` in [0, 1], e.g. ``epoch / total_epochs``.

    Returns:
        The weights, ``difficulty``'s shape and dtype.

    The weights of study-hub's ``CurriculumLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions", section 7.2).
    """
    xp = b.xp
    check_floating(xp, "difficulty", difficulty)
    progress = check_interval("progress", progress, 0.0, 1.0)
    kept = xp.astype(difficulty <= progress, difficulty.dtype)
    return kept / (xp.sum(kept) + _CURRICULUM_EPS) * difficulty.shape[0]


@loss("multitask")
def curriculum(b: Backend, losses: Array, difficulty: Array, *, progress: float, reduction: str = "sum") -> Array:
    r"""Curriculum learning: per-sample losses weighted by :func:`curriculum_weights`.

    .. math:: \ell = \sum_i w_i L_i, \qquad w_i = N \frac{[d_i \le p]}{\sum_j [d_j \le p] + 10^{-6}}

    Args:
        losses: per-sample losses :math:`L_i`, ``(N,)`` (a loss with ``reduction="none"``).
        difficulty: :math:`d_i` per sample, same shape.
        progress: :math:`p` in [0, 1], e.g. ``epoch / total_epochs``.
        reduction: ``"sum"`` (the default here, as study-hub's), ``"mean"`` or
            ``"none"`` (the weighted per-sample losses).

    Returns:
        The weighted loss.

    Study-hub's ``CurriculumLoss`` (eunsu-park/study-hub, lesson 24 "Loss Functions", section 7.2).
    """
    xp = b.xp
    check_floating(xp, "losses", losses)
    check_same_shape("losses", losses, "difficulty", difficulty)
    if losses.ndim != 1:
        raise ValueError(f"losses must be 1-D per-sample losses (N,), got shape {tuple(losses.shape)}")
    return reduce(xp, curriculum_weights(b, difficulty, progress=progress) * losses, reduction)
