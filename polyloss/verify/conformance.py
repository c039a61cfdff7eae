"""The agreement harness: every check derived from a :class:`~polyloss.verify.specs.LossSpec`.

Used by the test-suite (with hypothesis drawing the cases) and by
``python -m polyloss verify`` (with seeded cases). Framework-free itself: it
reaches torch and jax only through ``polyloss.backends`` hooks, and reports a
framework that is not installed as ``missing`` instead of failing to import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from polyloss._binding import bind
from polyloss.verify.specs import SPECS, Case, LossSpec, NotApplicable, Reference

FRAMEWORK_BACKENDS = {
    "numpy": "polyloss.backends.numpy",
    "array_api_strict": "polyloss.backends.strict",
    "torch": "polyloss.backends.torch",
    "jax": "polyloss.backends.jax",
}
REQUIRED_PACKAGE = {"array_api_strict": "array-api-strict", "torch": "torch", "jax": "jax"}


@dataclass
class Outcome:
    """One check's result: ``status`` is ``pass``, ``fail``, ``n/a`` or ``missing``."""

    check: str
    backend: str
    status: str
    error: float = 0.0  # largest |actual - expected| / (atol + rtol |expected|); <= 1 passes
    detail: str = ""
    abs_error: float = 0.0  # largest |actual - expected|

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "n/a", "missing")


@dataclass
class Environment:
    """The backends (and their framework modules) importable on this install."""

    backends: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, Any] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Environment":
        env = cls()
        for name, module_name in FRAMEWORK_BACKENDS.items():
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                env.missing[name] = f"{REQUIRED_PACKAGE.get(name, name)} not installed ({error})"
                continue
            if hasattr(module, "enable_float64"):
                module.enable_float64()
            env.backends[name] = module.BACKEND
            env.modules[name] = module
        return env

    def reference_modules(self, framework: str) -> Any:
        if framework not in self.modules:
            raise ImportError(self.missing.get(framework, f"{framework} not installed"))
        return self.modules[framework].reference_modules()


# --------------------------------------------------------------------------- plumbing

_BOUND: dict[tuple[str, str], Callable[..., Any]] = {}
_TRANSFORMED: dict[tuple[Any, ...], Callable[..., Any]] = {}


def _bound(spec: LossSpec, backend: Any) -> Callable[..., Any]:
    key = (spec.name, backend.name)
    if key not in _BOUND:
        _BOUND[key] = bind(spec.core(), backend)
    return _BOUND[key]


def _positional_names(spec: LossSpec) -> tuple[str, ...]:
    import inspect

    params = list(inspect.signature(spec.core()).parameters.values())[1:]
    return tuple(p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _closure(
    spec: LossSpec, backend: Any, names: Sequence[str], params: dict[str, Any], reduction: str
) -> Callable[..., Any]:
    """``f(*arrays)`` in the order of ``names``; positional inputs by position, the rest by keyword.

    A positional input that is not an array (``gradient_penalty``'s critic) comes from ``params``;
    an optional trailing one (``distillation``'s target) may be absent.
    """
    loss = _bound(spec, backend)
    sources: list[tuple[str, Any]] = []  # ("array", index) or ("param", value), in signature order
    for p in _positional_names(spec):
        if p in names:
            sources.append(("array", names.index(p)))
        elif p in params:
            sources.append(("param", params[p]))
        else:
            break
    used = [p for p in _positional_names(spec)][: len(sources)]
    missing = [p for p in _positional_names(spec)[len(sources) :] if p in names or p in params]
    if missing:
        raise ValueError(f"{spec.name}: the case gives {missing} but not the positional inputs before them")
    static = {k: v for k, v in params.items() if k not in used}
    keywords = [(i, n) for i, n in enumerate(names) if n not in used]

    def f(*arrays: Any) -> Any:
        args = [arrays[source] if kind == "array" else source for kind, source in sources]
        kwargs = {n: arrays[i] for i, n in keywords}
        return loss(*args, **kwargs, **static, reduction=reduction)

    return f


def _convert(backend: Any, case: Case, float_dtype: str) -> list[Any]:
    out = []
    for value in case.arrays.values():
        dtype = float_dtype if np.issubdtype(value.dtype, np.floating) else None
        out.append(backend.asarray(value, dtype))
    return out


def _argnums(spec: LossSpec, case: Case) -> list[int]:
    return [i for i, name in enumerate(case.arrays) if name in spec.differentiable]


def _cotangent(shape: tuple[int, ...]) -> np.ndarray | None:
    """Fixed weights for the per-sample outputs of ``reduction="none"`` (so each sample counts differently)."""
    if shape == ():
        return None
    return np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)


def compare(actual: Any, expected: Any, rtol: float, atol: float) -> tuple[bool, float, str, float]:
    """Elementwise closeness; NaN matches NaN and inf matches the same inf.

    Returns (ok, worst |a - e| / (atol + rtol |e|), message, worst |a - e|).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return False, float("inf"), f"shape {a.shape} != expected {e.shape}", float("inf")
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
    with np.errstate(invalid="ignore"):
        ratio = np.abs(a - e) / (atol + rtol * np.abs(e))
        difference = np.where(same_special, 0.0, np.abs(a - e))
    ratio = np.where(same_special, 0.0, ratio)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = float(ratio.max()) if ratio.size else 0.0
    worst_abs = float(np.nan_to_num(difference, nan=np.inf).max()) if ratio.size else 0.0
    if worst <= 1.0:
        return True, worst, "", worst_abs
    idx = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
    return (
        False,
        worst,
        f"at index {tuple(int(i) for i in idx)}: got {a[idx]!r}, expected {e[idx]!r} (rtol={rtol}, atol={atol})",
        worst_abs,
    )


def _outcome(check: str, backend: str, results: list[tuple[Any, ...]]) -> Outcome:
    worst = max((r[1] for r in results), default=0.0)
    worst_abs = max((r[3] for r in results if len(r) > 3), default=0.0)
    failures = [r[2] for r in results if not r[0]]
    if failures:
        return Outcome(check, backend, "fail", worst, failures[0], worst_abs)
    return Outcome(check, backend, "pass", worst, "", worst_abs)


def _guard(check: str, backend: str, body: Callable[[], Outcome]) -> Outcome:
    try:
        return body()
    except NotApplicable as reason:
        return Outcome(check, backend, "n/a", detail=str(reason))
    except Exception as error:  # a crash is a failure with its message, never a silent pass
        return Outcome(check, backend, "fail", float("inf"), f"{type(error).__name__}: {error}")


def value_baseline(spec: LossSpec) -> str:
    """The backend whose float64 values the others are compared with: ``polyloss.numpy``, or
    JAX for a loss that needs the framework's autodiff (absent from numpy)."""
    return "jax" if spec.core().needs_autodiff else "numpy"


def numpy_values(spec: LossSpec, case: Case, env: Environment) -> dict[str, np.ndarray]:
    """The float64 reference values (of ``polyloss.numpy``, see :func:`value_baseline`) per reduction."""
    backend = env.backends[value_baseline(spec)]
    names = list(case.arrays)
    arrays = _convert(backend, case, "float64")
    return {r: np.asarray(_closure(spec, backend, names, case.params, r)(*arrays)) for r in spec.reductions}


# --------------------------------------------------------------------------- checks


def check_values(spec: LossSpec, case: Case, env: Environment, backend_name: str) -> Outcome:
    """float64 values of one backend == polyloss.numpy (jax for autodiff losses), every reduction."""
    if backend_name not in env.backends:
        return Outcome("value", backend_name, "missing", detail=env.missing[backend_name])

    def body() -> Outcome:
        if spec.core().needs_autodiff and backend_name in ("array_api_strict", value_baseline(spec)):
            raise NotApplicable(f"{spec.name} needs autodiff: torch is compared with jax")
        expected = numpy_values(spec, case, env)
        backend = env.backends[backend_name]
        arrays = _convert(backend, case, "float64")
        rtol, atol = spec.tolerances["float64"]
        results = []
        for r in spec.reductions:
            got = backend.to_numpy(_closure(spec, backend, list(case.arrays), case.params, r)(*arrays))
            results.append(compare(got, expected[r], rtol, atol))
        return _outcome("value", backend_name, results)

    return _guard("value", backend_name, body)


def check_float32(spec: LossSpec, case: Case, env: Environment, backend_name: str) -> Outcome:
    """float32 values within float32 tolerance of the float64 reference."""
    if backend_name not in env.backends:
        return Outcome("float32", backend_name, "missing", detail=env.missing[backend_name])

    def body() -> Outcome:
        expected = numpy_values(spec, case, env)
        backend = env.backends[backend_name]
        arrays = _convert(backend, case, "float32")
        rtol, atol = spec.tolerances["float32"]
        results = []
        for r in spec.reductions:
            out = _closure(spec, backend, list(case.arrays), case.params, r)(*arrays)
            results.append(compare(backend.to_numpy(out), expected[r], rtol, atol))
            if str(out.dtype).rsplit(".", 1)[-1] != "float32":
                results.append((False, float("inf"), f"loss dtype {out.dtype}, expected float32"))
        return _outcome("float32", backend_name, results)

    return _guard("float32", backend_name, body)


def _grads(
    spec: LossSpec,
    case: Case,
    backend: Any,
    reduction: str,
    fn: Callable[..., Any] | None = None,
    shape: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    arrays = _convert(backend, case, "float64")
    f = fn or _closure(spec, backend, list(case.arrays), case.params, reduction)
    cotangent = _cotangent(shape) if shape is not None else None
    return backend.value_and_grad(f, arrays, _argnums(spec, case), cotangent)


def check_gradients(spec: LossSpec, case: Case, env: Environment) -> Outcome:
    """torch autograd gradients == jax.grad gradients (float64), every reduction."""
    for name in ("torch", "jax"):
        if name not in env.backends:
            return Outcome("grad", "torch~jax", "missing", detail=env.missing[name])

    def body() -> Outcome:
        expected = numpy_values(spec, case, env)
        rtol, atol = spec.tolerances["float64"]
        results = []
        for r in spec.reductions:
            shape = expected[r].shape
            _, torch_grads = _grads(spec, case, env.backends["torch"], r, shape=shape)
            _, jax_grads = _grads(spec, case, env.backends["jax"], r, shape=shape)
            for name, gt, gj in zip([n for n in case.arrays if n in spec.differentiable], torch_grads, jax_grads):
                ok, err, detail, diff = compare(gt, gj, rtol, atol)
                results.append((ok, err, f"d/d{name} ({r}) {detail}", diff))
                results.append((bool(np.isfinite(gt).all()), 0.0, f"d/d{name} ({r}) has non-finite entries"))
        return _outcome("grad", "torch~jax", results)

    return _guard("grad", "torch~jax", body)


def check_finite_differences(spec: LossSpec, case: Case, env: Environment, backend_name: str) -> Outcome:
    """Autodiff gradients == central finite differences (float64; second order when declared),
    of the unreduced loss where the loss has ``"none"``."""
    if backend_name not in env.backends:
        return Outcome("fd", backend_name, "missing", detail=env.missing[backend_name])

    def body() -> Outcome:
        if not spec.finite_differences:
            raise NotApplicable("the gradient holds a coefficient constant by design; see the spec's notes")
        backend = env.backends[backend_name]
        arrays = _convert(backend, case, "float64")
        reduction = "none" if "none" in spec.reductions else "sum"  # per sample where the loss has it
        f = _closure(spec, backend, list(case.arrays), case.params, reduction)
        backend.check_finite_differences(f, arrays, _argnums(spec, case), 2 if spec.second_order else 1)
        return Outcome("fd", backend_name, "pass")

    return _guard("fd", backend_name, body)


def _transformed(
    kind: str, spec: LossSpec, backend: Any, case: Case, reduction: str, compiler: str = "inductor"
) -> Callable[..., Any]:
    """jit/compile once per (loss, parameters, reduction): recompiles only on new shapes."""
    key = (kind, compiler, spec.name, backend.name, tuple(case.arrays), repr(sorted(case.params.items())), reduction)
    if key not in _TRANSFORMED:
        f = _closure(spec, backend, list(case.arrays), case.params, reduction)
        _TRANSFORMED[key] = backend.jit(f) if kind == "jit" else backend.compile(f, compiler)
    return _TRANSFORMED[key]


def check_jit(spec: LossSpec, case: Case, env: Environment, reductions: Sequence[str] | None = None) -> Outcome:
    """jax.jit(loss) == eager, value and gradient."""
    if "jax" not in env.backends:
        return Outcome("jit", "jax", "missing", detail=env.missing["jax"])
    return _transform_check("jit", spec, case, env, env.backends["jax"], reductions or spec.reductions)


def check_compile(spec: LossSpec, case: Case, env: Environment, reductions: Sequence[str] = ("mean",)) -> Outcome:
    """torch.compile(loss, fullgraph=True) == eager, value and gradient."""
    if "torch" not in env.backends:
        return Outcome("compile", "torch", "missing", detail=env.missing["torch"])
    return _transform_check("compile", spec, case, env, env.backends["torch"], reductions)


def _transform_check(
    kind: str, spec: LossSpec, case: Case, env: Environment, backend: Any, reductions: Sequence[str]
) -> Outcome:
    def body() -> Outcome:
        rtol, atol = spec.tolerances["float64"]
        results = []
        for r in reductions:
            eager_value, eager_grads = _grads(spec, case, backend, r)
            value, grads = _grads(spec, case, backend, r, fn=_transformed(kind, spec, backend, case, r))
            results.append(compare(value, eager_value, rtol, atol))
            results += [compare(g, e, rtol, atol) for g, e in zip(grads, eager_grads)]
        return _outcome(kind, backend.name, results)

    return _guard(kind, backend.name, body)


def check_vmap(spec: LossSpec, cases: Sequence[Case], env: Environment, backend_name: str) -> Outcome:
    """vmap over a leading batch axis == a Python loop over the cases (same shapes)."""
    if backend_name not in env.backends:
        return Outcome("vmap", backend_name, "missing", detail=env.missing[backend_name])

    def body() -> Outcome:
        backend = env.backends[backend_name]
        rtol, atol = spec.tolerances["float64"]
        names = list(cases[0].arrays)
        stacked = Case({n: np.stack([c.arrays[n] for c in cases]) for n in names}, cases[0].params)
        results = []
        for r in spec.reductions:
            f = _closure(spec, backend, names, stacked.params, r)
            batched = backend.to_numpy(backend.vmap(f, [0] * len(names))(*_convert(backend, stacked, "float64")))
            looped = np.stack([backend.to_numpy(f(*_convert(backend, c, "float64"))) for c in cases])
            results.append(compare(batched, looped, rtol, atol))
        return _outcome("vmap", backend_name, results)

    return _guard("vmap", backend_name, body)


def check_reference(spec: LossSpec, reference: Reference, case: Case, env: Environment) -> Outcome:
    """The loss == an upstream implementation, value (every reduction) and gradient.

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

    def compare_reduction(r: str, expected_shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
        backend = env.backends[framework]
        rtol, atol = spec.tolerances["float64"]
        ours = _closure(spec, backend, names, case.params, r)

        def ref(*arrays: Any) -> Any:
            return reference.fn(modules, dict(zip(names, arrays)), case.params, r)

        if not (reference.grads and backend.has_autodiff):
            arrays = _convert(backend, case, "float64")
            expected = ref(*arrays)
            expected = np.asarray(backend.to_numpy(expected) if framework != "numpy" else expected, dtype=np.float64)
            return [compare(backend.to_numpy(ours(*arrays)), expected, rtol, atol)]
        # the same per-sample weights for both sides
        ref_value, ref_grads = _grads(spec, case, backend, r, fn=ref, shape=expected_shape)
        value, grads = _grads(spec, case, backend, r, fn=ours, shape=expected_shape)
        results = [compare(value, ref_value, rtol, atol)]
        for name, g, e in zip([n for n in names if n in spec.differentiable], grads, ref_grads):
            ok, err, detail, diff = compare(g, e, rtol, atol)
            results.append((ok, err, f"d/d{name} ({r}) {detail}", diff))
        return results

    def body() -> Outcome:
        expected_shapes = {r: v.shape for r, v in numpy_values(spec, case, env).items()}
        results, skipped = [], []
        for r in spec.reductions:
            try:
                results += compare_reduction(r, expected_shapes[r])
            except NotApplicable as reason:
                skipped.append(str(reason))
        if not results:
            raise NotApplicable("; ".join(dict.fromkeys(skipped)))
        return _outcome(label, framework, results)

    return _guard(label, framework, body)


# --------------------------------------------------------------------------- whole runs


def make_cases(spec: LossSpec, variant_index: int, seed: int, n: int, count: int = 1) -> list[Case]:
    """``count`` cases of one variant with batch size ``n`` (same shapes), reproducible from ``seed``."""
    rng = np.random.default_rng([seed, variant_index])
    return [spec.variants[variant_index].make(rng, n) for _ in range(count)]


CHECKS = ("value", "float32", "grad", "fd", "jit", "vmap", "compile", "reference")


def run_spec(
    spec: LossSpec,
    env: Environment,
    *,
    seed: int = 0,
    n: int = 3,
    compile: bool = True,
    on_step: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Every check on every variant of ``spec``; ``on_step`` is called after each variant."""
    outcomes: list[Outcome] = []
    for index, variant in enumerate(spec.variants):
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


def run_edge_cases(name: str, env: Environment, *, compile: bool = True) -> list[Outcome]:
    """Every corpus case of loss ``name`` on every backend and dtype it lists, eager and under
    jax.jit and torch.compile (with inductor; ``compile=False`` leaves torch.compile out)."""
    from polyloss.verify.specs.edges import cases_by_loss

    return [
        check_edge_case(edge, env, backend, dtype, transform)
        for edge in cases_by_loss().get(name, [])
        for backend, dtype, transform in edge_runs(edge)
        if compile or transform != "compile"
    ]


def selected_specs(family: str | None = None, names: Sequence[str] | None = None) -> list[LossSpec]:
    specs = list(SPECS.values())
    if family:
        specs = [s for s in specs if s.family == family]
    if names:
        unknown = sorted(set(names) - set(SPECS))
        if unknown:
            raise ValueError(f"unknown loss name(s): {', '.join(unknown)}; see `python -m polyloss list`")
        specs = [s for s in specs if s.name in names]
    return specs


# --------------------------------------------------------------------------- the edge-case corpus

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


def _rounded(value: np.ndarray, dtype: str) -> np.ndarray:
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
    if backend_name not in env.backends:
        return Outcome(label, backend_name, "missing", detail=env.missing[backend_name])
    spec = SPECS[edge.loss]

    def body() -> Outcome:
        backend = env.backends[backend_name]
        case = Case(edge.arrays, edge.params)
        names = list(edge.arrays)
        if transform == "eager":
            f = _closure(spec, backend, names, edge.params, edge.reduction)
        else:
            f = _transformed(transform, spec, backend, case, edge.reduction, compiler)
        arrays = _convert(backend, case, dtype)
        if isinstance(edge.expect, Raises):
            try:
                f(*arrays)
            except edge.expect.error as error:
                import re

                if re.search(edge.expect.match, str(error)):
                    return Outcome(label, backend_name, "pass")
                return Outcome(label, backend_name, "fail", float("inf"), f"message {str(error)!r} does not match")
            return Outcome(label, backend_name, "fail", float("inf"), f"no {edge.expect.error.__name__} raised")
        argnums = [
            i
            for i, (n, v) in enumerate(edge.arrays.items())
            if n in spec.differentiable and np.issubdtype(v.dtype, np.floating)
        ]
        if backend.has_autodiff and argnums:
            value, grads = backend.value_and_grad(f, arrays, argnums)
        else:
            value, grads = backend.to_numpy(f(*arrays)), []
        value = np.asarray(value, dtype=np.float64)
        results = []
        if isinstance(edge.expect, Infinite):
            results.append((bool(np.all(value == np.inf)), float("inf"), f"expected +inf, got {value!r}"))
        else:
            expected = edge.expect.value
            if callable(expected):
                rounded = {
                    k: _rounded(v, dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in edge.arrays.items()
                }
                expected = expected(rounded)
            results.append((bool(np.all(np.isfinite(value))), float("inf"), f"expected a finite loss, got {value!r}"))
            if expected is not None:
                rtol, atol = (edge.expect.rtol, 1e-12) if dtype == "float64" else EDGE_TOLERANCES[dtype]
                results.append(compare(value, np.asarray(expected, dtype=np.float64), rtol, atol))
        grad_rule = edge.expect.grad
        for name, g in zip([names[i] for i in argnums], grads):
            g = np.asarray(g, dtype=np.float64)
            if grad_rule in ("finite", "zero"):
                results.append((bool(np.all(np.isfinite(g))), float("inf"), f"d/d{name} is not finite: {g!r}"))
            if grad_rule == "zero":
                results.append((bool(np.all(g == 0)), float("inf"), f"d/d{name} is not exactly 0: {g!r}"))
        return _outcome(label, backend_name, results)

    if isinstance(edge.expect, Infinite):
        # the stated outcome is an overflow: numpy's overflow warning announces it, it is not a failure
        with np.errstate(over="ignore"):
            return _guard(label, backend_name, body)
    return _guard(label, backend_name, body)
