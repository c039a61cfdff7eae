"""Shared fixtures: the checks' environment (every harness required) and hypothesis profiles.

The test process opts into JAX's float64 mode once, here: the tests build float64 JAX arrays
outside the checks (which switch it on for their own runs only)."""

from __future__ import annotations

import os

import jax
import pytest
from helpers import BACKENDS, HARNESSES
from hypothesis import HealthCheck, settings

from polyloss.verify.environment import Environment
from polyloss.verify.harness.base import Harness

jax.config.update("jax_enable_x64", True)

# Bounded for CI (2 cores, well inside 30 minutes); `HYPOTHESIS_PROFILE=dev` explores more.
settings.register_profile(
    "ci",
    max_examples=5,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def env() -> Environment:
    """All four backends and the optax references; a missing one fails the run, never skips it."""
    loaded = Environment.load()
    assert not loaded.missing, f"the test-suite needs every backend: {loaded.missing}"
    loaded.reference_modules("jax")  # optax must import too
    return loaded


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Harness:
    """Each backend's harness in turn (``asarray``, ``to_numpy``, ``value_and_grad``, ``.backend``);
    ``@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)`` narrows it to a subset."""
    return HARNESSES[request.param]
