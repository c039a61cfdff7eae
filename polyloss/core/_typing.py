"""The core's types: what an array is, and what a backend provides.

Core maths sees a backend only through :class:`Backend`: its array namespace ``xp``
and the primitives below. :class:`polyloss.backends.base.ArrayAPIBackend` implements
every one of them with array-API calls (numpy, array-api-strict); the torch and JAX
backends subclass it and replace primitives with native kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

#: An array of the bound backend's framework (``numpy.ndarray``, ``torch.Tensor``,
#: ``jax.Array``, an array-api-strict array, or a tracer of one). The array API standard
#: has no static array type that all of them satisfy, so this is ``Any``: it names the
#: role of a value in a signature, and the backend checks the type at the binding.
Array: TypeAlias = Any


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

    # -- value-check hooks: concrete arrays only, on the host ---------------------------
    def is_traced(self, x: Array) -> bool:
        """True when ``x`` has no concrete values (jit/vmap/compile tracing)."""
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

    # -- primitives -----------------------------------------------------------------------
    def log_softmax(self, x: Array, axis: int) -> Array: ...

    def softmax(self, x: Array, axis: int) -> Array: ...

    def logsumexp(self, x: Array, axis: int) -> Array: ...

    def softplus(self, x: Array) -> Array: ...

    def sigmoid(self, x: Array) -> Array: ...

    def softmax_cross_entropy(
        self, logits: Array, index: Array, axis: int, reduction: str = "none", valid: Array | None = None
    ) -> Array:
        """-log softmax(logits)[index] along ``axis``, NaN where ``valid`` is False, then reduced."""
        ...

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array: ...

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

    def rows_in_chunks(
        self,
        forward: RowForward,
        backward: RowBackward,
        rows: tuple[Array, ...],
        shared: tuple[Array | None, ...],
        chunk_size: int,
        row_weights: Array | None = None,
    ) -> Array:
        """``forward`` over ``rows`` (arrays sharing their leading axis of N rows) ``chunk_size``
        rows at a time, every chunk seeing the ``shared`` arrays whole; memory bounded by one chunk.

        Without ``row_weights``: the ``(N,)`` values; the backward pass recomputes each chunk
        (``backward`` with the chunk's cotangent), keeping only ``forward``'s per-row statistic.
        With ``row_weights`` ``(N,)``: the scalar ``sum(row_weights * values)``; its gradients are
        computed chunk by chunk during the forward pass (``backward`` with ``row_weights`` as the
        cotangent) and scaled by the scalar cotangent after, as Liger-Kernel's fused linear
        cross-entropy does; ``row_weights``' own gradient is the values.
        """
        ...


#: One chunk of rows and the shared arrays -> (the per-row value, a per-row statistic kept for
#: the backward pass), both ``(n,)``.
RowForward: TypeAlias = Callable[[tuple[Array, ...], tuple[Array | None, ...]], tuple[Array, Array]]
#: One chunk of rows, the shared arrays, the chunk's statistic and its per-row cotangent ->
#: (the gradients of the row arrays, the chunk's contributions to the gradients of the shared
#: arrays): one for every floating array, ``None`` for integer and absent (``None``) ones.
RowBackward: TypeAlias = Callable[
    [tuple[Array, ...], tuple[Array | None, ...], Array, Array],
    tuple[tuple[Array | None, ...], tuple[Array | None, ...]],
]


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
