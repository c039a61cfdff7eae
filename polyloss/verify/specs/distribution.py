"""Specs of the distribution losses (see ``polyloss/core/distribution.py``)."""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import labels, log_softmax, normal, probabilities, set_to
from polyloss.verify.specs.edges import INF, EdgeCorpus, Finite, Infinite, f64, i64
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the divergences' axis: two classes, the model's logits (x, 0) against a fixed target
SHIFT_AXIS = "model logit of class 0 (class 1 at 0; target (0.75, 0.25))"
_PLOT_TARGET = f64([[0.75, 0.25]])


def _log_softmax2(x: float) -> np.ndarray:
    """log softmax of the logits (x, 0), shape (1, 2)."""
    return -np.logaddexp(0.0, -np.array([[x, -x]]))


def _shift_plot(model: str, target: str, log_target: bool) -> Plot:
    """The divergence of the model ``log_softmax((x, 0))`` (input ``model``) from the target (0.75, 0.25)
    (input ``target``, its log-probabilities when ``log_target``): 0 at x = log 3."""
    fixed = np.log(_PLOT_TARGET) if log_target else _PLOT_TARGET
    return Plot(SHIFT_AXIS, lambda x: {model: _log_softmax2(x), target: fixed.copy()}, span=(-5.0, 7.0))


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    edges.case(
        "kl_div",
        "zero target probabilities with -inf log_q (masked classes)",
        {"log_q": f64([[math.log(0.5), math.log(0.5), -INF]]), "p": f64([[0.25, 0.75, 0.0]])},
        Finite(0.25 * math.log(0.5) + 0.75 * math.log(1.5)),
    )
    edges.case(
        "kl_div",
        "target mass where q is 0: infinite",
        {"log_q": f64([[0.0, -INF]]), "p": f64([[0.5, 0.5]])},
        Infinite(infinite_slope=("p",)),  # d/dp = log p + 1 - log q = +inf where q is 0
    )
    edges.case(
        "kl_div",
        "log targets of -inf",
        {"log_q": f64([[-INF, 0.0]]), "p": f64([[-INF, 0.0]])},
        Finite(0.0),
        params={"log_target": True},
    )
    edges.case(
        "js_div",
        "disjoint supports: log 2",
        {"log_p": f64([[0.0, -INF]]), "log_q": f64([[-INF, 0.0]])},
        Finite(math.log(2.0)),
    )
    edges.case(
        "js_div",
        "classes impossible under both",
        {"log_p": f64([[0.0, -INF, -INF]]), "log_q": f64([[0.0, -INF, -INF]])},
        Finite(0.0),
    )
    edges.case(
        "distillation",
        "teacher rules a class out (-inf)",
        {"student_logits": f64([[1.0, 0.0, -1.0]]), "teacher_logits": f64([[2.0, 0.0, -INF]])},
        Finite(),
    )
    edges.case(
        "distillation",
        "saturated student logits",
        {"student_logits": f64([[1e4, -1e4]]), "teacher_logits": f64([[1e4, -1e4]]), "target": i64([0])},
        Finite(0.0),
    )
    edges.case(
        "kl_div",
        "masked samples holding NaN (padding): as if absent",
        {
            "log_q": f64([[math.log(0.5), math.log(0.5)], [math.nan, math.nan]]),
            "p": f64([[0.25, 0.75], [math.nan, math.nan]]),
            "mask": np.array([True, False]),
        },
        Finite(0.25 * math.log(0.5) + 0.75 * math.log(1.5)),
    )
    edges.case(
        "kl_div",
        "every sample masked: 0",
        {"log_q": f64([[math.log(0.5), math.log(0.5)]]), "p": f64([[0.25, 0.75]]), "mask": np.array([False])},
        Finite(0.0, grad="zero"),
    )
    NO_ROWS = np.zeros((0, 5))
    edges.empty_batch("kl_div", {"log_q": NO_ROWS, "p": NO_ROWS}, (0,))
    edges.empty_batch("js_div", {"log_p": NO_ROWS, "log_q": NO_ROWS}, (0,))
    edges.empty_batch(
        "distillation",
        {"student_logits": NO_ROWS, "teacher_logits": NO_ROWS, "target": np.zeros(0, dtype=np.int64)},
        (0,),
    )
    return edges


EDGES = _edge_cases()

K = 5  # classes
ZEROS = 2  # classes with probability exactly 0 per row, in the zero-probability variants


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


def _zero_mask(rng: np.random.Generator, shape: tuple[int, ...], axis: int = -1) -> np.ndarray:
    """True at ``ZEROS`` random classes of every row (so each row keeps ``K - ZEROS`` classes)."""
    keys = np.moveaxis(rng.random(shape), axis, -1)
    ranks = np.argsort(np.argsort(keys, axis=-1), axis=-1)
    return np.moveaxis(ranks < ZEROS, -1, axis)


# -- kl_div -----------------------------------------------------------------------


def _kl_arrays(rng, n, *, zeros=False, masked=False, log_target=False, shape=None, axis=-1):
    """log_q (log-probabilities) and p (probabilities, or log p with ``log_target``).

    ``zeros``: some p entries exactly 0 (rows renormalised). ``masked``: log_q is -inf
    exactly where p is 0 (the classes masked out of the prediction too).
    """
    shape = shape or (n, K)
    p = probabilities(rng, shape, axis=axis)
    logits = normal(rng, shape, 2.0)
    if zeros:
        mask = _zero_mask(rng, shape, axis)
        p = np.where(mask, 0.0, p)
        p = p / p.sum(axis=axis, keepdims=True)
        if masked:
            logits = np.where(mask, -np.inf, logits)
    log_q = log_softmax(logits, axis=axis)
    if log_target:
        with np.errstate(divide="ignore"):
            p = np.log(p)  # -inf where p == 0
    return {"log_q": log_q, "p": p}


def _masked_kl_arrays(rng, n, **kwargs):
    """:func:`_kl_arrays` plus a per-sample ``mask`` (optax's ``where``), about a third False."""
    arrays = _kl_arrays(rng, n, **kwargs)
    arrays["mask"] = rng.random(arrays["log_q"].shape[:-1]) > 0.35
    return arrays


def _kept_samples(case: Case, none: np.ndarray) -> float:
    mask = case.arrays.get("mask")
    return float(none.size if mask is None else mask.sum())


def _torch_kl_div(m, a, p, r):
    if "mask" in a:
        raise NotApplicable("F.kl_div has no mask")
    log_q, target = a["log_q"], a["p"]
    log_target, axis = p.get("log_target", False), p.get("axis", -1)
    if log_target and bool(m.torch.isinf(target).any()):
        raise NotApplicable("F.kl_div(log_target=True) gives exp(-inf) * (-inf - log_q) = NaN where log p = -inf")
    if not log_target and bool(((target == 0) & m.torch.isinf(log_q)).any()):
        raise NotApplicable("F.kl_div gives 0 * -inf = NaN where p == 0 and log_q = -inf (masked classes)")
    if r == "none":
        return m.F.kl_div(log_q, target, reduction="none", log_target=log_target).sum(dim=axis)
    if r == "sum":
        return m.F.kl_div(log_q, target, reduction="sum", log_target=log_target)
    # "batchmean" divides by the first dimension: flatten every non-class axis into it.
    classes = log_q.shape[axis]
    flat_q = m.torch.movedim(log_q, axis, -1).reshape(-1, classes)
    flat_p = m.torch.movedim(target, axis, -1).reshape(-1, classes)
    return m.F.kl_div(flat_q, flat_p, reduction="batchmean", log_target=log_target)


def _optax_kl_div(m, a, p, r):
    log_q, target = a["log_q"], a["p"]
    axis = p.get("axis", -1)
    log_target = p.get("log_target", False)
    fn = m.optax.losses.kl_divergence_with_log_targets if log_target else m.optax.losses.kl_divergence
    where = None
    # Both optax functions give NaN at a zero-probability class whose other factor is infinite
    # (kl_divergence: 0 * (0 - -inf) when log_q = -inf; ..._with_log_targets: exp(-inf) * (-inf - log_q)
    # whenever log p = -inf). Their ``where=`` argument leaves such classes out of the sum, which is
    # exactly 0 log 0 = 0: pass it only then, so every other case is the plain upstream call.
    if log_target and bool(m.jnp.isinf(target).any()):
        where = ~m.jnp.isinf(target)
    elif not log_target and bool(((target == 0) & m.jnp.isinf(log_q)).any()):
        where = target > 0
    out = fn(log_q, target, axis=axis, where=where)
    mask = a.get("mask")
    if mask is None:
        return reduce_reference(m.jnp, out, r)
    # optax's per-sample divergences with the masked samples set to 0, "mean" over the kept ones
    out = m.jnp.where(mask, out, 0.0)
    return out if r == "none" else m.jnp.sum(out) / (m.jnp.maximum(m.jnp.sum(mask), 1) if r == "mean" else 1)


def _numpy_kl_loop(m, a, p, r):
    """sum_c p_c (log p_c - log q_c), one scalar at a time, 0 where p_c == 0."""
    np_ = m.np
    axis = p.get("axis", -1)
    log_q = np_.moveaxis(np_.asarray(a["log_q"]), axis, -1)
    target = np_.moveaxis(np_.asarray(a["p"]), axis, -1)
    log_target = p.get("log_target", False)
    out = np_.zeros(log_q.shape[:-1])
    for idx in np_.ndindex(out.shape):
        total = 0.0
        for c in range(log_q.shape[-1]):
            t, lq = float(target[idx][c]), float(log_q[idx][c])
            log_p = t if log_target else (math.log(t) if t > 0 else -math.inf)
            if log_p == -math.inf:
                continue  # 0 log 0 = 0, whatever q is
            total += math.exp(log_p) * (log_p - lq)
        out[idx] = total
    if "mask" in a:  # masked samples count nowhere; "mean" over the kept ones
        kept = np_.asarray(a["mask"])
        out = np_.where(kept, out, 0.0)
        if r == "mean":
            return np_.asarray(out.sum() / max(int(kept.sum()), 1))
    return reduce_reference(np_, out, r)


#: why p is not differentiated where it has zeros (it is in the other variants, with every p > 0)
_KL_ZERO_P = (
    "some p entries are exactly 0, where the derivative of p log p is -inf (and p < 0 is outside the "
    "domain); polyloss returns the finite -log q there, as torch's F.kl_div"
)
_KL_MINUS_INF_LOG_P = "some log p entries are -inf (p = 0): no finite neighbourhood to differentiate in"

register(
    LossSpec(
        name="kl_div",
        variants=(
            _variant("probabilities", _kl_arrays),
            _variant("zero target probabilities", lambda rng, n: _kl_arrays(rng, n, zeros=True)).excluding(
                p=_KL_ZERO_P
            ),
            _variant(
                "zero target probabilities,log_q=-inf there (masked)",
                lambda rng, n: _kl_arrays(rng, n, zeros=True, masked=True),
            ).excluding(p=_KL_ZERO_P),
            _variant("log_target=True", lambda rng, n: _kl_arrays(rng, n, log_target=True), log_target=True),
            _variant(
                "log_target=True,log p=-inf",
                lambda rng, n: _kl_arrays(rng, n, zeros=True, log_target=True),
                log_target=True,
            ).excluding(p=_KL_MINUS_INF_LOG_P),
            _variant(
                "log_target=True,log p=log_q=-inf (masked)",
                lambda rng, n: _kl_arrays(rng, n, zeros=True, masked=True, log_target=True),
                log_target=True,
            ).excluding(p=_KL_MINUS_INF_LOG_P),
            _variant("axis=1,(N,C,L)", lambda rng, n: _kl_arrays(rng, n, shape=(n, 4, 3), axis=1), axis=1),
            _variant("probabilities,mask", _masked_kl_arrays),
            _variant(
                "log_target=True,mask", lambda rng, n: _masked_kl_arrays(rng, n, log_target=True), log_target=True
            ),
        ),
        references=(
            Reference("torch.nn.functional.kl_div (batchmean)", "torch", _torch_kl_div),
            Reference("optax.losses.kl_divergence[_with_log_targets]", "jax", _optax_kl_div),
            Reference("KL loop", "numpy", _numpy_kl_loop, grads=False),
        ),
        second_order=False,  # linear in log_q
        notes=(
            "'mean' averages the per-sample sums (torch's reduction='batchmean' on 2-D inputs; torch's 'mean' "
            "divides by the element count instead). Classes with p == 0 contribute exactly 0 even where log_q = -inf "
            "(masked classes) and their log_q gradient is 0: torch's F.kl_div gives NaN there (0 * -inf), and with "
            "log_target=True it gives NaN wherever log p = -inf; optax.losses.kl_divergence gives NaN when p == 0 "
            "meets log_q = -inf (0 * inf) and kl_divergence_with_log_targets wherever log p = -inf, unless those "
            "classes are excluded with their where= argument (the optax reference passes where= only then). "
            "The gradient in p is checked where every p > 0; at p == 0 the derivative is -inf and polyloss "
            "returns -log q (finite; 0 where log_q = -inf), as torch's F.kl_div does."
        ),
        layout=Layout(("log_q", "p", "mask")),
        mean=Mean("the number of kept samples (all without a mask)", _kept_samples),
        half_precision=HalfPrecision(
            variants=(
                "zero target probabilities,log_q=-inf there (masked)",
                "log_target=True,log p=log_q=-inf (masked)",
            ),
            zero_cases=(ZeroCase("kl_div zero probabilities", "zero target probabilities"),),
        ),
        plot=_shift_plot("log_q", "p", log_target=False),
    )
)


# -- js_div -----------------------------------------------------------------------


def _js_arrays(rng, n, *, tiny_p=False, tiny_q=False, shared=False, shape=None, axis=-1):
    """log_p, log_q; ``tiny_*``: some classes get probability ~e^-50 (zero in effect, log finite).

    ``shared``: q's near-zero classes are p's (else drawn independently)."""
    shape = shape or (n, K)
    logits_p, logits_q = normal(rng, shape, 2.0), normal(rng, shape, 2.0)
    mask_p = _zero_mask(rng, shape, axis)
    mask_q = mask_p if shared else _zero_mask(rng, shape, axis)
    if tiny_p:
        logits_p = np.where(mask_p, rng.uniform(-60.0, -40.0, size=shape), logits_p)
    if tiny_q:
        logits_q = np.where(mask_q, rng.uniform(-60.0, -40.0, size=shape), logits_q)
    return {"log_p": log_softmax(logits_p, axis=axis), "log_q": log_softmax(logits_q, axis=axis)}


def _scipy_js(m, a, p, r):
    try:
        from scipy.spatial.distance import jensenshannon
    except ImportError:
        raise NotApplicable("scipy is not installed") from None
    np_ = m.np
    out = jensenshannon(np_.exp(a["log_p"]), np_.exp(a["log_q"]), axis=p.get("axis", -1)) ** 2
    return reduce_reference(np_, np_.asarray(out, dtype=np_.float64), r)


def _torch_js(m, a, p, r):
    """0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2, with F.kl_div on log-probabilities."""
    axis = p.get("axis", -1)
    log_p, log_q = a["log_p"], a["log_q"]
    log_m = m.torch.logaddexp(log_p, log_q) - math.log(2.0)
    kl_pm = m.F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(dim=axis)
    kl_qm = m.F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(dim=axis)
    return reduce_reference(m.torch, 0.5 * kl_pm + 0.5 * kl_qm, r)


register(
    LossSpec(
        name="js_div",
        variants=(
            _variant("random", _js_arrays),
            _variant("near-zero p (log p ~ -50)", lambda rng, n: _js_arrays(rng, n, tiny_p=True)),
            _variant("near-zero p and q, other classes", lambda rng, n: _js_arrays(rng, n, tiny_p=True, tiny_q=True)),
            _variant(
                "near-zero p and q, same classes",
                lambda rng, n: _js_arrays(rng, n, tiny_p=True, tiny_q=True, shared=True),
            ),
            _variant("axis=1,(N,C,L)", lambda rng, n: _js_arrays(rng, n, shape=(n, 4, 3), axis=1), axis=1),
        ),
        references=(
            Reference("scipy.spatial.distance.jensenshannon ** 2", "numpy", _scipy_js, grads=False),
            Reference("JS from the definition (torch F.kl_div, log targets)", "torch", _torch_js),
        ),
        notes=(
            "Natural log, so the per-sample value lies in [0, log 2]. Exact zeros (log-probability -inf) give a "
            "finite value and gradient (tests/test_distribution.py); the specs keep log-probabilities finite "
            "(near-zero classes at ~e^-50) because finite differences cannot perturb -inf."
        ),
        layout=Layout(("log_p", "log_q")),
        half_precision=HalfPrecision(
            variants=("near-zero p and q, same classes",),
            zero_cases=(
                ZeroCase(
                    "js_div log p=log q=-inf",
                    "random",
                    (
                        set_to("log_p", (0, 0), -np.inf),
                        set_to("log_q", (0, 0), -np.inf),
                        set_to("log_p", (1, 1), -np.inf),
                    ),
                ),
            ),
        ),
        plot=_shift_plot("log_q", "log_p", log_target=True),
    )
)


# -- distillation -----------------------------------------------------------------


def _distillation_arrays(rng, n, *, target=True, shape=None, axis=-1):
    shape = shape or (n, K)
    arrays = {"student_logits": normal(rng, shape, 2.0), "teacher_logits": normal(rng, shape, 2.0)}
    if target:
        label_shape = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
        arrays["target"] = labels(rng, label_shape, shape[axis])
    return arrays


def _sft_guide_distillation(m, a, p, r):
    """the SFT guide's ``distillation_step`` loss, re-typed (KLDivLoss(batchmean) * T*T, CrossEntropyLoss)."""
    if p.get("axis", -1) not in (1, -1) or a["student_logits"].ndim != 2:
        raise NotApplicable("the original distils (N, C) logits along dim=1 only")
    nn, F = m.torch.nn, m.F
    T, alpha = p.get("temperature", 3.0), p.get("alpha", 0.1)
    student_output, teacher_output = a["student_logits"], a["teacher_logits"].detach()
    target = a.get("target")
    log_student = F.log_softmax(student_output / T, dim=1)
    soft_teacher = F.softmax(teacher_output / T, dim=1)
    if r == "mean":
        soft_loss = nn.KLDivLoss(reduction="batchmean")(log_student, soft_teacher) * (T * T)
        if target is None:
            return soft_loss
        hard_loss = nn.CrossEntropyLoss()(student_output, target)
        return soft_loss * alpha + hard_loss * (1 - alpha)
    # "sum" / "none": the natural per-sample extension
    soft_loss = F.kl_div(log_student, soft_teacher, reduction="none").sum(dim=1) * (T * T)
    if target is None:
        return reduce_reference(m.torch, soft_loss, r)
    hard_loss = F.cross_entropy(student_output, target, reduction="none")
    return reduce_reference(m.torch, soft_loss * alpha + hard_loss * (1 - alpha), r)


def _optax_distillation(m, a, p, r):
    T, alpha, axis = p.get("temperature", 3.0), p.get("alpha", 0.1), p.get("axis", -1)
    student, teacher = a["student_logits"], m.jax.lax.stop_gradient(a["teacher_logits"])
    soft = m.optax.losses.kl_divergence(
        m.jax.nn.log_softmax(student / T, axis=axis), m.jax.nn.softmax(teacher / T, axis=axis), axis=axis
    ) * (T * T)
    if "target" not in a:
        return reduce_reference(m.jnp, soft, r)
    hard = m.optax.losses.softmax_cross_entropy_with_integer_labels(student, a["target"], axis=axis)
    return reduce_reference(m.jnp, alpha * soft + (1 - alpha) * hard, r)


register(
    LossSpec(
        name="distillation",
        variants=(
            _variant("T=3,alpha=0.1,target", _distillation_arrays),
            _variant("no target", lambda rng, n: _distillation_arrays(rng, n, target=False)),
            _variant(
                "no target,T=2,alpha=0.7 (alpha unused)",
                lambda rng, n: _distillation_arrays(rng, n, target=False),
                temperature=2.0,
                alpha=0.7,
            ),
            _variant("T=1,alpha=0.5,target", _distillation_arrays, temperature=1.0, alpha=0.5),
            _variant(
                "T=0.5,axis=1,(N,C,L),target",
                lambda rng, n: _distillation_arrays(rng, n, shape=(n, 4, 3), axis=1),
                temperature=0.5,
                axis=1,
            ),
        ),
        not_differentiable={
            "teacher_logits": "held constant by definition: the teacher's gradient is stopped (documented), so "
            "the gradient in it is 0, not the derivative of the value"
        },
        references=(
            Reference("SFT guide distillation_step loss (re-typed)", "torch", _sft_guide_distillation),
            Reference(
                "optax.losses.kl_divergence + softmax_cross_entropy_with_integer_labels", "jax", _optax_distillation
            ),
        ),
        notes=(
            "Per sample: alpha T^2 KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) CE(student, target); "
            "'mean' is the SFT guide's distillation_step loss (KLDivLoss(batchmean) * T*T, CrossEntropyLoss()). "
            "Without a target the loss is T^2 KL alone (alpha unused). The teacher's gradient is stopped."
        ),
        layout=Layout(("student_logits", "teacher_logits", "target")),
        half_precision=HalfPrecision(variants=("T=0.5,axis=1,(N,C,L),target",)),
        plot=Plot(
            "student logit of class 0 (other 0; teacher (2, 0), no label)",
            lambda x: {"student_logits": f64([[x, 0.0]]), "teacher_logits": f64([[2.0, 0.0]])},
            span=(-4.0, 8.0),
            sweep=("temperature", (1.0, 3.0, 6.0)),
        ),
    )
)
