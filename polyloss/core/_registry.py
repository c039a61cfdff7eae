"""The catalogue of core losses; the backends bind every entry."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from polyloss.core._checks import REDUCTIONS, Setting, check_reduction
from polyloss.core._typing import Registered, RegisteredLoss

F = TypeVar("F", bound=Callable[..., Any])

#: name -> core function, in definition order.
CORE_LOSSES: dict[str, RegisteredLoss] = {}

#: name -> core function of the non-loss helpers that are public too (sample weights).
CORE_HELPERS: dict[str, Registered] = {}


def _validating(
    fn: F, reductions: tuple[str, ...], why_not: str | None, settings: Mapping[str, Setting]
) -> tuple[F, Callable[[Mapping[str, Any], Any], dict[str, Any]]]:
    """``fn`` behind the checks of its keyword-only ``reduction`` (default included) against
    ``reductions`` and of its declared ``settings``, and the settings check alone.

    Validated here, once per loss, before the loss runs: the checks read Python values (and 0-d
    arrays' values where concrete, see :func:`polyloss.core._checks._real`), so they are static under
    ``jax.jit`` and ``torch.compile``. The loss receives each setting as its check returns it.
    ``functools.wraps`` keeps the name, docstring and signature (``inspect.signature`` follows
    ``__wrapped__``).
    """
    parameters = inspect.signature(fn).parameters
    parameter = parameters.get("reduction")
    if parameter is None or parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
        raise RuntimeError(f"loss {fn.__name__!r} must take a keyword-only reduction=")
    undeclared = [
        n for n in settings if n not in parameters or parameters[n].kind is not inspect.Parameter.KEYWORD_ONLY
    ]
    if undeclared:
        raise RuntimeError(f"loss {fn.__name__!r} declares settings that are not keyword-only parameters: {undeclared}")
    default = parameter.default
    because = None if why_not is None else f"for {fn.__name__} ({why_not})"
    defaults = {name: parameters[name].default for name in settings}

    def check_settings(given: Mapping[str, Any], b: Any) -> dict[str, Any]:
        """The declared settings among ``given``, checked (a ValueError or TypeError names the bad one)."""
        return {name: settings[name](name, value, b) for name, value in given.items() if name in settings}

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check_reduction(kwargs.get("reduction", default), reductions, because)
        kwargs.update(check_settings(defaults | kwargs, args[0]))
        return fn(*args, **kwargs)

    return cast(F, checked), check_settings


def loss(
    family: str,
    *,
    reductions: tuple[str, ...] = REDUCTIONS,
    why_not: str | None = None,
    needs_autodiff: bool = False,
    settings: Mapping[str, Setting] | None = None,
) -> Callable[[F], F]:
    """Register a core loss ``fn(b, *arrays, **params, reduction)`` under its family.

    ``reductions`` are the values its ``reduction=`` accepts, validated here for every call
    (``why_not`` says why a standard reduction is missing, for the error message);
    ``needs_autodiff`` marks a loss that differentiates a user function (absent from backends
    without autodiff); ``settings`` declare the checks of hyper-parameters that depend on their
    own value only (``{"gamma": nonnegative_number(arrays=True)}``), run before every call and by
    ``polyloss.torch.nn`` at construction (``entry.check_settings(given, backend)``). All are
    declared here once and read by the binding, the specs, the checks and the docs.
    """

    def register(fn: F) -> F:
        if fn.__name__ in CORE_LOSSES:
            raise RuntimeError(f"loss {fn.__name__!r} registered twice")
        checked, check_settings = _validating(fn, reductions, why_not, settings or {})
        entry = cast(RegisteredLoss, checked)
        entry.family = family
        entry.reductions = reductions
        entry.needs_autodiff = needs_autodiff
        entry.settings = dict(settings or {})
        entry.check_settings = check_settings
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
