"""Whole runs: which specs to verify, and every check on every variant of one spec."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed

from polyloss.verify.cases import make_cases
from polyloss.verify.checks import (
    check_compile,
    check_finite_differences,
    check_float32,
    check_gradients,
    check_jit,
    check_jitted,
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
    full: bool = True,
    compile: bool = True,
    on_step: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Every check of one run on every variant of ``spec``, then its edge cases; ``on_step`` is
    called after each variant.

    ``full=False`` is ``python -m polyloss verify``'s default, quick run: float64 values on every
    backend, torch's gradients against finite differences, JAX's values and gradients under one
    ``jax.jit`` per variant (against the float64 reference and torch's gradients), vmap (JAX's on
    the first variant), the upstream references, and the edge corpus eagerly on numpy,
    array-api-strict and torch. ``full=True`` adds float32, JAX eagerly (values, finite
    differences, jit against eager, vmap of every variant) and the edge corpus on JAX and under
    ``jax.jit``. ``compile`` adds ``torch.compile`` (inductor) of the first variant and of the
    edge cases.
    """
    outcomes: list[Outcome] = []
    for index, _variant in enumerate(spec.variants):
        cases = make_cases(spec, index, seed, n, count=3)
        case = cases[0]
        if full:
            for backend_name in ("array_api_strict", "torch", "jax"):
                outcomes.append(check_values(spec, case, env, backend_name))
            for backend_name in ("torch", "jax"):
                outcomes.append(check_float32(spec, case, env, backend_name))
                outcomes.append(check_finite_differences(spec, case, env, backend_name))
                outcomes.append(check_vmap(spec, cases, env, backend_name))
            outcomes.append(check_gradients(spec, case, env))
            outcomes.append(check_jit(spec, case, env))
        else:
            for backend_name in ("array_api_strict", "torch"):
                outcomes.append(check_values(spec, case, env, backend_name))
            outcomes.append(check_finite_differences(spec, case, env, "torch", fast=True))
            if "torch" not in env.harnesses:  # JAX's gradients are then compared with nothing else
                outcomes.append(check_finite_differences(spec, case, env, "jax"))
            outcomes.append(check_vmap(spec, cases, env, "torch"))
            outcomes += check_jitted(spec, case, env)
            if index == 0:
                outcomes.append(check_vmap(spec, cases, env, "jax", jitted=True))
        if compile and index == 0:
            outcomes.append(check_compile(spec, case, env))
        for reference in spec.references:  # quick: JAX's references on one reduction (each compiles)
            one_reduction = not full and reference.framework == "jax"
            outcomes.append(check_reference(spec, reference, case, env, one_reduction))
        if on_step:
            on_step()
    backends = None if full else ("numpy", "array_api_strict", "torch")
    outcomes += run_edge_cases(spec.name, env, compile=compile, jit=full, backends=backends)
    return outcomes


_WORKER_ENV: list[Environment] = []


def _start_worker() -> None:
    # one process per core already: a torch op using every core in each would oversubscribe them
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER_ENV.append(Environment.load())


def _run_in_worker(name: str, seed: int, full: bool, compile: bool) -> tuple[str, list[Outcome], float]:
    started = time.perf_counter()
    outcomes = run_spec(SPECS[name], _WORKER_ENV[0], seed=seed, full=full, compile=compile)
    return name, outcomes, time.perf_counter() - started


def run_specs(
    specs: Sequence[LossSpec], *, seed: int, full: bool, compile: bool, workers: int, env: Environment
) -> Iterator[tuple[str, list[Outcome], float]]:
    """:func:`run_spec` of every spec, in ``workers`` processes (in this one, with ``env``, when 1):
    (name, outcomes, seconds) per loss as each finishes, the losses with most variants started first."""
    if workers <= 1 or len(specs) <= 1:
        for spec in specs:
            started = time.perf_counter()
            yield spec.name, run_spec(spec, env, seed=seed, full=full, compile=compile), time.perf_counter() - started
        return
    # spawn, not fork: the parent has imported the frameworks, whose threads do not survive a fork
    context = multiprocessing.get_context("spawn")
    ordered = sorted(specs, key=lambda s: -(len(s.variants) + len(s.references)))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker) as pool:
        futures = [pool.submit(_run_in_worker, spec.name, seed, full, compile) for spec in ordered]
        for future in as_completed(futures):
            yield future.result()
