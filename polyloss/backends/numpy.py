"""NumPy backend: the float64 reference, no autodiff."""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as xp
import numpy as np

from polyloss.backends.base import ArrayAPIBackend


class NumpyBackend(ArrayAPIBackend):
    framework = "numpy"

    def __init__(self) -> None:
        super().__init__("numpy", xp, (np.ndarray, np.generic))

    # harness hooks
    def asarray(self, value: Any, dtype: str | None = None) -> Any:
        return np.asarray(value, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)


BACKEND = NumpyBackend()


def reference_modules() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(np=np)
