"""JAX backend: native fused kernels for the primitive set.

The only module (with ``polyloss/jax.py``) that imports jax.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from polyloss.backends.base import ArrayAPIBackend
from polyloss.core._checks import accelerator_values_checked
from polyloss.core._typing import (
    Backend,
    Devices,
    RingBlocks,
    RowChunks,
    SharedGrads,
    TransposedProduct,
)


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
    """|x| with derivative sign(x): 0 at 0, as the definition (relu(x) + relu(-x)) and torch's."""
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx


def _split(x: jax.Array, chunks: int, size: int) -> jax.Array:
    """(N, ...) -> (chunks, size, ...), zero-padded: padded rows get a zero cotangent."""
    pad = chunks * size - x.shape[0]
    return jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(chunks, size, *x.shape[1:])


def _merge(x: jax.Array, n: int) -> jax.Array:
    return x.reshape(-1, *x.shape[2:])[:n]


def _varying_axes(x: jax.Array) -> frozenset[str]:
    """The shard_map mesh axes along which ``x`` varies (empty outside shard_map)."""
    aval = jax.typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.10; earlier: aval.vma
    return frozenset(manual.varying if manual is not None else getattr(aval, "vma", ()))


def _as_varying(x: jax.Array, axes: frozenset[str]) -> jax.Array:
    """``x`` marked as varying along ``axes``: inside shard_map a custom_vjp's cotangents must
    have its inputs' types, and JAX's own transpose of this cast sums a replicated weight's
    gradient over the devices (a psum)."""
    missing = tuple(sorted(axes - _varying_axes(x)))
    if not missing:
        return x
    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(x, missing, to="varying")
    pvary: Callable[..., jax.Array] = vars(jax.lax)["pvary"]  # jax 0.6 to 0.9
    return pvary(x, missing)


#: the elements of the block of a weight gradient updated at once (16 MiB in float32)
_BLOCK_ELEMENTS = 1 << 22


def _evaluated(grads: SharedGrads) -> tuple[jax.Array | None, ...]:
    return tuple(g.left.T @ g.right if isinstance(g, TransposedProduct) else g for g in grads)


def _add_transposed_product(total: jax.Array, product: TransposedProduct) -> jax.Array:
    """``total + left.T @ right``, a block of ``total``'s rows at a time: XLA updates each block in
    place, so the temporary is one block, not a second ``(V, H)`` array."""
    left, right = product
    rows = total.shape[0]
    block = max(1, min(rows, _BLOCK_ELEMENTS // max(1, total.shape[1])))
    whole = rows // block

    def add_block(i: Any, acc: jax.Array) -> jax.Array:
        start = i * block
        piece = jax.lax.dynamic_slice_in_dim(left, start, block, axis=1).T @ right
        updated = jax.lax.dynamic_slice_in_dim(acc, start, block, axis=0) + piece
        return jax.lax.dynamic_update_slice_in_dim(acc, updated, start, axis=0)

    total = jax.lax.fori_loop(0, whole, add_block, total)
    if whole * block < rows:  # the last, shorter block
        total = total.at[whole * block :].add(left[:, whole * block :].T @ right)
    return total


def _accumulate(total: jax.Array | None, part: jax.Array | TransposedProduct | None) -> jax.Array | None:
    if isinstance(part, TransposedProduct):
        assert total is not None
        return _add_transposed_product(total, part)
    return None if total is None or part is None else total + part


def _scan_chunks(fn: Callable[[Any], tuple[Any, SharedGrads]], xs: Any, n: int) -> tuple[Any, Any]:
    """``fn`` over the leading (chunk) axis of ``xs``: its first output per row (merged back to ``n``
    rows), its shared gradients summed over the chunks. The first chunk runs outside the loop: its
    gradients are the carry's initial value, with the types (varying axes, under shard_map) the loop
    body gives it."""
    first_rows, first_sums = fn(jax.tree.map(lambda x: x[0], xs))

    def step(total: Any, chunk: Any) -> tuple[Any, Any]:
        per_row, sums = fn(chunk)
        return tuple(_accumulate(t, part) for t, part in zip(total, sums, strict=True)), per_row

    sums, rest = jax.lax.scan(step, _evaluated(first_sums), jax.tree.map(lambda x: x[1:], xs))
    per_row = jax.tree.map(lambda f, r: _merge(jnp.concatenate([f[None], r]), n), first_rows, rest)
    return per_row, sums


def _rows_in_chunks(
    chunks: RowChunks,
    size: int,
    rows: tuple[jax.Array, ...],
    shared: tuple[jax.Array | None, ...],
    row_weights: jax.Array | None,
) -> jax.Array:
    axes = frozenset().union(*(_varying_axes(x) for x in (*rows, *shared, row_weights) if x is not None))
    if axes:
        rows = tuple(_as_varying(x, axes) for x in rows)
        shared = tuple(None if x is None else _as_varying(x, axes) for x in shared)
        row_weights = None if row_weights is None else _as_varying(row_weights, axes)
    n = rows[0].shape[0]
    count = max(-(-n // size), 1)  # an empty batch is one chunk of padding

    def split(*arrays: jax.Array) -> tuple[jax.Array, ...]:
        return tuple(_split(x, count, size) for x in arrays)

    def values_and_saved(rows: tuple[jax.Array, ...], shared: Any) -> tuple[jax.Array, jax.Array]:
        values, saved = jax.lax.map(lambda chunk: chunks.forward(chunk, shared), split(*rows))
        return _merge(values, n), _merge(saved, n)

    if row_weights is None:

        @jax.custom_vjp
        def chunked(rows: Any, shared: Any) -> jax.Array:
            return values_and_saved(rows, shared)[0]

        def chunked_fwd(rows: Any, shared: Any) -> tuple[jax.Array, Any]:
            values, saved = values_and_saved(rows, shared)
            return values, (rows, shared, saved)

        def chunked_bwd(residuals: Any, g: jax.Array) -> tuple[Any, Any]:
            rows, shared, saved = residuals

            return _scan_chunks(
                lambda c: chunks.backward(c[0], shared, c[1], c[2]), (split(*rows), *split(saved, g)), n
            )

        chunked.defvjp(chunked_fwd, chunked_bwd)
        return chunked(rows, shared)

    @jax.custom_vjp
    def weighted(rows: Any, shared: Any, w: jax.Array) -> jax.Array:
        return jnp.sum(w * values_and_saved(rows, shared)[0])

    def weighted_fwd(rows: Any, shared: Any, w: jax.Array) -> tuple[jax.Array, Any]:
        def fused(chunk: Any) -> tuple[Any, Any]:
            values, row_grads, shared_grads = chunks.forward_and_backward(chunk[0], shared, chunk[1])
            return (values, row_grads), shared_grads

        (values, row_grads), shared_grads = _scan_chunks(fused, (split(*rows), *split(w)), n)
        return jnp.sum(w * values), (values, row_grads, shared_grads)

    def weighted_bwd(residuals: Any, g: jax.Array) -> tuple[Any, Any, Any]:
        values, row_grads, shared_grads = residuals
        scale = partial(jax.tree.map, lambda x: x * g)
        return scale(row_grads), scale(shared_grads), values * g

    weighted.defvjp(weighted_fwd, weighted_bwd)
    return weighted(rows, shared, row_weights)


def _ring_sum(
    blocks: RingBlocks, devices: Devices, local: tuple[jax.Array, ...], visiting: tuple[jax.Array, ...]
) -> jax.Array:
    axis_name = getattr(devices, "axis_name", ())
    axes = frozenset(axis_name if isinstance(axis_name, tuple) else (axis_name,))
    axes = axes.union(*(_varying_axes(x) for x in (*local, *visiting)))
    # every input varying: the cotangents have the inputs' types, and JAX's transpose of the cast
    # sums a replicated hyper-parameter's gradient over the devices
    local = tuple(_as_varying(x, axes) for x in local)
    visiting = tuple(_as_varying(x, axes) for x in visiting)
    shift = partial(jax.tree.map, devices.shift)

    def values_of(local: Any, visiting: Any) -> jax.Array:
        def step(_: int, carry: Any) -> Any:
            values, visiting = carry
            visiting = shift(visiting)
            return values + blocks.forward(local, visiting, False), visiting

        first = blocks.forward(local, visiting, True)
        return jax.lax.fori_loop(1, devices.size, step, (first, visiting))[0]

    @jax.custom_vjp
    def ring(local: Any, visiting: Any) -> jax.Array:
        return values_of(local, visiting)

    def ring_fwd(local: Any, visiting: Any) -> tuple[jax.Array, Any]:
        return values_of(local, visiting), (local, visiting)

    def ring_bwd(residuals: Any, g: jax.Array) -> tuple[Any, Any]:
        local, visiting = residuals

        def step(_: int, carry: Any) -> Any:
            local_grads, visiting, travelling = carry
            visiting, travelling = shift(visiting), shift(travelling)
            more_local, more_visiting = blocks.backward(local, visiting, False, g)
            add = partial(jax.tree.map, jnp.add)
            return add(local_grads, more_local), visiting, add(travelling, more_visiting)

        local_grads, travelling = blocks.backward(local, visiting, True, g)
        local_grads, _, travelling = jax.lax.fori_loop(1, devices.size, step, (local_grads, visiting, travelling))
        return local_grads, shift(travelling)  # each block's gradient, home

    ring.defvjp(ring_fwd, ring_bwd)
    return ring(local, visiting)


class _MeshAxisDevices:
    """The devices along a mesh axis bound by ``shard_map``/``pmap`` (:class:`polyloss.core._typing.Devices`):
    JAX's collectives, whose transposes JAX's autodiff already knows."""

    def __init__(self, axis_name: Any, size: int) -> None:
        self.axis_name = axis_name
        self.size = size
        self._ring = [(i, (i + 1) % size) for i in range(size)]

    def rank(self) -> jax.Array:
        return jax.lax.axis_index(self.axis_name)

    def check_same_rows(self, name: str, x: jax.Array) -> None:
        return None  # shard_map and pmap give every device a shard of the same shape

    def all_gather(self, x: jax.Array) -> jax.Array:
        return jax.lax.all_gather(x, self.axis_name, axis=0, tiled=True)

    def sum(self, x: jax.Array) -> jax.Array:
        return jax.lax.psum(x, self.axis_name)

    def shift(self, x: jax.Array) -> jax.Array:
        return jax.lax.ppermute(x, self.axis_name, perm=self._ring)


class JaxBackend(ArrayAPIBackend):
    has_autodiff = True

    def __init__(self) -> None:
        super().__init__("jax", jnp, (jax.Array,))
        self._scan_bodies: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._half = (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))

    # -- input handling --------------------------------------------------------
    def converted(self, x: Any) -> jax.Array | None:
        # what jax.numpy takes (optax too): NumPy arrays, converted where a jax.Array is expected
        return jnp.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else None

    def compute_dtype(self, x: jax.Array) -> jax.Array:
        return x.astype(jnp.float32) if x.dtype in self._half else x

    def is_opaque(self, x: jax.Array) -> bool:
        if isinstance(x, jax.core.Tracer):
            return True
        on_host = all(device.platform == "cpu" for device in x.devices())
        return not (on_host or accelerator_values_checked())

    # -- primitives: native kernels -------------------------------------------
    def log_softmax(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.log_softmax(x, axis=axis)

    def softmax(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.softmax(x, axis=axis)

    def logsumexp(self, x: jax.Array, axis: int) -> jax.Array:
        return jax.nn.logsumexp(x, axis=axis)

    def softplus(self, x: jax.Array) -> jax.Array:
        return jax.nn.softplus(x)

    def abs(self, x: jax.Array) -> jax.Array:
        # jnp.abs's own derivative at 0 is 1; the definition's two relu passes are 3x slower under jit
        return _abs(x)

    def sigmoid(self, x: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(x)

    def softmax_cross_entropy(
        self,
        logits: jax.Array,
        index: jax.Array,
        axis: int,
        reduction: str = "none",
        valid: jax.Array | None = None,
        kept: jax.Array | None = None,
    ) -> jax.Array:
        # Gather the target logit, then normalise: XLA then writes about two full-size arrays
        # for value and gradient, instead of five for log_softmax-then-gather (1.9x slower
        # at 4096x1000). The max is subtracted from the target logit before the log-sum is,
        # so a large shared offset cancels exactly (optax's logsumexp(x) - x[y] loses it).
        logits = self._kept_rows(logits, axis, kept)
        top = jax.lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True))
        picked = jnp.take_along_axis(logits, jnp.expand_dims(index, axis), axis=axis) - top
        nll = jnp.log(jnp.sum(jnp.exp(logits - top), axis=axis)) - jnp.squeeze(picked, axis)
        return self._mark_and_reduce(nll, reduction, valid, kept)  # XLA fuses the where on the output

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

    devices_keyword = "axis_name"

    def named_devices(self, axis_name: Any) -> Devices:
        try:
            size = jax.lax.axis_size(axis_name)
        except NameError:
            raise ValueError(
                f"axis_name={axis_name!r} is not bound here: call the loss inside jax.shard_map (or pmap) "
                "over a mesh with that axis (or pass axis_name=None for one device)"
            ) from None
        return _MeshAxisDevices(axis_name, size)

    def ring_sum(
        self, blocks: RingBlocks, devices: Devices, local: tuple[jax.Array, ...], visiting: tuple[jax.Array, ...]
    ) -> jax.Array:
        # custom_vjp: the backward pass recomputes each block as it passes (lax.fori_loop: one body)
        return _ring_sum(blocks, devices, local, visiting)

    def rows_in_chunks(
        self,
        chunks: RowChunks,
        rows: tuple[jax.Array, ...],
        shared: tuple[jax.Array | None, ...],
        chunk_size: int,
        row_weights: jax.Array | None = None,
    ) -> jax.Array:
        # custom_vjp: the forward pass keeps one chunk's logits at a time, the backward pass
        # recomputes them chunk by chunk (lax.map / lax.scan: one compiled body per loop)
        return _rows_in_chunks(chunks, chunk_size, rows, shared, row_weights)

    def uniform(self, key_or_generator: Any, shape: tuple[int, ...], like: jax.Array) -> jax.Array:
        if key_or_generator is None or isinstance(key_or_generator, (int, float)):
            raise ValueError(
                f"key_or_generator must be a jax.random key (JAX has no global random state), got {key_or_generator!r}"
            )
        return jax.random.uniform(key_or_generator, shape, dtype=like.dtype)


BACKEND: Backend = JaxBackend()  # mypy checks the class against the core's protocol
