"""The harness (polyloss/verify/harness/): explicit "not supported" errors, process state scoped to a run."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_python_succeeds

from polyloss.verify.harness.base import NotSupported
from polyloss.verify.harness.jax import HARNESS as JAX
from polyloss.verify.harness.numpy import HARNESS as NUMPY
from polyloss.verify.harness.strict import HARNESS as STRICT
from polyloss.verify.harness.torch import HARNESS as TORCH


@pytest.mark.parametrize(
    "harness,hook,args,says",
    [
        (NUMPY, "value_and_grad", (None, [], [0]), "the numpy harness has no value_and_grad: numpy has no autodiff"),
        (NUMPY, "check_finite_differences", (None, [], [0], 1), "numpy has no autodiff"),
        (NUMPY, "vmap", (None, [0]), "the numpy harness has no vmap"),
        (STRICT, "reference_modules", (), "no reference is written for this backend"),
        (TORCH, "jit", (None,), "the torch harness has no jit: jit is JAX's transform; torch's is compile"),
        (JAX, "compile", (None,), "the jax harness has no compile: compile is torch's transform; JAX's is jit"),
    ],
)
def test_a_missing_hook_raises_not_supported_with_its_reason(harness, hook, args, says):
    with pytest.raises(NotSupported, match=says):
        getattr(harness, hook)(*args)
    assert issubclass(NotSupported, NotImplementedError)


def test_every_harness_wraps_its_runtime_backend():
    for name, harness in {"numpy": NUMPY, "array_api_strict": STRICT, "torch": TORCH, "jax": JAX}.items():
        assert harness.name == name == harness.backend.name
        assert np.array_equal(harness.to_numpy(harness.asarray([1.0, 2.0], "float64")), [1.0, 2.0])


def test_scopes_set_process_state_for_the_run_only():
    """In a fresh process (the test-suite opts into x64 for itself): JAX's float64 mode, dynamo's
    recompile limits and array-api-strict's flags are set inside a scope and as before after it."""
    code = (
        "import jax, torch, array_api_strict as s\n"
        "from polyloss.verify.environment import Environment\n"
        "env = Environment.load()\n"
        "c = torch._dynamo.config\n"
        "state = lambda: (jax.config.read('jax_enable_x64'), c.recompile_limit, c.accumulated_recompile_limit,"
        " s.get_array_api_strict_flags()['boolean_indexing'])\n"
        "before = state()\n"
        "with env.scope():\n"
        "    inside = state()\n"
        "    x = env.harnesses['jax'].asarray([1.0], 'float64')\n"
        "assert inside[0] is True and min(inside[1:3]) >= 4096 and inside[3] is False, inside\n"
        "assert str(x.dtype) == 'float64'\n"
        "assert before[0] is False and before != inside, before  # JAX's default: float32\n"
        "assert state() == before, (before, state())\n"
    )
    assert_python_succeeds(code)
