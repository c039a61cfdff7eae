"""Whole runs: which specs to verify, and every check on every variant of one spec."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from polyloss.verify.cases import make_cases
from polyloss.verify.checks import (
    check_compile,
    check_finite_differences,
    check_float32,
    check_gradients,
    check_jit,
    check_reference,
    check_values,
    check_vmap,
)
from polyloss.verify.compare import Outcome
from polyloss.verify.edge_cases import run_edge_cases
from polyloss.verify.environment import Environment
from polyloss.verify.specs import SPECS, LossSpec


def selected_specs(family: str | None = None, names: Sequence[str] | None = None) -> list[LossSpec]:
    """The specs of ``family`` (all by default), restricted to ``names`` when given."""
    specs = list(SPECS.values())
    if family:
        specs = [s for s in specs if s.family == family]
    if names:
        unknown = sorted(set(names) - set(SPECS))
        if unknown:
            raise ValueError(f"unknown loss name(s): {', '.join(unknown)}; see `python -m polyloss list`")
        specs = [s for s in specs if s.name in names]
    return specs


def run_spec(
    spec: LossSpec,
    env: Environment,
    *,
    seed: int = 0,
    n: int = 3,
    compile: bool = True,
    on_step: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Every check on every variant of ``spec``, then its edge cases; ``on_step`` is called after each variant."""
    outcomes: list[Outcome] = []
    for index, _variant in enumerate(spec.variants):
        cases = make_cases(spec, index, seed, n, count=3)
        case = cases[0]
        for backend_name in ("array_api_strict", "torch", "jax"):
            outcomes.append(check_values(spec, case, env, backend_name))
        for backend_name in ("torch", "jax"):
            outcomes.append(check_float32(spec, case, env, backend_name))
            outcomes.append(check_finite_differences(spec, case, env, backend_name))
            outcomes.append(check_vmap(spec, cases, env, backend_name))
        outcomes.append(check_gradients(spec, case, env))
        outcomes.append(check_jit(spec, case, env))
        if compile and index == 0:
            outcomes.append(check_compile(spec, case, env))
        for reference in spec.references:
            outcomes.append(check_reference(spec, reference, case, env))
        if on_step:
            on_step()
    outcomes += run_edge_cases(spec.name, env, compile=compile)
    return outcomes
