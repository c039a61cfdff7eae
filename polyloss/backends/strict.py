"""array-api-strict backend: proves the core uses the standard and nothing else.

Used by the test-suite and ``python -m polyloss verify`` (whose harness runs it with
array-api-strict's strictest flags: no boolean indexing, no data-dependent shapes);
not a public namespace.
"""

from __future__ import annotations

import array_api_strict

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._typing import Backend


class StrictBackend(ArrayAPIBackend):
    def __init__(self) -> None:
        super().__init__("array_api_strict", array_api_strict, (type(array_api_strict.asarray(0.0)),))


BACKEND: Backend = StrictBackend()  # mypy checks the class against the core's protocol
