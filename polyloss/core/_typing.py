"""The core's types: what an array is, and what a backend provides.

Core maths sees a backend only through :class:`Backend`: its array namespace ``xp``
and the primitives below. :class:`polyloss.backends.base.ArrayAPIBackend` implements
every one of them with array-API calls (numpy, array-api-strict); the torch and JAX
backends subclass it and replace primitives with native kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeAlias

#: An array of the bound backend's framework (``numpy.ndarray``, ``torch.Tensor``,
#: ``jax.Array``, an array-api-strict array, or a tracer of one). The array API standard
#: has no static array type that all of them satisfy, so this is ``Any``: it names the
#: role of a value in a signature, and the backend checks the type at the binding.
Array: TypeAlias = Any

#: A ``torch.distributed`` process group (``ProcessGroup``, ``torch.distributed.group.WORLD``): the
#: devices a torch loss's batch is spread over. Core never imports torch, so it cannot name the class.
ProcessGroup: TypeAlias = Any

#: A JAX mesh axis name (or a tuple of them) bound by ``shard_map`` or ``pmap``.
AxisName: TypeAlias = Any


class Backend(Protocol):
    """The primitive set core maths calls, bound once per framework.

    ``xp`` is the array namespace (the array API standard); the methods are what that
    standard lacks or computes poorly, what only a framework has (``scan``,
    ``grad_of_sum``, ``uniform``), and the value-check hooks that let the core validate
    concrete arrays in eager mode and skip traced ones.
    """

    #: The public name of the backend: ``"numpy"``, ``"torch"``, ``"jax"``, ...
    name: str
    #: The array namespace, bound once and never detected per call.
    xp: Any

    def is_array(self, x: Any) -> bool:
        """True for an array of this backend (a tracer of it included)."""
        ...

    # -- value-check hooks: concrete arrays only, on the host ---------------------------
    def is_opaque(self, x: Array) -> bool:
        """True when ``x``'s values cannot be read on the host for free: traced (jit, vmap,
        compile), or on an accelerator, where reading them would synchronise the device (unless
        :func:`polyloss.checks` turns value checks on). Value checks then give way to the
        documented NaN."""
        ...

    def host_values(self, x: Array) -> list[Any]:
        """The values of a concrete array as a flat Python list."""
        ...

    def int_range(self, x: Array) -> tuple[int, int]:
        """(min, max) of a concrete, non-empty integer array as Python ints."""
        ...

    def float_range(self, x: Array) -> tuple[float, float]:
        """(min, max) of a concrete, non-empty float array as Python floats."""
        ...

    def all_in(self, x: Array, values: tuple[float, ...]) -> bool:
        """Whether every element of a concrete array is one of ``values`` (one answer read on the
        host, not the elements; never a reduction traced by an enclosing ``jax.jit``)."""
        ...

    # -- primitives -----------------------------------------------------------------------
    def log_softmax(self, x: Array, axis: int) -> Array: ...

    def softmax(self, x: Array, axis: int) -> Array: ...

    def logsumexp(self, x: Array, axis: int) -> Array: ...

    def softplus(self, x: Array) -> Array: ...

    def relu(self, x: Array) -> Array:
        """max(x, 0), NaN for NaN, with derivative 0 at x == 0 (as torch's ``relu``)."""
        ...

    def abs(self, x: Array) -> Array:
        """|x|, NaN for NaN, with derivative 0 at x == 0 (as torch's ``abs``; ``jnp.abs`` gives 1)."""
        ...

    def fused(
        self, kernel: str, composed: Callable[..., Array], *arrays: Array, reduction: str = "none", **params: Any
    ) -> Array:
        """``composed(self, *arrays, **params)`` reduced by ``reduction`` (core's ``reduce``: the mean of
        nothing is 0): the array-API definition, or the framework's own kernel ``kernel`` computing the
        same values and derivatives (in every array) in fewer passes, the reduction included where it
        can, where the backend has one for these arguments. The conformance matrix checks the kernel
        against the definition that numpy and JAX run."""
        ...

    def sigmoid(self, x: Array) -> Array: ...

    def softmax_cross_entropy(
        self,
        logits: Array,
        index: Array,
        axis: int,
        reduction: str = "none",
        valid: Array | None = None,
        kept: Array | None = None,
    ) -> Array:
        """-log softmax(logits)[index] along ``axis``, NaN where ``valid`` is False, then reduced;
        samples where ``kept`` is False are 0 with zero gradient whatever their logits hold, and
        ``"mean"`` divides by the number of kept samples (0 when none is)."""
        ...

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array: ...

    def cumulative_sum(self, x: Array, axis: int) -> Array:
        """The running sum along ``axis`` (the array API's ``cumulative_sum``; torch's ``cumsum``)."""
        ...

    def one_hot(self, labels: Array, num_classes: int, dtype: Any) -> Array:
        """One-hot encoding on a new last axis."""
        ...

    def stop_gradient(self, x: Array) -> Array: ...

    def scan(self, step: Callable[..., Any], carry: Any, xs: tuple[Array, ...]) -> Any:
        """The carry after ``carry = step(carry, (x[i] for x in xs))`` over the leading axis."""
        ...

    def grad_of_sum(self, fn: Callable[[Array], Array], x: Array) -> Array:
        """d sum(fn(x)) / dx, itself differentiable (backends with autodiff only)."""
        ...

    def uniform(self, key_or_generator: Any, shape: tuple[int, ...], like: Array) -> Array:
        """U[0, 1) samples of ``like``'s dtype and device (backends with random streams only)."""
        ...

    def device(self, x: Array) -> Any:
        """The device of ``x``, for arrays created next to it."""
        ...

    def devices(self, group: ProcessGroup, axis_name: AxisName) -> Devices | None:
        """The devices a distributed loss's batch is spread over: ``group`` in torch, ``axis_name``
        in JAX; ``None`` when both are ``None`` (one device). Raises ``ValueError`` naming the
        parameter when the other framework's is given or the group/axis is not set up."""
        ...

    def ring_sum(
        self, blocks: RingBlocks, devices: Devices, local: tuple[Array, ...], visiting: tuple[Array, ...]
    ) -> Array:
        """The ``(n,)`` per-row sum, over the ``devices.size`` blocks of ``visiting`` (this device's
        own first, then each previous device's, passed along by ``devices.shift``), of
        ``blocks.forward(local, block, own)``. The backward pass passes the blocks around again,
        recomputing each one's gradients (``blocks.backward``), and sends each block's gradient,
        accumulated on the way, home with it: two blocks in memory at a time, whatever the size."""
        ...

    def rows_in_chunks(
        self,
        chunks: RowChunks,
        rows: tuple[Array, ...],
        shared: tuple[Array | None, ...],
        chunk_size: int,
        row_weights: Array | None = None,
    ) -> Array:
        """``chunks.forward`` over ``rows`` (arrays sharing their leading axis of N rows),
        ``chunk_size`` rows at a time: memory bounded by one chunk, never N of them.

        Without ``row_weights``: the ``(N,)`` values; the backward pass recomputes each chunk
        (``chunks.backward`` with the chunk's cotangent), keeping only the per-row statistic.
        With ``row_weights`` ``(N,)``: the scalar ``sum(row_weights * values)``; its gradients are
        computed chunk by chunk during the forward pass (``chunks.forward_and_backward`` with
        ``row_weights`` as the cotangent) and scaled by the scalar cotangent after, as
        Liger-Kernel's fused linear cross-entropy does; ``row_weights``' own gradient is the values.
        """
        ...


class Devices(Protocol):
    """The devices a loss's batch is spread over, one shard of equal size each (``Backend.devices``).

    Every device calls the loss on its local shard; the global batch is the shards concatenated in
    rank order. The collectives' gradients are the transposes of what they compute, so the gradient
    each device gets for its shard is that shard's slice of the global loss's gradient.
    """

    #: How many devices (a Python int).
    size: int

    def rank(self) -> Array | int:
        """This device's position, 0 ... size - 1 (a traced integer under JAX)."""
        ...

    def check_same_rows(self, name: str, x: Array) -> None:
        """Raise ``ValueError`` naming ``name`` when the devices' ``x`` have different numbers of rows,
        where that can be known without synchronising an accelerator (a no-op elsewhere)."""
        ...

    def all_gather(self, x: Array) -> Array:
        """Every device's ``x`` concatenated along axis 0 in rank order. Gradient: each device's
        slice receives the sum, over the devices, of the gradients of their copies of it."""
        ...

    def sum(self, x: Array) -> Array:
        """``x`` summed over the devices. Gradient: each device's ``x`` receives the output's
        gradient unchanged (``x`` is its own part of the total)."""
        ...

    def shift(self, x: Array) -> Array:
        """The previous device's ``x`` (rank - 1, cyclically): one step of a ring exchange. Gradient:
        sent back to the device it came from."""
        ...


class RingBlocks(Protocol):
    """A per-row loss summed over blocks that travel around the devices (``Backend.ring_sum``).

    ``local`` arrays stay on this device (its rows, hyper-parameters given as 0-d arrays);
    ``visiting`` arrays are one device's block, passed from device to device. ``own`` is True for
    this device's own block (the first), the only one holding its rows' positives.
    """

    def forward(self, local: tuple[Array, ...], visiting: tuple[Array, ...], own: bool) -> Array:
        """The ``(n,)`` per-row values against one visiting block."""
        ...

    def backward(
        self, local: tuple[Array, ...], visiting: tuple[Array, ...], own: bool, cotangent: Array
    ) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
        """The gradients of ``sum(cotangent * forward(local, visiting, own))`` with respect to every
        local and every visiting array."""
        ...


class TransposedProduct(NamedTuple):
    """``left.T @ right``: a shared array's gradient that a chunk returns unevaluated, so that the
    backend sums it over the chunks in place (one ``(V, H)`` buffer, not one per chunk)."""

    left: Array
    right: Array


RowGrads: TypeAlias = tuple[Array | None, ...]
SharedGrads: TypeAlias = tuple[Array | TransposedProduct | None, ...]


class RowChunks(Protocol):
    """A per-row loss written chunk by chunk, with its own gradient (``Backend.rows_in_chunks``).

    ``rows`` are arrays sharing their leading axis (one chunk of it at a time), ``shared`` arrays
    are seen whole by every chunk. Gradients come as (the row arrays' gradients, the chunk's
    contributions to the shared arrays' gradients, possibly as a :class:`TransposedProduct`): one for
    every floating array, ``None`` for integer and absent (``None``) ones.
    """

    def forward(self, rows: tuple[Array, ...], shared: tuple[Array | None, ...]) -> tuple[Array, Array]:
        """(the ``(n,)`` per-row values, an ``(n,)`` per-row statistic kept for :meth:`backward`)."""
        ...

    def backward(
        self, rows: tuple[Array, ...], shared: tuple[Array | None, ...], saved: Array, cotangent: Array
    ) -> tuple[RowGrads, SharedGrads]:
        """The gradients of ``sum(cotangent * values)`` from the chunk's inputs and statistic."""
        ...

    def forward_and_backward(
        self, rows: tuple[Array, ...], shared: tuple[Array | None, ...], cotangent: Array
    ) -> tuple[Array, RowGrads, SharedGrads]:
        """(values, row gradients, shared gradients) at once, for ``sum(cotangent * values)``."""
        ...


class Registered(Protocol):
    """A core function as the registry holds it (``@helper``): callable with its backend first,
    carrying the facts the binding, the specs and the docs read."""

    __name__: str
    #: The family module it belongs to (``"regression"``, ...).
    family: str
    #: True when it differentiates a user function (absent from backends without autodiff).
    needs_autodiff: bool

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


class RegisteredLoss(Registered, Protocol):
    """A core loss as the registry holds it (``@loss``): also the reductions it accepts."""

    reductions: tuple[str, ...]
    #: the declared checks of hyper-parameters, by name (``polyloss.core._checks.Setting``)
    settings: dict[str, Any]

    #: ``check_settings(given, b)``: the declared settings among ``given``, checked and converted
    check_settings: Callable[[Mapping[str, Any], Any], dict[str, Any]]
