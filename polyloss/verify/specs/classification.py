"""Specs of the classification losses (see ``polyloss/core/classification.py``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import away_from_kinks, binary, labels, log_softmax, normal, probabilities, set_to
from polyloss.verify.specs.edges import (
    INF,
    SATURATED,
    EdgeCorpus,
    Finite,
    Infinite,
    Raises,
    ce,
    f64,
    fmean,
    i64,
    softplus,
)
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the softmax losses' axis (shared by the family's comparison plot: cross-entropy, focal, poly-1)
LOGIT_AXIS = "logit of the true class (the other at 0)"
#: the range of the softmax losses' plots (one for all, so that the comparison draws them alike)
LOGIT_SPAN = (-4.0, 6.0)
#: the binary (one-element) losses' axis
MARGIN_AXIS = "margin t * score (target t = 1)"


def _logit_plot(
    sweep: tuple[str, tuple[Any, ...]] | None = None,
    span: tuple[float, float] = LOGIT_SPAN,
    params: dict[str, Any] | None = None,
) -> Plot:
    """The loss of one sample of two classes against the true class's logit, the other's at 0."""
    return Plot(
        LOGIT_AXIS,
        lambda x: {"logits": f64([[x, 0.0]]), "target": i64([0])},
        span=span,
        sweep=sweep,
        params=dict(params or {}),
    )


def _binary_plot(
    axis: str,
    first: str,
    target: float,
    sweep: tuple[str, tuple[Any, ...]] | None = None,
    span: tuple[float, float] = (-4.0, 4.0),
    params: dict[str, Any] | None = None,
) -> Plot:
    """The loss of one element (``first``: its score, logit or probability, at x) with a fixed ``target``."""
    return Plot(
        axis,
        lambda x: {first: f64([x]), "target": f64([target])},
        span=span,
        sweep=sweep,
        params=dict(params or {}),
    )


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    edges.case(
        "cross_entropy",
        "all rows ignored, -inf logits on them",
        {"logits": f64([[-INF, -INF, 0.0], [-INF, 1.0, -INF]]), "target": i64([-100, -100])},
        Finite(0.0, grad="zero"),
        params={"ignore_index": -100},
    )
    edges.case(
        "cross_entropy",
        "one row ignored with -inf logits, one kept",
        {"logits": f64([[-INF, -INF, -INF], [0.5, -1.0, 2.0]]), "target": i64([-100, 2])},
        Finite(lambda a: ce(a["logits"][1:], [2])[0]),
        params={"ignore_index": -100},
    )
    edges.case(
        "cross_entropy",
        "-inf on non-target classes (masked vocabulary)",
        {"logits": f64([[0.0, -INF, 1.0], [-INF, 2.0, -INF]]), "target": i64([2, 1])},
        Finite(lambda a: fmean([math.log(1 + math.exp(-1.0)), 0.0])),
    )
    edges.case(
        "cross_entropy", "-inf at the target class", {"logits": f64([[0.0, -INF, 1.0]]), "target": i64([1])}, Infinite()
    )
    for label, big in SATURATED.items():
        edges.case(
            "cross_entropy",
            f"logits at {label}, right and wrong class",
            {"logits": f64([[big, -big], [big, -big]]), "target": i64([0, 1])},
            Finite(lambda a: fmean(ce(a["logits"], [0, 1])), rtol=1e-12),
            dtypes=("float64", "float32", "float16", "bfloat16"),
        )
    edges.case(
        "cross_entropy",
        "large shared offset (1e4) on every logit",
        {"logits": f64([[1e4 + 0.5, 1e4 - 0.25, 1e4 + 1.25], [1e4 + 2.0, 1e4 - 1.0, 1e4]]), "target": i64([2, 0])},
        Finite(lambda a: fmean(ce(a["logits"], [2, 0]))),
        dtypes=("float64", "float32", "float16", "bfloat16"),
    )
    edges.case(
        "cross_entropy",
        "label smoothing with a -inf (masked) class: smoothing mass on it",
        {"logits": f64([[0.5, -INF, 1.0]]), "target": i64([0])},
        Infinite(),
        params={"label_smoothing": 0.1},
    )
    edges.case(
        "cross_entropy",
        "label smoothing, saturated logits",
        {"logits": f64([[100.0, -100.0]]), "target": i64([0])},
        Finite(lambda a: 0.9 * ce(a["logits"], [0])[0] + 0.05 * (ce(a["logits"], [0])[0] + ce(a["logits"], [1])[0])),
        params={"label_smoothing": 0.1},
    )
    edges.case(
        "cross_entropy",
        "class index out of range",
        {"logits": f64([[0.0, 1.0]]), "target": i64([2])},
        Raises(ValueError, r"class index 2, outside \[0, 2\)"),
    )
    edges.case(
        "cross_entropy",
        "-1 is not silently the last class",
        {"logits": f64([[0.0, 1.0]]), "target": i64([-1])},
        Raises(ValueError, r"class index -1"),
    )

    edges.case(
        "nll",
        "all rows ignored",
        {"log_probs": f64([[-INF, 0.0], [0.0, -INF]]), "target": i64([-1, -1])},
        Finite(0.0, grad="zero"),
        params={"ignore_index": -1},
    )
    edges.case("nll", "-inf at the target", {"log_probs": f64([[-INF, 0.0]]), "target": i64([0])}, Infinite())

    for gamma in (0.0, 0.5, 1.0, 2.0):
        edges.case(
            "focal",
            f"gamma={gamma}, saturated right class: loss 0",
            {"logits": f64([[100.0, -100.0], [-1e4, 1e4]]), "target": i64([0, 1])},
            Finite(0.0),
            params={"gamma": gamma},
            dtypes=("float64", "float32", "float16", "bfloat16"),
        )
        edges.case(
            "focal",
            f"gamma={gamma}, saturated wrong class",
            {"logits": f64([[100.0, -100.0]]), "target": i64([1])},
            Finite(lambda a: 200.0),
            params={"gamma": gamma},
        )
    edges.case(
        "focal",
        "probability targets: a zero-mass class with a -inf logit adds 0",
        {"logits": f64([[1.0, 0.0, -INF]]), "target": f64([[0.5, 0.5, 0.0]])},
        Finite(),
    )
    edges.case(
        "focal",
        "label smoothing with a saturated right class: the smoothed mass pays on the others",
        {"logits": f64([[1e4, -1e4]]), "target": i64([0])},
        Finite(0.1 / 2 * 2e4),
        params={"gamma": 2.0, "label_smoothing": 0.1},
        dtypes=("float64",),
    )
    edges.case(
        "focal",
        "all rows ignored with -inf logits",
        {"logits": f64([[-INF, -INF]]), "target": i64([-1])},
        Finite(0.0, grad="zero"),
        params={"ignore_index": -1},
    )

    for label, big in SATURATED.items():
        edges.case(
            "bce_with_logits",
            f"logits at {label}",
            {"logits": f64([big, -big, big, -big]), "target": f64([1.0, 0.0, 0.0, 1.0])},
            Finite(lambda a: (2 * softplus(-a["logits"][0]) + 2 * softplus(a["logits"][0])) / 4),
            dtypes=("float64", "float32", "float16", "bfloat16"),
        )
    edges.case(
        "bce_with_logits",
        "logits at +-inf with their right targets",
        {"logits": f64([INF, -INF]), "target": f64([1.0, 0.0])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "bce_with_logits",
        "logit at +inf, target 0",
        {"logits": f64([INF]), "target": f64([0.0])},
        Infinite(infinite_slope=("target",)),  # d/dt = softplus(-x) - softplus(x) = -inf
    )
    edges.case(
        "bce",
        "probabilities exactly 0 and 1 (log clamped at -100)",
        {"probs": f64([0.0, 1.0, 0.0, 1.0]), "target": f64([1.0, 0.0, 0.0, 1.0])},
        Finite(50.0),
    )
    edges.case(
        "bce",
        "probability outside [0, 1]",
        {"probs": f64([1.5]), "target": f64([1.0])},
        Raises(ValueError, r"probs must contain probabilities in \[0, 1\], got a value of 1.5"),
    )
    for gamma in (0.0, 0.5, 1.0, 2.0):
        edges.case(
            "sigmoid_focal",
            f"gamma={gamma} at saturated logits (torchvision: NaN gradient at 0.5)",
            {"logits": f64([30.0, -30.0, 1e4]), "target": f64([1.0, 0.0, 1.0])},
            Finite(),
            params={"gamma": gamma},
        )
    edges.case("poly1", "saturated right class", {"logits": f64([[1e4, -1e4]]), "target": i64([0])}, Finite(0.0))
    edges.case(
        "hinge", "large margins", {"scores": f64([1e4, -1e4]), "target": f64([1.0, -1.0])}, Finite(0.0, grad="zero")
    )
    edges.case(
        "squared_hinge",
        "large violations",
        {"scores": f64([-1e4]), "target": f64([1.0])},
        Finite((1 + 1e4) ** 2),
        dtypes=("float64",),
    )
    # linear_cross_entropy: hidden (N, H), weight (V, H); logits = hidden @ weight.T
    lce_weight = f64([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5]])
    edges.case(
        "linear_cross_entropy",
        "all tokens ignored",
        {"hidden": f64([[1.0, 2.0], [-3.0, 0.5]]), "weight": lce_weight, "target": i64([-100, -100])},
        Finite(0.0, grad="zero"),
        params={"ignore_index": -100},
    )
    edges.case(
        "linear_cross_entropy",
        "a single token",
        {"hidden": f64([[1.0, 2.0]]), "weight": lce_weight, "target": i64([2])},
        Finite(lambda a: ce([[1.0, 2.0, 0.0]], [2])[0]),
    )
    big_weight = f64([[1.0], [-1.0], [0.0]])
    edges.case(
        "linear_cross_entropy",
        "logits at +-1e4, target at -1e4",
        {"hidden": f64([[1e4]]), "weight": big_weight, "target": i64([1])},
        Finite(2e4),
    )
    edges.case(
        "linear_cross_entropy",
        "logits at +-1e4 soft-capped at 30",
        {"hidden": f64([[1e4]]), "weight": big_weight, "target": i64([0])},
        Finite(lambda a: math.log1p(math.exp(-30.0) + math.exp(-60.0))),
        params={"softcap": 30.0},
    )
    NO_ROWS, NO_LABELS = np.zeros((0, 5)), np.zeros(0, dtype=np.int64)
    for loss, first in (("cross_entropy", "logits"), ("nll", "log_probs"), ("focal", "logits"), ("poly1", "logits")):
        edges.empty_batch(loss, {first: NO_ROWS, "target": NO_LABELS}, (0,))
    for loss, first in (
        ("bce", "probs"),
        ("bce_with_logits", "logits"),
        ("sigmoid_focal", "logits"),
        ("hinge", "scores"),
        ("squared_hinge", "scores"),
    ):
        edges.empty_batch(loss, {first: np.zeros((0, 3)), "target": np.zeros((0, 3))}, (0, 3))
    edges.empty_batch(
        "linear_cross_entropy", {"hidden": np.zeros((0, 2)), "weight": lce_weight, "target": NO_LABELS}, (0,)
    )
    # the mask (optax's `where`): masked samples hold padding (NaN logits, the label -100) and count nowhere
    padded_logits = f64([[2.0, -1.0, 0.5], [math.nan, math.nan, math.nan], [0.3, 0.2, -0.4]])
    keep = np.array([True, False, True])
    for name in ("cross_entropy", "poly1"):
        edges.case(
            name,
            "masked samples holding NaN logits and the label -100: as if absent",
            {"logits": padded_logits, "target": i64([0, -100, 2]), "mask": keep},
            Finite(functools.partial(_without_masked, name)),
        )
        edges.case(
            name,
            "every sample masked: 0",
            {"logits": f64([[2.0, -1.0], [0.5, 0.1]]), "target": i64([0, 1]), "mask": np.zeros(2, dtype=bool)},
            Finite(0.0, grad="zero"),
        )
        edges.case(
            name,
            "a mask of the wrong shape",
            {"logits": f64([[2.0, -1.0], [0.5, 0.1]]), "target": i64([0, 1]), "mask": np.ones((2, 2), dtype=bool)},
            Raises(ValueError, r"mask must have shape \(2,\), got \(2, 2\)"),
        )
        edges.case(
            name,
            "a floating mask",
            {"logits": f64([[2.0, -1.0], [0.5, 0.1]]), "target": i64([0, 1]), "mask": f64([1.0, 0.0])},
            Raises(TypeError, r"mask must be bool \(or 0/1 integers\), got dtype"),
        )
    return edges


def _without_masked(name: str, arrays: dict[str, np.ndarray]) -> float:
    """The mean loss of the kept samples alone, from the plain formulas (cross-entropy, poly-1)."""
    kept = [i for i, k in enumerate(arrays["mask"]) if k]
    logits = [arrays["logits"][i] for i in kept]
    labels = [int(arrays["target"][i]) for i in kept]
    losses = ce(logits, labels)
    if name == "poly1":  # + epsilon (1 - p_y), epsilon 1
        losses = [loss + 1.0 - math.exp(-loss) for loss in losses]
    return fmean(losses)


EDGES = _edge_cases()


def _bce_with_logits_layout(case: Case) -> Layout:
    pos_weight = case.arrays.get("pos_weight")
    if pos_weight is not None and pos_weight.ndim < case.arrays["logits"].ndim:  # (C,): per class
        return Layout(("logits", "target", "weight"), shared=("pos_weight",))
    return Layout(("logits", "target", "weight", "pos_weight"))


def _class_weight_sum(weight_name: str) -> Callable[[Case, np.ndarray], float]:
    """The sum of the class weight of each kept sample's class (the number of kept samples without
    weights); the number of samples with probability targets."""

    def normaliser(case: Case, none: np.ndarray) -> float:
        target = case.arrays["target"]
        if not np.issubdtype(target.dtype, np.integer):
            return _kept_count(case, none)
        ignore = case.params.get("ignore_index")
        kept = np.ones(target.shape, bool) if ignore is None else target != ignore
        kept = kept & case.arrays.get("mask", True)
        weight = case.arrays.get(weight_name)
        if weight is None:
            return float(kept.sum())
        return float(weight[target[kept]].sum())

    return normaliser


def _saturated_target_class(arrays: dict[str, np.ndarray]) -> None:
    """The target class at +100: 1 - p underflows to 0 in float32, (1 - p)^gamma at its kink."""
    logits, target = arrays["logits"], arrays["target"]
    logits[np.arange(logits.shape[0]), np.where(target >= 0, target, 0)] = 100.0


def _saturated_correct(arrays: dict[str, np.ndarray]) -> None:
    arrays["logits"][...] = np.where(arrays["target"] > 0.5, 30.0, -30.0)


K = 5  # classes


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


def _int_targets(rng, n, *, weight=False, ignore=None, shape=None, axis=-1):
    shape = shape or (n, K)
    classes = shape[axis]
    label_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    arrays = {"logits": normal(rng, shape, 2.0), "target": labels(rng, label_shape, classes)}
    if ignore is not None:
        arrays["target"] = np.where(rng.random(label_shape) < 0.3, ignore, arrays["target"])
    if weight:
        arrays["weight"] = rng.uniform(0.2, 2.0, size=(classes,))
    return arrays


def _soft_targets(rng, n, *, weight=False):
    arrays = {"logits": normal(rng, (n, K), 2.0), "target": probabilities(rng, (n, K))}
    if weight:
        arrays["weight"] = rng.uniform(0.2, 2.0, size=(K,))
    return arrays


def _masked(make):
    """``make``'s arrays plus a ``mask`` (optax's ``where``) of the per-sample shape, about a third
    of the samples False."""

    def arrays(rng, n, **kwargs):
        made = make(rng, n, **kwargs)
        made["mask"] = rng.random(made["logits"].shape[:-1]) > 0.35
        return made

    return arrays


def _kept_count(case: Case, none: np.ndarray) -> float:
    """The number of samples ``mask`` keeps (all of them without one)."""
    mask = case.arrays.get("mask")
    return float(none.size if mask is None else mask.sum())


def _optax_where(m, a, out, r):
    """optax's per-sample losses (0 at masked samples) reduced as polyloss: "mean" over the kept ones."""
    mask = a.get("mask")
    if mask is None or r != "mean":
        return reduce_reference(m.jnp, out, r)
    return m.jnp.sum(out) / m.jnp.maximum(m.jnp.sum(mask), 1)


def _where_of(m, a):
    """optax's ``where``: the per-sample mask broadcast over the classes (last axis), or None."""
    mask = a.get("mask")
    return None if mask is None else m.jnp.broadcast_to(mask[..., None], a["logits"].shape)


# -- cross_entropy ----------------------------------------------------------------


def _torch_cross_entropy(m, a, p, r):
    if p.get("z_loss", 0.0):
        raise NotApplicable("torch has no z_loss")
    axis = p.get("axis", -1)
    logits, target = a["logits"], a["target"]
    integer = not m.torch.is_floating_point(target)
    ignore = p.get("ignore_index")
    if "mask" in a:  # torch has no mask: a masked sample is an ignored one
        if not integer:
            raise NotApplicable("torch has no ignore_index for probability targets")
        ignore = -100 if ignore is None else ignore
        target = m.torch.where(a["mask"], target, ignore)
    if integer and ignore is not None and bool((target == ignore).all()):
        raise NotApplicable("torch returns NaN for an all-ignored batch; polyloss returns 0 by design")
    logits = m.torch.movedim(logits, axis, 1)
    if not integer:
        target = m.torch.movedim(target, axis, 1)
    return m.F.cross_entropy(
        logits,
        target,
        weight=a.get("weight"),
        ignore_index=-100 if ignore is None else ignore,
        label_smoothing=p.get("label_smoothing", 0.0),
        reduction=r,
    )


def _optax_cross_entropy(m, a, p, r):
    if a.get("weight") is not None or p.get("label_smoothing") or p.get("z_loss") or p.get("ignore_index") is not None:
        raise NotApplicable("optax has no weight, label_smoothing, z_loss or ignore_index")
    axis = p.get("axis", -1)
    if a.get("mask") is not None and axis not in (-1, a["logits"].ndim - 1):
        raise NotApplicable("the masked variants keep the classes last")
    if m.jnp.issubdtype(a["target"].dtype, m.jnp.integer):
        out = m.optax.losses.softmax_cross_entropy_with_integer_labels(
            a["logits"], a["target"], axis=axis, where=a.get("mask")
        )
    else:
        # optax's `where` leaves masked rows a NaN target gradient (0 * log 0 in its backward pass):
        # its per-sample losses, the masked ones set to 0, stand in for it
        out = m.optax.losses.softmax_cross_entropy(a["logits"], a["target"], axis=axis)
        out = out if a.get("mask") is None else m.jnp.where(a["mask"], out, 0.0)
    return _optax_where(m, a, out, r)


def _numpy_z_loss(m, a, p, r):
    """Cross-entropy plus PaLM's z-loss, one sample at a time (no anchor has z-loss)."""
    np_ = m.np
    logits, target = np_.asarray(a["logits"]), np_.asarray(a["target"])
    plain = (
        a.get("weight") is None and not p.get("label_smoothing") and p.get("ignore_index") is None and "mask" not in a
    )
    if not (plain and logits.ndim == 2 and np_.issubdtype(target.dtype, np_.integer)):
        raise NotApplicable("the loop covers unweighted (N, C) logits with class indices")
    out = np_.zeros(len(target))
    for i in range(len(target)):
        log_z = np_.log(np_.sum(np_.exp(logits[i] - logits[i].max()))) + logits[i].max()
        out[i] = log_z - logits[i, target[i]] + p.get("z_loss", 0.0) * log_z**2
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="cross_entropy",
        variants=(
            _variant("int", _int_targets),
            _variant(
                "int,weight,label_smoothing=0.1", lambda rng, n: _int_targets(rng, n, weight=True), label_smoothing=0.1
            ),
            _variant("ignore_index=-100", lambda rng, n: _int_targets(rng, n, ignore=-100), ignore_index=-100),
            _variant(
                "ignore_index=-100,weight",
                lambda rng, n: _int_targets(rng, n, weight=True, ignore=-100),
                ignore_index=-100,
            ),
            _variant(
                "ignore_index=-1,label_smoothing=0.2",
                lambda rng, n: _int_targets(rng, n, ignore=-1),
                ignore_index=-1,
                label_smoothing=0.2,
            ),
            _variant("probabilities", _soft_targets),
            _variant(
                "probabilities,weight,label_smoothing=0.2",
                lambda rng, n: _soft_targets(rng, n, weight=True),
                label_smoothing=0.2,
            ),
            _variant("axis=1,(N,C,L)", lambda rng, n: _int_targets(rng, n, shape=(n, 4, 3), axis=1), axis=1),
            _variant("z_loss=0.01", _int_targets, z_loss=0.01),
            _variant("int,mask", _masked(_int_targets)),
            _variant("probabilities,mask", _masked(_soft_targets)),
            _variant(
                "ignore_index=-100,weight,mask",
                lambda rng, n: _masked(_int_targets)(rng, n, weight=True, ignore=-100),
                ignore_index=-100,
            ),
        ),
        references=(
            # torch's nll_loss kernel (class indices) has no derivative in the class weights
            Reference(
                "torch.nn.functional.cross_entropy", "torch", _torch_cross_entropy, grads_of=("logits", "target")
            ),
            Reference("optax.losses.softmax_cross_entropy[_with_integer_labels]", "jax", _optax_cross_entropy),
            Reference("z-loss loop", "numpy", _numpy_z_loss, grads=False),
        ),
        notes="all-ignored batches give 0 (torch: NaN); ignored rows with -inf logits give zero gradient.",
        layout=Layout(("logits", "target", "mask"), shared=("weight",)),
        mean=Mean(
            "sum of weight[y_i] over non-ignored, kept samples (their number without weight); "
            "the number of kept samples with probability targets",
            _class_weight_sum("weight"),
        ),
        unit_weights=("weight",),
        half_precision=HalfPrecision(
            variants=("probabilities,weight,label_smoothing=0.2",),
            zero_cases=(
                ZeroCase(
                    "cross_entropy zero target probabilities",
                    "probabilities",
                    (set_to("target", slice(None), 0.0), set_to("target", (slice(None), 0), 1.0)),
                ),
            ),
        ),
        plot=_logit_plot(("label_smoothing", (0.0, 0.1, 0.3))),
    )
)


# -- linear_cross_entropy ----------------------------------------------------------

_LCE_FEATURES, _LCE_CLASSES = 3, 7


def _lce_arrays(
    rng,
    n,
    *,
    bias=False,
    class_weight=False,
    sample_weight=False,
    ignore=None,
    tokens_per_sample=None,
):
    """Hidden states, an output layer (V = 7 classes, H = 3), token ids and optional weights."""
    shape = (n,) if tokens_per_sample is None else (n, tokens_per_sample)
    arrays = {
        "hidden": normal(rng, (*shape, _LCE_FEATURES)),
        "weight": normal(rng, (_LCE_CLASSES, _LCE_FEATURES), 1.5),
        "target": labels(rng, shape, _LCE_CLASSES),
    }
    if ignore is not None:
        arrays["target"] = np.where(rng.random(shape) < 0.3, ignore, arrays["target"])
    if bias:
        arrays["bias"] = normal(rng, (_LCE_CLASSES,))
    if class_weight:
        arrays["class_weight"] = rng.uniform(0.2, 2.0, size=(_LCE_CLASSES,))
    if sample_weight:
        arrays["sample_weight"] = rng.uniform(0.2, 2.0, size=shape)
    return arrays


def _lce_logits(np_, a, p):
    logits = np_.asarray(a["hidden"]) @ np_.asarray(a["weight"]).T
    if a.get("bias") is not None:
        logits = logits + np_.asarray(a["bias"])
    cap = p.get("softcap")
    return logits if cap is None else cap * np_.tanh(logits / cap)


def _numpy_linear_cross_entropy_loop(m, a, p, r):
    """One token at a time: its logits row, its log-softmax and the cross-entropy formula
    with smoothing, class and sample weights, z-loss and the soft cap (float64)."""
    np_ = m.np
    logits = _lce_logits(np_, a, p)
    target = np_.asarray(a["target"])
    flat_logits, flat_target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
    classes = flat_logits.shape[1]
    w = np_.ones(classes) if a.get("class_weight") is None else np_.asarray(a["class_weight"])
    s = np_.ones(len(flat_target)) if a.get("sample_weight") is None else np_.asarray(a["sample_weight"]).reshape(-1)
    eps, z, ignore = p.get("label_smoothing", 0.0), p.get("z_loss", 0.0), p.get("ignore_index")
    out, total_weight = np_.zeros(len(flat_target)), 0.0
    for i, (x, y) in enumerate(zip(flat_logits, flat_target, strict=True)):
        if ignore is not None and y == ignore:
            continue
        log_z = x.max() + math.log(np_.exp(x - x.max()).sum())
        log_p = x - log_z
        smooth = -(w * log_p).sum() * eps / classes
        out[i] = s[i] * (-(1.0 - eps) * w[y] * log_p[y] + smooth + z * w[y] * log_z**2)
        total_weight += s[i] * w[y]
    if r == "none":
        return out.reshape(target.shape)
    if r == "sum":
        return out.sum()
    return out.sum() / total_weight if total_weight != 0 else 0.0


def _torch_linear_cross_entropy(m, a, p, r):
    if p.get("z_loss") or p.get("softcap") is not None or a.get("sample_weight") is not None:
        raise NotApplicable("torch's linear_cross_entropy has no z_loss, softcap or sample_weight")
    hidden, target = a["hidden"], a["target"]
    ignore = p.get("ignore_index")
    if ignore is not None and bool((target == ignore).all()):
        raise NotApplicable("torch returns NaN for an all-ignored batch; polyloss returns 0 by design")
    out = m.F.linear_cross_entropy(
        hidden.reshape(-1, hidden.shape[-1]),
        a["weight"],
        target.reshape(-1),
        linear_bias=a.get("bias"),
        weight=a.get("class_weight"),
        ignore_index=-100 if ignore is None else ignore,
        label_smoothing=p.get("label_smoothing", 0.0),
        reduction=r,
    )
    return out.reshape(target.shape) if r == "none" else out


def _optax_linear_cross_entropy(m, a, p, r):
    plain = not (p.get("z_loss") or p.get("label_smoothing") or p.get("ignore_index") is not None)
    if (
        not plain
        or p.get("softcap") is not None
        or a.get("class_weight") is not None
        or a.get("sample_weight") is not None
    ):
        raise NotApplicable("optax's integer-label cross-entropy has no weights, smoothing, z_loss, softcap or ignore")
    logits = a["hidden"] @ a["weight"].T
    if a.get("bias") is not None:
        logits = logits + a["bias"]
    out = m.optax.losses.softmax_cross_entropy_with_integer_labels(logits, a["target"])
    return reduce_reference(m.jnp, out, r)


def _lce_weight_sum(case: Case, none: np.ndarray) -> float:
    """The sum over kept tokens of sample_weight * class_weight[y] (each 1 when absent)."""
    target = case.arrays["target"]
    ignore = case.params.get("ignore_index")
    kept = np.ones(target.shape, bool) if ignore is None else target != ignore
    class_weight, sample_weight = case.arrays.get("class_weight"), case.arrays.get("sample_weight")
    per_token = np.ones(target.shape) if class_weight is None else class_weight[np.where(kept, target, 0)]
    if sample_weight is not None:
        per_token = per_token * sample_weight
    return float((per_token * kept).sum())


def _lce_variant(name: str, params: dict[str, object] | None = None, **arrays: object) -> Variant:
    return Variant(name, lambda rng, n: Case(_lce_arrays(rng, n, **arrays), dict(params or {})))


def _lce_layout(case: Case) -> Layout:
    per_sample = tuple(k for k in ("hidden", "target", "sample_weight") if k in case.arrays)
    shared = tuple(k for k in ("weight", "bias", "class_weight") if k in case.arrays)
    return Layout(per_sample, shared=shared)


register(
    LossSpec(
        name="linear_cross_entropy",
        variants=(
            _lce_variant("plain"),
            _lce_variant("bias,label_smoothing=0.1", {"label_smoothing": 0.1}, bias=True),
            _lce_variant("ignore_index=-100,class_weight", {"ignore_index": -100}, class_weight=True, ignore=-100),
            _lce_variant("z_loss=0.01,softcap=2", {"z_loss": 0.01, "softcap": 2.0}, bias=True),
            _lce_variant(
                "sample_weight,class_weight,ignore_index=-1,label_smoothing=0.2,chunk_size=2",
                {"ignore_index": -1, "label_smoothing": 0.2, "chunk_size": 2},
                sample_weight=True,
                class_weight=True,
                ignore=-1,
            ),
            _lce_variant("(N,2,H) hidden,chunk_size=1", {"chunk_size": 1}, tokens_per_sample=2),
            _lce_variant("chunk_size=64 (one chunk)", {"chunk_size": 64}, bias=True),
        ),
        references=(
            Reference(
                "torch.nn.functional.linear_cross_entropy",
                "torch",
                _torch_linear_cross_entropy,
                grads_of=("hidden", "weight", "bias"),  # torch has no derivative in the class weights
            ),
            Reference(
                "optax.losses.softmax_cross_entropy_with_integer_labels of x @ W.T", "jax", _optax_linear_cross_entropy
            ),
            Reference("per-token loop", "numpy", _numpy_linear_cross_entropy_loop, grads=False),
        ),
        # torch's fused path computes the gradients in the forward pass (as Liger-Kernel's): its
        # backward raises on a second derivative instead of returning a wrong one
        second_order=False,
        notes=(
            "all-ignored batches give 0 (torch: NaN). Tokens are processed chunk_size at a time; with 'mean' "
            "or 'sum' the gradients are computed in the forward pass (once differentiable in torch), with "
            "'none' recomputed chunk by chunk in the backward pass."
        ),
        layout=_lce_layout,
        mean=Mean(
            "sum of sample_weight[i] * class_weight[y_i] over non-ignored tokens (their number without weights)",
            _lce_weight_sum,
        ),
        unit_weights=("class_weight", "sample_weight"),
        weight_is_not_a_weight="the output layer's weight matrix (V, H) that makes the logits, not a loss weight",
        plot=Plot(
            "hidden state h (one feature; logits (h, 0), true class 0)",
            lambda h: {"hidden": f64([[h]]), "weight": f64([[1.0], [0.0]]), "target": i64([0])},
            span=(-8.0, 8.0),
            sweep=("softcap", (None, 4.0, 2.0)),
        ),
    )
)


# -- nll ------------------------------------------------------------------------


def _nll_arrays(rng, n, **kwargs):
    arrays = _int_targets(rng, n, **kwargs)
    arrays["log_probs"] = log_softmax(arrays.pop("logits"), axis=kwargs.get("axis", -1))
    return {"log_probs": arrays.pop("log_probs"), **arrays}


def _torch_nll(m, a, p, r):
    if p.get("ignore_index") is not None and bool((a["target"] == p["ignore_index"]).all()):
        raise NotApplicable("torch returns NaN for an all-ignored batch")
    ignore = p.get("ignore_index")
    return m.F.nll_loss(
        m.torch.movedim(a["log_probs"], p.get("axis", -1), 1),
        a["target"],
        weight=a.get("weight"),
        ignore_index=-100 if ignore is None else ignore,
        reduction=r,
    )


register(
    LossSpec(
        name="nll",
        variants=(
            _variant("int", _nll_arrays),
            _variant("weight,ignore_index=2", lambda rng, n: _nll_arrays(rng, n, weight=True), ignore_index=2),
            _variant("axis=1,(N,C,L)", lambda rng, n: _nll_arrays(rng, n, shape=(n, 4, 3), axis=1), axis=1),
        ),
        # torch's nll_loss has no derivative in the class weights
        references=(Reference("torch.nn.functional.nll_loss", "torch", _torch_nll, grads_of=("log_probs",)),),
        second_order=False,  # linear in log_probs
        layout=Layout(("log_probs", "target"), shared=("weight",)),
        mean=Mean("sum of weight[y_i] over non-ignored samples", _class_weight_sum("weight")),
        unit_weights=("weight",),
        plot=Plot(
            "probability of the true class (two classes)",
            lambda q: {"log_probs": np.log(f64([[q, 1.0 - q]])), "target": i64([0])},
            span=(0.05, 0.99),
        ),
    )
)


# -- focal ----------------------------------------------------------------------


def _retyped_focal(source: str):
    """The FocalLoss class of the SFT guide (sft_loss_function.md) or of study-hub
    (eunsu-park/study-hub, lesson 24), re-typed: both share the formula."""

    def ref(m, a, p, r):
        if "alpha" in a:
            raise NotApplicable("the original class takes a scalar alpha")
        alpha = p.get("alpha")
        if alpha is None:
            alpha = 1.0  # the SFT guide's default; study-hub's defaults to 0.25 and is called with alpha set
        if not isinstance(alpha, float) or p.get("ignore_index") is not None or p.get("axis", -1) != -1:
            raise NotApplicable("the original class takes a scalar alpha and (N, C) logits, no ignore_index")
        if p.get("label_smoothing", 0.0) or a["target"].is_floating_point():
            raise NotApplicable("the original class takes class indices, without smoothing")
        ce_loss = m.F.cross_entropy(a["logits"], a["target"], reduction="none")
        pt = m.torch.exp(-ce_loss)
        focal_loss = alpha * (1 - pt) ** p.get("gamma", 2.0) * ce_loss
        if r == "mean":
            return focal_loss.mean()
        return focal_loss.sum() if r == "sum" else focal_loss

    return Reference(f"{source} FocalLoss (re-typed)", "torch", ref)


def _keras_categorical_focal(m, a, p, r):
    """keras 3 ``categorical_focal_crossentropy(from_logits=True)`` (keras/src/losses/losses.py), re-typed in
    torch: one-hot (or probability) targets smoothed, probabilities clipped at 1e-7, summed over classes, the
    batch mean."""
    torch = m.torch
    alpha = p.get("alpha")
    if (alpha is not None and not isinstance(alpha, float)) or "alpha" in a or p.get("ignore_index") is not None:
        raise NotApplicable("keras's alpha is a scalar, and it has no ignore_index")
    alpha = 1.0 if alpha is None else alpha
    y_pred, y_true = a["logits"], a["target"]
    num_classes = y_pred.shape[-1]
    if y_true.dtype == torch.int64:
        y_true = m.F.one_hot(y_true, num_classes).to(y_pred.dtype)
    label_smoothing = p.get("label_smoothing", 0.0)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + (label_smoothing / num_classes)
    output = torch.softmax(y_pred, dim=-1)
    output = output / torch.sum(output, dim=-1, keepdim=True)
    epsilon = 1e-7
    output = torch.clip(output, epsilon, 1.0 - epsilon)
    cce = -y_true * torch.log(output)
    modulating_factor = torch.pow(1.0 - output, p.get("gamma", 2.0))
    weighting_factor = modulating_factor * alpha
    focal_cce = torch.sum(weighting_factor * cce, dim=-1)
    return reduce_reference(torch, focal_cce, r)


def _numpy_focal_loop(m, a, p, r):
    """Per-class alpha and ignore_index, one sample at a time (torch's weighted-mean rule)."""
    np_ = m.np
    logits, target = np_.asarray(a["logits"]), np_.asarray(a["target"])
    if p.get("label_smoothing", 0.0) or target.dtype.kind == "f":
        raise NotApplicable("the loop takes class indices, without smoothing")
    alpha, gamma, ignore = a.get("alpha", p.get("alpha")), p.get("gamma", 2.0), p.get("ignore_index")
    per_class = alpha is not None and not isinstance(alpha, float)
    out, weight_sum = np_.zeros(len(target)), 0.0
    for i, y in enumerate(target):
        if y == ignore:
            continue
        prob = np_.exp(logits[i] - logits[i].max())
        prob = prob / prob.sum()
        a_y = 1.0 if alpha is None else (float(alpha[y]) if per_class else alpha)
        out[i] = -a_y * (1 - prob[y]) ** gamma * np_.log(prob[y])
        weight_sum += a_y if per_class else 1.0
    if r == "mean":
        return out.sum() / weight_sum if weight_sum else 0.0
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="focal",
        variants=(
            _variant("gamma=2", _int_targets),
            _variant("gamma=0.5,alpha=0.25", _int_targets, gamma=0.5, alpha=0.25),
            _variant("gamma=0,alpha=1.0", _int_targets, gamma=0.0, alpha=1.0),
            _variant(
                "gamma=2,alpha per-class",
                lambda rng, n: {**_int_targets(rng, n), "alpha": rng.uniform(0.1, 1.0, size=(K,))},
            ),
            _variant(
                "gamma=1,ignore_index=-1", lambda rng, n: _int_targets(rng, n, ignore=-1), gamma=1.0, ignore_index=-1
            ),
            _variant("gamma=2,label_smoothing=0.1", _int_targets, label_smoothing=0.1),
            _variant("probabilities,gamma=2", _soft_targets),
            _variant(
                "probabilities,gamma=1,alpha=0.25,label_smoothing=0.2",
                _soft_targets,
                gamma=1.0,
                alpha=0.25,
                label_smoothing=0.2,
            ),
            _variant(
                "gamma=2,label_smoothing=0.05,alpha per-class,ignore_index=-1",
                lambda rng, n: {**_int_targets(rng, n, ignore=-1), "alpha": rng.uniform(0.1, 1.0, size=(K,))},
                label_smoothing=0.05,
                ignore_index=-1,
            ),
        ),
        references=(
            _retyped_focal("SFT guide"),
            _retyped_focal("study-hub"),
            Reference("keras CategoricalFocalCrossentropy (re-typed)", "torch", _keras_categorical_focal),
            Reference("focal loop (per-class alpha, ignore_index)", "numpy", _numpy_focal_loop, grads=False),
        ),
        layout=Layout(("logits", "target"), shared=("alpha",)),
        mean=Mean(
            "sum of the per-class alpha[y_i] over kept samples; the number of kept samples otherwise",
            _class_weight_sum("alpha"),
        ),
        unit_weights=("alpha",),  # a per-class alpha of ones is alpha=None
        half_precision=HalfPrecision(
            variants=("gamma=1,ignore_index=-1",),
            zero_cases=(ZeroCase("focal saturated target class", "gamma=0.5,alpha=0.25", (_saturated_target_class,)),),
        ),
        plot=_logit_plot(("gamma", (0.0, 1.0, 2.0, 5.0))),
    )
)


# -- binary ---------------------------------------------------------------------


def _bce_arrays(rng, n, *, weight=False, hard=False):
    probs = rng.uniform(0.02, 0.98, size=(n, 3))
    target = binary(rng, (n, 3)) if hard else rng.uniform(0.0, 1.0, size=(n, 3))
    arrays = {"probs": probs, "target": target}
    if weight:
        arrays["weight"] = rng.uniform(0.0, 2.0, size=(n, 3))
    return arrays


def _torch_bce(m, a, p, r):
    return m.F.binary_cross_entropy(a["probs"], a["target"], weight=a.get("weight"), reduction=r)


register(
    LossSpec(
        name="bce",
        variants=(
            _variant("soft targets", _bce_arrays),
            _variant("hard targets,weight", lambda rng, n: _bce_arrays(rng, n, weight=True, hard=True)),
        ),
        # torch's binary_cross_entropy has no derivative in the weight
        references=(
            Reference("torch.nn.functional.binary_cross_entropy", "torch", _torch_bce, grads_of=("probs", "target")),
        ),
        layout=Layout(("probs", "target", "weight")),  # weight is elementwise
        unit_weights=("weight",),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase(
                    "bce probabilities 0 and 1",
                    "hard targets,weight",
                    (set_to("probs", 0, 0.0), set_to("probs", 1, 1.0)),
                ),
            ),
        ),
        plot=_binary_plot("predicted probability (target 1)", "probs", 1.0, span=(0.05, 0.99)),
    )
)


def _logit_arrays(rng, n, *, weight=False, pos_weight=False, scale=3.0):
    arrays = {"logits": normal(rng, (n, 3), scale), "target": binary(rng, (n, 3))}
    if weight:
        arrays["weight"] = rng.uniform(0.0, 2.0, size=(n, 3))
    if pos_weight:
        arrays["pos_weight"] = rng.uniform(0.5, 3.0, size=(3,))
    return arrays


def _saturated_logits(rng, n):
    arrays = _logit_arrays(rng, n)
    arrays["logits"] = rng.choice([-1000.0, 1000.0], size=(n, 3))
    return arrays


def _torch_bce_logits(m, a, p, r):
    target = a["target"]
    if p.get("label_smoothing"):
        target = target * (1 - p["label_smoothing"]) + p["label_smoothing"] / 2  # torch has no label_smoothing
    return m.F.binary_cross_entropy_with_logits(
        a["logits"], target, weight=a.get("weight"), pos_weight=a.get("pos_weight"), reduction=r
    )


def _optax_bce_logits(m, a, p, r):
    if "weight" in a or "pos_weight" in a or p.get("label_smoothing"):
        raise NotApplicable("optax has no weight, pos_weight or label_smoothing")
    return reduce_reference(m.jnp, m.optax.losses.sigmoid_binary_cross_entropy(a["logits"], a["target"]), r)


register(
    LossSpec(
        name="bce_with_logits",
        variants=(
            _variant("default", _logit_arrays),
            _variant("weight,pos_weight", lambda rng, n: _logit_arrays(rng, n, weight=True, pos_weight=True)),
            _variant("label_smoothing=0.1", _logit_arrays, label_smoothing=0.1),
            _variant("logits=+-1000", _saturated_logits),
        ),
        references=(
            # torch's binary_cross_entropy_with_logits has no derivative in weight and pos_weight
            Reference(
                "torch.nn.functional.binary_cross_entropy_with_logits",
                "torch",
                _torch_bce_logits,
                grads_of=("logits", "target"),
            ),
            Reference("optax.losses.sigmoid_binary_cross_entropy", "jax", _optax_bce_logits),
        ),
        layout=_bce_with_logits_layout,
        unit_weights=("weight", "pos_weight"),
        half_precision=HalfPrecision(variants=("logits=+-1000",)),
        plot=_binary_plot("logit (target 1)", "logits", 1.0, ("label_smoothing", (0.0, 0.1, 0.3)), span=(-4.0, 6.0)),
    )
)


def _torchvision_sigmoid_focal(m, a, p, r):
    """torchvision.ops.sigmoid_focal_loss, re-typed (no CPU torchvision wheel exists here)."""
    inputs, targets = a["logits"], a["target"]
    gamma, alpha = p.get("gamma", 2.0), p.get("alpha", 0.25)
    prob = m.torch.sigmoid(inputs)
    ce_loss = m.F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha is not None and alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return reduce_reference(m.torch, loss, r)


def _optax_sigmoid_focal(m, a, p, r):
    out = m.optax.losses.sigmoid_focal_loss(
        a["logits"], a["target"], alpha=p.get("alpha", 0.25), gamma=p.get("gamma", 2.0)
    )
    return reduce_reference(m.jnp, out, r)


register(
    LossSpec(
        name="sigmoid_focal",
        variants=(
            _variant("gamma=2,alpha=0.25", _logit_arrays),
            _variant("gamma=0.5,alpha=None", _logit_arrays, gamma=0.5, alpha=None),
            _variant("gamma=0,alpha=0.75", _logit_arrays, gamma=0.0, alpha=0.75),
        ),
        references=(
            Reference("torchvision.ops.sigmoid_focal_loss (re-typed)", "torch", _torchvision_sigmoid_focal),
            # optax forms 1 - p_t with logsumexp(b=[1 - labels, labels]), whose derivative in a zero
            # scale b is dropped: its label gradient at labels of exactly 0 or 1 is not that of its value
            Reference("optax.losses.sigmoid_focal_loss", "jax", _optax_sigmoid_focal, grads_of=("logits",)),
        ),
        layout=Layout(("logits", "target")),
        half_precision=HalfPrecision(
            variants=("gamma=0.5,alpha=None",),
            zero_cases=(ZeroCase("sigmoid_focal saturated,gamma=0.5", "gamma=0.5,alpha=None", (_saturated_correct,)),),
        ),
        plot=_binary_plot(
            "logit (target 1)", "logits", 1.0, ("gamma", (0.0, 1.0, 2.0, 5.0)), span=(-4.0, 6.0), params={"alpha": None}
        ),
    )
)


def _optax_poly1(m, a, p, r):
    target = a["target"]
    if m.jnp.issubdtype(target.dtype, m.jnp.integer):
        target = m.jax.nn.one_hot(target, a["logits"].shape[-1], dtype=a["logits"].dtype)
    out = m.optax.losses.poly_loss_cross_entropy(
        a["logits"], target, epsilon=p.get("epsilon", 1.0), where=_where_of(m, a)
    )
    return _optax_where(m, a, out, r)


def _one_hot_arrays(rng, n):
    arrays = _int_targets(rng, n)
    arrays["target"] = np.eye(K)[arrays["target"]]
    return arrays


register(
    LossSpec(
        name="poly1",
        variants=(
            _variant("int,epsilon=1", _int_targets),
            _variant("one-hot,epsilon=2", _one_hot_arrays, epsilon=2.0),
            _variant("probabilities,epsilon=-1", _soft_targets, epsilon=-1.0),
            _variant("int,mask", _masked(_int_targets)),
            _variant("probabilities,mask,epsilon=2", _masked(_soft_targets), epsilon=2.0),
        ),
        references=(Reference("optax.losses.poly_loss_cross_entropy", "jax", _optax_poly1),),
        layout=Layout(("logits", "target", "mask")),
        mean=Mean("the number of kept samples (all without a mask)", _kept_count),
        plot=_logit_plot(("epsilon", (-1.0, 1.0, 2.0))),
    )
)


def _hinge_arrays(rng, n, *, zero_one=False):
    target = binary(rng, (n, 3))
    return {"scores": away_from_kinks(rng, (n, 3), (1.0,)), "target": target if zero_one else 2 * target - 1}


def _keras_hinge(squared: bool):
    """keras.losses.hinge / squared_hinge, re-typed in numpy (mean over the last axis, then the batch)."""

    def ref(m, a, p, r):
        np_ = m.np
        scores, target = np_.asarray(a["scores"]), np_.asarray(a["target"])
        if np_.all((target == 0) | (target == 1)):
            target = 2.0 * target - 1.0
        out = np_.maximum(1.0 - target * scores, 0.0)
        out = out**2 if squared else out
        if r == "mean":
            return np_.mean(np_.mean(out, axis=-1))
        return reduce_reference(np_, out, r)

    return Reference(f"keras.losses.{'squared_hinge' if squared else 'hinge'} (re-typed)", "numpy", ref, grads=False)


def _optax_hinge(m, a, p, r):
    target = a["target"]
    if m.np.isin(m.np.asarray(target), (0.0, 1.0)).all():  # the labels read on the host, as data
        target = 2.0 * target - 1.0  # optax takes {-1, 1} only
    return reduce_reference(m.jnp, m.optax.losses.hinge_loss(a["scores"], target), r)


_HINGE_VARIANTS = (
    _variant("targets in {-1,1}", _hinge_arrays),
    _variant("targets in {0,1}", lambda rng, n: _hinge_arrays(rng, n, zero_one=True)),
)
#: the hinge losses' target is a class label, read as {-1, 1}: the loss is defined at those two values only
_HINGE_LABELS = {
    "target": "a label in {-1, 1} (or {0, 1}): the loss is defined at those two values only, so it has no "
    "derivative in it (any other value is rejected)"
}

register(
    LossSpec(
        name="hinge",
        variants=_HINGE_VARIANTS,
        references=(_keras_hinge(False), Reference("optax.losses.hinge_loss", "jax", _optax_hinge)),
        not_differentiable=_HINGE_LABELS,
        second_order=False,
        layout=Layout(("scores", "target")),
        plot=_binary_plot(MARGIN_AXIS, "scores", 1.0, span=(-3.0, 3.0)),
    )
)

register(
    LossSpec(
        name="squared_hinge",
        variants=_HINGE_VARIANTS,
        references=(_keras_hinge(True),),
        not_differentiable=_HINGE_LABELS,
        layout=Layout(("scores", "target")),
        plot=_binary_plot(MARGIN_AXIS, "scores", 1.0, span=(-3.0, 3.0)),
    )
)


# --------------------------------------------------------------------------- second wave: torch's margin losses,
# keras's categorical hinge and generalized cross-entropy, timm's asymmetric loss


def _second_wave_edges() -> EdgeCorpus:
    edges = EdgeCorpus()
    edges.case(
        "soft_margin",
        "margins of +-1e4: 0 and 1e4, no exp overflow",
        {"scores": f64([1e4, -1e4]), "target": f64([1.0, 1.0])},
        Finite(0.5 * (softplus(-1e4) + softplus(1e4))),
    )
    edges.case(
        "multilabel_soft_margin",
        "saturated logits (+-1e4) on the right and the wrong side",
        {"logits": f64([[1e4, -1e4]]), "target": f64([[1.0, 1.0]])},
        Finite(0.5 * 1e4),
    )
    edges.case(
        "multi_margin",
        "a score tied with the target's minus the margin: the kink, derivative 0",
        {"logits": f64([[1.0, 0.0, -5.0]]), "target": i64([0])},
        Finite(0.0),
    )
    edges.case(
        "multi_margin",
        "p=3",
        {"logits": f64([[1.0, 0.0]]), "target": i64([0])},
        Raises(ValueError, r"p must be 1 or 2, got 3"),
        params={"p": 3},
    )
    edges.case(
        "categorical_hinge",
        "every other score negative: keras's max counts the true class as 0",
        {"logits": f64([[0.5, -1.0, -2.0]]), "target": i64([0])},
        Finite(0.5),
    )
    edges.case(
        "generalized_cross_entropy",
        "saturated logits (+-1e4): 0 and 1/q",
        {"logits": f64([[1e4, -1e4], [-1e4, 1e4]]), "target": i64([0, 0])},
        Finite(0.5 * (0.0 + 1.0 / 0.7)),
    )
    edges.case(
        "generalized_cross_entropy",
        "q=0 is cross-entropy",
        {"logits": f64([[2.0, 0.5, -1.0]]), "target": i64([1])},
        Finite(lambda a: ce(a["logits"], [1])[0]),
        params={"q": 0.0},
    )
    edges.case(
        "asymmetric",
        "saturated logits (+-1e4): logs clamped at eps",
        {"logits": f64([[1e4, -1e4]]), "target": f64([[0.0, 1.0]])},
        Finite(lambda a: -(math.log(0.05) * (1 - 0.05) ** 4 + math.log(1e-8))),  # p = 0 exactly: weight 1
        dtypes=("float64",),
        reduction="sum",
    )
    edges.case(
        "asymmetric",
        "gammas and clip 0: clamped binary cross-entropy",
        {"logits": f64([[0.3, -1.2]]), "target": f64([[1.0, 0.0]])},
        Finite(lambda a: softplus(-a["logits"][0][0]) + softplus(a["logits"][0][1])),
        params={"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0},
        reduction="sum",
    )
    edges.empty_batch("soft_margin", {"scores": np.zeros((0, 3)), "target": np.zeros((0, 3))}, (0, 3))
    edges.empty_batch("multilabel_soft_margin", {"logits": np.zeros((0, K)), "target": np.zeros((0, K))}, (0,))
    for name in ("multi_margin", "categorical_hinge", "generalized_cross_entropy"):
        edges.empty_batch(name, {"logits": np.zeros((0, K)), "target": np.zeros(0, dtype=np.int64)}, (0,))
    edges.empty_batch("asymmetric", {"logits": np.zeros((0, K)), "target": np.zeros((0, K))}, (0, K))
    edges.empty_batch(
        "asymmetric_single_label", {"logits": np.zeros((0, K)), "target": np.zeros(0, dtype=np.int64)}, (0,)
    )
    edges.case(
        "asymmetric_single_label",
        "saturated logits (+-1e4), the true class ahead: 0 (a zero weight times -inf is 0)",
        {"logits": f64([[1e4, -1e4, 0.0]]), "target": i64([0])},
        Finite(0.0),
    )
    edges.case(
        "asymmetric_single_label",
        "saturated logits, the true class far behind: finite",
        {"logits": f64([[-1e4, 1e4, 0.0]]), "target": i64([0])},
        Finite(lambda a: (1 - 0.1 + 0.1 / 3) * 2e4),  # weight (1 - 0)^1, -log p = 2e4
    )
    edges.case(
        "asymmetric_single_label",
        "gammas 0: label-smoothed cross-entropy",
        {"logits": f64([[2.0, 0.5, -1.0]]), "target": i64([1])},
        Finite(lambda a: 0.9 * ce(a["logits"], [1])[0] + 0.1 / 3 * sum(ce(a["logits"], [c])[0] for c in range(3))),
        params={"gamma_pos": 0.0, "gamma_neg": 0.0},
    )
    edges.case(
        "sparsemax_loss",
        "the label far ahead: sparsemax is one-hot, loss and gradient exactly 0",
        {"logits": f64([[5.0, 1.0, -2.0]]), "target": i64([0])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "sparsemax_loss",
        "every score tied: uniform, (1 - 1/C) / 2",
        {"logits": f64([[0.3, 0.3, 0.3, 0.3]]), "target": i64([2])},
        Finite(0.5 * (1.0 - 0.25)),
    )
    edges.case(
        "sparsemax_loss",
        "saturated scores (+-1e4)",
        {"logits": f64([[1e4, -1e4], [-1e4, 1e4]]), "target": i64([0, 0])},
        Finite(0.5 * (0.0 + 2e4)),
    )
    edges.case(
        "sparsemax_loss",
        "binary labels: sparse_plus, 0 from logit 1 on",
        {"logits": f64([2.0, 0.0, -3.0]), "target": i64([1, 1, 0])},
        Finite((0.0 + 0.25 + 0.0) / 3),
    )
    edges.empty_batch("sparsemax_loss", {"logits": np.zeros((0, K)), "target": np.zeros(0, dtype=np.int64)}, (0,))
    return edges


SECOND_WAVE_EDGES = _second_wave_edges()


def _signed_arrays(rng, n):
    return {"scores": normal(rng, (n, 3), 2.0), "target": 2.0 * binary(rng, (n, 3)) - 1.0}


def _numpy_soft_margin(m, a, p, r):
    np_ = m.np
    out = np_.vectorize(lambda s, t: softplus(-t * s))(np_.asarray(a["scores"]), np_.asarray(a["target"]))
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="soft_margin",
        variants=(_variant("targets in {-1,1}", _signed_arrays),),
        references=(
            Reference(
                "torch.nn.functional.soft_margin_loss",
                "torch",
                lambda m, a, p, r: m.F.soft_margin_loss(a["scores"], a["target"], reduction=r),
                grads_of=("scores",),  # torch cannot differentiate its target
            ),
            Reference("softplus loop", "numpy", _numpy_soft_margin, grads=False),
        ),
        notes="Any real target is accepted (as torch's), so the target is differentiated too.",
        layout=Layout(("scores", "target")),
        plot=_binary_plot(MARGIN_AXIS, "scores", 1.0, span=(-3.0, 3.0)),
    )
)


def _multilabel_arrays(rng, n, *, weight=False, soft=False):
    arrays = {"logits": normal(rng, (n, K), 2.0), "target": rng.uniform(size=(n, K)) if soft else binary(rng, (n, K))}
    if weight:
        arrays["weight"] = rng.uniform(0.2, 2.0, size=(K,))
    return arrays


def _torch_multilabel_soft_margin(m, a, p, r):
    return m.F.multilabel_soft_margin_loss(a["logits"], a["target"], weight=a.get("weight"), reduction=r)


register(
    LossSpec(
        name="multilabel_soft_margin",
        variants=(
            _variant("0/1 targets", _multilabel_arrays),
            _variant("class weight", lambda rng, n: _multilabel_arrays(rng, n, weight=True)),
            _variant("soft targets", lambda rng, n: _multilabel_arrays(rng, n, soft=True)),
        ),
        references=(
            Reference("torch.nn.functional.multilabel_soft_margin_loss", "torch", _torch_multilabel_soft_margin),
        ),
        layout=Layout(("logits", "target"), shared=("weight",)),
        unit_weights=("weight",),
        plot=Plot(
            "logit of a positive label (one class, target 1)",
            lambda x: {"logits": f64([[x]]), "target": f64([[1.0]])},
            span=(-4.0, 6.0),
        ),
    )
)


def _torch_multi_margin(m, a, p, r):
    return m.F.multi_margin_loss(
        a["logits"], a["target"], p=p.get("p", 1), margin=p.get("margin", 1.0), weight=a.get("weight"), reduction=r
    )


def _numpy_multi_margin(m, a, p, r):
    np_ = m.np
    power, margin = p.get("p", 1), p.get("margin", 1.0)
    logits, target, weight = np_.asarray(a["logits"]), np_.asarray(a["target"]), a.get("weight")
    out = []
    for row, y in zip(logits, target, strict=True):
        terms = [max(0.0, margin - row[y] + row[j]) ** power for j in range(len(row)) if j != y]
        out.append((1.0 if weight is None else float(weight[y])) * math.fsum(terms) / len(row))
    return reduce_reference(np_, np_.array(out), r)


register(
    LossSpec(
        name="multi_margin",
        variants=(
            _variant("p=1", _int_targets),
            _variant("p=2,margin=0.5", _int_targets, p=2, margin=0.5),
            _variant("p=1,class weight", lambda rng, n: _int_targets(rng, n, weight=True)),
        ),
        references=(
            Reference(
                "torch.nn.functional.multi_margin_loss", "torch", _torch_multi_margin, grads_of=("logits",)
            ),  # torch cannot differentiate its weight
            Reference("Weston-Watkins loop", "numpy", _numpy_multi_margin, grads=False),
        ),
        layout=Layout(("logits", "target"), shared=("weight",)),
        unit_weights=("weight",),
        plot=_logit_plot(("margin", (0.5, 1.0, 2.0)), span=(-3.0, 3.0)),
    )
)


def _positive_logits(rng, n, *, one_hot=False):
    """Scores in (0.1, 3): some other class always scores >= 0, where keras's and optax's hinge agree."""
    logits = rng.uniform(0.1, 3.0, size=(n, K))
    target = labels(rng, (n,), K)
    return {"logits": logits, "target": np.eye(K)[target] if one_hot else target}


def _keras_categorical_hinge(m, a, p, r):
    """keras 3 ``categorical_hinge`` (keras/src/losses/losses.py), re-typed in numpy."""
    np_ = m.np
    y_pred, y_true = np_.asarray(a["logits"]), np_.asarray(a["target"])
    if y_true.ndim < y_pred.ndim:
        y_true = np_.eye(y_pred.shape[-1])[y_true]
    pos = np_.sum(y_true * y_pred, axis=-1)
    neg = np_.max((1.0 - y_true) * y_pred, axis=-1)
    zero = np_.zeros_like(pos)
    return reduce_reference(np_, np_.maximum(neg - pos + 1.0, zero), r)


def _optax_multiclass_hinge(m, a, p, r):
    if a["target"].ndim == a["logits"].ndim:
        raise NotApplicable("optax.losses.multiclass_hinge_loss takes integer labels")
    others = m.jnp.where(m.jax.nn.one_hot(a["target"], a["logits"].shape[-1]) > 0, -m.jnp.inf, a["logits"])
    if bool((others.max(axis=-1) < 0).any()):
        raise NotApplicable("Crammer-Singer's max differs from keras's where every other score is negative")
    return reduce_reference(m.jnp, m.optax.losses.multiclass_hinge_loss(a["logits"], a["target"]), r)


register(
    LossSpec(
        name="categorical_hinge",
        variants=(
            _variant("int targets,positive scores", _positive_logits),
            _variant("one-hot targets,positive scores", lambda rng, n: _positive_logits(rng, n, one_hot=True)),
            _variant("int targets,normal scores", _int_targets),
        ),
        references=(
            Reference("keras.losses.categorical_hinge (re-typed)", "numpy", _keras_categorical_hinge, grads=False),
            Reference("optax.losses.multiclass_hinge_loss", "jax", _optax_multiclass_hinge),
        ),
        second_order=False,  # piecewise linear
        layout=Layout(("logits", "target")),
        plot=_logit_plot(span=(-3.0, 3.0)),
    )
)


def _keras_gce(m, a, p, r):
    """keras 3 ``CategoricalGeneralizedCrossEntropy`` on ``softmax(logits)``, re-typed in torch."""
    torch = m.torch
    q = p.get("q", 0.7)
    axis = p.get("axis", -1)
    y_pred = torch.softmax(a["logits"], dim=axis)
    p_true = torch.take_along_dim(y_pred, a["target"].unsqueeze(axis), dim=axis).squeeze(axis)
    return reduce_reference(torch, (1.0 - torch.pow(p_true, q)) / q, r)


register(
    LossSpec(
        name="generalized_cross_entropy",
        variants=(
            _variant("q=0.7", _int_targets),
            _variant("q=0.3", _int_targets, q=0.3),
            _variant("q=1 (probability MAE)", _int_targets, q=1.0),
            _variant(
                "q=0.5,axis=1,(N,C,L)", lambda rng, n: _int_targets(rng, n, shape=(n, 4, 3), axis=1), q=0.5, axis=1
            ),
        ),
        references=(Reference("keras CategoricalGeneralizedCrossEntropy (re-typed)", "torch", _keras_gce),),
        layout=Layout(("logits", "target")),
        plot=_logit_plot(("q", (0.0, 0.7, 1.0))),
    )
)


def _timm_asl(m, a, p, r):
    """timm's ``AsymmetricLossMultiLabel.forward`` (timm/loss/asymmetric_loss.py), re-typed; its
    ``-loss.sum()`` is "sum", "none" the negated elementwise loss."""
    torch = m.torch
    x, y = a["logits"], a["target"]
    gamma_pos, gamma_neg = p.get("gamma_pos", 1.0), p.get("gamma_neg", 4.0)
    clip, eps = p.get("clip", 0.05), p.get("eps", 1e-8)
    x_sigmoid = torch.sigmoid(x)
    xs_pos = x_sigmoid
    xs_neg = 1 - x_sigmoid
    if clip is not None and clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    los_pos = y * torch.log(xs_pos.clamp(min=eps))
    los_neg = (1 - y) * torch.log(xs_neg.clamp(min=eps))
    loss = los_pos + los_neg
    if gamma_neg > 0 or gamma_pos > 0:
        pt0 = xs_pos * y
        pt1 = xs_neg * (1 - y)
        pt = pt0 + pt1
        one_sided_gamma = gamma_pos * y + gamma_neg * (1 - y)
        one_sided_w = torch.pow(1 - pt, one_sided_gamma)
        loss *= one_sided_w
    return reduce_reference(torch, -loss, r)


register(
    LossSpec(
        name="asymmetric",
        variants=(
            _variant("timm defaults", _multilabel_arrays),
            _variant("gamma_neg=2,gamma_pos=0,clip=0.2", _multilabel_arrays, gamma_neg=2.0, gamma_pos=0.0, clip=0.2),
            _variant("clip=0,soft targets", lambda rng, n: _multilabel_arrays(rng, n, soft=True), clip=0.0),
        ),
        references=(Reference("timm AsymmetricLossMultiLabel (re-typed)", "torch", _timm_asl),),
        notes="Default reduction 'sum', as timm's -loss.sum(); logs clamped at eps as timm's.",
        layout=Layout(("logits", "target")),
        plot=_binary_plot(
            "logit of a negative label (target 0)", "logits", 0.0, ("gamma_neg", (0.0, 2.0, 4.0)), span=(-5.0, 6.0)
        ),
    )
)


def _timm_asl_single_label(m, a, p, r):
    """timm's ``AsymmetricLossSingleLabel.forward`` (timm/loss/asymmetric_loss.py), re-typed, classes
    moved last for an ``axis``; its ``"mean"`` is the mean over samples, any other reduction the
    per-sample losses ("none"; polyloss's "sum" adds them)."""
    torch = m.torch
    inputs = torch.movedim(a["logits"], p.get("axis", -1), -1)
    target = a["target"]
    gamma_pos, gamma_neg, eps = p.get("gamma_pos", 1.0), p.get("gamma_neg", 4.0), p.get("label_smoothing", 0.1)
    num_classes = inputs.size()[-1]
    log_preds = torch.log_softmax(inputs, dim=-1)
    targets_classes = torch.zeros_like(inputs).scatter_(-1, target.long().unsqueeze(-1), 1)
    targets = targets_classes
    anti_targets = 1 - targets
    xs_pos = torch.exp(log_preds)
    xs_neg = 1 - xs_pos
    xs_pos = xs_pos * targets
    xs_neg = xs_neg * anti_targets
    asymmetric_w = torch.pow(1 - xs_pos - xs_neg, gamma_pos * targets + gamma_neg * anti_targets)
    log_preds = log_preds * asymmetric_w
    if eps > 0:  # label smoothing
        targets_classes = targets_classes.mul(1 - eps).add(eps / num_classes)
    loss = -targets_classes.mul(log_preds)
    loss = loss.sum(dim=-1)
    return reduce_reference(torch, loss, r)


def _np_asl_single_label(m, a, p, r):
    """The formula one sample and one class at a time, in float64."""
    logits = np.moveaxis(np.asarray(a["logits"], dtype=np.float64), p.get("axis", -1), -1)
    target = np.asarray(a["target"])
    gamma_pos, gamma_neg, eps = p.get("gamma_pos", 1.0), p.get("gamma_neg", 4.0), p.get("label_smoothing", 0.1)
    out = np.zeros(target.shape)
    for idx in np.ndindex(target.shape):
        row = logits[idx]
        top = row.max()
        log_z = top + math.log(math.fsum(math.exp(v - top) for v in row))
        terms = []
        for c, v in enumerate(row):
            log_p = v - log_z
            is_true = c == int(target[idx])
            weight = (1.0 - math.exp(log_p)) ** gamma_pos if is_true else math.exp(log_p) ** gamma_neg
            smoothed = (1.0 - eps) * is_true + eps / len(row)
            terms.append(-smoothed * weight * log_p)
        out[idx] = math.fsum(terms)
    return reduce_reference(np, out, r)


register(
    LossSpec(
        name="asymmetric_single_label",
        variants=(
            _variant("timm defaults", _int_targets),
            _variant("label_smoothing=0 (focal)", _int_targets, label_smoothing=0.0, gamma_pos=2.0),
            _variant(
                "gamma_neg=2,gamma_pos=0,label_smoothing=0.3",
                _int_targets,
                gamma_neg=2.0,
                gamma_pos=0.0,
                label_smoothing=0.3,
            ),
            _variant("axis=1,(N,C,L)", lambda rng, n: _int_targets(rng, n, shape=(n, 4, 3), axis=1), axis=1),
        ),
        references=(
            Reference("timm AsymmetricLossSingleLabel (re-typed)", "torch", _timm_asl_single_label),
            Reference("asymmetric single-label loop", "numpy", _np_asl_single_label, grads=False),
        ),
        layout=Layout(("logits", "target")),
        plot=_logit_plot(("gamma_pos", (0.0, 1.0, 2.0))),
    )
)


def _binary_labels(rng, n):
    return {"logits": normal(rng, (n, 3), 2.0), "target": rng.integers(0, 2, size=(n, 3)).astype(np.int64)}


def _optax_sparsemax(m, a, p, r):
    logits, target = a["logits"], a["target"]
    if target.shape == logits.shape:
        return reduce_reference(m.jnp, m.optax.losses.sparsemax_loss(logits, target), r)
    return reduce_reference(m.jnp, m.optax.losses.multiclass_sparsemax_loss(logits, target), r)


register(
    LossSpec(
        name="sparsemax_loss",
        variants=(
            _variant("multi-class", _int_targets),
            _variant(
                "multi-class,peaked scores", lambda rng, n: {**_int_targets(rng, n), "logits": normal(rng, (n, K), 4.0)}
            ),
            _variant("binary 0/1 labels", _binary_labels),
        ),
        references=(Reference("optax.losses.multiclass_sparsemax_loss / sparsemax_loss", "jax", _optax_sparsemax),),
        notes="The support of sparsemax changes at ties between scores (a kink of the second derivative); random "
        "scores keep away from them.",
        layout=Layout(("logits", "target")),
        plot=_logit_plot(span=(-3.0, 3.0)),
    )
)
