"""The catalogue of core losses; the backends bind every entry."""

from __future__ import annotations

from typing import Callable, TypeVar

from polyloss.core._checks import REDUCTIONS

F = TypeVar("F", bound=Callable)

#: name -> core function, in definition order.
CORE_LOSSES: dict[str, Callable] = {}

#: name -> core function of the non-loss helpers that are public too (sample weights).
CORE_HELPERS: dict[str, Callable] = {}


def loss(family: str, *, reductions: tuple[str, ...] = REDUCTIONS, needs_autodiff: bool = False) -> Callable[[F], F]:
    """Register a core loss ``fn(b, *arrays, **params)`` under its family.

    ``reductions`` are the values its ``reduction=`` accepts; ``needs_autodiff`` marks a loss
    that differentiates a user function (absent from backends without autodiff). Both are
    declared here once and read by the binding, the specs, the checks and the docs.
    """

    def register(fn: F) -> F:
        if fn.__name__ in CORE_LOSSES:
            raise RuntimeError(f"loss {fn.__name__!r} registered twice")
        fn.family = family  # type: ignore[attr-defined]
        fn.reductions = reductions  # type: ignore[attr-defined]
        fn.needs_autodiff = needs_autodiff  # type: ignore[attr-defined]
        CORE_LOSSES[fn.__name__] = fn
        return fn

    return register


def helper(family: str) -> Callable[[F], F]:
    """Register a public non-loss function ``fn(b, *arrays, **params)`` (no reduction, no spec)."""

    def register(fn: F) -> F:
        if fn.__name__ in CORE_HELPERS or fn.__name__ in CORE_LOSSES:
            raise RuntimeError(f"helper {fn.__name__!r} registered twice")
        fn.family = family  # type: ignore[attr-defined]
        fn.needs_autodiff = False  # type: ignore[attr-defined]
        CORE_HELPERS[fn.__name__] = fn
        return fn

    return register
