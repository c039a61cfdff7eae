"""Invariances of the catalogue, on numpy, torch and jax (gradients on torch and jax).

Two kinds of property:

* targeted identities: adding a constant to every logit leaves cross-entropy
  unchanged; an ignored row is a dropped row; all-ones weights are no weights;
  ``label_smoothing=0`` / focal ``gamma=0`` / poly1 ``epsilon=0`` /
  sigmoid_focal ``gamma=0, alpha=None`` fall back to the plain loss; identical
  boxes have IoU-type loss 0; cosine-based losses do not see the embeddings'
  positive scale;
* generic properties of every registered loss, on cases drawn from its spec's
  variants (``polyloss.verify.specs``), reading what each spec declares: permuting
  the batch permutes ``"none"`` and leaves ``"mean"``/``"sum"`` unchanged
  (``LossSpec.layout`` says which inputs are per sample and how ``"none"``
  follows); ``"mean"`` is ``"sum"`` over the documented normaliser
  (``LossSpec.mean``); ``"none"`` agrees with calling the loss one sample at a
  time where samples are independent (``Layout.coupled`` says why not);
  all-ones weights are no weights (``LossSpec.unit_weights``); cosine-based
  losses do not see their rows' positive scale (``LossSpec.scale_invariant``).

numpy and torch run every variant; JAX runs one variant per loss in the generic
tests (``_jax_variant``), jitted once per shape: its compilations are what cost
time here, and test_conformance.py already shows that JAX equals numpy (values)
and torch (gradients) on every variant.

No table here names a loss of the catalogue except the targeted identities. A new
input that a loss's layout does not classify fails ``test_every_loss_has_a_batch_layout``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyloss.core import CORE_LOSSES
from polyloss.verify import cases
from polyloss.verify.compare import compare
from polyloss.verify.specs import SPECS, Case, Layout, LossSpec

BACKENDS = ("numpy", "torch", "jax")
AUTODIFF = ("torch", "jax")
SEEDS = st.integers(0, 2**32 - 1)


# --------------------------------------------------------------------------- running a loss


def backends_of(spec: LossSpec) -> tuple[str, ...]:
    """numpy has no autodiff: losses that need it (``gradient_penalty``) run on torch and jax only."""
    return AUTODIFF if spec.core().needs_autodiff else BACKENDS


_JAX_COMPILED: dict[tuple[Any, ...], Callable[..., Any]] = {}
# XLA options that cut the compilation of these tiny float64 graphs about threefold (less optimisation,
# same float64 arithmetic; jit == eager is tests/test_conformance.py's); dropped if this XLA lacks them.
_FAST_COMPILE: dict[str, Any] | None = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
    "xla_cpu_parallel_codegen_split_count": 1,
}
_FAST_COMPILE_PROBED = False


def _jax_jit(m, fn: Callable[..., Any]) -> Callable[..., Any]:
    global _FAST_COMPILE, _FAST_COMPILE_PROBED
    if not _FAST_COMPILE_PROBED:
        _FAST_COMPILE_PROBED = True
        try:
            m.jax.jit(lambda x: x + 1.0, compiler_options=_FAST_COMPILE)(m.jnp.zeros(2))
        except Exception:  # an XLA or a JAX without these options
            _FAST_COMPILE = None
    return m.jax.jit(fn, compiler_options=_FAST_COMPILE) if _FAST_COMPILE else m.jax.jit(fn)


def _static_key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, id(v) if callable(v) else repr(v)) for k, v in params.items()))


def evaluate(
    env,
    backend_name: str,
    name: str,
    arrays: dict[str, np.ndarray],
    params: dict[str, Any],
    reductions: tuple[str, ...] = ("mean", "sum", "none"),
    grad_reductions: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """The loss for each of ``reductions`` in float64 on ``backend_name``, and (torch, jax) for each of
    ``grad_reductions`` the gradient of the sum of that output with respect to every differentiable input.

    JAX runs one ``jax.jit`` of all of them, compiled once per (loss, inputs' shapes, static parameters):
    an eager JAX call compiles each primitive for each new shape (and ``lax.scan`` for every call), so
    compiling once and calling on every drawn example is what keeps this file fast.
    """
    spec = SPECS[name]
    backend = env.harnesses[backend_name]
    names = list(arrays)
    argnums = cases.argnums(spec, Case(arrays, params))
    converted = cases.convert(backend, Case(arrays, params), "float64")
    if not backend.has_autodiff:
        grad_reductions = ()
    if backend_name == "jax":
        key = (
            name,
            tuple(names),
            tuple((a.shape, a.dtype.str) for a in arrays.values()),
            _static_key(params),
            reductions,
            grad_reductions,
        )
        if key not in _JAX_COMPILED:
            m = env.reference_modules("jax")
            fns = {r: cases.closure(spec, backend, names, params, r) for r in set(reductions) | set(grad_reductions)}

            def everything(*xs):
                values = {r: fns[r](*xs) for r in reductions}
                grads = {
                    r: m.jax.grad(lambda *ys, r=r: m.jnp.sum(fns[r](*ys)), argnums=tuple(argnums))(*xs)
                    for r in grad_reductions
                }
                return values, grads

            _JAX_COMPILED[key] = _jax_jit(m, everything)
        values, grads = _JAX_COMPILED[key](*converted)
        return (
            {r: np.asarray(v, dtype=np.float64) for r, v in values.items()},
            {r: {names[i]: np.asarray(g) for i, g in zip(argnums, gs, strict=True)} for r, gs in grads.items()},
        )
    values, grads = {}, {}
    for r in reductions:
        f = cases.closure(spec, backend, names, params, r)
        if r in grad_reductions:
            value, gs = backend.value_and_grad(f, converted, argnums, None)
            grads[r] = {names[i]: np.asarray(g) for i, g in zip(argnums, gs, strict=True)}
        else:
            value = backend.to_numpy(f(*converted))
        values[r] = np.asarray(value, dtype=np.float64)
    for r in set(grad_reductions) - set(reductions):
        _, gs = backend.value_and_grad(cases.closure(spec, backend, names, params, r), converted, argnums, None)
        grads[r] = {names[i]: np.asarray(g) for i, g in zip(argnums, gs, strict=True)}
    return values, grads


def close(actual, expected, what: str, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    comparison = compare(actual, expected, rtol, atol)
    assert comparison.ok, f"{what}: {comparison.detail}"


def close_grads(actual: dict, expected: dict, what: str, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    assert actual.keys() == expected.keys(), what
    for key in actual:
        close(actual[key], expected[key], f"{what}: d/d{key}", rtol, atol)


def tolerances(spec: LossSpec) -> tuple[float, float]:
    return spec.tolerances["float64"]


def draw_case(spec: LossSpec, data, variants) -> tuple[int, Case, str]:
    variant = data.draw(st.sampled_from(list(variants)), label="variant")
    seed = data.draw(SEEDS, label="seed")
    (case,) = cases.make_cases(spec, variant, seed, 4)  # one batch size: one JAX compilation per variant
    return variant, case, f"{spec.name} variant {spec.variants[variant].name!r} seed {seed} n 4"


# --------------------------------------------------------------------------- batch layouts


def layout_of(name: str, case: Case) -> Layout:
    return SPECS[name].layout_of(case)


def batch_size(layout: Layout, case: Case) -> int:
    sizes = {case.arrays[n].shape[layout.axes.get(n, 0)] for n in layout.per_sample if n in case.arrays}
    assert len(sizes) == 1, f"per-sample inputs disagree on the batch size: {sizes}"
    return sizes.pop()


def take(layout: Layout, case: Case, index) -> Case:
    """The case with every per-sample input indexed by ``index`` along its sample axis."""
    arrays = {
        n: (np.take(a, index, axis=layout.axes.get(n, 0)) if n in layout.per_sample else a)
        for n, a in case.arrays.items()
    }
    return Case(arrays, case.params)


def permuted_none(layout: Layout, none: np.ndarray, perm: np.ndarray) -> np.ndarray:
    if layout.none == "rows":
        return np.take(none, perm, axis=0)
    if layout.none == "halves":
        return np.take(none, np.concatenate([perm, perm + len(perm)]), axis=0)
    assert layout.none == "pooled", layout.none
    return none


def test_every_loss_has_a_batch_layout():
    """Every variant's inputs are classified (checked on n=2), and "none" is declared as the reductions say."""
    for name, spec in SPECS.items():
        for index in range(len(spec.variants)):
            layout = layout_of(name, cases.make_cases(spec, index, 0, 2)[0])
            assert layout.none in ("rows", "halves", "pooled", None)
            assert (layout.none is None) == ("none" not in spec.reductions), name


# --------------------------------------------------------------------------- generic: permutation


@functools.cache
def _jax_variant(name: str) -> int:
    """The one variant the generic tests run on JAX (every variant on numpy and torch): independent samples
    first, then the most inputs and parameters. JAX compiles each variant's shapes (a few tenths of a second);
    its values equal numpy's and its gradients torch's on every variant (tests/test_conformance.py)."""
    spec = SPECS[name]

    def score(index: int) -> tuple[Any, ...]:
        case = cases.make_cases(spec, index, 0, 2)[0]
        return (not layout_of(name, case).coupled, len(case.arrays), len(case.params), -index)

    return max(range(len(spec.variants)), key=score)


def variants_for(name: str, backend: str) -> list[int]:
    return [_jax_variant(name)] if backend == "jax" else list(range(len(SPECS[name].variants)))


def generic_pairs(names) -> list[tuple[str, str]]:
    return [(name, backend) for name in names for backend in backends_of(SPECS[name])]


def full_evaluation(env, backend: str, name: str, case: Case):
    """Every reduction and the gradient of "sum": the same JAX compilation serves every generic test."""
    return evaluate(env, backend, name, case.arrays, case.params, SPECS[name].reductions, ("sum",))


@pytest.mark.parametrize("name,backend", generic_pairs(SPECS))
@given(data=st.data())
def test_batch_permutation(env, name, backend, data):
    """Permuting the samples permutes "none" (as the layout says) and leaves "mean"/"sum" unchanged; the
    gradient of "sum" with respect to per-sample inputs is permuted, to shared inputs unchanged."""
    spec = SPECS[name]
    _, case, note = draw_case(spec, data, variants_for(name, backend))
    layout = layout_of(name, case)
    size = batch_size(layout, case)
    perm = np.asarray(data.draw(st.permutations(range(size)), label="permutation"), dtype=np.int64)
    if size > 1 and np.array_equal(perm, np.arange(size)):
        perm = np.roll(perm, 1)  # never the identity
    moved = take(layout, case, perm)
    rtol, atol = tolerances(spec)
    values, grads = full_evaluation(env, backend, name, case)
    values_p, grads_p = full_evaluation(env, backend, name, moved)
    what = f"{note} {backend} permutation {perm.tolist()}"
    for reduction in spec.reductions:
        expected = permuted_none(layout, values[reduction], perm) if reduction == "none" else values[reduction]
        close(values_p[reduction], expected, f"{what} {reduction}", rtol, atol)
    if grads:
        expected_grads = {
            n: (np.take(g, perm, axis=layout.axes.get(n, 0)) if n in layout.per_sample else g)
            for n, g in grads["sum"].items()
        }
        close_grads(grads_p["sum"], expected_grads, f"{what} grad of sum", rtol, atol)


# --------------------------------------------------------------------------- generic: "mean" = "sum" / normaliser


@pytest.mark.parametrize("name,backend", generic_pairs(SPECS))
@given(data=st.data())
def test_mean_is_sum_over_documented_normaliser(env, name, backend, data):
    """ "mean" == "sum" / normaliser; the normaliser is the size of "none" unless the spec's ``mean`` says
    otherwise, and "sum" == sum("none")."""
    spec = SPECS[name]
    _, case, note = draw_case(spec, data, variants_for(name, backend))
    rtol, atol = tolerances(spec)
    values, _ = full_evaluation(env, backend, name, case)
    what = f"{note} {backend}"
    if "none" in values:
        close(values["sum"], np.sum(values["none"]), f"{what}: sum == sum(none)", rtol, atol)
    mean = spec.mean
    if mean.expected is not None:

        def evaluate_case(params: dict[str, Any], reduction: str) -> np.ndarray:
            return evaluate(env, backend, name, case.arrays, params, (reduction,))[0][reduction]

        expected = mean.expected(case, values, evaluate_case)
    else:
        normaliser = mean.normaliser(case, values["none"]) if mean.normaliser else values["none"].size
        expected = values["sum"] / normaliser if normaliser else 0.0
    close(values["mean"], expected, f"{what}: mean == documented normalisation", rtol, atol)


def test_mean_is_declared_where_there_is_no_none():
    """A loss without "none" cannot have the default normaliser: its spec states how "mean" is computed."""
    for name, spec in SPECS.items():
        assert spec.mean.doc, name
        assert not (spec.mean.normaliser and spec.mean.expected), name
        assert "none" in spec.reductions or spec.mean.expected is not None, name


# --------------------------------------------------------------------------- generic: "none" == one sample at a time


def _independent_variants_of(name: str) -> list[int]:
    spec = SPECS[name]
    return [i for i in range(len(spec.variants)) if not layout_of(name, cases.make_cases(spec, i, 0, 2)[0]).coupled]


# Losses with at least one variant whose samples are independent. Couplings (in-batch negatives, pooled
# segmentation, mining, normalised weights) are stated by each layout's ``coupled``: those variants are not drawn.
INDEPENDENT_NAMES = [name for name in SPECS if _independent_variants_of(name)]


def test_coupled_losses_say_why():
    for name, spec in SPECS.items():
        for index in range(len(spec.variants)):
            layout = layout_of(name, cases.make_cases(spec, index, 0, 2)[0])
            assert layout.coupled is None or layout.coupled.strip(), name


def _independent_variants(name: str, backend: str) -> list[int]:
    spec = SPECS[name]
    return [i for i in variants_for(name, backend) if not layout_of(name, cases.make_cases(spec, i, 0, 2)[0]).coupled]


@pytest.mark.parametrize("name,backend", generic_pairs(INDEPENDENT_NAMES))
@given(data=st.data())
def test_none_equals_one_sample_at_a_time(env, name, backend, data):
    """ "none" of the batch, at sample i, equals the loss of the batch made of sample i alone (value, and the
    gradient of "sum" with respect to sample i's inputs). Variants whose samples are coupled (infonce
    without negatives, pooled segmentation) are not drawn."""
    spec = SPECS[name]
    _, case, note = draw_case(spec, data, _independent_variants(name, backend))
    layout = layout_of(name, case)
    index = data.draw(st.integers(0, batch_size(layout, case) - 1), label="sample")
    single = take(layout, case, [index])
    rtol, atol = tolerances(spec)
    values, grads = full_evaluation(env, backend, name, case)
    values_1, grads_1 = full_evaluation(env, backend, name, single)
    what = f"{note} {backend} sample {index}"
    close(values_1["none"], values["none"][index : index + 1], what, rtol, atol)
    if grads:
        expected = {
            n: np.take(g, [index], axis=layout.axes.get(n, 0))
            for n, g in grads["sum"].items()
            if n in layout.per_sample
        }
        close_grads({n: g for n, g in grads_1["sum"].items() if n in layout.per_sample}, expected, what, rtol, atol)


# --------------------------------------------------------------------------- cross_entropy: shift invariance

ALL = ("mean", "sum", "none")
GRADS = ("mean",)  # the gradient checked by the identities: the reduction with the normaliser


def compare_all(actual, expected, what: str, rtol: float = 1e-10, atol: float = 1e-12, grads: bool = True) -> None:
    """Two ``evaluate`` results: every value, and every gradient, equal."""
    (values, gradients), (values_e, gradients_e) = actual, expected
    for reduction in values_e:
        close(values[reduction], values_e[reduction], f"{what} {reduction}", rtol, atol)
        if grads and reduction in gradients_e:
            close_grads(gradients[reduction], gradients_e[reduction], f"{what} {reduction}", rtol, atol)


def _logits_case(rng: np.random.Generator, n: int, k: int, scale: float = 2.0):
    return rng.normal(scale=scale, size=(n, k)), rng.integers(0, k, size=n).astype(np.int64)


CE_SETTINGS = [
    {},
    {"weight": True},
    {"ignore_index": -100},
    {"ignore_index": -1, "weight": True, "label_smoothing": 0.1},
    {"label_smoothing": 0.25},
    {"probabilities": True},
    {"probabilities": True, "weight": True, "label_smoothing": 0.2},
]


def _ce_arrays(rng: np.random.Generator, setting: dict, n: int = 4, k: int = 5):
    logits, target = _logits_case(rng, n, k)
    if setting.get("probabilities"):
        raw = rng.gamma(1.0, size=(n, k))
        target = raw / raw.sum(-1, keepdims=True)
    elif "ignore_index" in setting:
        target[rng.permutation(n)[:2]] = setting["ignore_index"]  # 2 of the 4 rows ignored
    arrays = {"logits": logits, "target": target}
    if setting.get("weight"):
        arrays["weight"] = rng.uniform(0.2, 2.0, size=k)
    params = {key: value for key, value in setting.items() if key in ("ignore_index", "label_smoothing")}
    return arrays, params


def _setting_id(setting: dict) -> str:
    return ",".join(f"{k}={v}" if not isinstance(v, bool) else k for k, v in setting.items()) or "plain"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", CE_SETTINGS, ids=_setting_id)
@given(seed=SEEDS, shift=st.floats(-50.0, 50.0))
def test_cross_entropy_unchanged_by_a_constant_added_to_every_logit(env, backend, setting, seed, shift):
    """Values and gradients, with class weights, ignored rows, label smoothing and probability targets."""
    arrays, params = _ce_arrays(np.random.default_rng(seed), setting)
    shifted = {**arrays, "logits": arrays["logits"] + shift}
    atol = 1e-14 * (1.0 + abs(shift)) * 16  # only the rounding of logits + shift differs
    compare_all(
        evaluate(env, backend, "cross_entropy", shifted, params, ALL, GRADS),
        evaluate(env, backend, "cross_entropy", arrays, params, ALL, GRADS),
        f"{backend} shift {shift}",
        1e-12,
        atol,
    )


def test_shift_invariance_can_fail(env):
    """z_loss penalises logsumexp(logits)^2, which a shift does change: the check above would see it."""
    arrays, _ = _ce_arrays(np.random.default_rng(0), {})
    plain = evaluate(env, "numpy", "cross_entropy", arrays, {"z_loss": 0.01}, ("mean",))[0]["mean"]
    shifted = {**arrays, "logits": arrays["logits"] + 3.0}
    moved = evaluate(env, "numpy", "cross_entropy", shifted, {"z_loss": 0.01}, ("mean",))[0]["mean"]
    assert abs(plain - moved) > 1e-3


# --------------------------------------------------------------------------- ignore_index == dropping the row

# loss -> settings: ignore_index (a negative sentinel or an in-range class) and the loss's own options
IGNORE_SETTINGS: dict[str, list[dict[str, Any]]] = {
    "cross_entropy": [
        {"ignore_index": -100},
        {"ignore_index": -1, "weight": True},
        {"ignore_index": 3, "label_smoothing": 0.15},
        {"ignore_index": -100, "weight": True, "label_smoothing": 0.3},
    ],
    "nll": [{"ignore_index": -100}, {"ignore_index": 2, "weight": True}],
    "focal": [
        {"ignore_index": -1, "gamma": 2.0},
        {"ignore_index": -100, "gamma": 0.5, "alpha": 0.25},
        {"ignore_index": 3, "gamma": 1.0, "alpha_per_class": True},
    ],
}
IGNORE_CASES = [(name, setting) for name, settings in IGNORE_SETTINGS.items() for setting in settings]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,setting", IGNORE_CASES, ids=[f"{n}-{_setting_id(s)}" for n, s in IGNORE_CASES])
@given(seed=SEEDS, data=st.data())
def test_ignored_rows_equal_dropped_rows(env, backend, name, setting, seed, data):
    """Every reduction of the batch with ignored rows equals that of the batch without them (with the
    same class weights): values, and the kept rows' gradients; ignored rows have gradient exactly 0."""
    rng = np.random.default_rng(seed)
    n, k, ignore_index = 5, 5, setting["ignore_index"]
    logits, target = _logits_case(rng, n, k)
    if 0 <= ignore_index < k:  # an in-range class index: exactly its samples are ignored
        target = np.where(target == ignore_index, (ignore_index + 1) % k, target)
    ignored = np.asarray(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=2, max_size=2), label="ignored")))
    target[ignored] = ignore_index
    kept = np.setdiff1d(np.arange(n), ignored)
    first = "log_probs" if name == "nll" else "logits"
    arrays = {
        first: logits - np.log(np.exp(logits).sum(-1, keepdims=True)) if name == "nll" else logits,
        "target": target,
    }
    if setting.get("weight"):
        arrays["weight"] = rng.uniform(0.2, 2.0, size=k)
    if setting.get("alpha_per_class"):
        arrays["alpha"] = rng.uniform(0.2, 2.0, size=k)
    params = {key: value for key, value in setting.items() if key in ("label_smoothing", "gamma", "alpha")}
    dropped = {key: (value[kept] if key in (first, "target") else value) for key, value in arrays.items()}
    values, grads = evaluate(env, backend, name, arrays, {**params, "ignore_index": ignore_index}, ALL, ("mean", "sum"))
    values_d, grads_d = evaluate(env, backend, name, dropped, params, ALL, ("mean", "sum"))
    what = f"{name} {backend} ignored rows {ignored.tolist()}"
    for reduction in ALL:
        if reduction == "none":
            close(values["none"][kept], values_d["none"], f"{what} none")
            assert np.all(values["none"][ignored] == 0.0), f"{what}: none {values['none']}"
        else:
            close(values[reduction], values_d[reduction], f"{what} {reduction}")
        if reduction in grads:
            g = grads[reduction][first]
            close(g[kept], grads_d[reduction][first], f"{what} {reduction} d/d{first}")
            assert np.all(g[ignored] == 0.0), f"{what} {reduction}: ignored rows have gradient {g[ignored]}"


# --------------------------------------------------------------------------- all-ones weights == no weights


def _weight_losses() -> set[str]:
    return {name for name, fn in CORE_LOSSES.items() if "weight" in inspect.signature(fn).parameters}


ONES_CASES = [(name, backend) for name, spec in SPECS.items() if spec.unit_weights for backend in BACKENDS]


def test_every_weight_parameter_is_covered():
    """A ``weight`` parameter is a unit weight of the spec, or the spec says why it is not one."""
    for name, spec in SPECS.items():
        has_weight = name in _weight_losses()
        assert ("weight" in spec.unit_weights or bool(spec.weight_is_not_a_weight)) == has_weight, name
        assert not ("weight" in spec.unit_weights and spec.weight_is_not_a_weight), name


@pytest.mark.parametrize("name,backend", ONES_CASES)
@given(data=st.data())
def test_all_ones_weights_equal_no_weights(env, name, backend, data):
    """On the spec's variants that pass weights; class-weighted losses also with an ignored class."""
    spec = SPECS[name]
    names = spec.unit_weights
    variants = [i for i, v in enumerate(spec.variants) if set(names) & set(cases.make_cases(spec, i, 0, 2)[0].arrays)]
    assert variants, f"{name}: no variant passes {names}"
    _, case, note = draw_case(spec, data, variants[:1] if backend == "jax" else variants)
    params = dict(case.params)
    target = case.arrays.get("target")
    if (
        "ignore_index" in inspect.signature(spec.core()).parameters
        and target is not None
        and np.issubdtype(target.dtype, np.integer)
        and "ignore_index" not in params
        and data.draw(st.booleans(), label="ignore a class")
    ):
        params["ignore_index"] = int(target.reshape(-1)[0])  # that class's samples are ignored
    ones = {key: (np.ones_like(value) if key in names else value) for key, value in case.arrays.items()}
    bare = {key: value for key, value in case.arrays.items() if key not in names}
    (values, grads) = evaluate(env, backend, name, ones, params, spec.reductions, GRADS)
    grads = {r: {k: g for k, g in gs.items() if k not in names} for r, gs in grads.items()}
    compare_all(
        (values, grads),
        evaluate(env, backend, name, bare, params, spec.reductions, GRADS),
        f"{note} {backend} {params}",
    )


# --------------------------------------------------------------------------- limits equal to the plain loss

LS0_SETTINGS = [{}, {"weight": True}, {"ignore_index": -100, "weight": True}, {"probabilities": True, "weight": True}]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("setting", LS0_SETTINGS, ids=_setting_id)
@given(seed=SEEDS)
def test_label_smoothing_zero_equals_plain_cross_entropy(env, backend, setting, seed):
    arrays, params = _ce_arrays(np.random.default_rng(seed), setting)
    compare_all(
        evaluate(env, backend, "cross_entropy", arrays, {**params, "label_smoothing": 0.0}, ALL, GRADS),
        evaluate(env, backend, "cross_entropy", arrays, params, ALL, GRADS),
        backend,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@given(seed=SEEDS)
def test_bce_with_logits_label_smoothing_zero_equals_plain(env, backend, seed):
    rng = np.random.default_rng(seed)
    arrays = {
        "logits": rng.normal(scale=3.0, size=(4, 3)),
        "target": rng.uniform(size=(4, 3)),
        "weight": rng.uniform(0.2, 2.0, size=(4, 3)),
        "pos_weight": rng.uniform(0.2, 2.0, size=3),
    }
    compare_all(
        evaluate(env, backend, "bce_with_logits", arrays, {"label_smoothing": 0.0}, ALL, GRADS),
        evaluate(env, backend, "bce_with_logits", arrays, {}, ALL, GRADS),
        backend,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ignore", [False, True], ids=["all-rows", "ignore_index"])
@pytest.mark.parametrize("per_class", [False, True], ids=["alpha=None", "alpha=weight"])
@given(seed=SEEDS)
def test_focal_gamma0_equals_cross_entropy(env, backend, ignore, per_class, seed):
    """gamma=0 with alpha=None is CE; with a per-class alpha it is CE with that class weight."""
    rng = np.random.default_rng(seed)
    logits, target = _logits_case(rng, 4, 5)
    params = {}
    if ignore:
        target[rng.integers(0, 4)] = -1
        params["ignore_index"] = -1
    focal_arrays, ce_arrays = {"logits": logits, "target": target}, {"logits": logits, "target": target}
    if per_class:
        focal_arrays["alpha"] = ce_arrays["weight"] = rng.uniform(0.2, 2.0, size=5)
    (values, grads) = evaluate(env, backend, "focal", focal_arrays, {**params, "gamma": 0.0}, ALL, GRADS)
    grads = {r: {"logits": g["logits"]} for r, g in grads.items()}
    (values_ce, grads_ce) = evaluate(env, backend, "cross_entropy", ce_arrays, params, ALL, GRADS)
    grads_ce = {r: {"logits": g["logits"]} for r, g in grads_ce.items()}
    compare_all((values, grads), (values_ce, grads_ce), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@given(seed=SEEDS, soft=st.booleans())
def test_sigmoid_focal_gamma0_without_alpha_equals_bce_with_logits(env, backend, seed, soft):
    """The docstring: ``alpha=None`` disables the balance (torchvision's alpha < 0)."""
    rng = np.random.default_rng(seed)
    target = rng.uniform(size=(4, 3)) if soft else rng.integers(0, 2, size=(4, 3)).astype(np.float64)
    arrays = {"logits": rng.normal(scale=3.0, size=(4, 3)), "target": target}
    compare_all(
        evaluate(env, backend, "sigmoid_focal", arrays, {"gamma": 0.0, "alpha": None}, ALL, GRADS),
        evaluate(env, backend, "bce_with_logits", arrays, {}, ALL, GRADS),
        backend,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@given(seed=SEEDS, targets=st.sampled_from(["int", "one-hot", "probabilities"]))
def test_poly1_epsilon0_equals_cross_entropy(env, backend, seed, targets):
    rng = np.random.default_rng(seed)
    logits, target = _logits_case(rng, 4, 5)
    if targets == "one-hot":
        target = np.eye(5)[target]
    elif targets == "probabilities":
        raw = rng.gamma(1.0, size=(4, 5))
        target = raw / raw.sum(-1, keepdims=True)
    arrays = {"logits": logits, "target": target}
    compare_all(
        evaluate(env, backend, "poly1", arrays, {"epsilon": 0.0}, ALL, GRADS),
        evaluate(env, backend, "cross_entropy", arrays, {}, ALL, GRADS),
        f"{backend} {targets}",
    )


# --------------------------------------------------------------------------- boxes: identical boxes


BOX_LOSSES = [name for name, spec in SPECS.items() if spec.family == "box"]  # IoU-type losses


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", BOX_LOSSES)
@given(seed=SEEDS, shape=st.sampled_from([(4,), (3, 2)]))
def test_identical_boxes_have_zero_loss(env, backend, name, seed, shape):
    """eps=0: IoU is exactly 1, the enclosing box is the box, the centres coincide, the aspect ratios match."""
    rng = np.random.default_rng(seed)
    corner = rng.uniform(-5.0, 5.0, size=(*shape, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(0.1, 4.0, size=(*shape, 2))], axis=-1)
    values, grads = evaluate(env, backend, name, {"pred": boxes, "target": boxes.copy()}, {"eps": 0.0}, ALL, ("sum",))
    for reduction in ALL:
        close(values[reduction], np.zeros_like(values[reduction]), f"{name} {backend} {reduction}", 0.0, 1e-15)
        for key, g in grads.get(reduction, {}).items():  # at the minimum: a finite gradient
            assert np.isfinite(g).all(), f"{name} {backend} {reduction} d/d{key} = {g}"


# --------------------------------------------------------------------------- cosine losses: positive scale


SCALE_CASES = [(name, backend) for name, spec in SPECS.items() if spec.scale_invariant for backend in BACKENDS]


def _normalized_variants(name: str) -> list[int]:
    spec = SPECS[name]
    return [i for i in range(len(spec.variants)) if cases.make_cases(spec, i, 0, 2)[0].params.get("normalize", True)]


@pytest.mark.parametrize("name,backend", SCALE_CASES)
@given(data=st.data())
def test_cosine_losses_ignore_positive_scale(env, name, backend, data):
    """Normalised embeddings (``normalize=True`` where it is an option): scaling each row by a positive
    factor leaves the loss unchanged and divides that row's gradient by the factor (degree-0 homogeneity)."""
    spec = SPECS[name]
    variants = _normalized_variants(name)
    if backend == "jax":  # one compilation: the variant with the most inputs
        variants = [max(variants, key=lambda i: (len(cases.make_cases(spec, i, 0, 2)[0].arrays), -i))]
    _, case, note = draw_case(spec, data, variants)
    factors = {}
    for key, value in case.arrays.items():
        if key in spec.scale_invariant:
            logs = data.draw(
                st.lists(
                    st.floats(np.log(0.25), np.log(8.0)), min_size=value[..., 0].size, max_size=value[..., 0].size
                ),
                label=f"log scale of {key}'s rows",
            )
            factors[key] = np.exp(np.asarray(logs)).reshape((*value.shape[:-1], 1))
    scaled = {key: (value * factors[key] if key in factors else value) for key, value in case.arrays.items()}
    values, grads = evaluate(env, backend, name, case.arrays, case.params, spec.reductions, GRADS)
    values_s, grads_s = evaluate(env, backend, name, scaled, case.params, spec.reductions, GRADS)
    for reduction in spec.reductions:
        what = f"{note} {backend} {reduction}"
        close(values_s[reduction], values[reduction], what, 1e-9, 1e-12)
        for key, g in grads.get(reduction, {}).items():
            if key in factors:
                # a zero row stays zero: there the cosine's eps, not the scale, sets the gradient
                nonzero = np.linalg.norm(case.arrays[key], axis=-1, keepdims=True) > 0
                close(
                    np.where(nonzero, grads_s[reduction][key], 0.0),
                    np.where(nonzero, g / factors[key], 0.0),
                    f"{what} d/d{key}",
                    1e-8,
                    1e-10,
                )
            else:
                close(grads_s[reduction][key], g, f"{what} d/d{key}", 1e-8, 1e-10)
