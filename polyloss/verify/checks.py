"""Every check derived from a :class:`~polyloss.verify.specs.LossSpec`, one outcome each.

Used by the test-suite (one check per test) and by ``python -m polyloss verify``
(:mod:`polyloss.verify.run`). Framework-free itself: it reaches torch and jax only
through the harnesses of :mod:`polyloss.verify.harness`, and reports a framework
that is not installed as ``missing`` instead of failing to import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from polyloss.verify.cases import argnums, closure, convert, cotangent, transformed
from polyloss.verify.compare import Comparison, Outcome, compare, fold, guard
from polyloss.verify.environment import Environment
from polyloss.verify.harness.base import Harness
from polyloss.verify.specs import Case, LossSpec, NotApplicable, Reference


def run_check(
    check: str, backend: str, env: Environment, body: Callable[[], Outcome], needs: Sequence[str] = ()
) -> Outcome:
    """What every check does around its body: ``missing`` when a harness it needs (``needs``, else
    ``backend``) is not installed; otherwise ``body()`` inside the harnesses' scope (float64 JAX,
    dynamo's raised limits), an exception a failure and :class:`NotApplicable` n/a."""
    for name in needs or (backend,):
        if name not in env.harnesses:
            return Outcome(check, backend, "missing", detail=env.missing[name])
    with env.scope():
        return guard(check, backend, body)


def value_baseline(spec: LossSpec) -> str:
    """The backend whose float64 values the others are compared with: ``polyloss.numpy``, or
    JAX for a loss that needs the framework's autodiff (absent from numpy)."""
    return "jax" if spec.core().needs_autodiff else "numpy"


def numpy_values(spec: LossSpec, case: Case, env: Environment) -> dict[str, np.ndarray]:
    """The float64 reference values (of ``polyloss.numpy``, see :func:`value_baseline`) per reduction."""
    harness = env.harnesses[value_baseline(spec)]
    names = list(case.arrays)
    with env.scope():
        arrays = convert(harness, case, "float64")
        return {r: np.asarray(closure(spec, harness, names, case.params, r)(*arrays)) for r in spec.reductions}


def grads(
    spec: LossSpec,
    case: Case,
    harness: Harness,
    reduction: str,
    fn: Callable[..., Any] | None = None,
    shape: tuple[int, ...] | None = None,
    names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Float64 value and gradients of the differentiable inputs (of ``names`` among them when given),
    weighted by :func:`cotangent` of ``shape``."""
    arrays = convert(harness, case, "float64")
    f = fn or closure(spec, harness, list(case.arrays), case.params, reduction)
    weights = cotangent(shape) if shape is not None else None
    return harness.value_and_grad(f, arrays, argnums(spec, case, names), weights)


def _values_in(dtype: str, spec: LossSpec, case: Case, env: Environment, backend_name: str) -> list[Comparison]:
    """One backend's values in ``dtype`` against the float64 reference, every reduction (and the
    loss's dtype: ``dtype``'s)."""
    expected = numpy_values(spec, case, env)
    harness = env.harnesses[backend_name]
    arrays = convert(harness, case, dtype)
    rtol, atol = spec.tolerances[dtype]
    results = []
    for r in spec.reductions:
        out = closure(spec, harness, list(case.arrays), case.params, r)(*arrays)
        results.append(compare(harness.to_numpy(out), expected[r], rtol, atol))
        if str(out.dtype).rsplit(".", 1)[-1] != dtype:
            results.append(Comparison(False, float("inf"), f"loss dtype {out.dtype}, expected {dtype}"))
    return results


def check_values(spec: LossSpec, case: Case, env: Environment, backend_name: str) -> Outcome:
    """float64 values of one backend == polyloss.numpy (jax for autodiff losses), every reduction."""

    def body() -> Outcome:
        if spec.core().needs_autodiff and backend_name in ("array_api_strict", value_baseline(spec)):
            raise NotApplicable(f"{spec.name} needs autodiff: torch is compared with jax")
        return fold("value", backend_name, _values_in("float64", spec, case, env, backend_name))

    return run_check("value", backend_name, env, body)


def check_float32(spec: LossSpec, case: Case, env: Environment, backend_name: str) -> Outcome:
    """float32 values within float32 tolerance of the float64 reference."""

    def body() -> Outcome:
        return fold("float32", backend_name, _values_in("float32", spec, case, env, backend_name))

    return run_check("float32", backend_name, env, body)


def check_gradients(spec: LossSpec, case: Case, env: Environment) -> Outcome:
    """torch autograd gradients == jax.grad gradients (float64), every reduction."""

    def body() -> Outcome:
        expected = numpy_values(spec, case, env)
        rtol, atol = spec.tolerances["float64"]
        results = []
        for r in spec.reductions:
            shape = expected[r].shape
            _, torch_grads = grads(spec, case, env.harnesses["torch"], r, shape=shape)
            _, jax_grads = grads(spec, case, env.harnesses["jax"], r, shape=shape)
            for name, gt, gj in zip(spec.differentiable_in(case), torch_grads, jax_grads, strict=True):
                results.append(compare(gt, gj, rtol, atol).labelled(f"d/d{name} ({r})"))
                results.append(Comparison(bool(np.isfinite(gt).all()), 0.0, f"d/d{name} ({r}) has non-finite entries"))
        return fold("grad", "torch~jax", results)

    return run_check("grad", "torch~jax", env, body, needs=("torch", "jax"))


def check_jitted(spec: LossSpec, case: Case, env: Environment) -> list[Outcome]:
    """The quick run's JAX check: one ``jax.jit`` of every reduction's value and gradient (float64),
    the values against the float64 reference, the gradients against torch's eager ones.

    Two outcomes: ``value[jax]`` and ``grad[torch~jax]``. A loss that needs autodiff has JAX as its
    value reference, so only its gradients are compared.
    """
    expected: dict[str, np.ndarray] = {}
    computed: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}

    def jitted() -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
        if not computed:
            expected.update(numpy_values(spec, case, env))
            harness = env.harnesses["jax"]
            names = list(case.arrays)
            fns = [closure(spec, harness, names, case.params, r) for r in spec.reductions]
            weights = [cotangent(expected[r].shape) for r in spec.reductions]
            results = harness.values_and_grads(fns, convert(harness, case, "float64"), argnums(spec, case), weights)
            computed.update(zip(spec.reductions, results, strict=True))
        return computed

    def values() -> Outcome:
        if spec.core().needs_autodiff:
            raise NotApplicable(f"{spec.name} needs autodiff: JAX is the value reference")
        rtol, atol = spec.tolerances["float64"]
        results = jitted()
        return fold("value", "jax", [compare(results[r][0], expected[r], rtol, atol) for r in spec.reductions])

    def gradients() -> Outcome:
        rtol, atol = spec.tolerances["float64"]
        results = jitted()
        comparisons = []
        for r in spec.reductions:
            _, torch_grads = grads(spec, case, env.harnesses["torch"], r, shape=expected[r].shape)
            for name, gt, gj in zip(spec.differentiable_in(case), torch_grads, results[r][1], strict=True):
                comparisons.append(compare(gt, gj, rtol, atol).labelled(f"d/d{name} ({r}, jax.jit)"))
                comparisons.append(
                    Comparison(bool(np.isfinite(gj).all()), 0.0, f"d/d{name} ({r}) has non-finite entries")
                )
        return fold("grad", "torch~jax", comparisons)

    return [
        run_check("value", "jax", env, values),
        run_check("grad", "torch~jax", env, gradients, needs=("torch", "jax")),
    ]


def check_finite_differences(
    spec: LossSpec, case: Case, env: Environment, backend_name: str, fast: bool = False
) -> Outcome:
    """Autodiff gradients == central finite differences (float64; second order when declared),
    of the unreduced loss where the loss has ``"none"``; ``fast``: along random directions
    (torch's ``gradcheck(fast_mode=True)``)."""

    def body() -> Outcome:
        if not spec.finite_differences:
            raise NotApplicable("the gradient holds a coefficient constant by design; see the spec's notes")
        harness = env.harnesses[backend_name]
        arrays = convert(harness, case, "float64")
        reduction = "none" if "none" in spec.reductions else "sum"  # per sample where the loss has it
        f = closure(spec, harness, list(case.arrays), case.params, reduction)
        harness.check_finite_differences(f, arrays, argnums(spec, case), 2 if spec.second_order else 1, fast)
        return Outcome("fd", backend_name, "pass")

    return run_check("fd", backend_name, env, body)


def _transform_body(
    kind: str, spec: LossSpec, case: Case, env: Environment, backend_name: str, reductions: Sequence[str]
) -> Callable[[], Outcome]:
    """The body of the jit and compile checks: transformed == eager, value and gradients."""

    def body() -> Outcome:
        harness = env.harnesses[backend_name]
        rtol, atol = spec.tolerances["float64"]
        results = []
        for r in reductions:
            eager_value, eager_grads = grads(spec, case, harness, r)
            value, gs = grads(spec, case, harness, r, fn=transformed(kind, spec, harness, case, r))
            results.append(compare(value, eager_value, rtol, atol))
            results += [compare(g, e, rtol, atol) for g, e in zip(gs, eager_grads, strict=True)]
        return fold(kind, harness.name, results)

    return body


def check_jit(spec: LossSpec, case: Case, env: Environment, reductions: Sequence[str] | None = None) -> Outcome:
    """jax.jit(loss) == eager, value and gradient."""
    return run_check("jit", "jax", env, _transform_body("jit", spec, case, env, "jax", reductions or spec.reductions))


def check_jit_captured(spec: LossSpec, case: Case, env: Environment, reductions: Sequence[str] = ("mean",)) -> Outcome:
    """``jax.jit`` over the differentiated inputs only, every other input (labels, lengths, masks)
    captured as a concrete constant, as in ``jax.jit(lambda x: loss(x, labels))``, == eager, value and
    gradient. Inside the trace even a captured array's ``jnp`` reductions are traced: an eager value
    check must read it on the host (``Backend.all_in``, ``int_range``), never ``bool`` of a reduction."""

    def body() -> Outcome:
        harness = env.harnesses["jax"]
        rtol, atol = spec.tolerances["float64"]
        traced = argnums(spec, case)
        results = []
        for r in [r for r in reductions if r in spec.reductions] or spec.reductions[:1]:
            loss = closure(spec, harness, list(case.arrays), case.params, r)

            def captured(*arrays: Any, _loss: Callable[..., Any] = loss) -> Any:
                def of_traced(*xs: Any) -> Any:
                    full = list(arrays)
                    for i, x in zip(traced, xs, strict=True):
                        full[i] = x
                    return _loss(*full)

                return harness.jit(of_traced)(*(arrays[i] for i in traced))

            eager_value, eager_grads = grads(spec, case, harness, r)
            value, gs = grads(spec, case, harness, r, fn=captured)
            results.append(compare(value, eager_value, rtol, atol))
            results += [compare(g, e, rtol, atol) for g, e in zip(gs, eager_grads, strict=True)]
        return fold("jit-captured", harness.name, results)

    return run_check("jit-captured", "jax", env, body)


def check_compile(spec: LossSpec, case: Case, env: Environment, reductions: Sequence[str] = ("mean",)) -> Outcome:
    """torch.compile(loss, fullgraph=True) == eager, value and gradient."""
    return run_check("compile", "torch", env, _transform_body("compile", spec, case, env, "torch", reductions))


def check_vmap(
    spec: LossSpec, cases: Sequence[Case], env: Environment, backend_name: str, jitted: bool = False
) -> Outcome:
    """vmap over a leading batch axis == a Python loop over the cases (same shapes); ``jitted``:
    both sides under ``jit``, every reduction in one program (the quick run's JAX check)."""

    def body() -> Outcome:
        harness = env.harnesses[backend_name]
        rtol, atol = spec.tolerances["float64"]
        names = list(cases[0].arrays)
        stacked = Case({n: np.stack([c.arrays[n] for c in cases]) for n in names}, cases[0].params)
        fns = [closure(spec, harness, names, stacked.params, r) for r in spec.reductions]
        in_axes = [0] * len(names)

        def batched_all(*arrays: Any) -> list[Any]:
            return [harness.vmap(f, in_axes)(*arrays) for f in fns]

        def single_all(*arrays: Any) -> list[Any]:
            return [f(*arrays) for f in fns]

        batched_fn, single_fn = (
            (harness.jit(batched_all), harness.jit(single_all)) if jitted else (batched_all, single_all)
        )
        batched = batched_fn(*convert(harness, stacked, "float64"))
        looped = [single_fn(*convert(harness, c, "float64")) for c in cases]
        results = [
            compare(harness.to_numpy(batched[i]), np.stack([harness.to_numpy(one[i]) for one in looped]), rtol, atol)
            for i in range(len(fns))
        ]
        return fold("vmap", backend_name, results)

    return run_check("vmap", backend_name, env, body)


def check_reference(
    spec: LossSpec, reference: Reference, case: Case, env: Environment, one_reduction: bool = False
) -> Outcome:
    """The loss == an upstream implementation, value (every reduction; the first that applies with
    ``one_reduction``) and gradient, both sides compiled together where the framework compiles
    (JAX) and the reference can be (it does not read values on the host).

    A reference may raise :class:`NotApplicable` for some reductions only (one that
    returns just the mean); the others are still compared. n/a when none applies.
    """
    label = f"ref:{reference.name}"
    framework = reference.framework
    try:
        modules = env.reference_modules(framework)
    except ImportError as error:
        return Outcome(label, framework, "missing", detail=str(error))
    names = list(case.arrays)

    def body() -> Outcome:
        harness = env.harnesses[framework]
        rtol, atol = spec.tolerances["float64"]
        expected_shapes = {r: v.shape for r, v in numpy_values(spec, case, env).items()}
        arrays = convert(harness, case, "float64")

        def ref(r: str) -> Callable[..., Any]:
            return lambda *xs: reference.fn(modules, dict(zip(names, xs, strict=True)), case.params, r)

        # integer inputs (labels, lengths) stay concrete: references may read them on the host
        floating = [i for i, a in enumerate(case.arrays.values()) if np.issubdtype(a.dtype, np.floating)]

        def of_floating(f: Callable[..., Any]) -> Callable[..., Any]:
            def g(*xs: Any) -> Any:
                full = list(arrays)
                for i, x in zip(floating, xs, strict=True):
                    full[i] = x
                return f(*full)

            return g

        # a reference may raise NotApplicable for some reductions only (one that returns just the mean)
        applicable, skipped, traceable = [], [], True
        for r in spec.reductions:
            try:
                traceable &= harness.traceable(of_floating(ref(r)), [arrays[i] for i in floating])
                applicable.append(r)
            except NotApplicable as reason:
                skipped.append(str(reason))
        if not applicable:
            raise NotApplicable("; ".join(dict.fromkeys(skipped)))
        applicable = applicable[:1] if one_reduction else applicable
        ours = [closure(spec, harness, names, case.params, r) for r in applicable]
        results: list[Comparison] = []
        if not (reference.grads and harness.has_autodiff):
            for r, f in zip(applicable, ours, strict=True):
                expected = ref(r)(*arrays)
                expected = np.asarray(harness.to_numpy(expected) if framework != "numpy" else expected, np.float64)
                results.append(compare(harness.to_numpy(f(*arrays)), expected, rtol, atol))
            return fold(label, framework, results)
        # the same per-sample weights for both sides; the inputs the reference differentiates in
        covered = [n for n in spec.differentiable_in(case) if reference.compares_gradient_of(n)]
        weights = [cotangent(expected_shapes[r]) for r in applicable]
        computed = harness.values_and_grads(
            [of_floating(f) for f in [ref(r) for r in applicable] + ours],
            [arrays[i] for i in floating],
            [floating.index(i) for i in argnums(spec, case, covered)],
            weights + weights,
            compiled=traceable,
        )
        for i, r in enumerate(applicable):
            (ref_value, ref_grads), (value, gs) = computed[i], computed[len(applicable) + i]
            results.append(compare(value, ref_value, rtol, atol))
            for name, g, e in zip(covered, gs, ref_grads, strict=True):
                results.append(compare(g, e, rtol, atol).labelled(f"d/d{name} ({r})"))
        return fold(label, framework, results)

    return run_check(label, framework, env, body)
