"""Helpers the test files share: the backends under test, conversion to NumPy and comparison.

The ``backend`` fixture (``conftest.py``) yields one of :data:`HARNESSES`; a test that needs a subset
parametrises it indirectly: ``@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)``.
"""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType
from typing import Any

import jax
import numpy as np
import torch

import polyloss.jax
import polyloss.numpy
import polyloss.torch
from polyloss.verify.harness.base import Harness
from polyloss.verify.harness.jax import HARNESS as JAX
from polyloss.verify.harness.numpy import HARNESS as NUMPY
from polyloss.verify.harness.strict import HARNESS as STRICT
from polyloss.verify.harness.torch import HARNESS as TORCH

__all__ = [
    "AUTODIFF",
    "BACKENDS",
    "HARNESSES",
    "JAX",
    "MODULES",
    "NUMPY",
    "STRICT",
    "TORCH",
    "assert_python_succeeds",
    "close",
    "namespace",
    "run_python",
    "to_numpy",
]

HARNESSES: dict[str, Harness] = {h.name: h for h in (NUMPY, STRICT, TORCH, JAX)}
#: the backends with a public namespace (``polyloss.numpy|torch|jax``), and those with autodiff
BACKENDS = ("numpy", "torch", "jax")
AUTODIFF = ("torch", "jax")
MODULES: dict[str, ModuleType] = {"numpy": polyloss.numpy, "torch": polyloss.torch, "jax": polyloss.jax}


def namespace(backend: Harness) -> ModuleType:
    """The public namespace (``polyloss.numpy|torch|jax``) of ``backend``."""
    return MODULES[backend.name]


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of a torch, JAX or NumPy array (half precision as float32), by its own harness."""
    if isinstance(x, torch.Tensor):
        return TORCH.to_numpy(x)
    if isinstance(x, jax.Array):
        return JAX.to_numpy(x)
    return np.asarray(x)


def close(actual: Any, expected: Any, rtol: float = 1e-12, atol: float = 1e-14) -> None:
    """``actual`` (any framework's array) equals ``expected`` within ``rtol``/``atol``, in float64."""
    np.testing.assert_allclose(to_numpy(actual), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol)


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, its output captured, killed after 5 minutes."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)


def assert_python_succeeds(code: str) -> subprocess.CompletedProcess[str]:
    """:func:`run_python`, which must exit with status 0 (its output is the failure message)."""
    result = run_python(code)
    assert result.returncode == 0, result.stdout + result.stderr
    return result
