"""The NumPy harness: conversion only (NumPy has no autodiff and no transforms)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from polyloss.backends.numpy import BACKEND as NUMPY_BACKEND
from polyloss.verify.harness.base import Harness


class NumpyHarness(Harness):
    def asarray(self, value: Any, dtype: str | None = None) -> Any:
        return np.asarray(value, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def reference_modules(self) -> SimpleNamespace:
        return SimpleNamespace(np=np)


HARNESS = NumpyHarness(NUMPY_BACKEND)
