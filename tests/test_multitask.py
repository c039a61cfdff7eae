"""Identities and edge behaviour of the multi-task losses and curriculum weights, on numpy, torch and jax.

Each test compares polyloss with an independent computation: a NumPy formula
written here (seed document 002's ``MultiTaskLoss`` and ``CurriculumLoss``
weights) or a closed-form gradient. Gradients come from torch autograd and
``jax.grad``.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # float64 comparisons below, as the conftest does

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import polyloss.jax as pj  # noqa: E402
import polyloss.numpy as pn  # noqa: E402
import polyloss.torch as pt  # noqa: E402

BACKENDS = ("numpy", "torch", "jax")
AUTODIFF = ("torch", "jax")
MODULES = {"numpy": pn, "torch": pt, "jax": pj}
REDUCTIONS = ("mean", "sum", "none")


def arr(backend: str, value, dtype="float64"):
    value = np.asarray(value, dtype=dtype)
    if backend == "torch":
        return torch.as_tensor(value.copy())
    if backend == "jax":
        return jnp.asarray(value)
    return value


def to_np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return np.asarray(x)


def close(actual, expected, rtol=1e-12, atol=1e-14) -> None:
    np.testing.assert_allclose(to_np(actual), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


def grads(backend: str, fn, *inputs, argnums=(0,)):
    """(fn(*inputs), [d sum(fn) / d inputs[i] for i in argnums]) with the framework's autodiff."""
    if backend == "torch":
        inputs = [x.detach().clone().requires_grad_(i in argnums) for i, x in enumerate(inputs)]
        out = fn(*inputs)
        got = torch.autograd.grad(out.sum(), [inputs[i] for i in argnums], allow_unused=True, materialize_grads=True)
        return out.detach(), [g.numpy() for g in got]
    if backend == "jax":
        value = fn(*inputs)
        got = jax.grad(lambda *xs: jnp.sum(fn(*xs)), argnums=tuple(argnums))(*inputs)
        return value, [np.asarray(g) for g in got]
    raise ValueError(backend)


# --------------------------------------------------------------------------- uncertainty weighting


@pytest.mark.parametrize("backend", BACKENDS)
def test_uncertainty_weighting_with_zero_log_vars_is_the_plain_sum(backend):
    losses = np.array([2.5, 0.8, 1.2])  # the seed's example
    m = MODULES[backend]
    out = m.uncertainty_weighting(arr(backend, losses), arr(backend, np.zeros(3)))  # default reduction "sum"
    close(out, 4.5)
    close(m.uncertainty_weighting(arr(backend, losses), arr(backend, np.zeros(3)), reduction="mean"), 1.5)
    close(m.uncertainty_weighting(arr(backend, losses), arr(backend, np.zeros(3)), reduction="none"), losses)
    log_vars = np.array([0.3, -1.0, 2.0])
    close(
        m.uncertainty_weighting(arr(backend, losses), arr(backend, log_vars)),
        np.sum(np.exp(-log_vars) * losses + log_vars),
    )


@pytest.mark.parametrize("backend", AUTODIFF)
def test_uncertainty_weighting_gradients(backend):
    """d/ds = 1 - exp(-s) L, d/dL = exp(-s); zero at the optimum s = log L."""
    rng = np.random.default_rng(0)
    losses, log_vars = rng.uniform(0.1, 3.0, size=4), rng.normal(size=4)
    fn = MODULES[backend].uncertainty_weighting
    _, (g_losses, g_log_vars) = grads(backend, fn, arr(backend, losses), arr(backend, log_vars), argnums=(0, 1))
    close(g_log_vars, 1.0 - np.exp(-log_vars) * losses)
    close(g_losses, np.exp(-log_vars))
    _, (g_opt,) = grads(backend, fn, arr(backend, losses), arr(backend, np.log(losses)), argnums=(1,))
    close(g_opt, np.zeros(4), atol=1e-15)


def test_uncertainty_weighting_log_vars_as_a_torch_parameter_learn_log_losses():
    """The seed's usage: log_vars an nn.Parameter trained by Adam; it converges to log L."""
    losses = torch.tensor([2.5, 0.8, 1.2], dtype=torch.float64)
    log_vars = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    optimizer = torch.optim.Adam([log_vars], lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        pt.uncertainty_weighting(losses, log_vars).backward()
        optimizer.step()
    close(log_vars.detach(), np.log([2.5, 0.8, 1.2]), rtol=0.0, atol=2e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uncertainty_weighting_rejects_mismatched_shapes(backend):
    with pytest.raises(ValueError):
        MODULES[backend].uncertainty_weighting(arr(backend, np.ones(3)), arr(backend, np.zeros(2)))


# --------------------------------------------------------------------------- curriculum


def seed_weights(difficulty: np.ndarray, progress: float) -> np.ndarray:
    """seed 002's CurriculumLoss weights, in float64."""
    weights = (difficulty <= progress).astype(np.float64)
    return weights / (weights.sum() + 1e-6) * weights.size


DIFFICULTY = np.array([0.1, 0.45, 0.7, 0.0, 0.95, 0.3])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("progress", [0.0, 0.2, 0.5, 0.999, 1.0])
def test_curriculum_weights_equal_the_seed_formula(backend, progress):
    m = MODULES[backend]
    out = to_np(m.curriculum_weights(arr(backend, DIFFICULTY), progress=progress))
    close(out, seed_weights(DIFFICULTY, progress))
    kept = DIFFICULTY <= progress
    close(out.sum(), 6 * kept.sum() / (kept.sum() + 1e-6))  # the kept weights sum to (almost) N
    assert np.all(out[~kept] == 0.0)
    if backend == "jax":
        jitted = jax.jit(lambda d: pj.curriculum_weights(d, progress=progress))
        close(jitted(jnp.asarray(DIFFICULTY)), seed_weights(DIFFICULTY, progress))


@pytest.mark.parametrize("backend", BACKENDS)
def test_curriculum_weights_none_kept_are_all_zero(backend):
    d = np.array([0.2, 0.5, 0.9])
    out = to_np(MODULES[backend].curriculum_weights(arr(backend, d), progress=0.0))
    assert np.all(out == 0.0) and not np.any(np.isnan(out))
    out = to_np(MODULES[backend].curriculum_weights(arr(backend, d), progress=1.0))
    close(out, np.full(3, 3.0 / (3.0 + 1e-6)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_curriculum_weights_keep_float32(backend):
    out = MODULES[backend].curriculum_weights(arr(backend, DIFFICULTY, "float32"), progress=0.5)
    assert str(out.dtype).endswith("float32")
    close(out, seed_weights(DIFFICULTY, 0.5), rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_curriculum_weighs_the_per_sample_losses(backend):
    rng = np.random.default_rng(1)
    losses = rng.uniform(0.0, 3.0, size=6)
    m = MODULES[backend]
    for progress in (0.0, 0.5, 1.0):
        w = seed_weights(DIFFICULTY, progress)
        a = (arr(backend, losses), arr(backend, DIFFICULTY))
        close(m.curriculum(*a, progress=progress), np.sum(w * losses))  # default reduction "sum", as the seed
        close(m.curriculum(*a, progress=progress, reduction="mean"), np.mean(w * losses))
        close(m.curriculum(*a, progress=progress, reduction="none"), w * losses)


@pytest.mark.parametrize("backend", AUTODIFF)
def test_curriculum_gradient_is_the_weights(backend):
    rng = np.random.default_rng(2)
    losses = rng.uniform(0.0, 3.0, size=6)
    fn = lambda l, d: MODULES[backend].curriculum(l, d, progress=0.5)  # noqa: E731
    _, (g_losses, g_difficulty) = grads(backend, fn, arr(backend, losses), arr(backend, DIFFICULTY), argnums=(0, 1))
    close(g_losses, seed_weights(DIFFICULTY, 0.5))
    close(g_difficulty, np.zeros(6), atol=0.0)  # piecewise constant in the difficulty


@pytest.mark.parametrize("backend", BACKENDS)
def test_curriculum_rejects_bad_inputs(backend):
    m = MODULES[backend]
    with pytest.raises(ValueError):
        m.curriculum(arr(backend, np.ones(6)), arr(backend, DIFFICULTY), progress=1.5)
    with pytest.raises(ValueError):
        m.curriculum_weights(arr(backend, DIFFICULTY), progress=-0.1)
    with pytest.raises(ValueError):
        m.curriculum(arr(backend, np.ones((2, 3))), arr(backend, DIFFICULTY.reshape(2, 3)), progress=0.5)
    with pytest.raises(ValueError):
        m.curriculum(arr(backend, np.ones(5)), arr(backend, DIFFICULTY), progress=0.5)
