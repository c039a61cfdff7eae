"""Static argument checks shared by every loss.

They look at Python parameters, shapes and dtypes only (static under ``jax.jit``
and ``torch.compile``), except :func:`check_class_indices` and
:func:`check_unit_interval`, which read values and therefore run only when the
backend says the array is concrete (eager mode).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from polyloss.core._typing import Array, Backend

REDUCTIONS = ("mean", "sum", "none")

#: whether the values of accelerator arrays are read to validate them (a device synchronisation per
#: check): off unless ``polyloss.checks(values=True)`` or the environment's POLYLOSS_CHECK_VALUES=1
_ACCELERATOR_VALUES: ContextVar[bool] = ContextVar(
    "polyloss_accelerator_values", default=os.environ.get("POLYLOSS_CHECK_VALUES", "") == "1"
)


def accelerator_values_checked() -> bool:
    """Whether value checks read accelerator arrays here (see :func:`checks`)."""
    return _ACCELERATOR_VALUES.get()


@contextmanager
def checks(*, values: bool) -> Iterator[None]:
    """Value checks of accelerator arrays inside the block: ``with polyloss.checks(values=True):``.

    Class indices in range, probabilities in [0, 1], box corners in order, CTC lengths: on CPU
    arrays polyloss always validates them (a ``ValueError`` naming the bad value). On a GPU or
    TPU reading them would synchronise the device once per call, as torch's own losses avoid, so
    by default an invalid value gives the documented NaN there (as under ``jax.jit`` or
    ``torch.compile``); ``values=True`` reads them, for debugging. ``POLYLOSS_CHECK_VALUES=1`` in
    the environment makes ``True`` the default of the process.
    """
    token = _ACCELERATOR_VALUES.set(values)
    try:
        yield
    finally:
        _ACCELERATOR_VALUES.reset(token)


def _one_of(values: tuple[str, ...]) -> str:
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def check_reduction(reduction: Any, allowed: tuple[str, ...] = REDUCTIONS, because: str | None = None) -> None:
    """``reduction`` is a standard reduction and one of the loss's ``allowed`` ones (``because``
    says why a standard one is missing). Called by the registration only (``@loss``)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be {_one_of(REDUCTIONS)}, got {reduction!r}")
    if reduction not in allowed:
        why = "" if because is None else f" {because}"
        raise ValueError(f"reduction must be {_one_of(allowed)}{why}, got {reduction!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` is one of the string ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be {_one_of(choices)}, got {value!r}")
    return str(value)


def _number(name: str, value: Any, b: Backend | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a Python float or a 0-d floating array" if b is not None else "a Python float"
        raise TypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    return float(value)


def _real(
    b: Backend | None,
    name: str,
    value: Any,
    requirement: str,
    holds: Callable[[float], bool],
    holds_elementwise: Callable[[Any, Array], Array],
) -> Any:
    """A real hyper-parameter meeting ``requirement``: a Python number (returned as a float) or, for
    a loss that passes its backend ``b``, a 0-d floating array of that backend (a learnable
    parameter, a traced value under ``jax.jit``), returned as is so that gradients reach it. A
    concrete array is validated on its value (read on the host); a traced one cannot be, and an
    invalid value makes it NaN, hence the loss NaN, rather than a silently wrong number."""
    if b is None or not b.is_array(value):
        v = _number(name, value, b)
        if not holds(v):
            raise ValueError(f"{name} must be {requirement}, got {value!r}")
        return v
    xp = b.xp
    if tuple(value.shape) != ():
        raise ValueError(f"{name} must be a Python float or a 0-d array, got an array of shape {tuple(value.shape)}")
    check_floating(xp, name, value)
    if b.is_opaque(value):
        return xp.where(holds_elementwise(xp, value), value, xp.nan)
    v, _ = b.float_range(xp.reshape(value, (1,)))  # read detached (float() of a tensor needing grad warns)
    if math.isnan(v) or not holds(v):
        raise ValueError(f"{name} must be {requirement}, got {v!r} (a 0-d array)")
    return value


def is_static_zero(value: Any) -> bool:
    """``value`` is the Python number 0: a term it scales can be skipped. An array hyper-parameter
    is never assumed 0 (its value may change from call to call, or be traced)."""
    return isinstance(value, (int, float)) and value == 0


_POSITIVE = "a finite number > 0"
_NONNEGATIVE = "a finite number >= 0"


def _in(low: float, high: float) -> str:
    return f"in [{low:g}, {high:g}]"


def _finite(minimum: float) -> str:
    return "a finite number" + (f" >= {minimum:g}" if minimum > -math.inf else "")


def check_positive(name: str, value: Any, b: Backend | None = None) -> Any:
    """``value`` > 0 and finite (see :func:`_real` for arrays, accepted when ``b`` is given)."""
    return _real(
        b,
        name,
        value,
        _POSITIVE,
        lambda v: 0 < v < math.inf,
        lambda xp, v: (v > 0) & xp.isfinite(v),
    )


def check_nonnegative(name: str, value: Any, b: Backend | None = None) -> Any:
    return _real(
        b,
        name,
        value,
        _NONNEGATIVE,
        lambda v: 0 <= v < math.inf,
        lambda xp, v: (v >= 0) & xp.isfinite(v),
    )


def check_interval(name: str, value: Any, low: float, high: float, b: Backend | None = None) -> Any:
    return _real(
        b,
        name,
        value,
        _in(low, high),
        lambda v: low <= v <= high,
        lambda xp, v: (v >= low) & (v <= high),
    )


def check_finite(name: str, value: Any, *, minimum: float = -math.inf, b: Backend | None = None) -> Any:
    return _real(
        b,
        name,
        value,
        _finite(minimum),
        lambda v: minimum <= v and math.isfinite(v),
        lambda xp, v: (v >= minimum) & xp.isfinite(v),
    )


_BOOLEAN = "True or False"


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be {_BOOLEAN}, got {value!r}")
    return value


def check_same_shape(name_a: str, a: Array, name_b: str, b: Array) -> None:
    """Equal shapes, no broadcasting: (N, 1) against (N,) is refused."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_b} must have the same shape as {name_a}, got {name_b}.shape="
            f"{tuple(b.shape)} and {name_a}.shape={tuple(a.shape)} (polyloss never broadcasts them)"
        )


def check_broadcasts(name: str, x: Array, to_name: str, to: Array) -> None:
    """``x`` broadcasts to ``to``'s shape without growing it (a weight, as torch broadcasts its loss
    weights); predictions and targets never broadcast (``check_same_shape``)."""
    shape, target = tuple(x.shape), tuple(to.shape)
    trailing = target[len(target) - len(shape) :] if len(shape) <= len(target) else None
    if trailing is None or any(a not in (1, b) for a, b in zip(shape, trailing, strict=True)):
        raise ValueError(f"{name} of shape {shape} does not broadcast to {to_name}'s shape {target}")


def check_shape(name: str, x: Array, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(x.shape)}")


def check_axis(name: str, x: Array, axis: Any) -> int:
    """Normalise ``axis`` of array ``name`` to a non-negative int."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"axis must be an int, got {axis!r}")
    ndim = len(x.shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [-{ndim}, {ndim}) for {name} of shape {tuple(x.shape)}, got {axis}")
    return axis % ndim


#: how to make class indices integers, in each framework
CAST_HINT = " (cast them: target.long() in torch, target.astype(int) in NumPy, target.astype(jnp.int32) in JAX)"


def check_not_float_indices(name: str, logits_name: str, logits: Array, target: Array, axis: int) -> None:
    """A floating ``target`` shaped like class indices (the logits' shape without ``axis``), given where
    probabilities (the logits' shape) are expected: class indices stored as floats, not a shape error."""
    indices_shape = tuple(s for i, s in enumerate(logits.shape) if i != axis % max(logits.ndim, 1))
    if logits.ndim > 0 and tuple(target.shape) == indices_shape:
        raise TypeError(
            f"{name} of shape {indices_shape} holds class indices for {logits_name} of shape "
            f"{tuple(logits.shape)}, but class indices must be integers, got dtype {target.dtype}{CAST_HINT}"
        )


def check_class_target(logits: Array, target: Array, axis: int) -> None:
    """Class indices have the logits' shape without the class ``axis``."""
    expected = tuple(s for i, s in enumerate(logits.shape) if i != axis)
    if tuple(target.shape) != expected:
        classes_first = logits.ndim > 2 and tuple(target.shape) == (logits.shape[0], *logits.shape[2:])
        hint = (
            "; the logits look like torch's (N, C, ...) layout, classes on axis 1: pass axis=1"
            if classes_first and axis % logits.ndim != 1
            else ""
        )
        raise ValueError(
            f"target must have shape {expected} (the logits' shape {tuple(logits.shape)} without the "
            f"class axis {axis}) for class indices, or the logits' shape for probabilities; "
            f"got {tuple(target.shape)}{hint}"
        )


def check_ndim(name: str, x: Array, ndim: int, layout: str) -> None:
    """``x`` has ``ndim`` axes, named by ``layout`` such as ``"(N, D)"``."""
    if len(x.shape) != ndim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")


def check_floating(xp: Any, name: str, x: Array) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")


def as_binary_target(xp: Any, target: Array, like: Array) -> Array:
    """A binary target given as ``bool`` read as 0/1 in ``like``'s dtype (masks and labels are often
    boolean); any other target unchanged."""
    return xp.astype(target, like.dtype) if target.dtype == xp.bool else target


def is_integer(xp: Any, x: Array) -> bool:
    return xp.isdtype(x.dtype, "integral")


def check_class_indices(b: Backend, target: Array, num_classes: int, ignore_index: int | None) -> None:
    """Refuse class indices outside [0, num_classes) in eager mode.

    Traced labels cannot be inspected; the loss then marks those samples NaN.
    """
    if b.is_opaque(target) or math.prod(target.shape) == 0:
        return
    low, high = b.int_range(target)
    if low >= 0 and high < num_classes:
        return
    bad = [v for v in b.host_values(target) if not 0 <= v < num_classes and v != ignore_index]
    if not bad:
        return
    first_bad = bad[0]
    ignored = "" if ignore_index is None else f" and is not ignore_index={ignore_index}"
    raise ValueError(
        f"target contains class index {first_bad}, outside [0, {num_classes}){ignored}; "
        f"the class axis has {num_classes} classes"
    )


def class_labels(
    b: Backend,
    name: str,
    labels: Array,
    *,
    logits: Array | None = None,
    axis: int = -1,
    num_classes: int | None = None,
    shape: tuple[int, ...] | None = None,
    ignore_index: int | None = None,
) -> None:
    """Class indices, checked once for every loss that takes them: an integer dtype; the
    ``logits``' shape without the class ``axis`` (or ``shape``); values in ``[0, num_classes)``
    (``logits.shape[axis]`` by default) or ``ignore_index``, in eager mode.
    """
    if not is_integer(b.xp, labels):
        raise TypeError(f"{name} must hold integer class indices, got dtype {labels.dtype}{CAST_HINT}")
    if logits is not None:
        check_class_target(logits, labels, axis)
        num_classes = logits.shape[axis] if num_classes is None else num_classes
    if shape is not None:
        check_shape(name, labels, shape)
    if num_classes is None:
        raise TypeError("class_labels needs logits or num_classes")
    check_class_indices(b, labels, num_classes, ignore_index)


def group_labels(xp: Any, name: str, labels: Array, n: int, *, what: str = "class labels") -> None:
    """Labels that group a batch's ``n`` samples (equal labels, one group): an integer dtype and
    shape ``(n,)``. Unlike :func:`class_labels` they index nothing, so any integer value is valid."""
    if not is_integer(xp, labels):
        raise TypeError(f"{name} must hold integer {what}, got dtype {labels.dtype}")
    check_shape(name, labels, (n,))


def guard_traced_labels(b: Backend, index: Array, num_classes: int) -> tuple[Array, Array | None]:
    """Traced labels cannot be validated: clip them into range and return the mask of
    in-range samples, whose complement gets a NaN loss (never a wrapped or clamped class).
    Concrete labels (already validated) pass through with mask ``None``.
    """
    if not b.is_opaque(index):
        return index, None
    valid = (index >= 0) & (index < num_classes)
    return b.xp.clip(index, 0, num_classes - 1), valid


def check_signs(b: Backend, name: str, x: Array) -> None:
    """Refuse values other than -1 and 1 in eager mode (the ``target`` of ranking losses)."""
    if b.is_opaque(x) or math.prod(x.shape) == 0:
        return
    if b.all_in(x, (1, -1)):
        return
    bad = next(v for v in b.host_values(x) if v not in (-1, 1))
    raise ValueError(f"{name} must contain only 1 and -1, got a value of {bad!r}")


def check_ignore_index(ignore_index: Any) -> None:
    """An ``ignore_index`` is an int (not a bool) or None."""
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(f"ignore_index must be an int or None, got {ignore_index!r}")


def check_binary(b: Backend, name: str, x: Array, ignore_index: int | None = None) -> None:
    """Refuse values other than 0 and 1 (and ``ignore_index``) in eager mode (binary masks)."""
    if b.is_opaque(x) or math.prod(x.shape) == 0:
        return
    if b.all_in(x, (0, 1) if ignore_index is None else (0, 1, ignore_index)):
        return
    bad = next(v for v in b.host_values(x) if v not in (0, 1, ignore_index))
    also = "" if ignore_index is None else f" and ignore_index={ignore_index}"
    raise ValueError(f"{name} must contain only 0 and 1{also}, got a value of {bad!r}")


def sample_mask(xp: Any, mask: Array | None, shape: tuple[int, ...]) -> Array | None:
    """``mask`` (optax's ``where``) as a ``bool`` array of the per-sample ``shape``: ``bool`` or 0/1
    integers, never broadcast (a silently broadcast mask would keep or drop whole rows)."""
    if mask is None:
        return None
    if mask.dtype != xp.bool and not is_integer(xp, mask):
        raise TypeError(f"mask must be bool (or 0/1 integers), got dtype {mask.dtype}")
    check_shape("mask", mask, shape)
    return mask if mask.dtype == xp.bool else mask != 0


def check_unit_interval(b: Backend, name: str, x: Array) -> None:
    """Refuse values outside [0, 1] (or NaN) in eager mode."""
    if b.is_opaque(x) or math.prod(x.shape) == 0:
        return
    low, high = b.float_range(x)
    if not (0.0 <= low and high <= 1.0):
        bad = low if not 0.0 <= low else high
        raise ValueError(f"{name} must contain probabilities in [0, 1], got a value of {bad!r}")


def check_nonnegative_values(b: Backend, name: str, x: Array) -> None:
    """Refuse negative (or NaN) values in eager mode."""
    if b.is_opaque(x) or math.prod(x.shape) == 0:
        return
    low, _ = b.float_range(x)
    if not low >= 0:
        raise ValueError(f"{name} must be non-negative, got a value of {low!r}")


# --------------------------------------------------------------------------- declared settings


@dataclass(frozen=True)
class Setting:
    """The check of one hyper-parameter, declared on its loss (``@loss(..., settings={"gamma":
    nonnegative_number(arrays=True)})``): run before the loss on every call (its result is what the loss
    receives: a float, or the 0-d array), and by ``polyloss.torch.nn`` at construction.

    Attributes:
        check: one of this module's ``check_*`` functions, ``check(name, value, *args, **kwargs)``.
        args: its arguments after the value (an interval's bounds, a choice's options).
        kwargs: its keyword arguments (``minimum=``).
        arrays: whether a 0-d array is accepted too (the backend is passed as ``b``).
        optional: whether None is accepted too (the term it sets is off).
        requirement: what a valid value is, as the error message and the docs say it.
    """

    check: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    arrays: bool = False
    optional: bool = False
    requirement: str = ""

    def __call__(self, name: str, value: Any, b: Backend) -> Any:
        if value is None and self.optional:
            return None
        extra = {"b": b} if self.arrays else {}
        return self.check(name, value, *self.args, **dict(self.kwargs), **extra)


def positive_number(*, arrays: bool = False, optional: bool = False) -> Setting:
    """> 0 and finite (or None, when ``optional``)."""
    return Setting(check_positive, arrays=arrays, optional=optional, requirement=_POSITIVE)


def nonnegative_number(*, arrays: bool = False) -> Setting:
    """>= 0 and finite."""
    return Setting(check_nonnegative, arrays=arrays, requirement=_NONNEGATIVE)


def number_in(low: float, high: float, *, arrays: bool = False, optional: bool = False) -> Setting:
    """In ``[low, high]`` (or None, when ``optional``)."""
    return Setting(check_interval, (low, high), arrays=arrays, optional=optional, requirement=_in(low, high))


def finite_number(*, minimum: float = -math.inf, arrays: bool = False) -> Setting:
    """Finite (and >= ``minimum``)."""
    return Setting(check_finite, kwargs=(("minimum", minimum),), arrays=arrays, requirement=_finite(minimum))


def boolean() -> Setting:
    """True or False."""
    return Setting(check_bool, requirement=_BOOLEAN)


def one_of(*options: str) -> Setting:
    """One of the strings ``options``."""
    return Setting(check_choice, (options,), requirement=_one_of(options))
