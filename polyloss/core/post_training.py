"""Language-model post-training losses: preference optimisation, policy optimisation, token-level distillation.

Three groups, each on the quantities a trainer already has:

* **preference losses** (``dpo``, ``simpo``, ``cpo``, ``orpo``, ``kto``) on per-sequence
  log-probabilities, ``(N,)`` each (:func:`sequence_log_probs` computes them from ``(N, T, V)``
  logits through the fused cross-entropy kernel); :func:`implicit_rewards` gives the rewards
  trainers log;
* **policy losses** (``grpo`` and its aggregations ``grpo``, ``bnpo``, ``dr_grpo``, ``dapo``,
  ``cispo``; GSPO's sequence-level ratio) on per-token log-probabilities ``(N, T)`` with a
  completion mask;
* **token-level distillation** (``generalized_jsd``, ``forward_kl``, ``reverse_kl``,
  ``total_variation``) on student and teacher logits ``(..., V)``, with ``labels``/``ignore_index``
  masking.

Each definition is TRL 1.16's (``trl/trainer/dpo_trainer.py``, ``grpo_trainer.py``,
``kto_trainer.py``, ``trl/experimental/cpo``, ``orpo``, ``gkd``), written as a formula in its
docstring; where polyloss departs from TRL the docstring says so.

Conventions of the family (tested by the edge-case corpus, ``tests/test_input_dtypes.py`` and
``tests/test_bad_inputs.py``):

* **empty batch**: ``"sum"`` and ``"mean"`` 0, ``"none"`` empty; a batch whose completion mask (or
  ``labels``) keeps no token gives 0 with zero gradients (TRL clamps its token counts at 1 too);
* **masked tokens** contribute exactly 0 value and 0 gradient whatever their log-probabilities hold
  (padding may be ``-inf`` or NaN: the mask is applied with ``where``, TRL multiplies by it);
* **integers**: log-probabilities and logits must be floating; masks may be ``bool``, integer or
  floating (entries other than 0 are kept); labels and ``desirable`` flags integer or ``bool``;
* **broadcasting**: the log-probabilities of one call share one shape; ``advantages`` is ``(N,)``
  (one per sequence, as TRL's) or ``(N, T)``;
* **extremes**: log-ratios of +-1e4 give finite preference losses and gradients (every
  ``log sigmoid`` is a ``softplus``); a policy ratio far outside the clipping range gives a finite
  loss and gradient wherever the clipped objective is bounded (TRL's ``exp`` of the log-ratio
  overflows to ``inf * 0 = NaN`` gradients there).
"""

from __future__ import annotations

import math
from typing import Any

from polyloss.core._checks import (
    check_floating,
    check_same_shape,
    class_labels,
    finite_number,
    is_integer,
    is_static_zero,
    nonnegative_number,
    number_in,
    one_of,
    positive_number,
)
from polyloss.core._reduce import mean, reduce, safe_logaddexp, zero_times
from polyloss.core._registry import helper, loss
from polyloss.core._typing import Array, Backend
from polyloss.core.classification import cross_entropy

# --------------------------------------------------------------------------- shared pieces

_LOG_2 = math.log(2.0)


def _log_sigmoid(b: Backend, x: Array) -> Array:
    """log sigmoid(x) = -softplus(-x): exact at +-1e4, where log(sigmoid(x)) is -inf."""
    return -b.softplus(-x)


def _check_same(b: Backend, names: tuple[str, ...], *arrays: Array) -> None:
    """Floating arrays of one shape (``names[0]``'s)."""
    for name, x in zip(names, arrays, strict=True):
        check_floating(b.xp, name, x)
    for name, x in zip(names[1:], arrays[1:], strict=True):
        check_same_shape(names[0], arrays[0], name, x)


def _kept(b: Backend, mask: Array, like: Array, name: str = "mask") -> Array:
    """The boolean completion mask: entries other than 0 are kept (``bool``, integer or floating)."""
    check_same_shape("logps", like, name, mask)
    return mask if mask.dtype == b.xp.bool else mask != 0


def _masked(b: Backend, kept: Array, x: Array) -> Array:
    """``x`` where kept, exactly 0 elsewhere (value and gradient, whatever ``x`` holds there)."""
    return b.xp.where(kept, x, 0.0)


def _conservative_sigmoid(b: Backend, z: Array, label_smoothing: float) -> Array:
    """-(1 - eps) log sigmoid(z) - eps log sigmoid(-z): the logistic loss of a preference whose label
    is flipped with probability eps (cDPO; eps = 0: DPO's loss)."""
    loss_value = b.softplus(-z)
    if label_smoothing == 0:
        return loss_value
    return (1.0 - label_smoothing) * loss_value + label_smoothing * b.softplus(z)


# --------------------------------------------------------------------------- sequence log-probabilities


@helper("post_training")
def sequence_log_probs(
    b: Backend, logits: Array, labels: Array, *, ignore_index: int | None = None, average: bool = False
) -> Array:
    r"""Per-sequence log-probability of the label tokens (the input of every preference loss).

    .. math:: \log \pi(y_i) = \sum_{t:\, y_{it} \ne \text{ignore}} \log \operatorname{softmax}(x_{it})_{y_{it}}

    and with ``average=True`` that sum divided by the number of kept tokens (at least 1): the
    length-normalised log-probability of SimPO, ORPO and IPO.

    Args:
        logits: ``(N, T, V)`` next-token scores, already aligned with ``labels`` (shift them
            yourself: ``logits[:, :-1]`` against ``input_ids[:, 1:]``).
        labels: ``(N, T)`` integer token ids.
        ignore_index: the label of tokens left out (prompt, padding), e.g. -100; ``None``: none.
        average: divide by the number of kept tokens.

    Returns:
        ``(N,)`` log-probabilities (0 for a sequence with no kept token), differentiable in
        ``logits``.

    Computed by the backend's fused cross-entropy kernel (``polyloss.cross_entropy`` with
    ``reduction="none"``): no ``(N, T, V)`` log-softmax is kept where the kernel avoids it. TRL's
    ``DPOTrainer`` sums the completion tokens' log-probabilities the same way (its
    ``selective_log_softmax``), and averages them for ``loss_type="ipo"``.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]]))
        >>> labels = np.array([[0, 1]])
        >>> log_probs = pl.sequence_log_probs(logits, labels)
        >>> bool(np.isclose(log_probs[0], np.log(0.5) + np.log(0.8)))
        True
    """
    xp = b.xp
    check_floating(xp, "logits", logits)
    if logits.ndim != 3:
        raise ValueError(f"logits must be (N, T, V), got shape {tuple(logits.shape)}")
    class_labels(b, "labels", labels, logits=logits, axis=2, ignore_index=ignore_index)
    token_log_probs = -cross_entropy(b, logits, labels, ignore_index=ignore_index, reduction="none")
    total = xp.sum(token_log_probs, axis=-1)
    if not average:
        return total
    if ignore_index is None:
        return total / max(labels.shape[-1], 1)
    count = xp.sum(xp.astype(labels != ignore_index, total.dtype), axis=-1)
    return total / xp.where(count > 1.0, count, 1.0)


@helper("post_training")
def implicit_rewards(
    b: Backend, policy_logps: Array, *, reference_logps: Array | None = None, beta: float | Array = 0.1
) -> Array:
    r"""The implicit rewards preference trainers log.

    .. math:: r = \beta\, (\log \pi(y) - \log \pi_\text{ref}(y))

    and without ``reference_logps`` (CPO, ORPO, SimPO): :math:`r = \beta \log \pi(y)`. Held constant (no
    gradient), as TRL detaches them.

    Args:
        policy_logps: per-sequence log-probabilities, any shape.
        reference_logps: the reference model's, same shape, or ``None``.
        beta: :math:`\beta`, the loss's (default 0.1).

    Returns:
        The rewards, ``policy_logps``' shape. TRL's logged metrics follow: ``rewards/chosen`` and
        ``rewards/rejected`` are the means of the chosen and rejected rewards, ``rewards/margins``
        the mean of their difference, ``rewards/accuracies`` the fraction with chosen > rejected.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> chosen = pl.implicit_rewards(np.array([-10.0, -12.0]), reference_logps=np.array([-11.0, -11.0]))
        >>> rejected = pl.implicit_rewards(np.array([-14.0, -11.0]), reference_logps=np.array([-13.0, -12.0]))
        >>> [round(float(v), 6) for v in chosen - rejected], float(np.mean(chosen > rejected))
        ([0.2, -0.2], 0.5)
    """
    check_floating(b.xp, "policy_logps", policy_logps)
    log_ratio = policy_logps
    if reference_logps is not None:
        _check_same(b, ("policy_logps", "reference_logps"), policy_logps, reference_logps)
        log_ratio = policy_logps - reference_logps
    return b.stop_gradient(beta * log_ratio)


# --------------------------------------------------------------------------- preference losses

#: DPO's loss types (TRL 1.16 ``DPOConfig.loss_type``) that polyloss has
DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "robust",
    "exo_pair",
    "nca_pair",
    "bco_pair",
    "sppo_hard",
    "apo_zero",
    "apo_down",
)

_PAIR = ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected")


@loss(
    "post_training",
    settings={
        "beta": positive_number(arrays=True),
        "label_smoothing": number_in(0.0, 0.5),
        "loss_type": one_of(*DPO_LOSS_TYPES),
    },
)
def dpo(
    b: Backend,
    policy_chosen: Array,
    policy_rejected: Array,
    reference_chosen: Array,
    reference_rejected: Array,
    *,
    beta: float | Array = 0.1,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
    reduction: str = "mean",
) -> Array:
    r"""Direct Preference Optimization and its variants, on per-sequence log-probabilities.

    With the log-ratios :math:`c = \log \pi(y_w) - \log \pi_\text{ref}(y_w)` (chosen),
    :math:`r = \log \pi(y_l) - \log \pi_\text{ref}(y_l)` (rejected), :math:`z = \beta (c - r)`,
    :math:`\sigma` the logistic function and :math:`\varepsilon` = ``label_smoothing``:

    .. math::
        \begin{aligned}
        \texttt{sigmoid}&: -(1 - \varepsilon) \log \sigma(z) - \varepsilon \log \sigma(-z) \\
        \texttt{hinge}&: \max(0, 1 - z) \\
        \texttt{ipo}&: \bigl(c - r - \tfrac{1}{2\beta}\bigr)^2 \\
        \texttt{robust}&: \frac{-(1 - \varepsilon) \log \sigma(z) + \varepsilon \log \sigma(-z)}{1 - 2\varepsilon} \\
        \texttt{exo\_pair}&: \sigma(z) \bigl(\log \sigma(z) - \log(1 - \varepsilon)\bigr)
                           + \sigma(-z) \bigl(\log \sigma(-z) - \log \varepsilon\bigr) \\
        \texttt{nca\_pair}&: -\log \sigma(\beta c) - \tfrac12 \log \sigma(-\beta c) - \tfrac12 \log \sigma(-\beta r) \\
        \texttt{bco\_pair}&: -\log \sigma(\beta c) - \log \sigma(-\beta r) \\
        \texttt{sppo\_hard}&: \bigl(c - \tfrac{1}{2\beta}\bigr)^2 + \bigl(r + \tfrac{1}{2\beta}\bigr)^2 \\
        \texttt{apo\_zero}&: 1 - \sigma(\beta c) + \sigma(\beta r) \\
        \texttt{apo\_down}&: \sigma(\beta c) + 1 - \sigma(z)
        \end{aligned}

    per pair; ``"mean"`` averages over pairs (TRL: ``per_sequence_loss.mean()``).

    Args:
        policy_chosen: :math:`\log \pi(y_w)`, the policy's log-probability of each chosen
            completion (summed over its tokens: :func:`sequence_log_probs`), any shape (``(N,)``).
        policy_rejected: :math:`\log \pi(y_l)`, same shape.
        reference_chosen: :math:`\log \pi_\text{ref}(y_w)`, the frozen reference model's, same shape.
        reference_rejected: :math:`\log \pi_\text{ref}(y_l)`, same shape.
        beta: :math:`\beta > 0`, the strength of the reference constraint (default 0.1; IPO's
            :math:`\tau`); a Python float or a 0-d array.
        label_smoothing: :math:`\varepsilon` in [0, 0.5]: the probability that a preference label is
            flipped (``sigmoid``: conservative DPO; ``robust``: below 0.5) or EXO's
            :math:`\varepsilon` (``exo_pair``: above 0; the paper uses 1e-3). Unused by the others.
        loss_type: one of ``sigmoid`` (DPO, default), ``hinge`` (SLiC), ``ipo``, ``robust``
            (rDPO), ``exo_pair``, ``nca_pair``, ``bco_pair``, ``sppo_hard``, ``apo_zero``, ``apo_down``.
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The loss. :func:`implicit_rewards` gives the rewards trainers log.

    Each type is TRL 1.16's ``DPOTrainer._compute_loss`` (``f_divergence_type="reverse_kl"``),
    with two choices stated: TRL normalises ``ipo``'s log-ratios by the completion lengths, which is
    this loss on length-averaged log-probabilities (``sequence_log_probs(..., average=True)`` for
    the policy and the reference); and TRL 1.16's ``sigmoid`` ignores ``label_smoothing``, where
    polyloss applies conservative DPO's smoothing, as TRL's versions before 1.0 did (equal at 0,
    the default). TRL's ``aot``, ``aot_unpaired`` (they sort the batch), ``discopop``, ``sft`` and
    ``sigmoid_norm`` (this loss's ``sigmoid`` on length-averaged log-probabilities) are not here.
    Rafailov et al., *Direct Preference Optimization*, 2023; Azar et al., *A General Theoretical
    Paradigm to Understand Learning from Human Preferences* (IPO), 2023.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> chosen, rejected = np.array([-10.0, -12.0]), np.array([-14.0, -11.0])
        >>> reference_chosen, reference_rejected = np.array([-11.0, -11.0]), np.array([-13.0, -12.0])
        >>> loss = pl.dpo(chosen, rejected, reference_chosen, reference_rejected, beta=0.1)
        >>> round(float(loss), 6)  # mean of -log sigmoid(0.2) and -log sigmoid(-0.2)
        0.698139
    """
    _check_same(b, _PAIR, policy_chosen, policy_rejected, reference_chosen, reference_rejected)
    if loss_type == "robust" and label_smoothing >= 0.5:
        raise ValueError(f"label_smoothing must be below 0.5 for loss_type='robust', got {label_smoothing!r}")
    if loss_type == "exo_pair" and label_smoothing == 0:
        raise ValueError(
            "label_smoothing must be above 0 for loss_type='exo_pair' (EXO's epsilon; the paper uses 1e-3), got 0.0"
        )
    chosen = policy_chosen - reference_chosen
    rejected = policy_rejected - reference_rejected
    z = beta * (chosen - rejected)
    if loss_type == "sigmoid":
        per_pair = _conservative_sigmoid(b, z, label_smoothing)
    elif loss_type == "hinge":
        per_pair = b.relu(1.0 - z)
    elif loss_type == "ipo":
        gap = chosen - rejected - 1.0 / (2.0 * beta)
        per_pair = gap * gap
    elif loss_type == "robust":
        clean = (1.0 - label_smoothing) * b.softplus(-z)
        per_pair = (clean - label_smoothing * b.softplus(z)) / (1.0 - 2.0 * label_smoothing)
    elif loss_type == "exo_pair":
        log_win, log_lose = _log_sigmoid(b, z), _log_sigmoid(b, -z)
        per_pair = b.sigmoid(z) * (log_win - math.log1p(-label_smoothing)) + b.sigmoid(-z) * (
            log_lose - math.log(label_smoothing)
        )
    elif loss_type == "nca_pair":
        per_pair = b.softplus(-beta * chosen) + 0.5 * b.softplus(beta * chosen) + 0.5 * b.softplus(beta * rejected)
    elif loss_type == "bco_pair":
        per_pair = b.softplus(-beta * chosen) + b.softplus(beta * rejected)
    elif loss_type == "sppo_hard":
        half = 0.5 / beta
        win, lose = chosen - half, rejected + half
        per_pair = win * win + lose * lose
    elif loss_type == "apo_zero":
        per_pair = 1.0 - b.sigmoid(beta * chosen) + b.sigmoid(beta * rejected)
    else:  # apo_down
        per_pair = b.sigmoid(beta * chosen) + 1.0 - b.sigmoid(z)
    return reduce(b.xp, per_pair, reduction)


@loss(
    "post_training",
    settings={
        "beta": positive_number(arrays=True),
        "gamma": finite_number(arrays=True),
        "label_smoothing": number_in(0.0, 0.5),
    },
)
def simpo(
    b: Backend,
    policy_chosen: Array,
    policy_rejected: Array,
    *,
    beta: float | Array = 2.0,
    gamma: float | Array = 0.5,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""SimPO: a reference-free preference loss on length-normalised log-probabilities, with a margin.

    .. math:: \ell_i = -(1 - \varepsilon) \log \sigma\bigl(\beta (a_w - a_l) - \gamma\bigr)
                       - \varepsilon \log \sigma\bigl(\gamma - \beta (a_w - a_l)\bigr)

    with :math:`a = \log \pi(y) / |y|` the average log-probability per token of a completion.

    Args:
        policy_chosen: :math:`a_w`, the policy's average log-probability of each chosen completion
            (``sequence_log_probs(..., average=True)``), any shape (``(N,)``).
        policy_rejected: :math:`a_l`, same shape.
        beta: :math:`\beta > 0`, the reward scale (default 2.0, the paper's range is 2 to 2.5).
        gamma: :math:`\gamma`, the target reward margin (default 0.5; TRL's ``simpo_gamma``).
        label_smoothing: :math:`\varepsilon` in [0, 0.5], as conservative DPO's (default 0).
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The loss.

    TRL's ``CPOTrainer`` with ``loss_type="simpo"`` and ``cpo_alpha=0`` (``trl/experimental/cpo``;
    its logits are :math:`a_w - a_l - \gamma / \beta`, times :math:`\beta`). Meng, Xia, Chen,
    *SimPO: Simple Preference Optimization with a Reference-Free Reward*, 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> loss = pl.simpo(np.array([-0.5]), np.array([-1.0]), beta=2.0, gamma=0.5)
        >>> round(float(loss), 6)  # -log sigmoid(2 * 0.5 - 0.5)
        0.474077
    """
    _check_same(b, ("policy_chosen", "policy_rejected"), policy_chosen, policy_rejected)
    z = beta * (policy_chosen - policy_rejected) - gamma
    return reduce(b.xp, _conservative_sigmoid(b, z, label_smoothing), reduction)


#: CPO's loss types (TRL ``CPOConfig.loss_type``, ``simpo`` being its own loss here)
CPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo")


@loss(
    "post_training",
    settings={
        "beta": positive_number(arrays=True),
        "label_smoothing": number_in(0.0, 0.5),
        "loss_type": one_of(*CPO_LOSS_TYPES),
    },
)
def cpo(
    b: Backend,
    policy_chosen: Array,
    policy_rejected: Array,
    *,
    beta: float | Array = 0.1,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
    reduction: str = "mean",
) -> Array:
    r"""Contrastive Preference Optimization's preference term: DPO without a reference model.

    With :math:`z = \beta (\log \pi(y_w) - \log \pi(y_l))`:

    .. math::
        \texttt{sigmoid}: -(1 - \varepsilon) \log \sigma(z) - \varepsilon \log \sigma(-z), \quad
        \texttt{hinge}: \max(0, 1 - z), \quad
        \texttt{ipo}: \bigl(\log \pi(y_w) - \log \pi(y_l) - \tfrac{1}{2\beta}\bigr)^2

    Args:
        policy_chosen: the policy's log-probability of each chosen completion (summed;
            TRL averages it for ``ipo``: ``sequence_log_probs(..., average=True)``), any shape.
        policy_rejected: same shape.
        beta: :math:`\beta > 0` (default 0.1).
        label_smoothing: :math:`\varepsilon` in [0, 0.5] (``sigmoid`` only; default 0).
        loss_type: ``sigmoid`` (default), ``hinge`` or ``ipo``.
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The preference term. CPO's whole loss adds the chosen completions' negative
        log-likelihood: ``cpo(...) + cpo_alpha * cross_entropy(chosen_logits, chosen_labels,
        ignore_index=-100)`` (TRL's default ``cpo_alpha`` is 1).

    TRL's ``CPOTrainer.cpo_loss`` (``trl/experimental/cpo/cpo_trainer.py``, ``alpha=0``, the
    AlphaPO transformation off). Xu et al., *Contrastive Preference Optimization*, 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> round(float(pl.cpo(np.array([-10.0]), np.array([-12.0]), beta=0.1)), 6)  # -log sigmoid(0.2)
        0.598139
    """
    _check_same(b, ("policy_chosen", "policy_rejected"), policy_chosen, policy_rejected)
    difference = policy_chosen - policy_rejected
    if loss_type == "sigmoid":
        per_pair = _conservative_sigmoid(b, beta * difference, label_smoothing)
    elif loss_type == "hinge":
        per_pair = b.relu(1.0 - beta * difference)
    else:  # ipo
        gap = difference - 1.0 / (2.0 * beta)
        per_pair = gap * gap
    return reduce(b.xp, per_pair, reduction)


def _log1mexp(b: Backend, x: Array) -> Array:
    """log(1 - exp(x)) for x < 0, accurate near 0 and for very negative x (Machler's switch at
    -log 2): ``log(-expm1(x))`` or ``log1p(-exp(x))``, each branch fed only its own side. ``x`` is
    capped at minus the dtype's smallest normal number, so that an average log-probability of exactly
    0 gives a large finite log-odds (and a finite gradient), not ``-inf`` with ``0 * inf = NaN``."""
    xp = b.xp
    cap = -float(xp.finfo(x.dtype).smallest_normal)
    x = xp.where(x < cap, x, cap)
    near_zero = x > -_LOG_2
    return xp.where(
        near_zero,
        xp.log(-xp.expm1(xp.where(near_zero, x, -1.0))),
        xp.log1p(-xp.exp(xp.where(near_zero, -1.0, x))),
    )


def _check_log_probabilities(b: Backend, name: str, x: Array) -> None:
    """Refuse positive values (or NaN) in eager mode: ``x`` holds log-probabilities."""
    if b.is_opaque(x) or math.prod(x.shape) == 0:
        return
    _, high = b.float_range(x)
    if not high <= 0:
        raise ValueError(f"{name} must hold log-probabilities (<= 0), got a value of {high!r}")


@loss("post_training", settings={"beta": positive_number(arrays=True)})
def orpo(
    b: Backend,
    policy_chosen: Array,
    policy_rejected: Array,
    *,
    beta: float | Array = 0.1,
    reduction: str = "mean",
) -> Array:
    r"""ORPO's odds-ratio term, on average log-probabilities.

    .. math:: \ell_i = -\beta \log \sigma\Bigl(\log \frac{\operatorname{odds}(y_w)}{\operatorname{odds}(y_l)}\Bigr),
              \qquad \log \operatorname{odds}(y) = a - \log(1 - e^{a})

    with :math:`a` the average log-probability per token of a completion (:math:`a < 0`).

    Args:
        policy_chosen: :math:`a_w`, the policy's average log-probability of each chosen completion
            (``sequence_log_probs(..., average=True)``), negative, any shape.
        policy_rejected: :math:`a_l`, same shape.
        beta: :math:`\beta > 0`, the weight of the term (default 0.1; the paper's :math:`\lambda`).
        reduction: ``"mean"`` (over pairs), ``"sum"`` or ``"none"`` (per pair).

    Returns:
        The odds-ratio term, to add to the supervised loss: ORPO's whole loss is
        ``cross_entropy(chosen_logits, chosen_labels, ignore_index=-100) + orpo(...)``.
        A positive log-probability raises ``ValueError`` in eager mode. An average
        log-probability of exactly 0 (probability 1, infinite odds) is read as minus the dtype's
        smallest normal number: the term is then about 0 (chosen) or large (rejected), with finite
        gradients (TRL's gives NaN gradients there).

    TRL's ``ORPOTrainer.odds_ratio_loss`` (``trl/experimental/orpo/orpo_trainer.py``) returns
    :math:`\beta \log \sigma(\cdot)` and subtracts its mean from the NLL; this is that negated
    term. :math:`\log(1 - e^a)` is computed as Machler's ``log1mexp`` (TRL's helper of the same
    name). Hong, Lee, Thorne, *ORPO: Monolithic Preference Optimization without Reference Model*, 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> round(float(pl.orpo(np.array([-0.5]), np.array([-1.5]), beta=0.1)), 6)
        0.017086
    """
    _check_same(b, ("policy_chosen", "policy_rejected"), policy_chosen, policy_rejected)
    _check_log_probabilities(b, "policy_chosen", policy_chosen)
    _check_log_probabilities(b, "policy_rejected", policy_rejected)
    log_odds = (policy_chosen - policy_rejected) - (_log1mexp(b, policy_chosen) - _log1mexp(b, policy_rejected))
    return reduce(b.xp, beta * b.softplus(-log_odds), reduction)


@loss(
    "post_training",
    settings={
        "beta": positive_number(arrays=True),
        "desirable_weight": nonnegative_number(arrays=True),
        "undesirable_weight": nonnegative_number(arrays=True),
    },
)
def kto(
    b: Backend,
    policy_logps: Array,
    reference_logps: Array,
    desirable: Array,
    kl: Array,
    *,
    beta: float | Array = 0.1,
    desirable_weight: float | Array = 1.0,
    undesirable_weight: float | Array = 1.0,
    reduction: str = "mean",
) -> Array:
    r"""Kahneman-Tversky Optimization: an unpaired loss on desirable and undesirable completions.

    With :math:`r = \log \pi(y) - \log \pi_\text{ref}(y)` and :math:`z_0` the reference point
    (the clamped KL estimate, held constant):

    .. math::
        \ell_i = \begin{cases}
            \lambda_D \bigl(1 - \sigma(\beta (r_i - z_0))\bigr) & y_i \text{ desirable} \\
            \lambda_U \bigl(1 - \sigma(\beta (z_0 - r_i))\bigr) & y_i \text{ undesirable}
        \end{cases},
        \qquad z_0 = \max(0, \mathrm{kl})

    Args:
        policy_logps: the policy's log-probability of each completion (summed over its tokens),
            ``(N,)``.
        reference_logps: the reference model's, same shape.
        desirable: ``(N,)`` ``bool`` (or 0/1 integer) flags: True for a desirable completion.
        kl: the estimate of KL(policy || reference), a 0-d array (TRL: the batch mean of
            ``policy_logps - reference_logps`` on mismatched prompt/completion pairs); clamped at 0
            and held constant (no gradient), as TRL's ``.detach().clamp(min=0)``.
        beta: :math:`\beta > 0` (default 0.1).
        desirable_weight: :math:`\lambda_D \ge 0` (default 1).
        undesirable_weight: :math:`\lambda_U \ge 0` (default 1).
        reduction: ``"mean"`` (over all completions), ``"sum"`` or ``"none"`` (per completion).

    Returns:
        The loss.

    TRL's ``KTOTrainer`` (``trl/trainer/kto_trainer.py``, ``loss_type="kto"``), whose mean runs over
    the desirable and undesirable losses concatenated. Ethayarajh et al., *KTO: Model Alignment as
    Prospect Theoretic Optimization*, 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> loss = pl.kto(np.array([-10.0, -14.0]), np.array([-11.0, -13.0]), np.array([True, False]), np.array(0.0))
        >>> round(float(loss), 6)  # 1 - sigmoid(0.1) for both completions
        0.475021
    """
    xp = b.xp
    _check_same(b, ("policy_logps", "reference_logps"), policy_logps, reference_logps)
    check_floating(xp, "kl", kl)
    if tuple(kl.shape) != ():
        raise ValueError(f"kl must be a 0-d array (the batch's KL estimate), got shape {tuple(kl.shape)}")
    check_same_shape("policy_logps", policy_logps, "desirable", desirable)
    if desirable.dtype != xp.bool and not is_integer(xp, desirable):
        raise TypeError(f"desirable must hold bool (or 0/1 integer) flags, got dtype {desirable.dtype}")
    reference_point = b.stop_gradient(b.relu(kl))
    log_ratio = policy_logps - reference_logps
    is_desirable = desirable if desirable.dtype == xp.bool else desirable != 0
    signed = xp.where(is_desirable, log_ratio - reference_point, reference_point - log_ratio)
    weight = xp.where(is_desirable, desirable_weight * xp.ones_like(log_ratio), undesirable_weight)
    return reduce(xp, weight * (1.0 - b.sigmoid(beta * signed)), reduction)


# --------------------------------------------------------------------------- policy losses

#: GRPO's aggregations (TRL 1.16 ``GRPOConfig.loss_type``) that polyloss has
GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo")


@loss(
    "post_training",
    settings={
        "loss_type": one_of(*GRPO_LOSS_TYPES),
        "epsilon_low": number_in(0.0, 1.0),
        "epsilon_high": nonnegative_number(),
        "beta": nonnegative_number(arrays=True),
        "importance_sampling_level": one_of("token", "sequence"),
        "delta": positive_number(optional=True),
    },
)
def grpo(
    b: Backend,
    logps: Array,
    old_logps: Array,
    advantages: Array,
    mask: Array,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float | Array = 0.0,
    ref_logps: Array | None = None,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    max_completion_length: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""GRPO's clipped policy loss and its aggregations (Dr. GRPO, DAPO, BNPO, CISPO; GSPO's ratio).

    Per token, with the importance ratio :math:`w_{it} = \exp(\log \pi_{it} - \log \pi^\text{old}_{it})`
    (``importance_sampling_level="token"``) or GSPO's sequence ratio
    :math:`w_i = \exp\bigl(\tfrac{1}{|y_i|} \sum_t m_{it} (\log \pi_{it} - \log \pi^\text{old}_{it})\bigr)`
    (``"sequence"``), the advantage :math:`A_i`, :math:`\varepsilon_l, \varepsilon_h` and the mask
    :math:`m`:

    .. math::
        L_{it} = -\min\bigl(w_{it} A_i,\ \operatorname{clip}(w_{it}, 1 - \varepsilon_l, 1 + \varepsilon_h) A_i\bigr)
                 + \beta\, \bigl(e^{\rho_{it}} - \rho_{it} - 1\bigr),
        \qquad \rho_{it} = \log \pi^\text{ref}_{it} - \log \pi_{it}

    (the k3 estimator of KL to the reference, when :math:`\beta > 0`; with ``delta``,
    :math:`w_{it}` in the first product is capped at :math:`\delta` first: two-sided clipping).
    ``cispo``: :math:`L_{it} = -\operatorname{sg}[\min(w_{it}, \varepsilon_h)]\, A_i \log \pi_{it}`
    (sg: held constant). ``"mean"`` is the aggregation of ``loss_type``:

    .. math::
        \begin{aligned}
        \texttt{grpo}&: \tfrac{1}{N} \textstyle\sum_i \frac{\sum_t m_{it} L_{it}}{\max(1, \sum_t m_{it})} &
        \texttt{bnpo}, \texttt{dapo}, \texttt{cispo}&: \frac{\sum_{it} m_{it} L_{it}}{\max(1, \sum_{it} m_{it})} \\
        \texttt{dr\_grpo}&: \frac{\sum_{it} m_{it} L_{it}}{N \cdot T_\text{max}}
        \end{aligned}

    Args:
        logps: ``(N, T)`` the policy's log-probability of each completion token (differentiated).
        old_logps: ``(N, T)`` the sampling policy's (pass ``logps.detach()`` /
            ``jax.lax.stop_gradient(logps)`` when on policy: ratio 1).
        advantages: ``(N,)`` one advantage per completion (or ``(N, T)`` per token).
        mask: ``(N, T)`` completion mask: ``bool``, integer or floating; entries other than 0 are kept.
        loss_type: the aggregation: ``grpo``, ``bnpo``, ``dr_grpo``, ``dapo`` (default, as TRL's)
            or ``cispo``.
        epsilon_low: :math:`\varepsilon_l` in [0, 1] (default 0.2).
        epsilon_high: :math:`\varepsilon_h \ge 0` (default 0.2; DAPO's clip-higher uses 0.28;
            ``cispo`` caps the ratio itself at :math:`\varepsilon_h`, where TRL recommends 5).
        beta: :math:`\beta \ge 0`, the KL coefficient (default 0: no reference model needed).
        ref_logps: ``(N, T)`` the reference model's log-probabilities; required when ``beta`` is
            not the number 0.
        importance_sampling_level: ``"token"`` (GRPO) or ``"sequence"`` (GSPO).
        delta: optional cap :math:`\delta > 1 + \varepsilon_h` on the unclipped ratio (two-sided
            clipping, INTELLECT-2); ``None``: none.
        max_completion_length: :math:`T_\text{max}` of ``dr_grpo`` (default: ``T``, the padded
            length of this batch; TRL uses its ``max_completion_length`` setting).
        reduction: ``"mean"`` (the aggregation above), ``"sum"`` (:math:`\sum_{it} m_{it} L_{it}`)
            or ``"none"`` (:math:`m_{it} L_{it}`, ``(N, T)``).

    Returns:
        The loss.

    TRL 1.16's ``GRPOTrainer._compute_loss`` for one process and no gradient accumulation; there
    DAPO and CISPO divide by ``num_items_in_batch``, the token count of the whole generation batch:
    with accumulation, take ``reduction="sum"`` and divide by that count. Each clipped term is
    computed as :math:`A \min(w, 1 + \varepsilon_h)` for :math:`A > 0` and
    :math:`A \max(w, 1 - \varepsilon_l)` for :math:`A < 0` (equal to TRL's form), so a ratio far
    outside the range gives a finite loss and a zero gradient where TRL's ``exp`` overflows to
    NaN gradients. Shao et al., *DeepSeekMath* (GRPO), 2024; Liu et al., *Understanding R1-Zero-Like
    Training* (Dr. GRPO), 2025; Yu et al., *DAPO*, 2025; Zheng et al., *Group Sequence Policy
    Optimization*, 2025; MiniMax, *MiniMax-M1* (CISPO), 2025.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> logps = np.log(np.array([[0.5, 0.4, 0.9], [0.2, 0.6, 0.7]]))
        >>> mask = np.array([[1, 1, 0], [1, 1, 1]])
        >>> advantages = np.array([1.0, -1.0])
        >>> float(pl.grpo(logps, logps, advantages, mask))  # on policy: -sum(m A) / sum(m)
        0.2
    """
    xp = b.xp
    _check_same(b, ("logps", "old_logps"), logps, old_logps)
    if logps.ndim != 2:
        raise ValueError(f"logps must be (N, T) per-token log-probabilities, got shape {tuple(logps.shape)}")
    kept = _kept(b, mask, logps)
    check_floating(xp, "advantages", advantages)
    if advantages.shape != logps.shape[:1] and advantages.shape != logps.shape:
        raise ValueError(
            f"advantages must be (N,) or (N, T) for logps of shape {tuple(logps.shape)}, "
            f"got shape {tuple(advantages.shape)}"
        )
    with_kl = not is_static_zero(beta)
    if with_kl:
        if ref_logps is None:
            raise ValueError("ref_logps is required when beta is not 0 (the KL term to the reference model)")
        _check_same(b, ("logps", "ref_logps"), logps, ref_logps)
    if max_completion_length is not None and (
        isinstance(max_completion_length, bool)
        or not isinstance(max_completion_length, int)
        or max_completion_length < 1
    ):
        raise ValueError(f"max_completion_length must be an int >= 1 or None, got {max_completion_length!r}")

    logps = _masked(b, kept, logps)
    log_ratio = logps - _masked(b, kept, old_logps)
    counts = xp.sum(xp.astype(kept, logps.dtype), axis=-1, keepdims=True)
    if importance_sampling_level == "sequence":
        log_ratio = xp.sum(log_ratio, axis=-1, keepdims=True) / xp.where(counts > 1.0, counts, 1.0)
    advantage = advantages if advantages.ndim == 2 else advantages[:, None]
    if loss_type == "cispo":
        capped = xp.exp(_at_most(xp, log_ratio, math.log(epsilon_high) if epsilon_high > 0 else -math.inf))
        per_token = -b.stop_gradient(capped) * advantage * logps
    else:
        per_token = -advantage * _clipped_ratio(b, log_ratio, advantage, epsilon_low, epsilon_high, delta)
    if with_kl:
        assert ref_logps is not None
        rho = _masked(b, kept, ref_logps) - logps
        per_token = per_token + beta * (xp.expm1(rho) - rho)
    per_token = _masked(b, kept, per_token)
    if reduction == "none":
        return per_token
    total = xp.sum(per_token)
    if reduction == "sum":
        return total
    if loss_type == "grpo":
        return mean(xp, xp.sum(per_token, axis=-1) / xp.where(counts[:, 0] > 1.0, counts[:, 0], 1.0))
    if loss_type == "dr_grpo":
        length = logps.shape[-1] if max_completion_length is None else max_completion_length
        slots = logps.shape[0] * length
        return total / slots if slots else total  # the sum of an empty batch is 0
    token_count = xp.sum(counts)
    return total / xp.where(token_count > 1.0, token_count, 1.0)


def _at_most(xp: Any, x: Array, bound: float) -> Array:
    """min(x, bound) with derivative 1 below the bound and 0 above it (``bound`` may be +-inf)."""
    return xp.where(x < bound, x, bound)


def _at_least(xp: Any, x: Array, bound: float) -> Array:
    """max(x, bound) with derivative 1 above the bound and 0 below it."""
    return xp.where(x > bound, x, bound)


def _clipped_ratio(
    b: Backend, log_ratio: Array, advantage: Array, epsilon_low: float, epsilon_high: float, delta: float | None
) -> Array:
    """The ratio factor of PPO's clipped objective, ``min(w A, clip(w) A) / A``: ``min(w, 1 + eps_h)``
    where ``A > 0``, ``max(w, 1 - eps_l)`` (capped at ``delta``) where ``A < 0``. Each branch
    exponentiates its own clamped log-ratio, so a huge ratio never meets a zero derivative."""
    xp = b.xp
    upper = math.log1p(epsilon_high)
    lower = math.log1p(-epsilon_low) if epsilon_low < 1 else -math.inf
    positive = xp.exp(_at_most(xp, log_ratio, upper))
    negative_log = _at_least(xp, log_ratio, lower)
    if delta is not None:
        negative_log = _at_most(xp, negative_log, max(math.log(delta), lower))
    negative = xp.exp(xp.where(advantage < 0, negative_log, 0.0))
    # at A == 0 the value is 0 either way; the upper branch gives d/dA its one-sided value (w on policy)
    return xp.where(advantage < 0, negative, positive)


# --------------------------------------------------------------------------- token-level distillation


def _token_log_probs(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    labels: Array | None,
    ignore_index: int,
    temperature: float | Array,
) -> tuple[Array, Array, Array | None]:
    """Both log-softmaxes at ``temperature``, and the kept tokens (``None``: every one). An ignored
    token's logits are zeroed first, so ``-inf`` rows there give no NaN gradient."""
    xp = b.xp
    _check_same(b, ("student_logits", "teacher_logits"), student_logits, teacher_logits)
    if student_logits.ndim < 1:
        raise ValueError("student_logits must have a vocabulary axis (..., V), got a 0-d array")
    kept = None
    if labels is not None:
        if not is_integer(xp, labels):
            raise TypeError(f"labels must hold integer token ids, got dtype {labels.dtype}")
        check_same_shape("labels", labels, "student_logits without its vocabulary axis", student_logits[..., 0])
        kept = labels != ignore_index
        row = xp.expand_dims(kept, axis=-1)
        student_logits = xp.where(row, student_logits, 0.0)
        teacher_logits = xp.where(row, teacher_logits, 0.0)
    log_s = b.log_softmax(student_logits / temperature, -1)
    return log_s, b.log_softmax(teacher_logits / temperature, -1), kept


def _kl_log(xp: Any, log_p: Array, log_q: Array) -> Array:
    """KL(p || q) over the last axis from log-probabilities; a class impossible under p adds 0."""
    impossible = log_p == -math.inf
    return xp.sum(zero_times(xp, xp.exp(log_p), log_p - xp.where(impossible, 0.0, log_q)), axis=-1)


def _token_reduce(xp: Any, per_token: Array, kept: Array | None, reduction: str) -> Array:
    """Zero the ignored tokens, then ``"mean"`` over the kept ones (0 when none is kept)."""
    if kept is None:
        return reduce(xp, per_token, reduction)
    per_token = xp.where(kept, per_token, 0.0)
    count = xp.sum(xp.astype(kept, per_token.dtype)) if reduction == "mean" else None
    return reduce(xp, per_token, reduction, count)


@loss(
    "post_training",
    settings={"beta": number_in(0.0, 1.0), "temperature": positive_number(arrays=True)},
)
def generalized_jsd(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    labels: Array | None = None,
    *,
    beta: float = 0.5,
    temperature: float | Array = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    r"""Generalized Jensen-Shannon divergence between a student's and a teacher's next-token distributions.

    With :math:`s = \operatorname{softmax}(x^S / T)`, :math:`t = \operatorname{softmax}(x^T / T)`
    per token and the mixture :math:`m = \beta t + (1 - \beta) s`:

    .. math::
        \ell_k = \begin{cases}
            \mathrm{KL}(t_k \,\|\, s_k) & \beta = 0 \text{ (forward KL)} \\
            \beta\, \mathrm{KL}(t_k \,\|\, m_k) + (1 - \beta)\, \mathrm{KL}(s_k \,\|\, m_k) & 0 < \beta < 1 \\
            \mathrm{KL}(s_k \,\|\, t_k) & \beta = 1 \text{ (reverse KL)}
        \end{cases}

    Args:
        student_logits: ``(..., V)`` the student's next-token scores (``(N, T, V)``).
        teacher_logits: the teacher's, same shape (differentiated too: stop its gradient yourself
            for a frozen teacher, or compute it without gradients as trainers do).
        labels: optional token ids, the logits' shape without ``V``: tokens whose label is
            ``ignore_index`` contribute nothing.
        beta: :math:`\beta` in [0, 1], a Python float (default 0.5).
        temperature: :math:`T > 0` dividing both logits (default 1). Unlike ``distillation``, no
            :math:`T^2` factor, as TRL's and Liger-Kernel's.
        ignore_index: the label of ignored tokens (default -100).
        reduction: ``"mean"`` (over kept tokens; 0 when none is), ``"sum"`` or ``"none"`` (per
            token, 0 at ignored ones).

    Returns:
        The divergence (natural log).

    TRL's ``GKDTrainer.generalized_jsd_loss`` (``trl/experimental/gkd/gkd_trainer.py``;
    ``reduction="batchmean"`` with labels is this ``"mean"``; without labels TRL divides by the
    first dimension, here by the number of tokens), and Liger-Kernel's ``LigerJSD`` (same
    :math:`\beta` convention, mean over tokens). Agarwal et al., *On-Policy Distillation of Language
    Models: Learning from Self-Generated Mistakes* (GKD), 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> student = np.log(np.array([[0.5, 0.5]]))
        >>> teacher = np.log(np.array([[0.9, 0.1]]))
        >>> forward = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
        >>> bool(np.isclose(pl.generalized_jsd(student, teacher, beta=0.0), forward))
        True
    """
    xp = b.xp
    log_s, log_t, kept = _token_log_probs(b, student_logits, teacher_logits, labels, ignore_index, temperature)
    if beta == 0:
        per_token = _kl_log(xp, log_t, log_s)
    elif beta == 1:
        per_token = _kl_log(xp, log_s, log_t)
    else:
        log_m = safe_logaddexp(b, log_t + math.log(beta), log_s + math.log1p(-beta))
        per_token = beta * _kl_log(xp, log_t, log_m) + (1.0 - beta) * _kl_log(xp, log_s, log_m)
    return _token_reduce(xp, per_token, kept, reduction)


@loss("post_training", settings={"temperature": positive_number(arrays=True)})
def forward_kl(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    labels: Array | None = None,
    *,
    temperature: float | Array = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    r"""Token-level forward KL of the teacher's next-token distribution from the student's.

    .. math:: \ell_k = \mathrm{KL}(t_k \,\|\, s_k) = \sum_v t_{kv} (\log t_{kv} - \log s_{kv})

    with :math:`s = \operatorname{softmax}(x^S / T)`, :math:`t = \operatorname{softmax}(x^T / T)`:
    mass-covering (the student spreads over every token the teacher considers).

    Args:
        student_logits: ``(..., V)`` the student's next-token scores.
        teacher_logits: the teacher's, same shape (differentiated too).
        labels: optional token ids, the logits' shape without ``V``; ``ignore_index`` tokens are left out.
        temperature: :math:`T > 0` dividing both logits (default 1; no :math:`T^2` factor).
        ignore_index: the label of ignored tokens (default -100).
        reduction: ``"mean"`` (over kept tokens), ``"sum"`` or ``"none"`` (per token).

    Returns:
        The divergence; ``generalized_jsd(..., beta=0)``.

    TRL's ``generalized_jsd_loss(beta=0)``; Liger-Kernel's ``LigerFusedLinearKLDivLoss`` on logits.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> student, teacher = np.log(np.array([[0.5, 0.5]])), np.log(np.array([[0.9, 0.1]]))
        >>> round(float(pl.forward_kl(student, teacher)), 6)
        0.368064
    """
    log_s, log_t, kept = _token_log_probs(b, student_logits, teacher_logits, labels, ignore_index, temperature)
    return _token_reduce(b.xp, _kl_log(b.xp, log_t, log_s), kept, reduction)


@loss("post_training", settings={"temperature": positive_number(arrays=True)})
def reverse_kl(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    labels: Array | None = None,
    *,
    temperature: float | Array = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    r"""Token-level reverse KL of the student's next-token distribution from the teacher's.

    .. math:: \ell_k = \mathrm{KL}(s_k \,\|\, t_k) = \sum_v s_{kv} (\log s_{kv} - \log t_{kv})

    with :math:`s = \operatorname{softmax}(x^S / T)`, :math:`t = \operatorname{softmax}(x^T / T)`:
    mode-seeking (MiniLLM, on-policy distillation).

    Args:
        student_logits: ``(..., V)`` the student's next-token scores.
        teacher_logits: the teacher's, same shape (differentiated too).
        labels: optional token ids, the logits' shape without ``V``; ``ignore_index`` tokens are left out.
        temperature: :math:`T > 0` dividing both logits (default 1; no :math:`T^2` factor).
        ignore_index: the label of ignored tokens (default -100).
        reduction: ``"mean"`` (over kept tokens), ``"sum"`` or ``"none"`` (per token).

    Returns:
        The divergence; ``generalized_jsd(..., beta=1)``.

    TRL's ``generalized_jsd_loss(beta=1)``. Gu et al., *MiniLLM: Knowledge Distillation of Large
    Language Models*, 2024.

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> student, teacher = np.log(np.array([[0.5, 0.5]])), np.log(np.array([[0.9, 0.1]]))
        >>> round(float(pl.reverse_kl(student, teacher)), 6)
        0.510826
    """
    log_s, log_t, kept = _token_log_probs(b, student_logits, teacher_logits, labels, ignore_index, temperature)
    return _token_reduce(b.xp, _kl_log(b.xp, log_s, log_t), kept, reduction)


@loss("post_training", settings={"temperature": positive_number(arrays=True)})
def total_variation(
    b: Backend,
    student_logits: Array,
    teacher_logits: Array,
    labels: Array | None = None,
    *,
    temperature: float | Array = 1.0,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Array:
    r"""Token-level total variation distance between the student's and the teacher's distributions.

    .. math:: \ell_k = \tfrac12 \sum_v |s_{kv} - t_{kv}|

    with :math:`s = \operatorname{softmax}(x^S / T)`, :math:`t = \operatorname{softmax}(x^T / T)`;
    in [0, 1], symmetric, bounded gradients.

    Args:
        student_logits: ``(..., V)`` the student's next-token scores.
        teacher_logits: the teacher's, same shape (differentiated too).
        labels: optional token ids, the logits' shape without ``V``; ``ignore_index`` tokens are left out.
        temperature: :math:`T > 0` dividing both logits (default 1).
        ignore_index: the label of ignored tokens (default -100).
        reduction: ``"mean"`` (over kept tokens), ``"sum"`` or ``"none"`` (per token).

    Returns:
        The distance. Where :math:`s_{kv} = t_{kv}` exactly, :math:`|\cdot|` has derivative 0 there
        (on every backend).

    Liger-Kernel's ``LigerTVDLoss`` (``reduction="batchmean"`` with ``ignore_index``: this ``"mean"``).

    Examples:
        >>> import numpy as np
        >>> import polyloss.numpy as pl
        >>> student, teacher = np.log(np.array([[0.5, 0.5]])), np.log(np.array([[0.9, 0.1]]))
        >>> round(float(pl.total_variation(student, teacher)), 6)
        0.4
    """
    xp = b.xp
    log_s, log_t, kept = _token_log_probs(b, student_logits, teacher_logits, labels, ignore_index, temperature)
    per_token = 0.5 * xp.sum(b.abs(xp.exp(log_s) - xp.exp(log_t)), axis=-1)
    return _token_reduce(xp, per_token, kept, reduction)
