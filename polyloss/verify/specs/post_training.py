"""Specs of the language-model post-training losses (see ``polyloss/core/post_training.py``).

The torch references re-type TRL 1.16.0's definitions (``trl/trainer/dpo_trainer.py``
``DPOTrainer._compute_loss``, ``trl/trainer/grpo_trainer.py`` ``GRPOTrainer._compute_loss``,
``trl/trainer/kto_trainer.py`` ``KTOTrainer._compute_loss``, ``trl/experimental/cpo/cpo_trainer.py``
``CPOTrainer.cpo_loss``, ``trl/experimental/orpo/orpo_trainer.py`` ``ORPOTrainer.odds_ratio_loss`` and
``log1mexp``, ``trl/experimental/gkd/gkd_trainer.py`` ``GKDTrainer.generalized_jsd_loss``) and
Liger-Kernel's ``TorchTVDLoss`` (``test/transformers/test_tvd.py``), each from the lines that compute
the loss of the trainer's per-sequence or per-token tensors; the NumPy references are float64 loops,
one scalar at a time, from the papers' formulas.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import labels, normal
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Raises, f64, fmean, i64, softplus
from polyloss.verify.specs.record import Case, Layout, LossSpec, Mean, Plot, Variant
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference


def _sigmoid(x: float) -> float:
    return math.exp(-softplus(-x))


# --------------------------------------------------------------------------- plots

#: the reference-free losses on average log-probabilities (simpo, orpo): chosen and rejected around -1.5
AVERAGE_AXIS = "average log-probability margin a_w - a_l (around -1.5)"
#: the distillation divergences' axis: one token, four vocabulary entries
SHIFT_AXIS = "shift of the student's top logit (teacher logits 2, 1, 0, -1)"
_TEACHER = (2.0, 1.0, 0.0, -1.0)


def _margin(x: float, centre: float, chosen: str, rejected: str) -> dict[str, np.ndarray]:
    """One pair: ``chosen`` at ``centre + x / 2`` and ``rejected`` at ``centre - x / 2`` (a margin of x)."""
    return {chosen: f64([centre + x / 2.0]), rejected: f64([centre - x / 2.0])}


def _log_ratio_pair(x: float) -> dict[str, np.ndarray]:
    """One pair of summed log-probabilities, the reference at -20: log-ratios +x/2 (chosen) and -x/2."""
    return _margin(x, -20.0, "policy_chosen", "policy_rejected") | {
        "reference_chosen": f64([-20.0]),
        "reference_rejected": f64([-20.0]),
    }


def _average_plot(sweep: tuple[str, tuple[Any, ...]]) -> Plot:
    """A pair of average log-probabilities around -1.5 (negative over the whole span)."""
    return Plot(
        AVERAGE_AXIS,
        lambda x: _margin(x, -1.5, "policy_chosen", "policy_rejected"),
        span=(-2.5, 2.5),
        sweep=sweep,
    )


def _shift_plot(sweep: tuple[str, tuple[Any, ...]]) -> Plot:
    """One token: the student's logits are the teacher's with the top one shifted by x (equal at 0)."""
    teacher = f64([list(_TEACHER)])

    def inputs(x: float) -> dict[str, np.ndarray]:
        student = teacher.copy()
        student[0, 0] += x
        return {"student_logits": student, "teacher_logits": teacher.copy()}

    return Plot(SHIFT_AXIS, inputs, span=(-4.0, 4.0), sweep=sweep)


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    pair = ("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected")
    huge = {"policy_chosen": f64([0.0, -1e4]), "policy_rejected": f64([-1e4, 0.0])}
    zeros = {"reference_chosen": f64([0.0, 0.0]), "reference_rejected": f64([0.0, 0.0])}
    for loss_type in ("sigmoid", "hinge", "robust", "nca_pair", "bco_pair", "apo_zero", "apo_down"):
        edges.case(
            "dpo",
            f"log-ratios of +-1e4, {loss_type}",
            huge | zeros,
            Finite(),
            params={"loss_type": loss_type, "beta": 0.1, "label_smoothing": 0.1 if loss_type == "robust" else 0.0},
        )
    edges.case(
        "dpo",
        "log-ratios of +-1e4, sigmoid: the winning pair 0, the losing one beta * 1e4",
        huge | zeros,
        Finite(0.5 * (softplus(-0.1 * 1e4) + softplus(0.1 * 1e4))),
    )
    edges.case(
        "dpo",
        "policy equal to the reference: log 2",
        {name: f64([-3.0, -7.0]) for name in pair},
        Finite(math.log(2.0)),
    )
    edges.case(
        "dpo",
        "robust needs label_smoothing below 0.5",
        {name: f64([-3.0]) for name in pair},
        Raises(ValueError, r"label_smoothing must be below 0.5 for loss_type='robust', got 0.5"),
        params={"loss_type": "robust", "label_smoothing": 0.5},
    )
    edges.case(
        "dpo",
        "exo_pair needs label_smoothing above 0",
        {name: f64([-3.0]) for name in pair},
        Raises(ValueError, r"label_smoothing must be above 0 for loss_type='exo_pair'"),
        params={"loss_type": "exo_pair"},
    )
    edges.case(
        "dpo",
        "an unknown loss_type",
        {name: f64([-3.0]) for name in pair},
        Raises(ValueError, r"loss_type must be 'sigmoid', .*, got 'dpop'"),
        params={"loss_type": "dpop"},
    )
    edges.case(
        "dpo",
        "beta < 0",
        {name: f64([-3.0]) for name in pair},
        Raises(ValueError, r"beta must be a finite number > 0, got -0.1"),
        params={"beta": -0.1},
    )
    edges.case(
        "dpo",
        "mismatched shapes",
        {"policy_chosen": f64([-3.0, -2.0]), **{name: f64([-3.0]) for name in pair[1:]}},
        Raises(ValueError, r"policy_rejected must have the same shape as policy_chosen"),
    )
    edges.empty_batch("dpo", {name: np.zeros(0) for name in pair}, (0,))

    edges.case(
        "simpo",
        "average log-probabilities of +-1e4",
        {"policy_chosen": f64([0.0, -1e4]), "policy_rejected": f64([-1e4, 0.0])},
        Finite(0.5 * (softplus(-(2.0 * 1e4 - 0.5)) + softplus(2.0 * 1e4 + 0.5))),
    )
    edges.empty_batch("simpo", {"policy_chosen": np.zeros(0), "policy_rejected": np.zeros(0)}, (0,))

    edges.case(
        "cpo",
        "log-probabilities of +-1e4",
        {"policy_chosen": f64([0.0, -1e4]), "policy_rejected": f64([-1e4, 0.0])},
        Finite(0.5 * (softplus(-0.1 * 1e4) + softplus(0.1 * 1e4))),
    )
    edges.empty_batch("cpo", {"policy_chosen": np.zeros(0), "policy_rejected": np.zeros(0)}, (0,))

    edges.case(
        "orpo",
        "very unlikely completions (average log-probability -1e4)",
        {"policy_chosen": f64([-1e4, -1.0]), "policy_rejected": f64([-1.0, -1e4])},
        Finite(),
    )
    edges.case(
        "orpo",
        "a completion of probability 1 (average log-probability 0) chosen: 0, finite gradients",
        {"policy_chosen": f64([0.0]), "policy_rejected": f64([-1.0])},
        Finite(0.0, rtol=0.0),
    )
    edges.case(
        "orpo",
        "a positive log-probability",
        {"policy_chosen": f64([0.5]), "policy_rejected": f64([-1.0])},
        Raises(ValueError, r"policy_chosen must hold log-probabilities \(<= 0\), got a value of 0.5"),
    )
    edges.empty_batch("orpo", {"policy_chosen": np.zeros(0), "policy_rejected": np.zeros(0)}, (0,))

    edges.case(
        "kto",
        "log-ratios of +-1e4",
        {
            "policy_logps": f64([0.0, -1e4, 0.0, -1e4]),
            "reference_logps": f64([-1e4, 0.0, -1e4, 0.0]),
            "desirable": np.array([True, True, False, False]),
            "kl": f64(0.0),
        },
        Finite(0.25 * (0.0 + 1.0 + 1.0 + 0.0), rtol=1e-9),
    )
    edges.case(
        "kto",
        "a negative KL estimate counts as 0",
        {
            "policy_logps": f64([-10.0]),
            "reference_logps": f64([-11.0]),
            "desirable": np.array([True]),
            "kl": f64(-5.0),
        },
        Finite(1.0 - _sigmoid(0.1)),
    )
    edges.empty_batch(
        "kto",
        {
            "policy_logps": np.zeros(0),
            "reference_logps": np.zeros(0),
            "desirable": np.zeros(0, dtype=bool),
            "kl": f64(0.0),
        },
        (0,),
    )

    two_by_three = {"logps": f64([[-1.0, -2.0, -0.5], [-3.0, -0.1, -2.0]])}
    for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo", "cispo"):
        edges.case(
            "grpo",
            f"every token masked, {loss_type}: 0",
            two_by_three
            | {
                "old_logps": f64([[-1.5, -2.0, -0.5], [-3.0, -0.3, -2.0]]),
                "advantages": f64([1.0, -1.0]),
                "mask": i64([[0, 0, 0], [0, 0, 0]]),
            },
            Finite(0.0, grad="zero"),
            params={"loss_type": loss_type},
        )
    edges.case(
        "grpo",
        "advantages all zero: 0",
        two_by_three
        | {"old_logps": f64([[-1.5, -2.0, -0.5], [-3.0, -0.3, -2.0]]), "advantages": f64([0.0, 0.0])}
        | {"mask": i64([[1, 1, 0], [1, 1, 1]])},
        Finite(0.0),
    )
    edges.case(
        "grpo",
        "a single token",
        {"logps": f64([[-0.7]]), "old_logps": f64([[-0.7]]), "advantages": f64([2.0]), "mask": i64([[1]])},
        Finite(-2.0),
    )
    edges.case(
        "grpo",
        "ratios of e^+-1e4 with positive advantages: clipped, finite",
        {
            "logps": f64([[0.0, -1e4]]),
            "old_logps": f64([[-1e4, 0.0]]),
            "advantages": f64([1.0]),
            "mask": i64([[1, 1]]),
        },
        Finite(-(1.2 + math.exp(-1e4)) / 2.0),
    )
    edges.case(
        "grpo",
        "padding holding -inf and NaN log-probabilities: masked out",
        {
            "logps": f64([[-1.0, -math.inf, math.nan]]),
            "old_logps": f64([[-1.0, math.nan, -math.inf]]),
            "advantages": f64([1.0]),
            "mask": i64([[1, 0, 0]]),
        },
        Finite(-1.0),
    )
    edges.case(
        "grpo",
        "beta > 0 without ref_logps",
        {"logps": f64([[-1.0]]), "old_logps": f64([[-1.0]]), "advantages": f64([1.0]), "mask": i64([[1]])},
        Raises(ValueError, r"ref_logps is required when beta is not 0"),
        params={"beta": 0.04},
    )
    edges.case(
        "grpo",
        "epsilon_low < 0",
        {"logps": f64([[-1.0]]), "old_logps": f64([[-1.0]]), "advantages": f64([1.0]), "mask": i64([[1]])},
        Raises(ValueError, r"epsilon_low must be in \[0, 1\], got -0.1"),
        params={"epsilon_low": -0.1},
    )
    edges.case(
        "grpo",
        "an unknown loss_type",
        {"logps": f64([[-1.0]]), "old_logps": f64([[-1.0]]), "advantages": f64([1.0]), "mask": i64([[1]])},
        Raises(ValueError, r"loss_type must be 'grpo', .*, got 'ppo'"),
        params={"loss_type": "ppo"},
    )
    edges.case(
        "grpo",
        "a mask of another shape",
        {"logps": f64([[-1.0, -2.0]]), "old_logps": f64([[-1.0, -2.0]]), "advantages": f64([1.0])}
        | {"mask": i64([[1]])},
        Raises(ValueError, r"mask must have the same shape as logps"),
    )
    edges.empty_batch(
        "grpo",
        {"logps": np.zeros((0, 3)), "old_logps": np.zeros((0, 3)), "advantages": np.zeros(0)}
        | {"mask": np.zeros((0, 3), dtype=np.int64)},
        (0, 3),
    )

    same = normal(np.random.default_rng(0), (2, 3, 5), 2.0)
    for name in ("generalized_jsd", "forward_kl", "reverse_kl", "total_variation"):
        edges.case(
            name,
            "student equal to the teacher: 0 (the gradient is 0 up to rounding: tests/test_post_training.py)",
            {"student_logits": same, "teacher_logits": same.copy()},
            Finite(0.0, rtol=1e-9),
        )
        edges.case(
            name,
            "every token ignored: 0",
            {"student_logits": same, "teacher_logits": 0.5 * same, "labels": np.full((2, 3), -100)},
            Finite(0.0, grad="zero"),
        )
        edges.case(
            name,
            "an ignored token with -inf logits",
            {
                "student_logits": np.where(np.arange(5) == 0, -math.inf, 0.0) * np.ones((1, 2, 5)),
                "teacher_logits": np.zeros((1, 2, 5)),
                "labels": i64([[-100, -100]]),
            },
            Finite(0.0, grad="zero"),
        )
        edges.case(
            name,
            "saturated logits (+-1e4)",
            {
                "student_logits": f64([[[1e4, -1e4, 0.0]]]),
                "teacher_logits": f64([[[-1e4, 1e4, 0.0]]]),
            },
            Finite(),
        )
        edges.empty_batch(
            name,
            {
                "student_logits": np.zeros((0, 3, 5)),
                "teacher_logits": np.zeros((0, 3, 5)),
                "labels": np.zeros((0, 3), dtype=np.int64),
            },
            (0, 3),
        )
    edges.case(
        "generalized_jsd",
        "beta outside [0, 1]",
        {"student_logits": same, "teacher_logits": same},
        Raises(ValueError, r"beta must be in \[0, 1\], got 1.5"),
        params={"beta": 1.5},
    )
    return edges


EDGES = _edge_cases()


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


def _logps(rng: np.random.Generator, shape: tuple[int, ...], low: float = 5.0, high: float = 60.0) -> np.ndarray:
    """Summed log-probabilities of whole completions: -high..-low."""
    return -rng.uniform(low, high, size=shape)


def _pair_arrays(rng: np.random.Generator, n: int, *, average: bool = False) -> dict[str, np.ndarray]:
    """The four per-sequence log-probabilities; the reference within a few nats of the policy, so
    beta (c - r) spans the logistic's curved range. ``average``: per-token averages (-3..-0.05)."""
    low, high = (0.05, 3.0) if average else (5.0, 60.0)
    chosen, rejected = _logps(rng, (n,), low, high), _logps(rng, (n,), low, high)
    spread = 0.3 if average else 8.0
    return {
        "policy_chosen": chosen,
        "policy_rejected": rejected,
        "reference_chosen": chosen + rng.uniform(-spread, spread, size=(n,)),
        "reference_rejected": rejected + rng.uniform(-spread, spread, size=(n,)),
    }


def _policy_only(rng: np.random.Generator, n: int, *, average: bool = False) -> dict[str, np.ndarray]:
    arrays = _pair_arrays(rng, n, average=average)
    return {"policy_chosen": arrays["policy_chosen"], "policy_rejected": arrays["policy_rejected"]}


_PAIR_LAYOUT = Layout(("policy_chosen", "policy_rejected", "reference_chosen", "reference_rejected"))
_POLICY_LAYOUT = Layout(("policy_chosen", "policy_rejected"))

# -- dpo --------------------------------------------------------------------------


def _trl_dpo(m, a, p, r):
    """TRL 1.16 ``DPOTrainer._compute_loss``, ``f_divergence_type="reverse_kl"``, from the log-ratios
    on (``sigmoid`` with label smoothing: TRL 0.x's conservative DPO, which 1.16 dropped)."""
    F, torch = m.F, m.torch
    beta, label_smoothing = p.get("beta", 0.1), p.get("label_smoothing", 0.0)
    loss_type = p.get("loss_type", "sigmoid")
    chosen_logratios = a["policy_chosen"] - a["reference_chosen"]
    rejected_logratios = a["policy_rejected"] - a["reference_rejected"]
    delta_score = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        per_sequence_loss = (
            -F.logsigmoid(beta * delta_score) * (1 - label_smoothing)
            - F.logsigmoid(-beta * delta_score) * label_smoothing
        )
    elif loss_type == "hinge":
        per_sequence_loss = torch.relu(1 - beta * delta_score)
    elif loss_type == "ipo":
        per_sequence_loss = (delta_score - 1 / (2 * beta)) ** 2  # on length-averaged log-probabilities
    elif loss_type == "exo_pair":
        epsilon = torch.tensor(label_smoothing, dtype=delta_score.dtype)
        qw = torch.sigmoid(beta * delta_score)
        log_qw = F.logsigmoid(beta * delta_score)
        log_pw = torch.log1p(-epsilon)
        ql = torch.sigmoid(-beta * delta_score)
        log_ql = F.logsigmoid(-beta * delta_score)
        log_pl = torch.log(epsilon)
        per_sequence_loss = qw * (log_qw - log_pw) + ql * (log_ql - log_pl)
    elif loss_type == "nca_pair":
        chosen_rewards = beta * chosen_logratios
        rejected_rewards = beta * rejected_logratios
        per_sequence_loss = (
            -F.logsigmoid(chosen_rewards) - 0.5 * F.logsigmoid(-chosen_rewards) - 0.5 * F.logsigmoid(-rejected_rewards)
        )
    elif loss_type == "robust":
        clean_loss_term = -(1 - label_smoothing) * F.logsigmoid(beta * delta_score)
        flipped_loss_term = -label_smoothing * F.logsigmoid(-beta * delta_score)
        per_sequence_loss = (clean_loss_term - flipped_loss_term) / (1 - 2 * label_smoothing)
    elif loss_type == "bco_pair":
        chosen_rewards = beta * chosen_logratios
        rejected_rewards = beta * rejected_logratios
        per_sequence_loss = -F.logsigmoid(chosen_rewards) - F.logsigmoid(-rejected_rewards)
    elif loss_type == "sppo_hard":
        winner_margin_error = (chosen_logratios - 0.5 / beta) ** 2
        loser_margin_error = (rejected_logratios + 0.5 / beta) ** 2
        per_sequence_loss = winner_margin_error + loser_margin_error
    elif loss_type == "apo_zero":
        losses_chosen = 1 - torch.sigmoid(beta * chosen_logratios)
        losses_rejected = torch.sigmoid(beta * rejected_logratios)
        per_sequence_loss = losses_chosen + losses_rejected
    elif loss_type == "apo_down":
        losses_chosen = torch.sigmoid(beta * chosen_logratios)
        losses_rejected = 1 - torch.sigmoid(beta * (chosen_logratios - rejected_logratios))
        per_sequence_loss = losses_chosen + losses_rejected
    else:
        raise NotApplicable(f"no TRL definition re-typed for {loss_type}")
    return reduce_reference(torch, per_sequence_loss, r)


def _log_sigmoid(x: float) -> float:
    return -softplus(-x)


def _dpo_loop_term(loss_type: str, beta: float, eps: float, c: float, rj: float) -> float:
    """One pair's loss from the papers' formulas (DPO, SLiC, IPO, rDPO, EXO, NCA, BCO, SPPO, APO)."""
    z = beta * (c - rj)
    if loss_type == "sigmoid":
        return -(1 - eps) * _log_sigmoid(z) - eps * _log_sigmoid(-z)
    if loss_type == "hinge":
        return max(0.0, 1.0 - z)
    if loss_type == "ipo":
        return (c - rj - 1.0 / (2.0 * beta)) ** 2
    if loss_type == "robust":
        return (-(1 - eps) * _log_sigmoid(z) + eps * _log_sigmoid(-z)) / (1 - 2 * eps)
    if loss_type == "exo_pair":
        return _sigmoid(z) * (_log_sigmoid(z) - math.log(1 - eps)) + _sigmoid(-z) * (_log_sigmoid(-z) - math.log(eps))
    if loss_type == "nca_pair":
        return -_log_sigmoid(beta * c) - 0.5 * _log_sigmoid(-beta * c) - 0.5 * _log_sigmoid(-beta * rj)
    if loss_type == "bco_pair":
        return -_log_sigmoid(beta * c) - _log_sigmoid(-beta * rj)
    if loss_type == "sppo_hard":
        return (c - 0.5 / beta) ** 2 + (rj + 0.5 / beta) ** 2
    if loss_type == "apo_zero":
        return 1.0 - _sigmoid(beta * c) + _sigmoid(beta * rj)
    return _sigmoid(beta * c) + 1.0 - _sigmoid(z)  # apo_down


def _numpy_dpo_loop(m, a, p, r):
    np_ = m.np
    loss_type, beta, eps = p.get("loss_type", "sigmoid"), p.get("beta", 0.1), p.get("label_smoothing", 0.0)
    out = np_.array(
        [
            _dpo_loop_term(loss_type, float(beta), eps, float(pc) - float(rc), float(pr) - float(rr))
            for pc, pr, rc, rr in zip(
                a["policy_chosen"], a["policy_rejected"], a["reference_chosen"], a["reference_rejected"], strict=True
            )
        ]
    )
    return reduce_reference(np_, out, r)


_DPO_VARIANTS = (
    _variant("sigmoid,beta=0.1", _pair_arrays),
    _variant("sigmoid,beta=0.5,label_smoothing=0.1 (cDPO)", _pair_arrays, beta=0.5, label_smoothing=0.1),
    _variant("hinge", _pair_arrays, loss_type="hinge"),
    _variant(
        "ipo,beta=0.5 (average log-probabilities)",
        lambda rng, n: _pair_arrays(rng, n, average=True),
        loss_type="ipo",
        beta=0.5,
    ),
    _variant("robust,label_smoothing=0.1", _pair_arrays, loss_type="robust", label_smoothing=0.1),
    _variant("exo_pair,label_smoothing=1e-3", _pair_arrays, loss_type="exo_pair", label_smoothing=1e-3),
    _variant("nca_pair", _pair_arrays, loss_type="nca_pair"),
    _variant("bco_pair", _pair_arrays, loss_type="bco_pair"),
    _variant("sppo_hard", _pair_arrays, loss_type="sppo_hard"),
    _variant("apo_zero", _pair_arrays, loss_type="apo_zero"),
    _variant("apo_down", _pair_arrays, loss_type="apo_down"),
)

register(
    LossSpec(
        name="dpo",
        variants=_DPO_VARIANTS,
        references=(
            Reference("TRL 1.16 DPOTrainer._compute_loss (re-typed)", "torch", _trl_dpo),
            Reference("per-pair loop (the papers' formulas)", "numpy", _numpy_dpo_loop, grads=False),
        ),
        notes=(
            "Per pair from the four per-sequence log-probabilities; 'mean' over pairs, as TRL's "
            "per_sequence_loss.mean(). TRL normalises ipo's log-ratios by the completion lengths: the ipo "
            "variant feeds length-averaged log-probabilities. 'sigmoid' with label_smoothing is conservative "
            "DPO (TRL before 1.0; TRL 1.16 and Liger-Kernel ignore label_smoothing there)."
        ),
        layout=_PAIR_LAYOUT,
        plot=Plot(
            "log-ratio margin c - r (chosen +x/2, rejected -x/2)",
            _log_ratio_pair,
            span=(-20.0, 20.0),
            sweep=("beta", (0.1, 0.3, 1.0)),
        ),
    )
)

# -- simpo, cpo, orpo ---------------------------------------------------------------


def _trl_cpo_loss(m, a, p, r, *, loss_type: str):
    """TRL ``CPOTrainer.cpo_loss`` (``trl/experimental/cpo/cpo_trainer.py``), ``alpha=0``."""
    F, torch = m.F, m.torch
    beta, label_smoothing = p.get("beta", 2.0 if loss_type == "simpo" else 0.1), p.get("label_smoothing", 0.0)
    logits = a["policy_chosen"] - a["policy_rejected"]
    if loss_type == "simpo":
        gamma_logratios = p.get("gamma", 0.5) / beta
        logits = logits - gamma_logratios
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    else:  # ipo
        losses = (logits - 1 / (2 * beta)) ** 2
    return reduce_reference(torch, losses, r)


def _numpy_simpo_loop(m, a, p, r):
    beta, gamma, eps = p.get("beta", 2.0), p.get("gamma", 0.5), p.get("label_smoothing", 0.0)
    out = []
    for w, lose in zip(a["policy_chosen"], a["policy_rejected"], strict=True):
        z = float(beta) * (float(w) - float(lose)) - float(gamma)
        out.append(-(1 - eps) * _log_sigmoid(z) - eps * _log_sigmoid(-z))
    return reduce_reference(m.np, m.np.array(out), r)


register(
    LossSpec(
        name="simpo",
        variants=(
            _variant("beta=2,gamma=0.5", lambda rng, n: _policy_only(rng, n, average=True)),
            _variant(
                "beta=2.5,gamma=1.4,label_smoothing=0.1",
                lambda rng, n: _policy_only(rng, n, average=True),
                beta=2.5,
                gamma=1.4,
                label_smoothing=0.1,
            ),
        ),
        references=(
            Reference(
                "TRL CPOTrainer.cpo_loss, loss_type='simpo' (re-typed)",
                "torch",
                lambda m, a, p, r: _trl_cpo_loss(m, a, p, r, loss_type="simpo"),
            ),
            Reference("per-pair loop", "numpy", _numpy_simpo_loop, grads=False),
        ),
        notes="On length-averaged log-probabilities; TRL's CPOTrainer with loss_type='simpo' and cpo_alpha=0.",
        layout=_POLICY_LAYOUT,
        plot=_average_plot(("gamma", (0.0, 0.5, 1.5))),
    )
)


def _numpy_cpo_loop(m, a, p, r):
    loss_type, beta, eps = p.get("loss_type", "sigmoid"), p.get("beta", 0.1), p.get("label_smoothing", 0.0)
    out = [
        _dpo_loop_term(loss_type, float(beta), eps, float(w), float(lose))
        for w, lose in zip(a["policy_chosen"], a["policy_rejected"], strict=True)
    ]
    return reduce_reference(m.np, m.np.array(out), r)


register(
    LossSpec(
        name="cpo",
        variants=(
            _variant("sigmoid", lambda rng, n: _policy_only(rng, n)),
            _variant("sigmoid,label_smoothing=0.2", lambda rng, n: _policy_only(rng, n), label_smoothing=0.2),
            _variant("hinge,beta=0.05", lambda rng, n: _policy_only(rng, n), loss_type="hinge", beta=0.05),
            _variant(
                "ipo,beta=0.5 (average log-probabilities)",
                lambda rng, n: _policy_only(rng, n, average=True),
                loss_type="ipo",
                beta=0.5,
            ),
        ),
        references=(
            Reference(
                "TRL CPOTrainer.cpo_loss (re-typed)",
                "torch",
                lambda m, a, p, r: _trl_cpo_loss(m, a, p, r, loss_type=p.get("loss_type", "sigmoid")),
            ),
            Reference("per-pair loop", "numpy", _numpy_cpo_loop, grads=False),
        ),
        notes="The preference term of TRL's CPOTrainer (its loss adds cpo_alpha times the chosen tokens' NLL).",
        layout=_POLICY_LAYOUT,
        plot=Plot(
            "log-probability margin log pi(y_w) - log pi(y_l) (around -30)",
            lambda x: _margin(x, -30.0, "policy_chosen", "policy_rejected"),
            span=(-20.0, 20.0),
            sweep=("beta", (0.1, 0.3, 1.0)),
        ),
    )
)


def _trl_orpo(m, a, p, r):
    """TRL ``ORPOTrainer.odds_ratio_loss`` and ``log1mexp``; the term polyloss returns is ``-losses``."""
    F, torch = m.F, m.torch

    def log1mexp(x):
        t = -0.6931471805599453
        return torch.where(x < t, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))

    policy_chosen_logps, policy_rejected_logps = a["policy_chosen"], a["policy_rejected"]
    log_odds = (policy_chosen_logps - policy_rejected_logps) - (
        log1mexp(policy_chosen_logps) - log1mexp(policy_rejected_logps)
    )
    ratio = F.logsigmoid(log_odds)
    losses = p.get("beta", 0.1) * ratio
    return reduce_reference(torch, -losses, r)


def _numpy_orpo_loop(m, a, p, r):
    beta = float(p.get("beta", 0.1))
    out = []
    for w, lose in zip(a["policy_chosen"], a["policy_rejected"], strict=True):
        odds_w = math.exp(float(w)) / (1.0 - math.exp(float(w)))
        odds_l = math.exp(float(lose)) / (1.0 - math.exp(float(lose)))
        out.append(-beta * _log_sigmoid(math.log(odds_w / odds_l)))
    return reduce_reference(m.np, m.np.array(out), r)


register(
    LossSpec(
        name="orpo",
        variants=(
            _variant("beta=0.1", lambda rng, n: _policy_only(rng, n, average=True)),
            _variant(
                "beta=0.5,near 0 and below -log 2",
                lambda rng, n: {
                    "policy_chosen": -rng.uniform(0.001, 0.4, size=(n,)),
                    "policy_rejected": -rng.uniform(0.8, 4.0, size=(n,)),
                },
                beta=0.5,
            ),
        ),
        references=(
            Reference("TRL ORPOTrainer.odds_ratio_loss, negated (re-typed)", "torch", _trl_orpo),
            Reference("odds-ratio loop", "numpy", _numpy_orpo_loop, grads=False),
        ),
        notes=(
            "On length-averaged log-probabilities (< 0); TRL's ORPO loss is the chosen NLL minus the mean of "
            "beta log sigmoid(log odds ratio): this is that second term, negated."
        ),
        layout=_POLICY_LAYOUT,
        plot=_average_plot(("beta", (0.1, 0.5, 1.0))),
    )
)

# -- kto --------------------------------------------------------------------------


def _kto_arrays(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    policy = _logps(rng, (n + 1,))
    desirable = rng.integers(0, 2, size=n + 1).astype(bool)
    desirable[0], desirable[-1] = True, False  # both kinds in every case
    return {
        "policy_logps": policy,
        "reference_logps": policy + rng.uniform(-8.0, 8.0, size=(n + 1,)),
        "desirable": desirable,
        "kl": np.asarray(rng.uniform(0.0, 3.0)),
    }


def _trl_kto(m, a, p, r):
    """TRL 1.16 ``KTOTrainer._compute_loss`` (``loss_type="kto"``) from the completions' log-probabilities:
    chosen and rejected selected by index, the losses concatenated (put back in order for "none")."""
    F, torch = m.F, m.torch
    beta = p.get("beta", 0.1)
    desirable_weight, undesirable_weight = p.get("desirable_weight", 1.0), p.get("undesirable_weight", 1.0)
    chosen_idx = torch.nonzero(a["desirable"]).flatten()
    rejected_idx = torch.nonzero(~a["desirable"]).flatten()
    completion_logps, ref_completion_logps = a["policy_logps"], a["reference_logps"]
    chosen_logps, rejected_logps = (
        completion_logps.index_select(0, chosen_idx),
        completion_logps.index_select(0, rejected_idx),
    )
    ref_chosen_logps = ref_completion_logps.index_select(0, chosen_idx)
    ref_rejected_logps = ref_completion_logps.index_select(0, rejected_idx)
    kl = a["kl"].detach().clamp(min=0)
    chosen_losses = 1 - F.sigmoid(beta * ((chosen_logps - ref_chosen_logps) - kl))
    rejected_losses = 1 - F.sigmoid(beta * (kl - (rejected_logps - ref_rejected_logps)))
    losses = torch.cat((desirable_weight * chosen_losses, undesirable_weight * rejected_losses), 0)
    if r == "none":
        return losses[torch.argsort(torch.cat((chosen_idx, rejected_idx)))]
    return losses.nanmean() if r == "mean" else losses.sum()


def _numpy_kto_loop(m, a, p, r):
    beta = float(p.get("beta", 0.1))
    w_d, w_u = float(p.get("desirable_weight", 1.0)), float(p.get("undesirable_weight", 1.0))
    z0 = max(0.0, float(a["kl"]))
    out = []
    for pol, ref, good in zip(a["policy_logps"], a["reference_logps"], a["desirable"], strict=True):
        ratio = float(pol) - float(ref)
        out.append(w_d * (1 - _sigmoid(beta * (ratio - z0))) if good else w_u * (1 - _sigmoid(beta * (z0 - ratio))))
    return reduce_reference(m.np, m.np.array(out), r)


register(
    LossSpec(
        name="kto",
        variants=(
            _variant("beta=0.1", _kto_arrays),
            _variant(
                "beta=0.5,weights 1.33 and 0.7", _kto_arrays, beta=0.5, desirable_weight=1.33, undesirable_weight=0.7
            ),
            _variant(
                "a negative KL estimate (clamped to 0)",
                lambda rng, n: _kto_arrays(rng, n) | {"kl": np.asarray(-rng.uniform(0.5, 2.0))},
            ),
        ),
        not_differentiable={
            "kl": "held constant by definition (TRL detaches its KL estimate), so its gradient is 0, not the "
            "derivative of the value"
        },
        references=(
            Reference("TRL 1.16 KTOTrainer._compute_loss (re-typed)", "torch", _trl_kto),
            Reference("per-completion loop", "numpy", _numpy_kto_loop, grads=False),
        ),
        notes="Unpaired: one loss per completion, desirable or not; the KL reference point is clamped at 0 and held "
        "constant.",
        layout=Layout(("policy_logps", "reference_logps", "desirable"), shared=("kl",)),
        plot=Plot(
            "log-ratio of the desirable completion (the undesirable one's at minus it; KL 0)",
            lambda x: {
                "policy_logps": f64([-20.0 + x, -20.0 - x]),
                "reference_logps": f64([-20.0, -20.0]),
                "desirable": np.array([True, False]),
                "kl": f64(0.0),
            },
            span=(-20.0, 20.0),
            sweep=("beta", (0.1, 0.3, 1.0)),
        ),
    )
)

# -- grpo -------------------------------------------------------------------------

T = 5  # completion tokens per sequence


def _grpo_arrays(
    rng: np.random.Generator,
    n: int,
    *,
    drift: float = 0.15,
    token_advantages: bool = False,
    reference: bool = False,
) -> dict[str, np.ndarray]:
    """Per-token log-probabilities of n + 1 completions of up to T tokens (each keeps 1..T: a mask
    of int64 0/1 as TRL's ``completion_mask``); old policy within ``drift`` nats per token, so some
    ratios fall outside the 0.8..1.2 clipping range and some inside."""
    rows = n + 1
    logps = -rng.uniform(0.05, 4.0, size=(rows, T))
    lengths = rng.integers(1, T + 1, size=rows)
    lengths[0] = T
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    log_ratio = rng.uniform(-drift, drift, size=(rows, T))
    # keep each log-ratio 0.02 away from the variants' kinks (1 - 0.2, 1 + 0.2, 1.28, delta 1.5, the
    # CISPO cap 1.05), for finite differences
    for kink in (math.log(0.8), math.log(1.2), math.log(1.28), math.log(1.5), math.log(1.05)):
        log_ratio = np.where(np.abs(log_ratio - kink) < 0.02, kink + 0.04 * np.sign(log_ratio - kink + 1e-9), log_ratio)
    advantages = rng.normal(size=(rows, T) if token_advantages else (rows,))
    arrays = {"logps": logps, "old_logps": logps - log_ratio, "advantages": advantages, "mask": mask}
    if reference:
        arrays["ref_logps"] = logps + rng.uniform(-0.5, 0.5, size=(rows, T))
    return arrays


def _trl_grpo(m, a, p, r):
    """TRL 1.16 ``GRPOTrainer._compute_loss`` from ``log_ratio`` on (one process, no gradient accumulation:
    ``num_items_in_batch`` is the batch's token count; ``delta`` as ``args.delta``)."""
    torch = m.torch
    per_token_logps, old_per_token_logps = a["logps"], a["old_logps"]
    mask = a["mask"].to(per_token_logps.dtype)
    advantages = a["advantages"]
    loss_type = p.get("loss_type", "dapo")
    epsilon_low, epsilon_high = p.get("epsilon_low", 0.2), p.get("epsilon_high", 0.2)
    beta, delta = p.get("beta", 0.0), p.get("delta")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    log_ratio = per_token_logps - old_per_token_logps
    if p.get("importance_sampling_level", "token") == "token":
        log_importance_weights = log_ratio
    else:
        log_importance_weights = (log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        log_importance_weights = log_importance_weights.unsqueeze(-1)
    coef_1 = torch.exp(log_importance_weights)
    if beta != 0.0:
        ref_per_token_logps = a["ref_logps"]
        per_token_kl = torch.exp(ref_per_token_logps - per_token_logps) - (ref_per_token_logps - per_token_logps) - 1
    if loss_type == "cispo":
        clamped_ratios = torch.clamp(coef_1, max=epsilon_high).detach()
        per_token_loss = -clamped_ratios * advantages * per_token_logps
    else:
        coef_2 = torch.clamp(coef_1, 1 - epsilon_low, 1 + epsilon_high)
        if delta is not None:
            coef_1 = torch.clamp(coef_1, max=delta)
        per_token_loss1 = coef_1 * advantages
        per_token_loss2 = coef_2 * advantages
        per_token_loss = -torch.min(per_token_loss1, per_token_loss2)
    if beta != 0.0:
        per_token_loss = per_token_loss + beta * per_token_kl
    if r == "none":
        return per_token_loss * mask
    if r == "sum":
        return (per_token_loss * mask).sum()
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        max_completion_length = p.get("max_completion_length") or per_token_logps.size(1)
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    normalizer = mask.sum().clamp(min=1.0)  # dapo, cispo: num_items_in_batch of this batch alone
    return (per_token_loss * mask).sum() / normalizer


def _numpy_grpo_loop(m, a, p, r):
    """The papers' per-token objective, one token at a time, then the aggregation of ``loss_type``."""
    np_ = m.np
    loss_type = p.get("loss_type", "dapo")
    eps_l, eps_h = p.get("epsilon_low", 0.2), p.get("epsilon_high", 0.2)
    beta, delta = float(p.get("beta", 0.0)), p.get("delta")
    logps, old, mask = np_.asarray(a["logps"]), np_.asarray(a["old_logps"]), np_.asarray(a["mask"]) != 0
    adv = np_.asarray(a["advantages"])
    rows, length = logps.shape
    out = np_.zeros((rows, length))
    for i in range(rows):
        kept = [t for t in range(length) if mask[i, t]]
        seq_log_w = math.fsum(float(logps[i, t] - old[i, t]) for t in kept) / max(len(kept), 1)
        for t in kept:
            log_w = (
                float(logps[i, t] - old[i, t]) if p.get("importance_sampling_level", "token") == "token" else seq_log_w
            )
            w = math.exp(log_w)
            a_it = float(adv[i, t] if adv.ndim == 2 else adv[i])
            if loss_type == "cispo":
                value = -min(w, eps_h) * a_it * float(logps[i, t])
            else:
                unclipped = min(w, delta) if delta is not None else w
                value = -min(unclipped * a_it, min(max(w, 1 - eps_l), 1 + eps_h) * a_it)
            if beta:
                rho = float(a["ref_logps"][i, t] - logps[i, t])
                value += beta * (math.exp(rho) - rho - 1)
            out[i, t] = value
    if r == "none":
        return out
    if r == "sum":
        return np_.asarray(out.sum())
    counts = mask.sum(axis=1)
    if loss_type == "grpo":
        return np_.asarray(fmean([out[i].sum() / max(counts[i], 1) for i in range(rows)]))
    if loss_type == "dr_grpo":
        return np_.asarray(out.sum() / (rows * (p.get("max_completion_length") or length)))
    return np_.asarray(out.sum() / max(counts.sum(), 1))


def _grpo_mean(case: Case, values: dict[str, np.ndarray], evaluate) -> float:
    """'mean' is the aggregation of loss_type over the per-token losses of 'none'."""
    none = values["none"]
    counts = (case.arrays["mask"] != 0).sum(axis=1)
    loss_type = case.params.get("loss_type", "dapo")
    if loss_type == "grpo":
        return float(np.mean(none.sum(axis=1) / np.maximum(counts, 1))) if none.shape[0] else 0.0
    if loss_type == "dr_grpo":
        slots = none.shape[0] * (case.params.get("max_completion_length") or none.shape[1])
        return float(none.sum() / slots) if slots else 0.0
    return float(none.sum() / max(counts.sum(), 1))


_CISPO_UNCLIPPED = (
    "CISPO holds its capped ratio constant (TRL's .detach()), so where the ratio is below the cap the gradient in "
    "the log-probabilities is not the derivative of the value; the variant with every ratio above the cap checks it, "
    "and TRL's re-typed loss checks this one's gradient"
)

register(
    LossSpec(
        name="grpo",
        variants=(
            _variant("dapo (default)", _grpo_arrays),
            _variant("grpo", _grpo_arrays, loss_type="grpo"),
            _variant("bnpo", _grpo_arrays, loss_type="bnpo"),
            _variant("dr_grpo", _grpo_arrays, loss_type="dr_grpo"),
            _variant("dr_grpo,max_completion_length=8", _grpo_arrays, loss_type="dr_grpo", max_completion_length=8),
            _variant(
                "dapo,epsilon_high=0.28,wide drift", lambda rng, n: _grpo_arrays(rng, n, drift=0.6), epsilon_high=0.28
            ),
            _variant(
                "grpo,beta=0.04,ref_logps",
                lambda rng, n: _grpo_arrays(rng, n, reference=True),
                loss_type="grpo",
                beta=0.04,
            ),
            _variant(
                "bnpo,per-token advantages,delta=1.5",
                lambda rng, n: _grpo_arrays(rng, n, token_advantages=True, drift=0.6),
                loss_type="bnpo",
                delta=1.5,
            ),
            _variant(
                "grpo,sequence level (GSPO)",
                lambda rng, n: _grpo_arrays(rng, n, drift=0.3),
                loss_type="grpo",
                importance_sampling_level="sequence",
                epsilon_low=3e-4,
                epsilon_high=4e-4,
            ),
            _variant(
                "cispo,every ratio above the cap (epsilon_high=0.5)", _grpo_arrays, loss_type="cispo", epsilon_high=0.5
            ),
            Variant(
                "cispo,epsilon_high=1.05",
                lambda rng, n: Case(_grpo_arrays(rng, n), {"loss_type": "cispo", "epsilon_high": 1.05}),
            ).excluding(logps=_CISPO_UNCLIPPED, old_logps=_CISPO_UNCLIPPED),
        ),
        references=(
            Reference("TRL 1.16 GRPOTrainer._compute_loss (re-typed)", "torch", _trl_grpo),
            Reference("per-token loop (the papers' objective)", "numpy", _numpy_grpo_loop, grads=False),
        ),
        notes=(
            "Per-token clipped objective with the aggregation of loss_type as 'mean'; 'sum' is the masked sum and "
            "'none' the masked per-token losses (N, T). DAPO and CISPO divide by the batch's token count (TRL's "
            "num_items_in_batch with one process and no gradient accumulation)."
        ),
        layout=Layout(("logps", "old_logps", "advantages", "mask", "ref_logps")),
        mean=Mean(
            "the aggregation of loss_type (grpo: mean over sequences of per-sequence token means; "
            "bnpo, dapo, cispo: the kept-token count; dr_grpo: N * max_completion_length)",
            expected=_grpo_mean,
        ),
        plot=Plot(
            "probability ratio pi / pi_old of one token",
            lambda w: {"logps": f64([[-1.0 + math.log(w)]]), "old_logps": f64([[-1.0]]), "mask": i64([[1]])},
            span=(0.5, 1.6),
            # the advantage's sign, not a keyword setting: advantages is passed by name with each curve
            sweep=("advantages", (f64([1.0]), f64([-1.0]))),
        ),
    )
)

# -- token-level distillation -------------------------------------------------------

V = 6  # vocabulary
TOKENS = 3  # tokens per sequence


def _distill_arrays(
    rng: np.random.Generator, n: int, *, with_labels: bool = True, ignored: bool = True
) -> dict[str, np.ndarray]:
    arrays = {
        "student_logits": normal(rng, (n, TOKENS, V), 2.0),
        "teacher_logits": normal(rng, (n, TOKENS, V), 2.0),
    }
    if with_labels:
        token_labels = labels(rng, (n, TOKENS), V)
        if ignored:
            token_labels[:, 0] = -100  # the prompt's token
        arrays["labels"] = token_labels
    return arrays


def _trl_generalized_jsd(m, a, p, r, *, beta: float | None = None):
    """TRL ``GKDTrainer.generalized_jsd_loss`` (``trl/experimental/gkd/gkd_trainer.py``) up to its masking;
    reduced per token ("none": the vocabulary summed, 0 at ignored tokens; "mean": batchmean with labels)."""
    F, torch = m.F, m.torch
    beta = p.get("beta", 0.5) if beta is None else beta
    temperature = p.get("temperature", 1.0)
    student_logits = a["student_logits"] / temperature
    teacher_logits = a["teacher_logits"] / temperature
    student_log_probs = F.log_softmax(student_logits, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits, dim=-1)
    if beta == 0:
        jsd = F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    else:
        beta = torch.tensor(beta, dtype=student_log_probs.dtype, device=student_log_probs.device)
        mixture_log_probs = torch.logsumexp(
            torch.stack([student_log_probs + torch.log1p(-beta), teacher_log_probs + torch.log(beta)]),
            dim=0,
        )
        kl_teacher = F.kl_div(mixture_log_probs, teacher_log_probs, reduction="none", log_target=True)
        kl_student = F.kl_div(mixture_log_probs, student_log_probs, reduction="none", log_target=True)
        jsd = beta * kl_teacher + (1 - beta) * kl_student
    return _masked_token_reduction(torch, jsd, a.get("labels"), r)


def _masked_token_reduction(torch, per_vocab, labels, r):
    """TRL's masking (``jsd[labels != -100]``) and ``batchmean`` (sum / kept tokens, at least 1); "none"
    puts each kept token's sum over the vocabulary back in place (0 elsewhere)."""
    per_token = per_vocab.sum(-1)
    if labels is None:
        return reduce_reference(torch, per_token, r)
    mask = labels != -100
    if r == "none":
        return torch.where(mask, per_token, torch.zeros_like(per_token))
    kept = per_vocab[mask]
    if r == "sum":
        return kept.sum()
    return kept.sum() / mask.sum().clamp_min(1)


def _liger_tvd(m, a, p, r):
    """Liger-Kernel's ``TorchTVDLoss`` (``test/transformers/test_tvd.py``, ``reduction="batchmean"``) on
    the (BT, V) probabilities."""
    torch = m.torch
    temperature = p.get("temperature", 1.0)
    vocab = a["student_logits"].shape[-1]
    p_ = torch.softmax(a["student_logits"] / temperature, dim=-1).reshape(-1, vocab)
    q = torch.softmax(a["teacher_logits"] / temperature, dim=-1).reshape(-1, vocab)
    label = a["labels"].reshape(-1) if "labels" in a else None
    tvd = torch.abs(p_ - q) / 2.0
    n_non_ignore = p_.size(0)
    if label is not None:
        tvd = torch.where(label.unsqueeze(1) != -100, tvd, torch.zeros_like(tvd))
        n_non_ignore = (label != -100).sum().item()
        if n_non_ignore == 0:
            return torch.tensor(0.0, dtype=tvd.dtype)
    if r == "none":
        return tvd.sum(-1).reshape(a["student_logits"].shape[:-1])
    if r == "sum":
        return torch.sum(tvd)
    return torch.sum(tvd) / n_non_ignore


def _numpy_divergence_loop(kind: str):
    """Per token, one vocabulary entry at a time: the divergence ``kind`` of the softmaxed logits."""

    def reference(m, a, p, r):
        np_ = m.np
        temperature = float(p.get("temperature", 1.0))
        beta = float(p.get("beta", 0.5))
        student, teacher = np_.asarray(a["student_logits"]), np_.asarray(a["teacher_logits"])
        token_labels = a.get("labels")
        out = np_.zeros(student.shape[:-1])
        for idx in np_.ndindex(out.shape):
            if token_labels is not None and int(token_labels[idx]) == -100:
                continue
            s = _softmax_list([float(x) / temperature for x in student[idx]])
            t = _softmax_list([float(x) / temperature for x in teacher[idx]])
            if kind == "forward_kl" or (kind == "generalized_jsd" and beta == 0.0):
                out[idx] = math.fsum(tv * math.log(tv / sv) for sv, tv in zip(s, t, strict=True) if tv > 0)
            elif kind == "reverse_kl" or (kind == "generalized_jsd" and beta == 1.0):
                out[idx] = math.fsum(sv * math.log(sv / tv) for sv, tv in zip(s, t, strict=True) if sv > 0)
            elif kind == "generalized_jsd":
                mix = [beta * tv + (1 - beta) * sv for sv, tv in zip(s, t, strict=True)]
                kl_t = math.fsum(tv * math.log(tv / mv) for tv, mv in zip(t, mix, strict=True) if tv > 0)
                kl_s = math.fsum(sv * math.log(sv / mv) for sv, mv in zip(s, mix, strict=True) if sv > 0)
                out[idx] = beta * kl_t + (1 - beta) * kl_s
            else:  # total_variation
                out[idx] = 0.5 * math.fsum(abs(sv - tv) for sv, tv in zip(s, t, strict=True))
        if r == "none":
            return out
        if r == "sum":
            return np_.asarray(out.sum())
        kept = out.size if token_labels is None else int((np_.asarray(token_labels) != -100).sum())
        return np_.asarray(out.sum() / max(kept, 1))

    return reference


def _softmax_list(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(x - top) for x in row]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _kept_tokens(case: Case, none: np.ndarray) -> float:
    token_labels = case.arrays.get("labels")
    return float(none.size if token_labels is None else (token_labels != -100).sum())


_TOKEN_MEAN = Mean("the number of kept tokens (labels != ignore_index; every token without labels)", _kept_tokens)
_TOKEN_LAYOUT = Layout(("student_logits", "teacher_logits", "labels"))


def _distillation_spec(
    name: str, variants: tuple[Variant, ...], references: tuple[Reference, ...], notes: str, plot: Plot
) -> None:
    register(
        LossSpec(
            name=name,
            variants=variants,
            references=(*references, Reference("per-token loop", "numpy", _numpy_divergence_loop(name), grads=False)),
            notes=notes,
            layout=_TOKEN_LAYOUT,
            mean=_TOKEN_MEAN,
            plot=plot,
        )
    )


_distillation_spec(
    "generalized_jsd",
    (
        _variant("beta=0.5,labels", _distill_arrays),
        _variant("beta=0.1,T=2,labels", _distill_arrays, beta=0.1, temperature=2.0),
        _variant("beta=0.9,no labels", lambda rng, n: _distill_arrays(rng, n, with_labels=False), beta=0.9),
        _variant("beta=0 (forward KL)", _distill_arrays, beta=0.0),
        _variant("beta=1 (reverse KL),T=0.5", _distill_arrays, beta=1.0, temperature=0.5),
    ),
    (Reference("TRL GKDTrainer.generalized_jsd_loss (re-typed)", "torch", _trl_generalized_jsd),),
    "Per token, summed over the vocabulary; 'mean' over kept tokens (TRL's batchmean with labels; without labels "
    "TRL divides by the first dimension). Both logits are differentiated.",
    _shift_plot(("beta", (0.1, 0.5, 0.9))),
)
_distillation_spec(
    "forward_kl",
    (
        _variant("labels", _distill_arrays),
        _variant("T=2,no labels", lambda rng, n: _distill_arrays(rng, n, with_labels=False), temperature=2.0),
    ),
    (
        Reference(
            "TRL generalized_jsd_loss(beta=0) (re-typed)",
            "torch",
            lambda m, a, p, r: _trl_generalized_jsd(m, a, p, r, beta=0.0),
        ),
    ),
    "KL(teacher || student) per token; 'mean' over kept tokens.",
    _shift_plot(("temperature", (0.5, 1.0, 2.0))),
)
_distillation_spec(
    "reverse_kl",
    (
        _variant("labels", _distill_arrays),
        _variant("T=0.5,every token kept", lambda rng, n: _distill_arrays(rng, n, ignored=False), temperature=0.5),
    ),
    (
        Reference(
            "TRL generalized_jsd_loss(beta=1) (re-typed)",
            "torch",
            lambda m, a, p, r: _trl_generalized_jsd(m, a, p, r, beta=1.0),
        ),
    ),
    "KL(student || teacher) per token; 'mean' over kept tokens.",
    _shift_plot(("temperature", (0.5, 1.0, 2.0))),
)
_distillation_spec(
    "total_variation",
    (
        _variant("labels", _distill_arrays),
        _variant("T=2,no labels", lambda rng, n: _distill_arrays(rng, n, with_labels=False), temperature=2.0),
    ),
    (Reference("Liger-Kernel TorchTVDLoss (batchmean, re-typed)", "torch", _liger_tvd),),
    "Half the L1 distance of the token distributions; 'mean' over kept tokens (Liger-Kernel's batchmean).",
    _shift_plot(("temperature", (0.5, 1.0, 2.0))),
)
