"""array-api-strict backend: proves the core uses the standard and nothing else.

Configured with the strictest flags (no boolean indexing, no data-dependent
shapes). Used by the test-suite and ``python -m polyloss verify``; not a public
namespace.
"""

from __future__ import annotations

from typing import Any

import array_api_strict
import numpy as np

from polyloss.backends.base import ArrayAPIBackend


class StrictBackend(ArrayAPIBackend):
    framework = "array_api_strict"

    def __init__(self) -> None:
        array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)
        super().__init__("array_api_strict", array_api_strict, (type(array_api_strict.asarray(0.0)),))

    def asarray(self, value: Any, dtype: str | None = None) -> Any:
        value = np.asarray(value, dtype=dtype)
        return array_api_strict.asarray(value, dtype=getattr(array_api_strict, str(value.dtype)))

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x._array)  # test hook only


BACKEND = StrictBackend()
