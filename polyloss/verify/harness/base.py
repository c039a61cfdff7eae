"""The harness base class: the hooks every check may call, "not supported" until a framework has them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np


class NotSupported(NotImplementedError):
    """A harness hook the framework does not have (numpy has no autodiff, torch no ``jit``, ...)."""


def of_inputs(
    fn: Callable[..., Any],
    arrays: Sequence[Any],
    argnums: Sequence[int],
    convert: Callable[[Any], Any] = lambda value: value,
) -> Callable[..., Any]:
    """``fn`` as a function of ``arrays[i]`` for ``i`` in ``argnums`` only (each passed through
    ``convert``), the other inputs fixed: what a finite-difference checker perturbs."""

    def wrt(*diff_inputs: Any) -> Any:
        full = list(arrays)
        for i, value in zip(argnums, diff_inputs, strict=True):
            full[i] = convert(value)
        return fn(*full)

    return wrt


class Harness:
    """The checks' view of one backend: its runtime primitives (``backend``) plus test hooks.

    Args:
        backend: the runtime backend (``polyloss.backends.<framework>.BACKEND``), whose
            primitives the bound losses call.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    @property
    def name(self) -> str:
        """The backend's name (``"numpy"``, ``"array_api_strict"``, ``"torch"``, ``"jax"``)."""
        return str(self.backend.name)

    @property
    def has_autodiff(self) -> bool:
        return bool(self.backend.has_autodiff)

    def __repr__(self) -> str:
        return f"<polyloss harness {self.name!r}>"

    def _not_supported(self, hook: str, why: str) -> NotSupported:
        return NotSupported(f"the {self.name} harness has no {hook}: {why}")

    # -- process state ------------------------------------------------------------------
    def scope(self) -> contextlib.AbstractContextManager[None]:
        """The process state this framework's checks need, set on entry and restored on exit."""
        return contextlib.nullcontext()

    # -- arrays ---------------------------------------------------------------------------
    def asarray(self, value: Any, dtype: str | None = None) -> Any:
        """``value`` (anything ``np.asarray`` takes) as this backend's array, in ``dtype`` if given."""
        raise self._not_supported("asarray", "not implemented for this backend")

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy of ``x`` (half precision as float32)."""
        raise self._not_supported("to_numpy", "not implemented for this backend")

    def reference_modules(self) -> SimpleNamespace:
        """The framework modules handed to the specs' references of this framework."""
        raise self._not_supported("reference modules", "no reference is written for this backend")

    # -- transforms -----------------------------------------------------------------------
    def value_and_grad(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], cotangent: Any = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """``fn(*arrays)`` and the gradients of ``sum(cotangent * fn(*arrays))`` (plain sum when
        ``cotangent`` is None) with respect to ``arrays[i]`` for ``i`` in ``argnums``, as NumPy."""
        raise self._not_supported("value_and_grad", f"{self.name} has no autodiff")

    def traceable(self, fn: Callable[..., Any], arrays: Sequence[Any]) -> bool:
        """Whether ``fn`` can be compiled whole on ``arrays`` (False when it reads their values on the
        host); it runs ``fn`` as cheaply as the framework can (JAX: ``jax.eval_shape``, no
        compilation), so the exceptions ``fn`` raises before computing propagate. Here, an eager
        call, and True."""
        fn(*arrays)
        return True

    def values_and_grads(
        self,
        fns: Sequence[Callable[..., Any]],
        arrays: Sequence[Any],
        argnums: Sequence[int],
        cotangents: Sequence[Any],
        compiled: bool = True,
    ) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """:meth:`value_and_grad` of each of ``fns`` (with its cotangent) on the same arrays, as one
        compiled program where the framework compiles whole functions cheaply (JAX: one ``jax.jit``)
        unless ``compiled`` is False; here, one eager call each."""
        return [self.value_and_grad(fn, arrays, argnums, c) for fn, c in zip(fns, cotangents, strict=True)]

    def check_finite_differences(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], order: int, fast: bool = False
    ) -> None:
        """Raise when autodiff gradients (``order`` 1 or 2) differ from central finite differences;
        ``fast``: along random directions only, where the framework can (torch's ``fast_mode``)."""
        raise self._not_supported("check_finite_differences", f"{self.name} has no autodiff")

    def vmap(self, fn: Callable[..., Any], in_axes: Sequence[int | None]) -> Callable[..., Any]:
        """``fn`` vectorised over ``in_axes``."""
        raise self._not_supported("vmap", f"{self.name} has no vectorising map")

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` traced and compiled (``jax.jit``)."""
        raise self._not_supported("jit", "jit is JAX's transform; torch's is compile")

    def compile(self, fn: Callable[..., Any], compiler: str = "inductor") -> Callable[..., Any]:
        """``fn`` compiled whole (``torch.compile(fullgraph=True)``)."""
        raise self._not_supported("compile", "compile is torch's transform; JAX's is jit")


@contextlib.contextmanager
def scopes(harnesses: Sequence[Harness]) -> Iterator[None]:
    """Every harness's :meth:`Harness.scope` at once."""
    with contextlib.ExitStack() as stack:
        for harness in harnesses:
            stack.enter_context(harness.scope())
        yield
