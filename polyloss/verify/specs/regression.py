"""Specs of the regression losses (see ``polyloss/core/regression.py``)."""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import away_from_kinks, normal, set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, f64
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the regression plots' axis (shared by the family's comparison plot)
ERROR_AXIS = "error (pred - target)"


def _error_plot(sweep: tuple[str, tuple[float, ...]] | None = None, span: tuple[float, float] = (-3.0, 3.0)) -> Plot:
    """The loss of one prediction against its error, the target at 0."""
    return Plot(ERROR_AXIS, lambda e: {"pred": f64([e]), "target": f64([0.0])}, span=span, sweep=sweep)


def _relative_plot(axis: str, sweep: tuple[str, tuple[float, ...]] | None = None) -> Plot:
    """The loss of one prediction against its error relative to a target of 1 (mape, msle)."""
    return Plot(axis, lambda e: {"pred": f64([1.0 + e]), "target": f64([1.0])}, span=(-0.9, 3.0), sweep=sweep)


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    edges.case(
        "mse", "exactly equal inputs", {"pred": f64([1.0, -2.0]), "target": f64([1.0, -2.0])}, Finite(0.0, grad="zero")
    )
    edges.case(
        "mae",
        "zero error: subgradient 0",
        {"pred": f64([1.0, -2.0]), "target": f64([1.0, -2.0])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "huber",
        "error exactly at delta",
        {"pred": f64([1.0]), "target": f64([0.0])},
        Finite(0.5),
        params={"delta": 1.0},
    )
    edges.case("smooth_l1", "zero error", {"pred": f64([3.0]), "target": f64([3.0])}, Finite(0.0, grad="zero"))
    edges.case(
        "log_cosh",
        "huge error (no cosh overflow)",
        {"pred": f64([1e4]), "target": f64([0.0])},
        Finite(1e4 - math.log(2.0)),
        dtypes=("float64", "float32"),
    )
    edges.case("quantile", "zero error", {"pred": f64([1.0]), "target": f64([1.0])}, Finite(0.0))
    edges.case(
        "poisson_nll",
        "log_input with a large log-rate",
        {"pred": f64([50.0]), "target": f64([2.0])},
        Finite(math.exp(50.0) - 100.0),
        dtypes=("float64",),
    )
    edges.case(
        "gaussian_nll",
        "zero variance is clamped to eps",
        {"pred": f64([1.0]), "target": f64([1.0]), "var": f64([0.0])},
        Finite(0.5 * math.log(1e-6)),
    )
    edges.case("asymmetric_mse", "zero error", {"pred": f64([1.0]), "target": f64([1.0])}, Finite(0.0, grad="zero"))
    edges.case(
        "mse",
        "every weight 0: mean 0 (sum(w) = 0)",
        {"pred": f64([1.0, 2.0]), "target": f64([0.0, 0.0]), "weight": f64([0.0, 0.0])},
        Finite(0.0),
    )
    edges.case("mse", "huge error", {"pred": f64([1e4]), "target": f64([-1e4])}, Finite(4e8))
    edges.case("huber", "huge error: linear branch", {"pred": f64([1e4]), "target": f64([0.0])}, Finite(1e4 - 0.5))
    edges.case(
        "smooth_l1",
        "beta=0 is L1",
        {"pred": f64([3.0, -1.0]), "target": f64([1.0, 1.0])},
        Finite(2.0),
        params={"beta": 0.0},
    )
    edges.case(
        "quantile",
        "q=0: under-prediction costs nothing, over-prediction all",
        {"pred": f64([2.0]), "target": f64([1.0])},
        Finite(1.0),
        params={"q": 0.0},
    )
    edges.case(
        "quantile",
        "q=1 over-prediction costs nothing",
        {"pred": f64([2.0]), "target": f64([1.0])},
        Finite(0.0),
        params={"q": 1.0},
    )
    edges.case(
        "poisson_nll",
        "rate 0 and count 0: 0",
        {"pred": f64([0.0]), "target": f64([0.0])},
        Finite(0.0),
        params={"log_input": False},
    )
    edges.case(
        "poisson_nll",
        "log-rate -100 (rate underflows)",
        {"pred": f64([-100.0]), "target": f64([3.0])},
        Finite(lambda a: math.exp(a["pred"][0]) - 3.0 * a["pred"][0]),
    )
    edges.case(
        "gaussian_nll",
        "variance 1e30",
        {"pred": f64([0.0]), "target": f64([1.0]), "var": f64([1e30])},
        Finite(lambda a: 0.5 * (math.log(a["var"][0]) + 1.0 / a["var"][0])),
    )
    edges.case(
        "log_cosh", "huge negative error", {"pred": f64([-1e4]), "target": f64([0.0])}, Finite(1e4 - math.log(2.0))
    )
    edges.case(
        "asymmetric_mse",
        "over- and under-estimate",
        {"pred": f64([2.0, 0.0]), "target": f64([1.0, 1.0])},
        Finite((2.0 * 1.0 + 1.0) / 2),
        params={"over_penalty": 2.0},
    )
    edges.case(
        "mape",
        "a target of 0: divided by epsilon, finite",
        {"pred": f64([0.5, 2.0]), "target": f64([0.0, 1.0])},
        Finite(lambda a: 0.5 * (100.0 * a["pred"][0] / 1e-7 + 100.0 * abs(a["pred"][1] - 1.0))),
        dtypes=("float64",),
    )
    edges.case(
        "mape", "zero error: subgradient 0", {"pred": f64([3.0]), "target": f64([3.0])}, Finite(0.0, grad="zero")
    )
    edges.case(
        "msle",
        "negative values clamped at epsilon: no NaN log",
        {"pred": f64([-5.0, 1.0]), "target": f64([2.0, -3.0])},
        Finite(lambda a: 0.5 * ((math.log1p(1e-7) - math.log1p(2.0)) ** 2 + (math.log1p(1.0) - math.log1p(1e-7)) ** 2)),
    )
    edges.case(
        "charbonnier",
        "huge error: linear, gradient 1/c",
        {"pred": f64([1e8]), "target": f64([0.0])},
        Finite(lambda a: math.sqrt(a["pred"][0] ** 2 + 1.0) - 1.0),
    )
    edges.case(
        "charbonnier",
        "tiny error: quadratic, not 0 by cancellation",
        {"pred": f64([1e-9]), "target": f64([0.0])},
        Finite(0.5e-18, rtol=1e-9),
        dtypes=("float64",),
    )
    edges.case(
        "cauchy",
        "huge error: logarithmic",
        {"pred": f64([1e8]), "target": f64([0.0])},
        Finite(lambda a: math.log1p(0.5 * a["pred"][0] ** 2)),
    )
    for loss in (
        "mse",
        "asymmetric_mse",
        "mae",
        "huber",
        "smooth_l1",
        "log_cosh",
        "quantile",
        "poisson_nll",
        "mape",
        "msle",
        "charbonnier",
        "cauchy",
    ):
        edges.empty_batch(loss, {"pred": np.zeros((0, 3)), "target": np.zeros((0, 3))}, (0, 3))
    edges.empty_batch(
        "gaussian_nll", {"pred": np.zeros((0, 3)), "target": np.zeros((0, 3)), "var": np.zeros((0, 3))}, (0, 3)
    )
    return edges


EDGES = _edge_cases()

_WEIGHTED = Layout(("pred", "target", "weight"))  # elementwise weights are per sample


def _weight_sum(case: Case, none: np.ndarray) -> float:
    weight = case.arrays.get("weight")
    return none.size if weight is None else float(weight.sum())


_WEIGHTED_MEAN = Mean("sum(weight) with weight, the number of elements otherwise", _weight_sum)

SHAPE = 3  # features per sample


def _pair_variant(draw, weighted: bool = False, **params: object) -> Variant:
    """A variant of ``(pred, target) = draw(rng, n)``, with elementwise weights in [0, 2) when ``weighted``."""

    def make(rng: np.random.Generator, n: int) -> Case:
        pred, target = draw(rng, n)
        arrays = {"pred": pred, "target": target}
        if weighted:
            arrays["weight"] = rng.uniform(0.0, 2.0, size=(n, SHAPE))
        return Case(arrays, dict(params))

    name = ",".join([f"{k}={v}" for k, v in params.items()] + (["weight"] if weighted else [])) or "default"
    return Variant(name, make)


def _pair(kinks: tuple[float, ...] = (0.0,), weighted: bool = False, **params: object) -> Variant:
    """Normal targets, predictions whose errors keep away from the loss's ``kinks``."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        target = normal(rng, (n, SHAPE))
        return target + away_from_kinks(rng, (n, SHAPE), kinks), target

    return _pair_variant(draw, weighted, **params)


def _torch_weighted(fn_name: str, *param_names: str) -> Reference:
    """F.<fn>(pred, target, **params); a weight maps to sum(w * l) / sum(w) for "mean"."""

    def ref(m, a, p, r):
        kwargs = {k: p[k] for k in param_names if k in p}
        fn = getattr(m.F, fn_name)
        if "weight" not in a:
            return fn(a["pred"], a["target"], reduction=r, **kwargs)
        elementwise = fn(a["pred"], a["target"], reduction="none", **kwargs) * a["weight"]
        if r == "mean":
            return elementwise.sum() / a["weight"].sum()
        return reduce_reference(m.torch, elementwise, r)

    return Reference(f"torch.nn.functional.{fn_name}", "torch", ref)


def _optax_elementwise(fn_name: str, *param_names: str) -> Reference:
    def ref(m, a, p, r):
        if "weight" in a:
            raise NotApplicable("optax has no weight argument")
        kwargs = {k: p[k] for k in param_names if k in p}
        return reduce_reference(m.jnp, getattr(m.optax.losses, fn_name)(a["pred"], a["target"], **kwargs), r)

    return Reference(f"optax.losses.{fn_name}", "jax", ref)


def _numpy_loop(name: str, elementwise) -> Reference:
    """A slow, obviously-correct loop over elements (value only)."""

    def ref(m, a, p, r):
        pred, target = m.np.asarray(a["pred"]), m.np.asarray(a["target"])
        weight = a.get("weight")
        out = m.np.zeros(pred.shape)
        for idx in m.np.ndindex(pred.shape):
            out[idx] = elementwise(float(pred[idx]), float(target[idx]), p)
        if weight is not None:
            out = out * weight
            if r == "mean":
                return out.sum() / weight.sum()
        return reduce_reference(m.np, out, r)

    return Reference(name, "numpy", ref, grads=False)


register(
    LossSpec(
        name="mse",
        variants=(_pair(), _pair(weighted=True)),
        references=(_torch_weighted("mse_loss"), _optax_elementwise("squared_error")),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(),
    )
)

register(
    LossSpec(
        name="mae",
        variants=(_pair(), _pair(weighted=True)),
        references=(_torch_weighted("l1_loss"),),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(),
    )
)

register(
    LossSpec(
        name="huber",
        variants=(_pair((0.0, 1.0)), _pair((0.0, 0.5), delta=0.5), _pair((0.0, 2.0), weighted=True, delta=2.0)),
        references=(_torch_weighted("huber_loss", "delta"), _optax_elementwise("huber_loss", "delta")),
        notes="F.huber_loss(weight=) divides by N for 'mean'; polyloss (like F.mse_loss(weight=)) by sum(weight).",
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("delta", (0.5, 1.0, 2.0))),
    )
)

register(
    LossSpec(
        name="smooth_l1",
        variants=(
            _pair((0.0, 1.0)),
            _pair((0.0, 0.3), beta=0.3),
            _pair((0.0,), beta=0.0),
            _pair((0.0, 1.0), weighted=True),
        ),
        references=(_torch_weighted("smooth_l1_loss", "beta"),),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("beta", (0.5, 1.0, 2.0))),
    )
)

register(
    LossSpec(
        name="log_cosh",
        variants=(_pair(), _pair(weighted=True)),
        references=(
            _optax_elementwise("log_cosh"),
            _numpy_loop("log(cosh(e)) loop", lambda y, t, p: math.log(math.cosh(y - t))),
        ),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(),
    )
)

register(
    LossSpec(
        name="quantile",
        variants=(_pair(), _pair(q=0.1), _pair(weighted=True, q=0.9)),
        references=(
            _numpy_loop(
                "pinball loop",
                lambda y, t, p: max(p.get("q", 0.5) * (t - y), (p.get("q", 0.5) - 1.0) * (t - y)),
            ),
        ),
        second_order=False,  # piecewise linear: the second derivative is 0, finite differences add nothing
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("q", (0.2, 0.5, 0.8))),
    )
)


def _poisson(log_input: bool, full: bool) -> Variant:
    def make(rng: np.random.Generator, n: int) -> Case:
        target = rng.poisson(2.0, size=(n, SHAPE)).astype(np.float64)
        pred = normal(rng, (n, SHAPE), 0.5) if log_input else rng.uniform(0.2, 4.0, size=(n, SHAPE))
        return Case({"pred": pred, "target": target}, {"log_input": log_input, "full": full})

    variant = Variant(f"log_input={log_input},full={full}", make)
    # torch's Stirling term is added where target > 1 only: the loss jumps at target = 1 (by
    # 1/2 log(2 pi) - 1), and the counts are drawn at 1
    return variant.excluding(target=_STIRLING_JUMP) if full else variant


_STIRLING_JUMP = (
    "with full=True the Stirling term (torch's convention) is added only where target > 1, so the loss is "
    "discontinuous at target = 1 and the cases draw integer counts; checked with full=False"
)


def _torch_poisson(m, a, p, r):
    return m.F.poisson_nll_loss(a["pred"], a["target"], log_input=p["log_input"], full=p["full"], reduction=r)


register(
    LossSpec(
        name="poisson_nll",
        variants=tuple(_poisson(li, full) for li in (True, False) for full in (False, True)),
        references=(Reference("torch.nn.functional.poisson_nll_loss", "torch", _torch_poisson),),
        layout=Layout(("pred", "target")),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase(
                    "poisson_nll rate 0",
                    "log_input=False,full=False",
                    (set_to("pred", 0, 0.0),),
                    # log(pred + 1e-8) at pred = 0: d/dpred = 1 - target / 1e-8 (measured 1.40e8)
                    float16_gradient_beyond_range={"pred": 1e9},
                ),
            ),
        ),
        plot=Plot("log-rate (pred), count 2", lambda x: {"pred": f64([x]), "target": f64([2.0])}, span=(-2.0, 3.0)),
    )
)


def _gaussian(var_shape: str, full: bool) -> Variant:
    def make(rng: np.random.Generator, n: int) -> Case:
        target = normal(rng, (n, SHAPE))
        shape = {"same": (n, SHAPE), "column": (n, 1), "per-sample": (n,)}[var_shape]
        var = rng.uniform(0.1, 2.0, size=shape)
        return Case({"pred": target + normal(rng, (n, SHAPE)), "target": target, "var": var}, {"full": full})

    return Variant(f"var={var_shape},full={full}", make)


def _torch_gaussian(m, a, p, r):
    return m.F.gaussian_nll_loss(a["pred"], a["target"], a["var"], full=p["full"], reduction=r)


register(
    LossSpec(
        name="gaussian_nll",
        variants=(_gaussian("same", False), _gaussian("column", True), _gaussian("per-sample", False)),
        references=(Reference("torch.nn.functional.gaussian_nll_loss", "torch", _torch_gaussian),),
        layout=Layout(("pred", "target", "var")),  # var: (N, D), (N, 1) or (N,)
        half_precision=HalfPrecision(
            variants=("var=column,full=True",),
            zero_cases=(
                ZeroCase(
                    "gaussian_nll variance 0",
                    "var=per-sample,full=False",
                    (set_to("var", 0, 0.0),),
                    # variance clamped at eps = 1e-6 (value only): (pred - target) / 1e-6 and (pred - target)^2 / 1e-12
                    # (measured 9.05e5, 9.05e5, 8.20e11)
                    float16_gradient_beyond_range={"pred": 1e7, "target": 1e7, "var": 1e13},
                ),
            ),
        ),
        plot=Plot(
            "variance (var), error 1",
            lambda v: {"pred": f64([1.0]), "target": f64([0.0]), "var": f64([v])},
            span=(0.05, 4.0),
        ),
    )
)


def _study_hub_asymmetric_mse(m, a, p, r):
    """study-hub's AsymmetricMSELoss.forward (its loss.mean() becomes sum / identity; a weight, as mse's, gives
    sum(w * l) / sum(w) for "mean")."""
    error = a["pred"] - a["target"]
    over_penalty = p.get("over_penalty", 2.0)
    loss = m.torch.where(error > 0, over_penalty * error**2, error**2)
    if "weight" in a:
        loss = loss * a["weight"]
        if r == "mean":
            return loss.sum() / a["weight"].sum()
    return reduce_reference(m.torch, loss, r)


register(
    LossSpec(
        name="asymmetric_mse",
        variants=(_pair(), _pair(over_penalty=0.5), _pair(over_penalty=1.0), _pair(weighted=True, over_penalty=3.0)),
        references=(
            Reference("study-hub AsymmetricMSELoss (re-typed)", "torch", _study_hub_asymmetric_mse),
            _numpy_loop(
                "asymmetric squared error loop",
                lambda y, t, p: (p.get("over_penalty", 2.0) if y > t else 1.0) * (y - t) ** 2,
            ),
        ),
        notes="C1: the second derivative jumps at zero error; the cases keep |error| >= 0.05.",
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("over_penalty", (1.0, 2.0, 4.0))),
    )
)


# -- keras and kornia's robust and relative losses ------------------------------------


def _keras_mape(m, a, p, r):
    """keras 3 ``mean_absolute_percentage_error`` (keras/src/losses/losses.py), re-typed in torch: the
    last axis averaged first, then the batch (the same mean for inputs of one shape); "none" and "sum"
    per element."""
    torch = m.torch
    y_pred, y_true = a["pred"], a["target"]
    epsilon = p.get("epsilon", 1e-7)
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=epsilon))
    if "weight" in a:
        raise NotApplicable("keras weighs whole samples (sample_weight), not elements")
    if r == "mean":
        return (100.0 * torch.mean(diff, dim=-1)).mean()
    return reduce_reference(torch, 100.0 * diff, r)


def _keras_msle(m, a, p, r):
    """keras 3 ``mean_squared_logarithmic_error``, re-typed in torch (both clamped at epsilon)."""
    torch = m.torch
    epsilon = p.get("epsilon", 1e-7)
    if "weight" in a:
        raise NotApplicable("keras weighs whole samples (sample_weight), not elements")
    y_pred = torch.clamp(a["pred"], min=epsilon)
    y_true = torch.clamp(a["target"], min=epsilon)
    first_log = torch.log(y_pred + 1.0)
    second_log = torch.log(y_true + 1.0)
    squared = torch.square(first_log - second_log)
    if r == "mean":
        return torch.mean(squared, dim=-1).mean()
    return reduce_reference(torch, squared, r)


def _kornia(name: str):
    """kornia's ``charbonnier_loss`` / ``cauchy_loss`` (kornia/losses), re-typed in torch, at scale 1;
    a scale c enters as the errors divided by c."""

    def ref(m, a, p, r):
        torch = m.torch
        c = p.get("scale", 1.0)
        img1, img2 = a["pred"] / c, a["target"] / c
        if name == "charbonnier":
            loss = ((img1 - img2) ** 2 + 1.0).sqrt() - 1.0
        else:
            loss = (0.5 * (img1 - img2) ** 2 + 1.0).log()
        if "weight" in a:
            loss = loss * a["weight"]
            if r == "mean":
                return loss.sum() / a["weight"].sum()
        return reduce_reference(torch, loss, r)

    return Reference(f"kornia.losses.{name}_loss (re-typed)", "torch", ref)


def _positive_pair(weighted: bool = False, **params: object) -> Variant:
    """Targets away from 0 and from the epsilon floor, predictions within a factor of them."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        target = rng.uniform(0.5, 5.0, size=(n, SHAPE)) * rng.choice([-1.0, 1.0], size=(n, SHAPE))
        ratio = 1.0 + away_from_kinks(rng, (n, SHAPE), (0.0,), high=0.7)  # 0.3..0.95 or 1.05..1.7
        return target * ratio, target

    return _pair_variant(draw, weighted, **params)


def _nonnegative_pair(weighted: bool = False, **params: object) -> Variant:
    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(0.01, 5.0, size=(n, SHAPE)), rng.uniform(0.01, 5.0, size=(n, SHAPE))

    return _pair_variant(draw, weighted, **params)


register(
    LossSpec(
        name="mape",
        variants=(_positive_pair(), _positive_pair(weighted=True), _positive_pair(epsilon=1.0)),
        references=(
            Reference("keras.losses.mean_absolute_percentage_error (re-typed)", "torch", _keras_mape),
            _numpy_loop(
                "percentage error loop",
                lambda y, t, p: 100.0 * abs(t - y) / max(abs(t), p.get("epsilon", 1e-7)),
            ),
        ),
        second_order=False,  # |e| / |t|: piecewise linear in pred
        notes="Targets keep |target| >= 0.5 and errors away from 0 (kinks of |.|); keras averages the last axis "
        "first, the same mean for inputs of one shape.",
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_relative_plot("relative error (pred / target - 1)"),
    )
)

register(
    LossSpec(
        name="msle",
        variants=(_nonnegative_pair(), _nonnegative_pair(weighted=True)),
        references=(
            Reference("keras.losses.mean_squared_logarithmic_error (re-typed)", "torch", _keras_msle),
            _numpy_loop(
                "squared log-error loop",
                lambda y, t, p: (math.log1p(max(y, 1e-7)) - math.log1p(max(t, 1e-7))) ** 2,
            ),
        ),
        notes="Inputs drawn above the epsilon floor (where the clamp's derivative jumps).",
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_relative_plot("relative error (pred / target - 1)"),
    )
)

register(
    LossSpec(
        name="charbonnier",
        variants=(_pair(), _pair(scale=0.1), _pair(weighted=True, scale=2.0)),
        references=(
            _kornia("charbonnier"),
            _numpy_loop(
                "Charbonnier loop",
                lambda y, t, p: math.sqrt(((y - t) / p.get("scale", 1.0)) ** 2 + 1.0) - 1.0,
            ),
        ),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("scale", (0.5, 1.0, 2.0))),
    )
)

register(
    LossSpec(
        name="cauchy",
        variants=(_pair(), _pair(scale=0.5), _pair(weighted=True, scale=3.0)),
        references=(
            _kornia("cauchy"),
            _numpy_loop("Cauchy loop", lambda y, t, p: math.log(0.5 * ((y - t) / p.get("scale", 1.0)) ** 2 + 1.0)),
        ),
        layout=_WEIGHTED,
        mean=_WEIGHTED_MEAN,
        unit_weights=("weight",),
        plot=_error_plot(("scale", (0.5, 1.0, 2.0))),
    )
)
