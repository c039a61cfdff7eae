"""Which harnesses this install can import: a missing framework is reported, never a crash."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from polyloss.verify.harness import HARNESS_MODULES
from polyloss.verify.harness.base import Harness, scopes

#: the pip package behind each harness, named when it is missing
REQUIRED_PACKAGE = {"array_api_strict": "array-api-strict", "torch": "torch", "jax": "jax"}


@dataclass
class Environment:
    """The harnesses importable on this install, by backend name, and why the others are not.

    Attributes:
        harnesses: ``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"jax"`` -> its
            :class:`~polyloss.verify.harness.base.Harness`, for those that import.
        missing: the others -> ``"<package> not installed (<the ImportError>)"``.
    """

    harnesses: dict[str, Harness] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Environment:
        """Import every harness; changes no process state (see :meth:`scope`)."""
        env = cls()
        for name, module_name in HARNESS_MODULES.items():
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                env.missing[name] = f"{REQUIRED_PACKAGE.get(name, name)} not installed ({error})"
                continue
            env.harnesses[name] = module.HARNESS
        return env

    def scope(self) -> Any:
        """Every loaded harness's process state (JAX's float64 mode, dynamo's recompile limits,
        array-api-strict's flags) for the duration of a ``with`` block, restored after."""
        return scopes(list(self.harnesses.values()))

    def reference_modules(self, framework: str) -> Any:
        """The modules handed to the references of ``framework``; ImportError when it is missing."""
        if framework not in self.harnesses:
            raise ImportError(self.missing.get(framework, f"{framework} not installed"))
        return self.harnesses[framework].reference_modules()
