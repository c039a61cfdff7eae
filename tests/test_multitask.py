"""Identities and edge behaviour of the multi-task losses and curriculum weights, on numpy, torch and jax.

Each test compares polyloss with an independent computation: a NumPy formula
written here (the ``MultiTaskLoss`` and ``CurriculumLoss`` weights of
eunsu-park/study-hub, lesson 24) or a closed-form gradient. Gradients come from torch autograd and
``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import AUTODIFF, close, namespace, to_numpy

import polyloss.jax as pj
import polyloss.torch as pt

REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- uncertainty weighting


def test_uncertainty_weighting_with_zero_log_vars_is_the_plain_sum(backend):
    losses = np.array([2.5, 0.8, 1.2])  # study-hub's example
    m = namespace(backend)
    out = m.uncertainty_weighting(backend.asarray(losses), backend.asarray(np.zeros(3)))  # default reduction "sum"
    close(out, 4.5)
    close(m.uncertainty_weighting(backend.asarray(losses), backend.asarray(np.zeros(3)), reduction="mean"), 1.5)
    close(m.uncertainty_weighting(backend.asarray(losses), backend.asarray(np.zeros(3)), reduction="none"), losses)
    log_vars = np.array([0.3, -1.0, 2.0])
    close(
        m.uncertainty_weighting(backend.asarray(losses), backend.asarray(log_vars)),
        np.sum(np.exp(-log_vars) * losses + log_vars),
    )


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_uncertainty_weighting_gradients(backend):
    """d/ds = 1 - exp(-s) L, d/dL = exp(-s); zero at the optimum s = log L."""
    rng = np.random.default_rng(0)
    losses, log_vars = rng.uniform(0.1, 3.0, size=4), rng.normal(size=4)
    fn = namespace(backend).uncertainty_weighting
    _, (g_losses, g_log_vars) = backend.value_and_grad(fn, [backend.asarray(losses), backend.asarray(log_vars)], (0, 1))
    close(g_log_vars, 1.0 - np.exp(-log_vars) * losses)
    close(g_losses, np.exp(-log_vars))
    _, (g_opt,) = backend.value_and_grad(fn, [backend.asarray(losses), backend.asarray(np.log(losses))], (1,))
    close(g_opt, np.zeros(4), atol=1e-15)


def test_uncertainty_weighting_log_vars_as_a_torch_parameter_learn_log_losses():
    """Study-hub's usage: log_vars an nn.Parameter trained by Adam; it converges to log L."""
    losses = torch.tensor([2.5, 0.8, 1.2], dtype=torch.float64)
    log_vars = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = torch.optim.Adam([log_vars], lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        pt.uncertainty_weighting(losses, log_vars).backward()
        optimizer.step()
    close(log_vars.detach(), np.log([2.5, 0.8, 1.2]), rtol=0.0, atol=2e-3)


def test_uncertainty_weighting_rejects_mismatched_shapes(backend):
    with pytest.raises(ValueError):
        namespace(backend).uncertainty_weighting(backend.asarray(np.ones(3)), backend.asarray(np.zeros(2)))


# --------------------------------------------------------------------------- curriculum


def study_hub_weights(difficulty: np.ndarray, progress: float) -> np.ndarray:
    """Study-hub's CurriculumLoss weights, in float64."""
    weights = (difficulty <= progress).astype(np.float64)
    return weights / (weights.sum() + 1e-6) * weights.size


DIFFICULTY = np.array([0.1, 0.45, 0.7, 0.0, 0.95, 0.3])


@pytest.mark.parametrize("progress", [0.0, 0.2, 0.5, 0.999, 1.0])
def test_curriculum_weights_equal_study_hubs_formula(backend, progress):
    m = namespace(backend)
    out = to_numpy(m.curriculum_weights(backend.asarray(DIFFICULTY), progress=progress))
    close(out, study_hub_weights(DIFFICULTY, progress))
    kept = DIFFICULTY <= progress
    close(out.sum(), 6 * kept.sum() / (kept.sum() + 1e-6))  # the kept weights sum to (almost) N
    assert np.all(out[~kept] == 0.0)
    if backend.name == "jax":
        jitted = jax.jit(lambda d: pj.curriculum_weights(d, progress=progress))
        close(jitted(jnp.asarray(DIFFICULTY)), study_hub_weights(DIFFICULTY, progress))


def test_curriculum_weights_none_kept_are_all_zero(backend):
    d = np.array([0.2, 0.5, 0.9])
    out = to_numpy(namespace(backend).curriculum_weights(backend.asarray(d), progress=0.0))
    assert np.all(out == 0.0) and not np.any(np.isnan(out))
    out = to_numpy(namespace(backend).curriculum_weights(backend.asarray(d), progress=1.0))
    close(out, np.full(3, 3.0 / (3.0 + 1e-6)))


def test_curriculum_weights_keep_float32(backend):
    out = namespace(backend).curriculum_weights(backend.asarray(DIFFICULTY, "float32"), progress=0.5)
    assert str(out.dtype).endswith("float32")
    close(out, study_hub_weights(DIFFICULTY, 0.5), rtol=1e-6)


def test_curriculum_weighs_the_per_sample_losses(backend):
    rng = np.random.default_rng(1)
    losses = rng.uniform(0.0, 3.0, size=6)
    m = namespace(backend)
    for progress in (0.0, 0.5, 1.0):
        w = study_hub_weights(DIFFICULTY, progress)
        a = (backend.asarray(losses), backend.asarray(DIFFICULTY))
        close(m.curriculum(*a, progress=progress), np.sum(w * losses))  # default reduction "sum", as study-hub's
        close(m.curriculum(*a, progress=progress, reduction="mean"), np.mean(w * losses))
        close(m.curriculum(*a, progress=progress, reduction="none"), w * losses)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_curriculum_gradient_is_the_weights(backend):
    rng = np.random.default_rng(2)
    losses = rng.uniform(0.0, 3.0, size=6)
    fn = lambda loss, d: namespace(backend).curriculum(loss, d, progress=0.5)  # noqa: E731
    _, (g_losses, g_difficulty) = backend.value_and_grad(
        fn, [backend.asarray(losses), backend.asarray(DIFFICULTY)], (0, 1)
    )
    close(g_losses, study_hub_weights(DIFFICULTY, 0.5))
    close(g_difficulty, np.zeros(6), atol=0.0)  # piecewise constant in the difficulty


def test_curriculum_rejects_bad_inputs(backend):
    m = namespace(backend)
    with pytest.raises(ValueError):
        m.curriculum(backend.asarray(np.ones(6)), backend.asarray(DIFFICULTY), progress=1.5)
    with pytest.raises(ValueError):
        m.curriculum_weights(backend.asarray(DIFFICULTY), progress=-0.1)
    with pytest.raises(ValueError):
        m.curriculum(backend.asarray(np.ones((2, 3))), backend.asarray(DIFFICULTY.reshape(2, 3)), progress=0.5)
    with pytest.raises(ValueError):
        m.curriculum(backend.asarray(np.ones(5)), backend.asarray(DIFFICULTY), progress=0.5)
