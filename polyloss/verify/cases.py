"""From a spec's case to something a harness runs: drawn cases, bound closures, converted arrays,
the differentiated inputs, the fixed cotangent and the jit/compile transforms (cached)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from polyloss._binding import bind
from polyloss.verify.harness.base import Harness
from polyloss.verify.specs import Case, LossSpec

_BOUND: dict[tuple[str, str], Callable[..., Any]] = {}
_TRANSFORMED: dict[tuple[Any, ...], Callable[..., Any]] = {}


def make_cases(spec: LossSpec, variant_index: int, seed: int, n: int, count: int = 1) -> list[Case]:
    """``count`` cases of one variant with batch size ``n`` (same shapes), reproducible from ``seed``."""
    rng = np.random.default_rng([seed, variant_index])
    variant = spec.variants[variant_index]
    held = tuple(variant.not_differentiable)
    return [replace(variant.make(rng, n), not_differentiable=held) for _ in range(count)]


def bound(spec: LossSpec, harness: Harness) -> Callable[..., Any]:
    """The public loss of ``spec`` on the harness's backend (bound once)."""
    key = (spec.name, harness.name)
    if key not in _BOUND:
        _BOUND[key] = bind(spec.core(), harness.backend)
    return _BOUND[key]


def positional_names(spec: LossSpec) -> tuple[str, ...]:
    """The loss's positional (array) parameters, in signature order."""
    params = list(inspect.signature(spec.core()).parameters.values())[1:]
    return tuple(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def array_hyperparameters(spec: LossSpec) -> tuple[str, ...]:
    """The real hyper-parameters the core function takes as 0-d arrays too (a learnable temperature,
    a traced schedule): the keyword-only ones annotated ``float | Array``, declared once on it."""
    params = inspect.signature(spec.core()).parameters.values()
    return tuple(
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and "Array" in str(p.annotation) and isinstance(p.default, float)
    )


def with_array_hyperparameters(spec: LossSpec, case: Case) -> Case | None:
    """``case`` with its array hyper-parameters as 0-d float64 arrays among its inputs (so that every
    check differentiates them): those the case sets, and those whose default is not 0 (0 is the edge
    of ``label_smoothing``'s and ``z_loss``'s range, where finite differences would step outside it;
    None turns a term off).
    None when the loss has none."""
    defaults = inspect.signature(spec.core()).parameters
    names = [
        name
        for name in array_hyperparameters(spec)
        if case.params.get(name, defaults[name].default) not in (None, 0.0)  # None: the term is off
    ]
    if not names:
        return None
    arrays = dict(case.arrays)
    for name in names:
        arrays[name] = np.asarray(float(case.params.get(name, defaults[name].default)), dtype=np.float64)
    params = {k: v for k, v in case.params.items() if k not in names}
    return replace(case, arrays=arrays, params=params)


def closure(
    spec: LossSpec, harness: Harness, names: Sequence[str], params: dict[str, Any], reduction: str
) -> Callable[..., Any]:
    """``f(*arrays)`` in the order of ``names``; positional inputs by position, the rest by keyword.

    A positional input that is not an array (``gradient_penalty``'s critic) comes from ``params``;
    an optional trailing one (``distillation``'s target) may be absent.
    """
    loss = bound(spec, harness)
    positional = positional_names(spec)
    sources: list[tuple[str, Any]] = []  # ("array", index) or ("param", value), in signature order
    for p in positional:
        if p in names:
            sources.append(("array", names.index(p)))
        elif p in params:
            sources.append(("param", params[p]))
        else:
            break
    used = positional[: len(sources)]
    missing = [p for p in positional[len(sources) :] if p in names or p in params]
    if missing:
        raise ValueError(f"{spec.name}: the case gives {missing} but not the positional inputs before them")
    static = {k: v for k, v in params.items() if k not in used}
    keywords = [(i, n) for i, n in enumerate(names) if n not in used]

    def f(*arrays: Any) -> Any:
        args = [arrays[source] if kind == "array" else source for kind, source in sources]
        kwargs = {n: arrays[i] for i, n in keywords}
        return loss(*args, **kwargs, **static, reduction=reduction)

    return f


def convert(harness: Harness, case: Case, float_dtype: str) -> list[Any]:
    """The case's arrays on the harness's backend: floating ones in ``float_dtype``, others as they are."""
    out = []
    for value in case.arrays.values():
        dtype = float_dtype if np.issubdtype(value.dtype, np.floating) else None
        out.append(harness.asarray(value, dtype))
    return out


def argnums(spec: LossSpec, case: Case, names: Sequence[str] | None = None) -> list[int]:
    """The positions (in the case's order) of the differentiable inputs of ``case``
    (:meth:`LossSpec.differentiable_in`), or of those among ``names``."""
    wanted = spec.differentiable_in(case) if names is None else names
    return [i for i, name in enumerate(case.arrays) if name in wanted]


def cotangent(shape: tuple[int, ...]) -> np.ndarray | None:
    """Fixed weights for the per-sample outputs of ``reduction="none"`` (so each sample counts differently)."""
    if shape == ():
        return None
    return np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)


def transformed(
    kind: str, spec: LossSpec, harness: Harness, case: Case, reduction: str, compiler: str = "inductor"
) -> Callable[..., Any]:
    """jit (``kind="jit"``) or compile once per (loss, parameters, reduction): recompiles only on new shapes."""
    key = (kind, compiler, spec.name, harness.name, tuple(case.arrays), repr(sorted(case.params.items())), reduction)
    if key not in _TRANSFORMED:
        f = closure(spec, harness, list(case.arrays), case.params, reduction)
        _TRANSFORMED[key] = harness.jit(f) if kind == "jit" else harness.compile(f, compiler)
    return _TRANSFORMED[key]
