"""The JAX harness: jax.value_and_grad, check_grads, vmap and jit for the checks.

The only module of the harness that imports jax (and optax, for the references).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from polyloss.backends.jax import BACKEND as JAX_BACKEND
from polyloss.verify.harness.base import Harness, of_inputs

_HALF = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))


@contextlib.contextmanager
def enable_float64() -> Iterator[None]:
    """JAX's float64 mode (``jax_enable_x64``) on inside the block, as it was after it.

    The checks compare float64 values, which JAX computes only in this mode. To keep it
    on for a whole process (a test-suite), opt in once yourself:
    ``jax.config.update("jax_enable_x64", True)``.
    """
    previous = bool(jax.config.read("jax_enable_x64"))
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


class JaxHarness(Harness):
    def scope(self) -> contextlib.AbstractContextManager[None]:
        """:func:`enable_float64`."""
        return enable_float64()

    def asarray(self, value: Any, dtype: str | None = None) -> jax.Array:
        if dtype == "bfloat16":
            return jnp.asarray(np.asarray(value, dtype="float32"), dtype=jnp.bfloat16)
        return jnp.asarray(np.asarray(value, dtype=dtype))

    def to_numpy(self, x: jax.Array) -> np.ndarray:
        if x.dtype in _HALF:
            x = x.astype(jnp.float32)
        return np.asarray(x)

    def reference_modules(self) -> SimpleNamespace:
        """jax, jax.numpy, optax, rax and numpy; ImportError when optax or rax is missing (reported as
        such: both come with the ``verify`` extra)."""
        import optax
        import rax

        return SimpleNamespace(jax=jax, jnp=jnp, optax=optax, rax=rax, np=np)

    def value_and_grad(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], cotangent: Any = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        def scalar(*args: Any) -> tuple[jax.Array, jax.Array]:
            out = fn(*args)
            total = jnp.sum(out) if cotangent is None else jnp.sum(out * jnp.asarray(cotangent, out.dtype))
            return total, out

        (_, out), grads = jax.value_and_grad(scalar, argnums=tuple(argnums), has_aux=True)(*arrays)
        return self.to_numpy(out), [self.to_numpy(g) for g in grads]

    def traceable(self, fn: Callable[..., Any], arrays: Sequence[Any]) -> bool:
        try:
            jax.eval_shape(fn, *arrays)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            fn(*arrays)  # eagerly, for the exceptions it raises before computing
            return False
        return True

    def values_and_grads(
        self,
        fns: Sequence[Callable[..., Any]],
        arrays: Sequence[Any],
        argnums: Sequence[int],
        cotangents: Sequence[Any],
        compiled: bool = True,
    ) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """One ``jax.jit`` of every function's value and VJP: one compilation where eager JAX would
        compile each primitive of each function for these shapes."""

        def weighted(fn: Callable[..., Any], cotangent: Any) -> Callable[..., tuple[jax.Array, jax.Array]]:
            def scalar(*args: Any) -> tuple[jax.Array, jax.Array]:
                out = fn(*args)
                total = jnp.sum(out) if cotangent is None else jnp.sum(out * jnp.asarray(cotangent, out.dtype))
                return total, out

            return scalar

        def every(*args: Any) -> list[tuple[jax.Array, Any]]:
            results = []
            for fn, cotangent in zip(fns, cotangents, strict=True):
                if argnums:
                    (_, out), grads = jax.value_and_grad(weighted(fn, cotangent), tuple(argnums), has_aux=True)(*args)
                else:
                    out, grads = fn(*args), ()
                results.append((out, grads))
            return results

        if not compiled:
            return super().values_and_grads(fns, arrays, argnums, cotangents)
        # XLA's optimisations cost compile time (a quarter of it here) that one call never earns back
        previous = bool(jax.config.read("jax_disable_most_optimizations"))
        jax.config.update("jax_disable_most_optimizations", True)
        try:
            results = jax.jit(every)(*arrays)
        finally:
            jax.config.update("jax_disable_most_optimizations", previous)
        return [(self.to_numpy(out), [self.to_numpy(g) for g in grads]) for out, grads in results]

    def check_finite_differences(
        self, fn: Callable[..., Any], arrays: Sequence[Any], argnums: Sequence[int], order: int, fast: bool = False
    ) -> None:
        from jax.test_util import check_grads

        wrt = of_inputs(fn, arrays, argnums, jnp.asarray)  # check_grads perturbs with NumPy
        check_grads(wrt, tuple(arrays[i] for i in argnums), order=order, modes=("rev",), eps=1e-6, atol=1e-5, rtol=1e-4)

    def vmap(self, fn: Callable[..., Any], in_axes: Sequence[int | None]) -> Callable[..., Any]:
        return jax.vmap(fn, in_axes=tuple(in_axes))

    def jit(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(fn)


HARNESS = JaxHarness(JAX_BACKEND)
