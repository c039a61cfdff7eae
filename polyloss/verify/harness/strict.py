"""The array-api-strict harness: conversion, and the strictest flags for the duration of a run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import array_api_strict
import numpy as np

from polyloss.backends.strict import BACKEND as STRICT_BACKEND
from polyloss.verify.harness.base import Harness


class StrictHarness(Harness):
    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """array-api-strict's flags at their strictest, restored after: no boolean indexing and no
        data-dependent shapes (what a jit trace forbids, forbidden eagerly)."""
        previous = array_api_strict.get_array_api_strict_flags()
        array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)
        try:
            yield
        finally:
            array_api_strict.set_array_api_strict_flags(**previous)

    def asarray(self, value: Any, dtype: str | None = None) -> Any:
        value = np.asarray(value, dtype=dtype)
        return array_api_strict.asarray(value, dtype=getattr(array_api_strict, str(value.dtype)))

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x._array)  # array-api-strict has no public way out, by design


HARNESS = StrictHarness(STRICT_BACKEND)
