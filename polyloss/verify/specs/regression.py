"""Specs of the regression losses (see ``polyloss/core/regression.py``)."""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import away_from_kinks, normal, set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, f64
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Mean, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    """Singular and extreme inputs of this family's losses, each with its asserted outcome (read at each
    registration as ``edge_cases=EDGES.of(name)``; run by ``polyloss.verify.edge_cases``)."""
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
    for loss in ("mse", "asymmetric_mse", "mae", "huber", "smooth_l1", "log_cosh", "quantile", "poisson_nll"):
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


def _pair(kinks: tuple[float, ...] = (0.0,), weighted: bool = False, **params: object) -> Variant:
    def make(rng: np.random.Generator, n: int) -> Case:
        target = normal(rng, (n, SHAPE))
        arrays = {"pred": target + away_from_kinks(rng, (n, SHAPE), kinks), "target": target}
        if weighted:
            arrays["weight"] = rng.uniform(0.0, 2.0, size=(n, SHAPE))
        return Case(arrays, dict(params))

    name = ",".join([f"{k}={v}" for k, v in params.items()] + (["weight"] if weighted else [])) or "default"
    return Variant(name, make)


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
        edge_cases=EDGES.of("mse"),
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
        edge_cases=EDGES.of("mae"),
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
        edge_cases=EDGES.of("huber"),
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
        edge_cases=EDGES.of("smooth_l1"),
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
        edge_cases=EDGES.of("log_cosh"),
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
        edge_cases=EDGES.of("quantile"),
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
        edge_cases=EDGES.of("poisson_nll"),
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
        edge_cases=EDGES.of("gaussian_nll"),
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
        edge_cases=EDGES.of("asymmetric_mse"),
    )
)
