"""Sequence losses: connectionist temporal classification (CTC).

The forward (alpha) recursion is written once, in log space, over the
backend's ``scan`` primitive (``jax.lax.scan`` under JAX, so it jits and
vmaps; a Python loop over time elsewhere). It is the definition of the per-sample
negative log-likelihood handed to ``b.fused``: torch in eager mode computes it with its own CTC
kernel instead (one pass each way), its gradient corrected to this definition's and checked
against it (``tests/test_ctc.py``); torch.compile and torch.func run the recursion. Every log-sum-exp is guarded so
that states no alignment reaches (``-inf``) carry zero gradient, never NaN:
an impossible alignment (a target longer than the input allows) gives an
infinite loss with finite (zero) gradient, or 0 with ``zero_infinity=True``.

Conventions (tested by ``tests/test_ctc.py``, ``tests/test_input_dtypes.py`` and the edge-case
corpus): ``log_probs`` is batch first, ``(N, T, C)`` (torch's ``ctc_loss`` takes ``(T, N, C)``:
transpose it); an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty ``"none"`` (torch
refuses an empty ``log_probs``); targets and lengths may have any integer dtype, floating ones
raise ``TypeError``; a target of length 0 is the all-blank path; an impossible alignment has an
infinite loss with zero gradient (torch's gradient is NaN there).
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_floating,
    check_ndim,
    check_shape,
    is_integer,
)
from polyloss.core._reduce import mean, reduce, safe_logaddexp
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend

_NEG_INF = -math.inf


_STEPS: dict[Any, Any] = {}


def _alpha_step(b: Backend) -> Any:
    """The recursion's step, one function object per backend: everything it reads comes in
    through the carry, so JAX's scan finds its compiled step in the cache on every call."""
    if b not in _STEPS:
        xp = b.xp

        def step(carry: tuple[Array, Array, Array], inputs: tuple[Array, Array]) -> tuple[Array, Array, Array]:
            alpha, skip, input_lengths = carry
            emission, t = inputs
            minus_inf = xp.full((alpha.shape[0], 2), _NEG_INF, dtype=alpha.dtype, device=b.device(alpha))
            one_back = xp.concat([minus_inf[:, :1], alpha[:, :-1]], axis=1)
            two_back = xp.where(skip, xp.concat([minus_inf, alpha[:, :-2]], axis=1), _NEG_INF)
            advanced = safe_logaddexp(b, alpha, one_back, two_back) + emission
            # samples whose input has ended keep their alpha
            return xp.where((t < input_lengths)[:, None], advanced, alpha), skip, input_lengths

        _STEPS[b] = step
    return _STEPS[b]


def _check_lengths(b: Backend, name: str, lengths: Array, low: int, high: Any, what: str) -> None:
    """Eager check of a lengths vector against [low, high] (``high`` an int or per-sample ints)."""
    if b.is_opaque(lengths) or lengths.shape[0] == 0:
        return
    values = b.host_values(lengths)
    highs = high if isinstance(high, list) else [high] * len(values)
    for i, (value, top) in enumerate(zip(values, highs, strict=False)):
        if not low <= value <= top:
            raise ValueError(f"{name}[{i}] must be in [{low}, {top}] ({what}), got {value}")


def _check_targets(b: Backend, targets: Array, target_lengths: Array, num_classes: int, blank: int) -> None:
    """Eager check of the labels inside each target's length: in [0, C) and never the blank."""
    if b.is_opaque(targets) or b.is_opaque(target_lengths) or targets.shape[0] * targets.shape[1] == 0:
        return
    width = targets.shape[1]
    rows = b.host_values(targets)
    for i, length in enumerate(b.host_values(target_lengths)):
        for j, label in enumerate(rows[i * width : i * width + length]):
            if label == blank:
                raise ValueError(
                    f"targets[{i}, {j}] is the blank ({blank}); targets must not contain the blank within "
                    "target_lengths"
                )
            if not 0 <= label < num_classes:
                raise ValueError(f"targets[{i}, {j}] = {label} is outside [0, {num_classes}) (the class axis)")


@loss("sequence", settings={"zero_infinity": boolean()})
def ctc(
    b: Backend,
    log_probs: Array,
    targets: Array,
    input_lengths: Array,
    target_lengths: Array,
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Connectionist temporal classification loss (Graves et al., 2006), batch-first.

    With :math:`y'` the target with blanks interleaved (length :math:`2S + 1`)
    and :math:`\alpha_t(s)` the log-probability of all alignments of the first
    :math:`s` symbols of :math:`y'` to the first :math:`t` frames:

    .. math::
        \alpha_t(s) = \log\!\big(e^{\alpha_{t-1}(s)} + e^{\alpha_{t-1}(s-1)}
                      + [y'_s \ne b,\ y'_s \ne y'_{s-2}]\, e^{\alpha_{t-1}(s-2)}\big) + \log p_t(y'_s)

        \ell_n = -\log\big(e^{\alpha_{T_n}(2S_n)} + e^{\alpha_{T_n}(2S_n - 1)}\big)

    Args:
        log_probs: ``(N, T, C)`` log-probabilities (e.g. ``log_softmax`` of
            logits over C, blank included), batch first.
        targets: ``(N, S)`` integer labels, padded: entries past
            ``target_lengths[n]`` are ignored. Labels inside the length must be
            in ``[0, C)`` and not the blank (``ValueError`` in eager mode).
        input_lengths: ``(N,)`` integers in ``[1, T]``: the frames of each sample.
        target_lengths: ``(N,)`` integers in ``[0, S]``.
        blank: the blank's class index (default 0).
        zero_infinity: give impossible samples loss 0 (and zero gradient)
            instead of ``inf``.
        reduction: ``"mean"`` (each sample's loss divided by its target length,
            at least 1, then the batch mean: torch's definition), ``"sum"`` or
            ``"none"`` (per sample).

    Returns:
        The loss; ``inf`` for a sample no alignment can produce (its target
        needs more frames than it has), with zero gradient.

    Equals ``torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets,
    input_lengths, target_lengths, blank, reduction, zero_infinity)`` in value;
    its gradient is the true gradient with respect to ``log_probs`` (torch's
    folds in the ``log_softmax`` it assumes comes before, so the two agree with
    respect to the logits behind a ``log_softmax``). Equals
    ``optax.losses.ctc_loss`` with paddings ``t >= input_lengths[n]`` and
    ``s >= target_lengths[n]``, per sample.
    """
    xp = b.xp
    check_floating(xp, "log_probs", log_probs)
    check_ndim("log_probs", log_probs, 3, "(N, T, C) (batch first)")
    n, frames, num_classes = log_probs.shape
    for name, x in (("targets", targets), ("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if not is_integer(xp, x):
            raise TypeError(f"{name} must hold integers, got dtype {x.dtype}")
    check_ndim("targets", targets, 2, "(N, S)")
    if targets.shape[0] != n and targets.shape[0] == frames:
        raise ValueError(
            f"targets has {targets.shape[0]} rows where log_probs of shape {tuple(log_probs.shape)} has N = {n}: "
            "log_probs looks time-first, torch's (T, N, C) layout; polyloss.ctc takes (N, T, C): pass "
            "log_probs.transpose(0, 1) (torch) or jnp.swapaxes(log_probs, 0, 1) (JAX)"
        )
    check_shape("targets", targets, (n, targets.shape[1]))
    check_shape("input_lengths", input_lengths, (n,))
    check_shape("target_lengths", target_lengths, (n,))
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < num_classes:
        raise ValueError(f"blank must be a class index in [0, {num_classes}), got {blank!r}")
    width = targets.shape[1]
    _check_lengths(b, "input_lengths", input_lengths, 1, frames, "the frames of log_probs")
    _check_lengths(b, "target_lengths", target_lengths, 0, width, "the width of targets")
    _check_targets(b, targets, target_lengths, num_classes, blank)

    per_sample = b.fused(
        "ctc_nll", _negative_log_likelihood, log_probs, targets, input_lengths, target_lengths, blank=blank
    )
    if zero_infinity:
        per_sample = xp.where(per_sample == math.inf, 0.0, per_sample)
    if reduction == "mean":
        lengths = xp.astype(xp.clip(target_lengths, 1, None), per_sample.dtype)
        return mean(xp, per_sample / lengths)
    return reduce(xp, per_sample, reduction)


def _negative_log_likelihood(
    b: Backend, log_probs: Array, targets: Array, input_lengths: Array, target_lengths: Array, *, blank: int
) -> Array:
    """Each sample's -log P(target | log_probs) by the alpha recursion: the definition (``inf`` for an
    impossible alignment, NaN for a traced sample with an invalid label or length), passed to
    ``b.fused`` so that a backend may compute it with its own kernel."""
    xp = b.xp
    n, frames, num_classes = log_probs.shape
    width = targets.shape[1]
    device = b.device(log_probs)
    states = 2 * width + 1
    position = xp.arange(states, device=device)
    symbol = (position - 1) // 2  # the target index of odd states
    in_target = (position % 2 == 1) & (symbol[None, :] < target_lengths[:, None])  # (N, L)
    if width > 0:
        safe_symbol = xp.broadcast_to(xp.clip(symbol, 0, width - 1)[None, :], (n, states))
        labels = b.take_along_axis(targets, safe_symbol, 1)
    else:
        labels = xp.zeros((n, states), dtype=targets.dtype, device=device)
    # traced inputs cannot be validated: a sample with an invalid label or length gets NaN
    invalid = xp.any(in_target & ((labels < 0) | (labels >= num_classes) | (labels == blank)), axis=1)
    invalid = invalid | (input_lengths < 1) | (input_lengths > frames) | (target_lengths < 0) | (target_lengths > width)
    labels = xp.where(in_target, xp.clip(labels, 0, num_classes - 1), blank)  # (N, L): blanks interleaved
    # a state may be entered from two back when it is a label differing from the label before; the
    # first two states have no state two back (their own labels stand in: never "differing")
    two_back = xp.concat([labels[:, :2], labels[:, :-2]], axis=1)
    skip = in_target & (labels != two_back) & (position[None, :] >= 2)

    emissions = b.take_along_axis(log_probs, xp.broadcast_to(labels[:, None, :], (n, frames, states)), 2)  # (N, T, L)
    first = emissions[:, 0, :]
    alpha = xp.where(position[None, :] < 2, first, _NEG_INF)
    alpha = xp.where((position[None, :] == 1) & ~in_target, _NEG_INF, alpha)  # an empty target has no state 1
    times = xp.arange(1, frames, dtype=input_lengths.dtype, device=device)
    steps = xp.permute_dims(emissions[:, 1:, :], (1, 0, 2))  # (T - 1, N, L): time leads
    alpha, _, _ = b.scan(_alpha_step(b), (alpha, skip, input_lengths), (steps, times))

    last = xp.clip(2 * target_lengths, 0, states - 1)
    end_blank = xp.squeeze(b.take_along_axis(alpha, last[:, None], 1), axis=1)
    end_label = xp.squeeze(b.take_along_axis(alpha, xp.clip(last - 1, 0, states - 1)[:, None], 1), axis=1)
    end_label = xp.where(target_lengths > 0, end_label, _NEG_INF)
    return xp.where(invalid, xp.nan, -safe_logaddexp(b, end_blank, end_label))
