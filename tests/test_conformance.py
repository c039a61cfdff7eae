"""The agreement matrix, derived from the specs alone: every registered loss gets every check.

Hypothesis draws the variant, the seed and the batch size (the costliest JAX checks take one random
case instead); the checks live in ``polyloss.verify.checks`` (shared with ``python -m polyloss verify``).
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyloss.verify import checks
from polyloss.verify.cases import make_cases
from polyloss.verify.compare import Outcome
from polyloss.verify.specs import SPECS

SPEC_NAMES = list(SPECS)
# Each draw is costly (a new batch size means new JAX compilations): 3 per check and loss keeps the
# matrix inside the CI budget; `HYPOTHESIS_PROFILE=dev` explores its own (larger) number.
EXAMPLES = 3 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings().max_examples
# JAX's own checks (its values, float32) compile per draw: 2 draws. Its gradients stay tied to
# torch's at 3 draws by the "grad" check (torch~jax), and torch's to finite differences at 3.
JAX_EXAMPLES = 2 if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings().max_examples
# The costliest JAX checks (jit against eager, where each draw compiles every reduction; finite
# differences; vmap) take one random case per run, not Hypothesis' (whose first draw is always its
# simplest: variant 0, seed 0, n 1); the failure message names the case, to reproduce it.


def _cases(spec, variant: int, seed: int, n: int, count: int):
    note = f"{spec.name} variant {spec.variants[variant].name!r} seed {seed} n {n}"
    return make_cases(spec, variant, seed, n, count), note


def _draw(spec, data, count: int = 1):
    variant = data.draw(st.integers(0, len(spec.variants) - 1), label="variant")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    n = data.draw(st.integers(1, 4), label="n")
    return _cases(spec, variant, seed, n, count)


def _random_case(spec, count: int = 1):
    """One case drawn at random (reproduce a failure with the variant, seed and n it names)."""
    rng = random.Random()
    return _cases(spec, rng.randrange(len(spec.variants)), rng.randrange(2**32), rng.randint(1, 4), count)


def _assert(outcome: Outcome, note: str) -> None:
    assert outcome.status == "pass", f"{outcome.check}[{outcome.backend}] {outcome.status} for {note}: {outcome.detail}"


# Autodiff losses (absent from numpy and array-api-strict) compare torch with jax.
VALUE_PAIRS = [
    (name, backend)
    for name in SPEC_NAMES
    for backend in ("array_api_strict", "torch", "jax")
    if not SPECS[name].core().needs_autodiff or backend == "torch"
]


FD_SPEC_NAMES = [name for name in SPEC_NAMES if SPECS[name].finite_differences]

#: the one-case checks (and vmap's three cases) as (check, backend, loss): "grad" compares torch
#: with jax, "jit" jax's jit with its eager run
MATRIX = [
    *[("value", backend, name) for name, backend in VALUE_PAIRS],
    *[("float32", backend, name) for backend in ("torch", "jax") for name in SPEC_NAMES],
    *[("grad", "torch~jax", name) for name in SPEC_NAMES],
    *[("fd", backend, name) for backend in ("torch", "jax") for name in FD_SPEC_NAMES],
    *[("vmap", backend, name) for backend in ("jax", "torch") for name in SPEC_NAMES],
]
CHECKS = {
    "value": lambda spec, cases, env, backend: checks.check_values(spec, cases[0], env, backend),
    "float32": lambda spec, cases, env, backend: checks.check_float32(spec, cases[0], env, backend),
    "grad": lambda spec, cases, env, backend: checks.check_gradients(spec, cases[0], env),
    "fd": lambda spec, cases, env, backend: checks.check_finite_differences(spec, cases[0], env, backend),
    "vmap": lambda spec, cases, env, backend: checks.check_vmap(spec, cases, env, backend),
}


def _run_check(env, check: str, backend: str, name: str, data) -> None:
    spec = SPECS[name]
    cases, note = _draw(spec, data, count=3 if check == "vmap" else 1)
    _assert(CHECKS[check](spec, cases, env, backend), note)


@pytest.mark.parametrize("check,backend,name", [entry for entry in MATRIX if entry[1] != "jax"])
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_conformance(env, check, backend, name, data):
    """float64 values equal polyloss.numpy's (jax's for autodiff losses), float32 within tolerance,
    torch and jax gradients agree, gradients match finite differences, vmap equals a loop."""
    _run_check(env, check, backend, name, data)


JAX_ONCE = ("fd", "vmap")


@pytest.mark.parametrize(
    "check,backend,name", [entry for entry in MATRIX if entry[1] == "jax" and entry[0] not in JAX_ONCE]
)
@settings(max_examples=JAX_EXAMPLES)
@given(data=st.data())
def test_conformance_jax(env, check, backend, name, data):
    """The same checks on JAX alone, at JAX_EXAMPLES draws."""
    _run_check(env, check, backend, name, data)


@pytest.mark.parametrize(
    "check,backend,name", [entry for entry in MATRIX if entry[1] == "jax" and entry[0] in JAX_ONCE]
)
def test_conformance_jax_once(env, check, backend, name):
    """JAX's finite differences and vmap, on one random case."""
    spec = SPECS[name]
    cases, note = _random_case(spec, count=3 if check == "vmap" else 1)
    _assert(CHECKS[check](spec, cases, env, backend), note)


def test_losses_without_finite_differences_have_a_gradient_reference():
    """A gradient that is not the value's (CIoU's constant alpha) is checked against an upstream one instead."""
    for name in set(SPEC_NAMES) - set(FD_SPEC_NAMES):
        spec = SPECS[name]
        assert spec.notes and any(r.grads and r.framework != "numpy" for r in spec.references), name


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_jax_jit_equals_eager(env, name):
    """One random case (each compiles every reduction); the edge corpus runs jitted too."""
    spec = SPECS[name]
    (case,), note = _random_case(spec)
    _assert(checks.check_jit(spec, case, env), note)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_jax_jit_with_captured_inputs_equals_eager(env, name):
    """``jax.jit(lambda x: loss(x, labels))``: the inputs not differentiated are constants of the trace."""
    spec = SPECS[name]
    (case,), note = _random_case(spec)
    _assert(checks.check_jit_captured(spec, case, env), note)


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_torch_compile_fullgraph_equals_eager(env, name):
    spec = SPECS[name]
    (case,) = make_cases(spec, 0, seed=0, n=3)
    _assert(checks.check_compile(spec, case, env, reductions=("mean",)), f"{name} variant 0")


REFERENCES = [(name, i) for name, spec in SPECS.items() for i in range(len(spec.references))]


@pytest.mark.parametrize("name,index", REFERENCES, ids=[f"{n}-{SPECS[n].references[i].name}" for n, i in REFERENCES])
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_matches_upstream_reference(env, name, index, data):
    spec = SPECS[name]
    (case,), note = _draw(spec, data)
    outcome = checks.check_reference(spec, spec.references[index], case, env)
    assert outcome.status in ("pass", "n/a"), f"{outcome.check} {outcome.status} for {note}: {outcome.detail}"


@pytest.mark.parametrize("name,index", REFERENCES, ids=[f"{n}-{SPECS[n].references[i].name}" for n, i in REFERENCES])
def test_every_reference_applies_to_some_variant(env, name, index):
    """A reference that is n/a everywhere would be a check that never runs. Variants are tried in
    order up to the first that it applies to (and passes); test_matches_upstream_reference runs it
    on all of them."""
    spec = SPECS[name]
    statuses = []
    for v in range(len(spec.variants)):
        case = make_cases(spec, v, 0, 3)[0]
        statuses.append(checks.check_reference(spec, spec.references[index], case, env).status)
        if statuses[-1] != "n/a":
            break
    assert statuses[-1] == "pass", statuses
