"""The edge-case corpus (each spec's ``edge_cases``, collected by ``specs/edges.py``) run: each case
on every backend and dtype it lists, eagerly and under jax.jit and torch.compile, against its
stated outcome: the value (and its shape, where stated: an empty batch's ``"none"``) and the
gradients, which always have their input's shape."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from polyloss.verify.cases import closure, convert, transformed
from polyloss.verify.checks import run_check
from polyloss.verify.compare import Comparison, Outcome, compare, fold
from polyloss.verify.environment import Environment
from polyloss.verify.specs import SPECS, Case

#: (rtol, atol) of a stated value per input dtype; half precision is computed in float32 from the
#: rounded inputs, and the stated values are computed from the same rounded inputs.
EDGE_TOLERANCES = {"float32": (2e-6, 1e-6), "float16": (1e-5, 1e-5), "bfloat16": (1e-5, 1e-5)}
EDGE_BACKENDS = {
    "float64": ("numpy", "array_api_strict", "torch", "jax"),
    "float32": ("numpy", "torch", "jax"),
    "float16": ("torch", "jax"),
    "bfloat16": ("torch", "jax"),
}


#: the transformed runs of a case: jax.jit and torch.compile(fullgraph=True), in float32 (the training
#: dtype), of every case with a value outcome. A Raises case is eager only: the value checks read
#: concrete arrays, and a traced bad value gives NaN instead (documented per loss).
EDGE_TRANSFORMS = (("jax", "jit"), ("torch", "compile"))
EDGE_TRANSFORM_DTYPE = "float32"


def edge_runs(edge: Any) -> list[tuple[str, str, str]]:
    """The (backend, dtype, transform) runs of a corpus case: every backend that has the loss in
    every dtype the case lists, eagerly ("eager"), plus jit/compile in float32."""
    from polyloss.verify.specs.edges import Raises

    autodiff = SPECS[edge.loss].core().needs_autodiff
    runs = [
        (backend, dtype, "eager")
        for dtype in edge.dtypes
        for backend in EDGE_BACKENDS[dtype]
        if not (autodiff and backend in ("numpy", "array_api_strict"))
    ]
    if not isinstance(edge.expect, Raises) and EDGE_TRANSFORM_DTYPE in edge.dtypes:
        runs += [(backend, EDGE_TRANSFORM_DTYPE, transform) for backend, transform in EDGE_TRANSFORMS]
    return runs


def run_edge_cases(
    name: str,
    env: Environment,
    *,
    compile: bool = True,
    jit: bool = True,
    backends: Sequence[str] | None = None,
) -> list[Outcome]:
    """Every corpus case of loss ``name`` on every backend and dtype it lists (on ``backends`` only,
    when given), eager and under jax.jit and torch.compile (with inductor; ``jit=False`` and
    ``compile=False`` leave those out)."""
    from polyloss.verify.specs.edges import cases_by_loss

    left_out = {"jit": not jit, "compile": not compile}
    return [
        check_edge_case(edge, env, backend, dtype, transform)
        for edge in cases_by_loss().get(name, [])
        for backend, dtype, transform in edge_runs(edge)
        if not left_out.get(transform, False) and (backends is None or backend in backends)
    ]


def rounded(value: np.ndarray, dtype: str) -> np.ndarray:
    """``value`` rounded to ``dtype`` and back to float64 (what the loss actually sees)."""
    if dtype == "bfloat16":
        import ml_dtypes  # a jax dependency

        return np.asarray(value, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
    return np.asarray(value, dtype=dtype).astype(np.float64)


def check_edge_case(
    edge: Any, env: Environment, backend_name: str, dtype: str, transform: str = "eager", compiler: str = "inductor"
) -> Outcome:
    """One corpus case on one backend and input dtype, eager or under ``transform`` ("jit" for
    JAX, "compile" for torch, with torch.compile's ``compiler`` backend): its stated outcome,
    value and gradients."""
    from polyloss.verify.specs.edges import Infinite, Raises

    label = f"edge[{dtype}]" if transform == "eager" else f"edge[{dtype},{transform}]"
    spec = SPECS[edge.loss]

    def body() -> Outcome:
        harness = env.harnesses[backend_name]
        case = Case(edge.arrays, edge.params)
        names = list(edge.arrays)
        if transform == "eager":
            f = closure(spec, harness, names, edge.params, edge.reduction)
        else:
            f = transformed(transform, spec, harness, case, edge.reduction, compiler)
        arrays = convert(harness, case, dtype)
        if isinstance(edge.expect, Raises):
            try:
                f(*arrays)
            except edge.expect.error as error:
                if re.search(edge.expect.match, str(error)):
                    return Outcome(label, backend_name, "pass")
                return Outcome(label, backend_name, "fail", float("inf"), f"message {str(error)!r} does not match")
            return Outcome(label, backend_name, "fail", float("inf"), f"no {edge.expect.error.__name__} raised")
        differentiable = spec.differentiable_in(case)
        argnums = [i for i, n in enumerate(names) if n in differentiable]
        if harness.has_autodiff and argnums:
            value, grads = harness.value_and_grad(f, arrays, argnums)
        else:
            value, grads = harness.to_numpy(f(*arrays)), []
        value = np.asarray(value, dtype=np.float64)
        results = []
        if isinstance(edge.expect, Infinite):
            results.append(Comparison(bool(np.all(value == np.inf)), float("inf"), f"expected +inf, got {value!r}"))
        else:
            expected = edge.expect.value
            if callable(expected):
                rounded_arrays = {
                    k: rounded(v, dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in edge.arrays.items()
                }
                expected = expected(rounded_arrays)
            results.append(
                Comparison(bool(np.all(np.isfinite(value))), float("inf"), f"expected a finite loss, got {value!r}")
            )
            if edge.expect.shape is not None:
                results.append(
                    Comparison(
                        value.shape == edge.expect.shape,
                        float("inf"),
                        f"expected a loss of shape {edge.expect.shape}, got {value.shape}",
                    )
                )
            if expected is not None:
                rtol, atol = (edge.expect.rtol, 1e-12) if dtype == "float64" else EDGE_TOLERANCES[dtype]
                results.append(compare(value, np.asarray(expected, dtype=np.float64), rtol, atol))
        grad_rule = edge.expect.grad
        infinite_slope = edge.expect.infinite_slope if isinstance(edge.expect, Infinite) else ()
        for name, g in zip([names[i] for i in argnums], grads, strict=False):
            g = np.asarray(g, dtype=np.float64)
            shape = np.shape(edge.arrays[name])
            results.append(Comparison(g.shape == shape, float("inf"), f"d/d{name} has shape {g.shape}, not {shape}"))
            if name in infinite_slope:
                results.append(Comparison(not bool(np.isnan(g).any()), float("inf"), f"d/d{name} has NaN: {g!r}"))
            elif grad_rule in ("finite", "zero"):
                results.append(
                    Comparison(bool(np.all(np.isfinite(g))), float("inf"), f"d/d{name} is not finite: {g!r}")
                )
            if grad_rule == "zero":
                results.append(Comparison(bool(np.all(g == 0)), float("inf"), f"d/d{name} is not exactly 0: {g!r}"))
        return fold(label, backend_name, results)

    # the stated outcome is an overflow: numpy's overflow warning announces it, it is not a failure
    overflow = np.errstate(over="ignore") if isinstance(edge.expect, Infinite) else contextlib.nullcontext()
    with overflow:
        return run_check(label, backend_name, env, body)
