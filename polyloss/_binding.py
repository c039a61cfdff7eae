"""Binds core losses to a backend: the layer between core maths and public namespaces.

``bind(core_fn, backend)`` returns the public function: same name, docstring
and signature minus the backend argument. Per call it only checks that array
arguments belong to the backend's framework (converting what the framework's
own functions take: NumPy arrays in JAX) and lifts float16/bfloat16 to
float32; there is no namespace detection on the hot path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from polyloss.core import CORE_HELPERS, CORE_LOSSES

_SCALARS = (str, bool, int, float, type(None))
# callables (a critic, a feature extractor), random keys/generators, weight lists and the devices of a
# distributed loss (a process group, a mesh axis name) go to the core as they are; it validates them
_PASSED_AS_THEY_ARE = ("Callable", "Sequence", "Any", "ProcessGroup", "AxisName")
_NAMESPACE_FOR_MODULE = {
    "torch": "polyloss.torch",
    "jax": "polyloss.jax",
    "jaxlib": "polyloss.jax",
    "numpy": "polyloss.numpy",
}


def _type_error(qualname: str, backend: Any, name: str, value: Any) -> TypeError:
    kind = type(value)
    owner = kind.__module__.split(".")[0]
    hint = _NAMESPACE_FOR_MODULE.get(owner)
    advice = f"; use {hint} for these arrays" if hint and hint != f"polyloss.{backend.name}" else ""
    expected = " or ".join(f"{t.__module__.split('.')[0]}.{t.__name__}" for t in backend.array_types)
    return TypeError(
        f"{qualname}: {name} must be a {expected} (the {backend.name} backend), "
        f"got {kind.__module__}.{kind.__qualname__}{advice}"
    )


def bind(core_fn: Callable[..., Any], backend: Any) -> Callable[..., Any]:
    """Return ``core_fn`` with ``backend`` bound as its first argument."""
    signature = inspect.signature(core_fn)
    params = list(signature.parameters.values())[1:]
    positional = tuple(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)
    passthrough = {p.name for p in params if str(p.annotation).startswith(_PASSED_AS_THEY_ARE)}
    qualname = f"polyloss.{backend.name}.{core_fn.__name__}"
    is_array = backend.is_array
    converted = backend.converted
    compute_dtype = backend.compute_dtype

    def prepare(name: str, value: Any) -> Any:
        if name in passthrough:
            return value
        if is_array(value):
            return compute_dtype(value)
        as_array = converted(value)
        if as_array is not None:
            return compute_dtype(as_array)
        # positional parameters are arrays (an optional one, defaulting to None, may be None)
        if (name in positional and value is not None) or not isinstance(value, _SCALARS):
            raise _type_error(qualname, backend, name, value)
        return value

    @functools.wraps(core_fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        if len(args) > len(positional):
            raise TypeError(
                f"{qualname} takes {len(positional)} positional arguments ({', '.join(positional)}); "
                f"pass the others by keyword"
            )
        # optional positional arrays may be left out: fewer args than names
        arrays = [prepare(name, value) for name, value in zip(positional, args, strict=False)]
        for key, value in kwargs.items():
            kwargs[key] = prepare(key, value)
        return core_fn(backend, *arrays, **kwargs)

    bound.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    bound.__module__ = f"polyloss.{backend.name}"
    bound.__qualname__ = core_fn.__name__
    bound.__wrapped__ = core_fn
    return bound


def export(namespace: dict[str, Any], backend: Any) -> list[str]:
    """Bind every registered core loss (and public helper) into a public module's namespace."""
    names = []
    for name, core_fn in {**CORE_LOSSES, **CORE_HELPERS}.items():
        if core_fn.needs_autodiff and not backend.has_autodiff:
            continue  # declared absent: needs the framework's autodiff of a user function
        namespace[name] = bind(core_fn, backend)
        names.append(name)
    return names
