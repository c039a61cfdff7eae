"""The primitive set: what the array API lacks and every loss may need.

A backend binds one array namespace (``xp``) to the primitives below; what core maths
may call is declared by the :class:`polyloss.core._typing.Backend` protocol.
:class:`ArrayAPIBackend` implements that protocol with array-API calls only; it
serves numpy and array-api-strict. Framework backends (``backends/torch.py``,
``backends/jax.py``) subclass it and replace primitives with the framework's
native, fused kernels. Core maths calls ``b.xp`` and these primitives, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np

from polyloss.core._reduce import reduce
from polyloss.core._typing import AxisName, Devices, ProcessGroup, RingBlocks, RowChunks

Array = Any

_HALF_PRECISION = ("float16", "bfloat16")


#: what each device keyword names, for the error a backend without it raises
_DEVICE_KEYWORDS = {
    "group": "group is a torch.distributed process group, for polyloss.torch",
    "axis_name": "axis_name names a JAX mesh axis bound by shard_map or pmap, for polyloss.jax",
}


class ArrayAPIBackend:
    """Primitive set written against the array API standard alone.

    Args:
        name: public name of the backend (``"numpy"``, ``"torch"``, ...).
        xp: the array namespace, bound once here and never detected per call.
        array_types: the concrete array classes this backend accepts.
    """

    has_autodiff = False

    def __init__(self, name: str, xp: Any, array_types: tuple[type, ...]) -> None:
        self.name = name
        self.xp = xp
        self.array_types = array_types
        self._half = tuple(getattr(xp, n) for n in _HALF_PRECISION if hasattr(xp, n))

    def __repr__(self) -> str:
        return f"<polyloss backend {self.name!r}>"

    # -- input handling (used by the binding layer, never by core maths) --------
    def is_array(self, x: Any) -> bool:
        return isinstance(x, self.array_types)

    def converted(self, x: Any) -> Array | None:
        """``x`` as this backend's array where its framework's own functions would take it (JAX:
        NumPy arrays), else None. Never a Python scalar: keyword scalars are hyper-parameters."""
        return None

    def compute_dtype(self, x: Array) -> Array:
        """float16/bfloat16 are computed in float32; other dtypes unchanged."""
        if x.dtype in self._half:
            return self.xp.astype(x, self.xp.float32)
        return x

    def is_opaque(self, x: Array) -> bool:
        """Host arrays: never (see the protocol)."""
        return False

    # Value checks of concrete arrays run on the host, outside any trace: a concrete
    # array captured by jax.jit still yields tracers if reduced with jnp inside it.
    def host_values(self, x: Array) -> list[Any]:
        """The values of a concrete array as a flat Python list (validation only)."""
        return np.asarray(x).ravel().tolist()

    def int_range(self, x: Array) -> tuple[int, int]:
        """(min, max) of a concrete, non-empty integer array as Python ints."""
        values = np.asarray(x)
        return int(values.min()), int(values.max())

    def float_range(self, x: Array) -> tuple[float, float]:
        """(min, max) of a concrete, non-empty float array as Python floats."""
        values = np.asarray(x)
        return float(values.min()), float(values.max())

    def all_in(self, x: Array, values: tuple[float, ...]) -> bool:
        """Whether every element of a concrete array is one of ``values``."""
        return bool(np.isin(np.asarray(x), values).all())

    # -- the primitive set --------------------------------------------------------
    def log_softmax(self, x: Array, axis: int) -> Array:
        xp = self.xp
        shifted = x - self.stop_gradient(xp.max(x, axis=axis, keepdims=True))
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))

    def softmax(self, x: Array, axis: int) -> Array:
        return self.xp.exp(self.log_softmax(x, axis))

    def logsumexp(self, x: Array, axis: int) -> Array:
        xp = self.xp
        m = self.stop_gradient(xp.max(x, axis=axis, keepdims=True))
        m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
        return xp.squeeze(m, axis=axis) + xp.log(xp.sum(xp.exp(x - m), axis=axis))

    def softplus(self, x: Array) -> Array:
        """log(1 + exp(x)): exact for large |x|, 0 / inf at -inf / +inf, gradient 1/2 at 0,
        and finite first and second derivatives everywhere (double where: the branch
        not taken never sees an argument that overflows)."""
        xp = self.xp
        positive = x > 0
        x_pos = xp.where(positive, x, 0.0)
        x_neg = xp.where(positive, 0.0, x)
        return xp.where(positive, x_pos + xp.log1p(xp.exp(-x_pos)), xp.log1p(xp.exp(x_neg)))

    def relu(self, x: Array) -> Array:
        # x <= 0 is False for NaN, which stays NaN; the derivative at 0 is the 0 branch's
        xp = self.xp
        return xp.where(x <= 0, 0.0, x)

    def abs(self, x: Array) -> Array:
        return self.relu(x) + self.relu(-x)

    def fused(
        self, kernel: str, composed: Callable[..., Array], *arrays: Array, reduction: str = "none", **params: Any
    ) -> Array:
        """The array-API definition (no fused kernels here); see the protocol."""
        return reduce(self.xp, composed(self, *arrays, **params), reduction)

    def sigmoid(self, x: Array) -> Array:
        xp = self.xp
        return xp.exp(-self.softplus(-x))

    def softmax_cross_entropy(
        self,
        logits: Array,
        index: Array,
        axis: int,
        reduction: str = "none",
        valid: Array | None = None,
        kept: Array | None = None,
    ) -> Array:
        """-log softmax(logits)[index] along ``axis``: the per-sample cross-entropy,
        NaN where ``valid`` is False, then ``"mean"``/``"sum"`` over samples if asked; samples
        where ``kept`` is False count nowhere (0, zero gradient; ``"mean"`` over the kept ones).

        ``index`` has the logits' shape without ``axis`` and is in range. Fused
        where the framework has a kernel; here: log-softmax, then gather.
        """
        xp = self.xp
        logits = self._kept_rows(logits, axis, kept)
        log_probs = self.log_softmax(logits, axis)
        nll = -xp.squeeze(self.take_along_axis(log_probs, xp.expand_dims(index, axis=axis), axis), axis=axis)
        return self._mark_and_reduce(nll, reduction, valid, kept)

    def _kept_rows(self, logits: Array, axis: int, kept: Array | None) -> Array:
        """The logits with the rows of samples not kept set to 0: whatever they held (-inf, NaN)
        reaches no value and no gradient (the double ``where``'s inner half)."""
        xp = self.xp
        return logits if kept is None else xp.where(xp.expand_dims(kept, axis=axis), logits, 0.0)

    def _mark_and_reduce(self, nll: Array, reduction: str, valid: Array | None, kept: Array | None = None) -> Array:
        xp = self.xp
        if valid is not None:
            nll = xp.where(valid, nll, xp.nan)
        if kept is not None:
            nll = xp.where(kept, nll, 0.0)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return xp.sum(nll)
        if kept is None:
            return xp.mean(nll)
        count = xp.sum(xp.astype(kept, nll.dtype))
        return xp.where(count > 0, xp.sum(nll) / xp.where(count > 0, count, 1.0), 0.0)

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        return self.xp.take_along_axis(x, indices, axis=axis)

    def cumulative_sum(self, x: Array, axis: int) -> Array:
        return self.xp.cumulative_sum(x, axis=axis)

    def one_hot(self, labels: Array, num_classes: int, dtype: Any) -> Array:
        """One-hot encoding on a new last axis."""
        xp = self.xp
        classes = xp.arange(num_classes, dtype=labels.dtype, device=self.device(labels))
        return xp.astype(labels[..., None] == classes, dtype)

    def stop_gradient(self, x: Array) -> Array:
        return x  # no autodiff in this backend

    def scan(self, step: Any, carry: Any, xs: tuple[Array, ...]) -> Any:
        """The carry after ``carry = step(carry, (x[i] for x in xs))`` over the leading axis."""
        for i in range(xs[0].shape[0]):
            carry = step(carry, tuple(x[i, ...] for x in xs))
        return carry

    def grad_of_sum(self, fn: Any, x: Array) -> Array:
        """d sum(fn(x)) / dx, itself differentiable (frameworks with autodiff only)."""
        raise NotImplementedError(f"the {self.name} backend has no autodiff")

    def uniform(self, key_or_generator: Any, shape: tuple[int, ...], like: Array) -> Array:
        """U[0, 1) samples of ``like``'s dtype and device (frameworks with random streams only)."""
        raise NotImplementedError(f"the {self.name} backend draws no random numbers")

    def device(self, x: Array) -> Any:
        """The device of ``x``, for arrays created next to it (also works on jax tracers)."""
        return array_api_compat.device(x)

    #: the keyword of the loss functions naming this framework's devices: "group" (a
    #: torch.distributed process group) or "axis_name" (a JAX mesh axis); None: one device only
    devices_keyword: str | None = None

    def devices(self, group: ProcessGroup, axis_name: AxisName) -> Devices | None:
        """The devices that ``group`` or ``axis_name`` (whichever is this framework's) name, None
        for one device; the other keyword must be None."""
        given = {"group": group, "axis_name": axis_name}
        for name, value in given.items():
            if name != self.devices_keyword and value is not None:
                where = f"; in polyloss.{self.name} pass {self.devices_keyword}=" if self.devices_keyword else ""
                raise ValueError(
                    f"{name} must be None in polyloss.{self.name}: {_DEVICE_KEYWORDS[name]}{where}, "
                    f"got {name}={value!r}"
                )
        own = None if self.devices_keyword is None else given[self.devices_keyword]
        return None if own is None else self.named_devices(own)

    def named_devices(self, devices: Any) -> Devices:
        """The devices named by ``devices`` (not None), for a backend with a ``devices_keyword``."""
        raise NotImplementedError(f"polyloss.{self.name} computes on one device")

    def ring_sum(
        self, blocks: RingBlocks, devices: Devices, local: tuple[Array, ...], visiting: tuple[Array, ...]
    ) -> Array:
        """The ring's values (no autodiff here); see the protocol."""
        values = blocks.forward(local, visiting, True)
        for _ in range(devices.size - 1):
            visiting = tuple(devices.shift(x) for x in visiting)
            values = values + blocks.forward(local, visiting, False)
        return values

    def rows_in_chunks(
        self,
        chunks: RowChunks,
        rows: tuple[Array, ...],
        shared: tuple[Array | None, ...],
        chunk_size: int,
        row_weights: Array | None = None,
    ) -> Array:
        """``chunks.forward`` chunk by chunk (values only: this backend has no autodiff); see the protocol."""
        xp = self.xp
        n = rows[0].shape[0]
        # an empty batch is one empty chunk: forward gives the (0,) values of the right dtype
        starts = range(0, max(n, 1), chunk_size)
        values = xp.concat(
            [chunks.forward(tuple(x[s : min(s + chunk_size, n), ...] for x in rows), shared)[0] for s in starts]
        )
        return values if row_weights is None else xp.sum(row_weights * values)
