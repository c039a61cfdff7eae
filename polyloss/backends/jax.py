"""JAX backend: native fused kernels for the primitive set.

The only module (with ``polyloss/jax.py``) that imports jax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._typing import Backend


class JaxBackend(ArrayAPIBackend):
    has_autodiff = True

    def __init__(self) -> None:
        super().__init__("jax", jnp, (jax.Array,))
        self._scan_bodies: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._half = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))

    # -- input handling --------------------------------------------------------
    def compute_dtype(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.float32) if x.dtype in self._half else x

    def is_traced(self, x: jax.Array) -> bool:
        return isinstance(x, jax.core.Tracer)

    # -- primitives: native kernels -------------------------------------------
    def log_softmax(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.log_softmax(x, axis=axis)

    def softmax(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.softmax(x, axis=axis)

    def logsumexp(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.logsumexp(x, axis=axis)

    def softplus(self, x: jax.Array) -> jax.Array:
        return jax.nn.softplus(x)

    def sigmoid(self, x: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(x)

    def softmax_cross_entropy(
        self, logits: jax.Array, index: jax.Array, axis: int, reduction: str = "none", valid: jax.Array | None = None
    ) -> jax.Array:
        # Gather the target logit, then normalise: XLA then writes about two full-size arrays
        # for value and gradient, instead of five for log_softmax-then-gather (1.9x slower
        # at 4096x1000). The max is subtracted from the target logit before the log-sum is,
        # so a large shared offset cancels exactly (optax's logsumexp(x) - x[y] loses it).
        top = jax.lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True))
        picked = jnp.take_along_axis(logits, jnp.expand_dims(index, axis), axis=axis) - top
        nll = jnp.log(jnp.sum(jnp.exp(logits - top), axis=axis)) - jnp.squeeze(picked, axis)
        return self._mark_and_reduce(nll, reduction, valid)  # XLA fuses the where on the output

    def take_along_axis(self, x: jax.Array, indices: jax.Array, axis: int) -> jax.Array:
        return jnp.take_along_axis(x, indices, axis=axis)

    def stop_gradient(self, x: jax.Array) -> jax.Array:
        return jax.lax.stop_gradient(x)

    def scan(self, step: Callable[..., Any], carry: Any, xs: tuple[jax.Array, ...]) -> Any:
        # one body per step function: lax.scan caches its compiled loop on the body's identity
        if step not in self._scan_bodies:
            self._scan_bodies[step] = lambda c, x: (step(c, x), None)
        return jax.lax.scan(self._scan_bodies[step], carry, xs)[0]

    def grad_of_sum(self, fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
        return jax.grad(lambda v: jnp.sum(fn(v)))(x)

    def uniform(self, key_or_generator: Any, shape: tuple[int, ...], like: jax.Array) -> jax.Array:
        if key_or_generator is None or isinstance(key_or_generator, (int, float)):
            raise ValueError(
                f"key_or_generator must be a jax.random key (JAX has no global random state), got {key_or_generator!r}"
            )
        return jax.random.uniform(key_or_generator, shape, dtype=like.dtype)


BACKEND: Backend = JaxBackend()  # mypy checks the class against the core's protocol
