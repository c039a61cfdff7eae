"""The catalogue of core losses; the backends bind every entry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from polyloss.core._checks import REDUCTIONS, check_reduction
from polyloss.core._typing import Registered, RegisteredLoss

F = TypeVar("F", bound=Callable[..., Any])

#: name -> core function, in definition order.
CORE_LOSSES: dict[str, RegisteredLoss] = {}

#: name -> core function of the non-loss helpers that are public too (sample weights).
CORE_HELPERS: dict[str, Registered] = {}


def _validating_reduction(fn: F, reductions: tuple[str, ...], why_not: str | None) -> F:
    """``fn`` behind a check of its keyword-only ``reduction`` (default included) against ``reductions``.

    Validated here, once per loss, before the loss runs: the check reads a Python string only,
    so it is static under ``jax.jit`` and ``torch.compile``. ``functools.wraps`` keeps the
    name, docstring and signature (``inspect.signature`` follows ``__wrapped__``).
    """
    parameter = inspect.signature(fn).parameters.get("reduction")
    if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
        raise RuntimeError(f"loss {fn.__name__!r} must take a keyword-only reduction=")
    default = parameter.default
    because = None if why_not is None else f"for {fn.__name__} ({why_not})"

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_reduction(kwargs.get("reduction", default), reductions, because)
        return fn(*args, **kwargs)

    return cast(F, checked)


def loss(
    family: str,
    *,
    reductions: tuple[str, ...] = REDUCTIONS,
    why_not: str | None = None,
    needs_autodiff: bool = False,
) -> Callable[[F], F]:
    """Register a core loss ``fn(b, *arrays, **params, reduction)`` under its family.

    ``reductions`` are the values its ``reduction=`` accepts, validated here for every call
    (``why_not`` says why a standard reduction is missing, for the error message);
    ``needs_autodiff`` marks a loss that differentiates a user function (absent from backends
    without autodiff). Both are declared here once and read by the binding, the specs, the
    checks and the docs.
    """

    def register(fn: F) -> F:
        if fn.__name__ in CORE_LOSSES:
            raise RuntimeError(f"loss {fn.__name__!r} registered twice")
        checked = _validating_reduction(fn, reductions, why_not)
        entry = cast(RegisteredLoss, checked)
        entry.family = family
        entry.reductions = reductions
        entry.needs_autodiff = needs_autodiff
        CORE_LOSSES[fn.__name__] = entry
        return checked

    return register


def helper(family: str) -> Callable[[F], F]:
    """Register a public non-loss function ``fn(b, *arrays, **params)`` (no reduction, no spec)."""

    def register(fn: F) -> F:
        if fn.__name__ in CORE_HELPERS or fn.__name__ in CORE_LOSSES:
            raise RuntimeError(f"helper {fn.__name__!r} registered twice")
        entry = cast(Registered, fn)
        entry.family = family
        entry.needs_autodiff = False
        CORE_HELPERS[fn.__name__] = entry
        return fn

    return register
