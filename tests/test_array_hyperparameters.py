"""Real hyper-parameters given as 0-d arrays: a learnable temperature (a torch tensor that requires
grad), a schedule traced under ``jax.jit``, a NumPy scalar array.

Which hyper-parameters accept arrays is declared once, on the core function (annotated
``float | Array``; ``polyloss.verify.cases.array_hyperparameters`` reads it). For every one of them, on
every variant of the loss's spec: values on every backend equal polyloss.numpy's, torch's and JAX's
gradients agree (in the hyper-parameter too) and match finite differences, the same checks as the
conformance matrix (``polyloss.verify.checks``). Then: a jitted JAX step that varies the value compiles
once, concrete invalid values raise naming the parameter, traced invalid values give NaN, and a
hyper-parameter that stays a Python number says so.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import MODULES

from polyloss.verify import checks
from polyloss.verify.cases import array_hyperparameters, make_cases, with_array_hyperparameters
from polyloss.verify.specs import SPECS

# typed as modules: the namespaces' functions are generated at import time
pn, pt, pj = MODULES["numpy"], MODULES["torch"], MODULES["jax"]


def _case(name: str, variant: int):
    """The variant's case with its array hyper-parameters as inputs (None: it uses none of them)."""
    spec = SPECS[name]
    (case,) = make_cases(spec, variant, seed=1, n=3)
    return spec, with_array_hyperparameters(spec, case)


#: (loss, variant index) of every variant that uses an array hyper-parameter (sets it, or leaves a
#: default that is not 0): every loss with one has at least one such variant (checked below)
CASES = [
    (name, v)
    for name, spec in SPECS.items()
    if array_hyperparameters(spec)
    for v in range(len(spec.variants))
    if _case(name, v)[1] is not None
]


def _passes(outcome) -> None:
    assert outcome.status == "pass", f"{outcome.check}[{outcome.backend}] {outcome.status}: {outcome.detail}"


def test_the_catalogue_declares_array_hyperparameters():
    """The losses whose temperature, margin, smoothing, focusing or scale users learn or schedule."""
    declared = {name: array_hyperparameters(spec) for name, spec in SPECS.items()}
    assert "temperature" in declared["infonce"] and "temperature" in declared["nt_xent"]
    assert {"label_smoothing", "z_loss"} <= set(declared["cross_entropy"])
    assert "gamma" in declared["focal"] and "margin" in declared["triplet"] and "delta" in declared["huber"]
    assert sum(len(v) for v in declared.values()) >= 30
    assert {name for name, _ in CASES} == {name for name, hyper in declared.items() if hyper}


@pytest.mark.parametrize("backend", ["array_api_strict", "torch", "jax"])
@pytest.mark.parametrize("name,variant", [(n, v) for n, v in CASES if not SPECS[n].core().needs_autodiff])
def test_values_with_array_hyperparameters_equal_numpy(env, name, variant, backend):
    spec, case = _case(name, variant)
    _passes(checks.check_values(spec, case, env, backend))


@pytest.mark.parametrize("name,variant", CASES)
def test_torch_and_jax_gradients_agree_in_the_hyperparameters(env, name, variant):
    spec, case = _case(name, variant)
    _passes(checks.check_gradients(spec, case, env))


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", [name for name, spec in SPECS.items() if array_hyperparameters(spec)])
def test_hyperparameter_gradients_match_finite_differences(env, name, backend):
    spec = SPECS[name]
    if not spec.finite_differences:
        pytest.skip(f"{name}: {spec.notes}")
    spec, case = _case(name, next(v for n, v in CASES if n == name))
    _passes(checks.check_finite_differences(spec, case, env, backend))


def test_a_jitted_step_that_varies_the_temperature_compiles_once():
    query, key = jnp.ones((4, 3)) + jnp.eye(4, 3), jnp.ones((4, 3)) - jnp.eye(4, 3)

    @jax.jit
    def step(temperature: jax.Array) -> jax.Array:
        return jax.grad(lambda t: pj.infonce(query, key, temperature=t))(temperature)

    grads = [step(jnp.asarray(t)) for t in (0.05, 0.1, 0.2, 0.5)]
    assert step._cache_size() == 1
    assert len({float(g) for g in grads}) == 4  # a different value, not a constant folded in


def test_a_learnable_torch_temperature_gets_the_gradient_of_the_python_float_loss():
    rng = np.random.default_rng(0)
    query, key = torch.as_tensor(rng.normal(size=(5, 4))), torch.as_tensor(rng.normal(size=(5, 4)))
    temperature = torch.nn.Parameter(torch.tensor(0.2, dtype=torch.float64))
    loss = pt.infonce(query, key, temperature=temperature)
    loss.backward()
    step = 1e-6
    numeric = (
        float(pt.infonce(query, key, temperature=0.2 + step)) - float(pt.infonce(query, key, temperature=0.2 - step))
    ) / (2 * step)
    assert float(loss.detach()) == pytest.approx(float(pt.infonce(query, key, temperature=0.2)), rel=1e-14)
    assert float(temperature.grad) == pytest.approx(numeric, rel=1e-6)


@pytest.mark.parametrize(
    "call",
    [
        lambda h: pn.infonce(np.ones((2, 3)), np.ones((2, 3)), temperature=h(0.0)),
        lambda h: pn.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=h(1.5)),
        lambda h: pn.huber(np.zeros(3), np.ones(3), delta=h(-1.0)),
        lambda h: pn.focal(np.zeros((2, 3)), np.array([0, 1]), gamma=h(np.nan)),
    ],
)
def test_a_concrete_invalid_array_value_raises_naming_the_parameter(call):
    with pytest.raises(ValueError) as python_number:
        call(float)
    with pytest.raises(ValueError, match=r"\(a 0-d array\)") as array:
        call(np.asarray)
    parameter = str(python_number.value).split()[0]
    assert str(array.value).startswith(parameter), (python_number.value, array.value)


def test_a_traced_invalid_value_gives_nan_not_a_wrong_number():
    query, key = jnp.ones((2, 3)), jnp.ones((2, 3))
    loss = jax.jit(lambda t: pj.infonce(query, key, temperature=t))
    assert np.isfinite(float(loss(jnp.asarray(0.5))))
    assert np.isnan(float(loss(jnp.asarray(-0.5))))
    assert np.isnan(
        float(jax.jit(lambda s: pj.cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]), label_smoothing=s))(2.0))
    )


def test_a_hyperparameter_array_must_be_0d_and_floating():
    with pytest.raises(
        ValueError, match=r"temperature must be a Python float or a 0-d array, got an array of shape \(2,\)"
    ):
        pn.infonce(np.ones((2, 3)), np.ones((2, 3)), temperature=np.array([0.1, 0.2]))
    with pytest.raises(TypeError, match="temperature must have a real floating dtype"):
        pt.infonce(torch.ones(2, 3), torch.ones(2, 3), temperature=torch.tensor(1))


def test_a_python_only_hyperparameter_says_so():
    """``smooth_l1``'s beta switches to L1 at exactly 0 (a Python branch): it stays a Python float."""
    assert "beta" not in array_hyperparameters(SPECS["smooth_l1"])
    with pytest.raises(TypeError, match=r"beta must be a Python float, got ndarray"):
        pn.smooth_l1(np.zeros(3), np.ones(3), beta=np.asarray(0.5))
