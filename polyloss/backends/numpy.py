"""NumPy backend: the float64 reference, no autodiff."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._typing import Backend


class NumpyBackend(ArrayAPIBackend):
    def __init__(self) -> None:
        super().__init__("numpy", xp, (np.ndarray, np.generic))


BACKEND: Backend = NumpyBackend()  # mypy checks the class against the core's protocol
