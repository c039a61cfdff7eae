"""Specs of the multi-task and curriculum losses (see ``polyloss/core/multitask.py``).

The torch references re-type study-hub's (eunsu-park/study-hub, lesson 24) ``MultiTaskLoss`` and
``CurriculumLoss`` (section 7); the per-sample losses the curriculum weighs
are the case's ``losses`` array (the original's ``base_criterion`` output). The
public helper ``curriculum_weights`` has no spec: it is tested in
``tests/test_multitask.py``.
"""

from __future__ import annotations

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, f64
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: one task of loss L against its log-variance s: exp(-s) L + s, least at s = log L (the sweep: L)
_UNCERTAINTY_PLOT = Plot(
    "log-variance s of a task (one task)",
    lambda s: {"log_vars": f64([s])},
    span=(-2.0, 3.0),
    sweep=("losses", (f64([0.5]), f64([1.0]), f64([2.0]))),
)
#: the difficulties of the three samples of loss 1 in the curriculum plot
_PLOT_DIFFICULTIES = (0.2, 0.45, 0.7)
#: a sample of loss 2 and difficulty x among three of loss 1: it counts while x <= progress, and
#: "mean" is the mean loss of the kept samples (the weights renormalise over them)
_CURRICULUM_PLOT = Plot(
    "difficulty of a loss-2 sample (3 loss-1 at 0.2, 0.45, 0.7)",
    lambda d: {"losses": f64([2.0, 1.0, 1.0, 1.0]), "difficulty": f64([d, *_PLOT_DIFFICULTIES])},
    span=(0.02, 0.98),  # no grid point within the finite-difference step of a progress swept
    sweep=("progress", (0.3, 0.6, 0.9)),
)


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    edges.case(
        "uncertainty_weighting",
        "very confident task (log_var -50) with zero loss",
        {"losses": f64([0.0, 1.0]), "log_vars": f64([-50.0, 0.0])},
        Finite(-50.0 + 1.0),
        reduction="sum",
    )
    edges.case(
        "curriculum",
        "progress 0: nothing kept, weights 0",
        {"losses": f64([1.0, 2.0]), "difficulty": f64([0.5, 0.9])},
        Finite(0.0, grad="zero"),
        params={"progress": 0.0},
        reduction="sum",
    )
    edges.no_empty_batch(
        "uncertainty_weighting",
        "its inputs are one loss and one log-variance per task, not per sample: there is no batch axis",
    )
    edges.empty_batch("curriculum", {"losses": np.zeros(0), "difficulty": np.zeros(0)}, (0,), params={"progress": 0.5})
    return edges


EDGES = _edge_cases()


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


# -- uncertainty weighting (Kendall, Gal & Cipolla) -------------------------------


def _tasks(rng, n, *, shape=None):
    shape = shape or (n + 1,)  # n + 1 tasks
    return {"losses": rng.uniform(0.05, 3.0, size=shape), "log_vars": rng.uniform(-2.0, 2.0, size=shape)}


def _study_hub_multitask(m, a, p, r):
    """study-hub's MultiTaskLoss.forward with log_vars given: a loop over the tasks; per task for "none",
    the total divided by the number of tasks for "mean"."""
    torch = m.torch
    losses, log_vars = a["losses"].reshape(-1), a["log_vars"].reshape(-1)
    terms = []
    total_loss = 0
    for i, loss in enumerate(losses):
        precision = torch.exp(-log_vars[i])
        terms.append(precision * loss + log_vars[i])
        total_loss += terms[-1]
    if r == "none":
        return torch.stack(terms).reshape(a["losses"].shape)
    return total_loss if r == "sum" else total_loss / len(terms)


register(
    LossSpec(
        name="uncertainty_weighting",
        variants=(
            _variant("(T,)", _tasks),
            _variant("(T,2)", lambda rng, n: _tasks(rng, n, shape=(n + 1, 2))),
        ),
        references=(Reference("study-hub MultiTaskLoss (re-typed)", "torch", _study_hub_multitask),),
        notes="default reduction 'sum' (the paper's total).",
        layout=Layout(("losses", "log_vars")),  # the "batch" is the tasks,
        plot=_UNCERTAINTY_PLOT,
    )
)


# -- curriculum -------------------------------------------------------------------


def _difficulties(rng, n, progress):
    """Difficulties in [0, 1] at least 0.01 away from the threshold (the weights are piecewise constant)."""
    d = rng.uniform(0.0, 1.0, size=(n,))
    near = np.abs(d - progress) < 0.01
    return np.where(near, np.clip(progress + np.where(d < progress, -0.02, 0.02), 0.0, 1.0), d)


def _curriculum_arrays(rng, n, progress):
    return {"losses": rng.uniform(0.0, 3.0, size=(n,)), "difficulty": _difficulties(rng, n, progress)}


def _study_hub_curriculum(m, a, p, r):
    """study-hub's CurriculumLoss.forward with losses = base_criterion(pred, target) given; the original's
    .float() cast of the weights kept in the inputs' dtype (float64)."""
    losses, difficulty = a["losses"], a["difficulty"]
    threshold = p["progress"]  # progress = current_epoch / total_epochs
    weights = (difficulty <= threshold).to(losses.dtype)
    weights = weights / (weights.sum() + 1e-6) * weights.size(0)
    return reduce_reference(m.torch, losses * weights, r)


register(
    LossSpec(
        name="curriculum",
        variants=tuple(
            _variant(
                f"progress={progress}",
                lambda rng, n, progress=progress: _curriculum_arrays(rng, n, progress),
                progress=progress,
            )
            for progress in (0.5, 0.2, 1.0, 0.0)
        ),
        references=(Reference("study-hub CurriculumLoss (re-typed)", "torch", _study_hub_curriculum),),
        second_order=False,  # linear in losses
        notes="default reduction 'sum', as study-hub's; the weights are constant in the difficulty (no gradient).",
        layout=Layout(
            ("losses", "difficulty"), coupled="weights N [d_i <= p] / sum_j [d_j <= p]: normalised over the batch"
        ),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase("curriculum no sample kept", "progress=0.5", (set_to("difficulty", slice(None), 0.875),)),
            ),
        ),
        plot=_CURRICULUM_PLOT,
    )
)
