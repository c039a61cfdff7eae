"""Specs of the segmentation losses (see ``polyloss/core/segmentation.py``).

Two input forms: probabilities with a floating mask of the same shape (pooled,
or per sample), and logits with classes on ``axis`` plus integer labels
(softmax, one-hot, one score per class). The torch references re-type the
upstream code: study-hub's (eunsu-park/study-hub, lesson 24) ``DiceLoss`` / ``MultiClassDiceLoss`` /
``CombinedLoss``, segmentation_models_pytorch's ``soft_*_score`` losses, the
widely copied "Loss Function Library" ``TverskyLoss`` / ``FocalTverskyLoss``
(Kaggle, bigironsphere) and MONAI's ``GeneralizedDiceLoss``; the NumPy loops
follow the formulas one group (sample and/or class) at a time.

Probabilities stay inside [0.02, 0.98] so that finite differences (eps 1e-6)
never leave [0, 1]; exactly empty masks are tested in ``tests/test_segmentation.py``.
"""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import ENDPOINTS_OF_0_1, register
from polyloss.verify.specs._gen import away_from_kinks, binary, labels, normal, set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Raises, f64, i64
from polyloss.verify.specs.record import Case, Evaluate, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the probability losses' axis (shared by the comparison of dice, tversky and focal_tversky)
OVERLAP_AXIS = "probability of each pixel's true class (1/4 foreground)"
#: a 4 x 4 mask whose first row is foreground: imbalanced, as masks are
_PLOT_MASK = np.zeros((4, 4))
_PLOT_MASK[0] = 1.0
#: the class-index losses' axis: four pixels, one of class 1
LOGIT_AXIS = "logit of each pixel's true class (other 0; labels 0 0 0 1)"
_PLOT_LABELS = np.array([0, 0, 0, 1], dtype=np.int64)


def _overlap_plot(sweep: tuple[str, tuple[float, ...]] | None = None) -> Plot:
    """The loss of a soft mask giving each pixel's true class probability x (x on the foreground
    pixels, 1 - x on the background ones): from the inverted mask (x near 0) to the exact one."""
    return Plot(
        OVERLAP_AXIS,
        lambda x: {"pred": np.where(_PLOT_MASK == 1.0, x, 1.0 - x), "target": _PLOT_MASK.copy()},
        span=(0.02, 0.98),  # x -+ the finite-difference step stays a probability
        sweep=sweep,
    )


def _logit_plot(sweep: tuple[str, tuple[float, ...]] | None = None) -> Plot:
    """The loss of two-class logits (4, 2) giving each pixel's true class the logit x, the other 0."""

    def inputs(x: float) -> dict[str, np.ndarray]:
        onehot = np.eye(2)[_PLOT_LABELS]
        return {"pred": x * onehot, "target": _PLOT_LABELS.copy()}

    return Plot(LOGIT_AXIS, inputs, span=(-4.0, 6.0), sweep=sweep)


#: one foreground pixel at logit x, three background ones at -0.5 (hinge errors 1 - x and 0.5): the
#: slope is -1 while the foreground's error ranks first, the Jaccard increment 1/4 once it ranks last
_LOVASZ_HINGE_PLOT = Plot(
    "logit of the foreground pixel (3 background at -0.5)",
    lambda x: {"pred": f64([x, -0.5, -0.5, -0.5]), "target": f64([1.0, 0.0, 0.0, 0.0])},
    span=(-2.0, 2.5),
)
#: three classes, class 2 absent: one class-0 pixel with logits (x, 0, 0), three class-1 pixels with
#: logits (0, 1, 0); "all" also averages the absent class's loss (its largest probability)
_LOVASZ_SOFTMAX_PLOT = Plot(
    "true-class logit of the class-0 pixel (3 class-1 pixels)",
    lambda x: {"pred": f64([[x, 0.0, 0.0], *[[0.0, 1.0, 0.0]] * 3]), "target": i64([0, 1, 1, 1])},
    span=(-3.0, 5.0),
    sweep=("classes", ("present", "all")),
)


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    EMPTY = f64([[0.0, 0.0], [0.0, 0.0]])
    FULL = f64([[1.0, 1.0], [1.0, 1.0]])
    for loss in ("dice", "tversky", "jaccard", "focal_tversky"):
        edges.case(
            loss,
            "empty prediction of an empty mask, smooth=0: 0",
            {"pred": EMPTY, "target": EMPTY},
            Finite(0.0, grad="zero"),
            params={"smooth": 0.0},
        )
        edges.case(
            loss,
            "full prediction of a full mask: 0",
            {"pred": FULL, "target": FULL},
            Finite(0.0),
            params={"smooth": 0.0},
        )
        edges.case(
            loss,
            "inverted mask: 1",
            {"pred": f64([[1.0, 0.0], [0.0, 1.0]]), "target": f64([[0.0, 1.0], [1.0, 0.0]])},
            Finite(1.0),
            params={"smooth": 0.0},
        )
    edges.case(
        "dice",
        "foreground predicted on an empty mask is penalised",
        {"pred": f64([[0.5, 0.5]]), "target": f64([[0.0, 0.0]])},
        Finite(1.0 - 1.0 / 2.0),
    )
    edges.case(
        "dice",
        "probability outside [0, 1]",
        {"pred": f64([[1.5, 0.0]]), "target": f64([[1.0, 0.0]])},
        Raises(ValueError, r"pred must contain probabilities in \[0, 1\]"),
    )
    edges.case(
        "generalized_dice",
        "a class absent from the labels",
        {"pred": f64([[[5.0, -5.0, 0.0], [5.0, -5.0, 0.0]]]), "target": i64([[0, 0]])},
        Finite(),
    )
    edges.case(
        "dice_ce",
        "saturated logits, every class present",
        {"pred": f64([[[100.0, -100.0], [-100.0, 100.0]]]), "target": i64([[0, 1]])},
        Finite(lambda a: 0.5 * (1 - 1.0)),
    )
    for loss in ("dice", "tversky", "jaccard", "focal_tversky"):  # one loss per (no) sample
        edges.empty_batch(
            loss, {"pred": np.zeros((0, 2, 2)), "target": np.zeros((0, 2, 2))}, (0,), params={"per_sample": True}
        )
    edges.empty_batch(
        "generalized_dice",
        {"pred": np.zeros((0, 2, 3)), "target": np.zeros((0, 2), dtype=np.int64)},
        (0,),
        params={"per_sample": True},
    )
    edges.empty_batch(
        "dice_ce",
        {"pred": np.zeros((0, 2, 3)), "target": np.zeros((0, 2), dtype=np.int64)},
        (),
        reductions=("mean", "sum"),  # no "none"
    )
    void = {"pred": f64([[[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]]]), "target": i64([[255, 255]])}
    for name in ("dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "dice_ce"):
        edges.case(
            name,
            "every pixel void (ignore_index=255): nothing scored, 0",
            void,
            Finite(0.0, grad="zero"),
            params={"ignore_index": 255},
        )
    edges.case(
        "dice",
        "ignore_index with a mask target",
        {"pred": f64([0.2, 0.9]), "target": f64([0.0, 1.0])},
        Raises(ValueError, r"ignore_index apply to integer class-index targets"),
        params={"ignore_index": 255},
    )
    edges.case(
        "dice",
        "class_weight of the wrong length",
        {"pred": f64([[2.0, -1.0, 0.5]]), "target": i64([1]), "class_weight": f64([1.0, 2.0])},
        Raises(ValueError, r"class_weight"),
    )
    for name, arrays in (
        ("lovasz_hinge", {"pred": f64([[2.0, -1.0], [0.5, 3.0]]), "target": i64([[255, 255], [255, 255]])}),
        ("lovasz_softmax", void),
    ):
        edges.case(
            name,
            "every pixel void (ignore_index=255): 0",
            arrays,
            Finite(0.0, grad="zero"),
            params={"ignore_index": 255},
        )
        edges.case(
            name,
            "one sample entirely void, per_sample: it counts as 0 in the mean (smp's per_image)",
            {
                "pred": np.concatenate([arrays["pred"], arrays["pred"]]),
                "target": np.concatenate([arrays["target"], np.zeros_like(arrays["target"])]),
            },
            Finite(),
            params={"ignore_index": 255, "per_sample": True},
        )
    edges.case(
        "lovasz_hinge",
        "every pixel right by a margin: 0",
        {"pred": f64([[3.0, -2.0], [-1.5, 1.5]]), "target": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "lovasz_hinge",
        "saturated logits of the wrong sign",
        {"pred": f64([[-1e4, 1e4]]), "target": f64([[1.0, 0.0]])},
        Finite(1e4 + 1.0),  # both errors 1e4 + 1; the increments of Delta_J sum to 1
    )
    edges.case(
        "lovasz_hinge",
        "a single pixel",
        {"pred": f64([0.25]), "target": f64([1.0])},
        Finite(0.75),
    )
    edges.case(
        "lovasz_hinge",
        "a target value other than 0 and 1",
        {"pred": f64([0.25, 1.0]), "target": f64([1.0, 0.5])},
        Raises(ValueError, r"target must contain only 0 and 1, got a value of 0\.5"),
    )
    edges.case(
        "lovasz_hinge",
        "ignore_index with a floating target",
        {"pred": f64([0.25, 1.0]), "target": f64([1.0, 0.0])},
        Raises(ValueError, r"ignore_index needs an integer target"),
        params={"ignore_index": 255},
    )
    edges.case(
        "lovasz_softmax",
        "a class absent from the labels, classes='present': left out",
        {"pred": f64([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), "target": i64([0, 1])},
        Finite(lambda a: (2 / 3 * 1.0 + 1 / 3 * 0.0 + 2 / 3 * 1.0 + 1 / 3 * 0.0) / 2),
    )
    edges.case(
        "lovasz_softmax",
        "a class absent from the labels, classes='all': its largest probability",
        {"pred": f64([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), "target": i64([0, 1])},
        Finite(lambda a: (2 / 3 + 2 / 3 + 1 / 3) / 3),
        params={"classes": "all"},
    )
    edges.case(
        "lovasz_softmax",
        "saturated logits, every pixel right: 0",
        {"pred": f64([[100.0, -100.0], [-100.0, 100.0]]), "target": i64([0, 1])},
        Finite(0.0),
    )
    edges.case(
        "lovasz_softmax",
        "classes neither 'present' nor 'all'",
        {"pred": f64([[0.0, 0.0]]), "target": i64([0])},
        Raises(ValueError, r"classes must be 'present' or 'all', got 'some'"),
        params={"classes": "some"},
    )
    edges.empty_batch(
        "lovasz_hinge", {"pred": np.zeros((0, 2, 2)), "target": np.zeros((0, 2, 2))}, (0,), params={"per_sample": True}
    )
    edges.empty_batch(
        "lovasz_softmax",
        {"pred": np.zeros((0, 2, 3)), "target": np.zeros((0, 2), dtype=np.int64)},
        (0,),
        params={"per_sample": True},
    )
    edges.case(
        "jaccard",
        "ignore_background: class 0 left out",
        {"pred": f64([[0.0, 0.0]]), "target": i64([1])},
        Finite(lambda a: 1.0 - (0.5 + 1.0) / (0.5 + 1.0 - 0.5 + 1.0)),
        params={"ignore_background": True},
    )
    return edges


EDGES = _edge_cases()


def _pooled_unless_per_sample(case: Case) -> Layout:
    shared = ("class_weight",) if "class_weight" in case.arrays else ()
    if case.params.get("per_sample", False):
        return Layout(("pred", "target"), shared=shared)
    return Layout(
        ("pred", "target"),
        shared=shared,
        none="pooled",
        coupled="pooled over the batch (per_sample=False): one score per class or one overall",
    )


def _dice_ce_mean(case: Case, values: dict[str, np.ndarray], evaluate: Evaluate) -> float:
    pred, target = case.arrays["pred"], case.arrays["target"]
    classes = pred.shape[case.params.get("axis", -1)]

    def total(ce: float, dice: float) -> float:
        return float(evaluate({**case.params, "ce_weight": ce, "dice_weight": dice}, "sum"))

    ignore = case.params.get("ignore_index")
    pixels = target.size if ignore is None else int((target != ignore).sum())
    if case.params.get("ignore_background", False):
        classes -= 1
    ce_weight, dice_weight = case.params.get("ce_weight", 0.5), case.params.get("dice_weight", 0.5)
    ce_mean = total(1.0, 0.0) / pixels if pixels else 0.0
    return ce_weight * ce_mean + dice_weight * total(0.0, 1.0) / classes


def _empty_sample(name: str, variant: str) -> ZeroCase:
    return ZeroCase(f"{name} empty sample,smooth=0", variant, (set_to("pred", 0, 0.0), set_to("target", 0, 0.0)))


C = 3  # classes of the logits forms
SPATIAL = (2, 2)  # (H, W): small, the second-order finite differences grow with the input size


def _variant(name: str, make_arrays, **params: object) -> Variant:
    """A variant; its target is not differentiated where it is a binary mask (floating, all 0 or 1)."""
    variant = Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))
    target = make_arrays(np.random.default_rng(0), 2)["target"]
    if np.issubdtype(target.dtype, np.floating) and np.isin(target, (0.0, 1.0)).all():
        variant = variant.excluding(target=ENDPOINTS_OF_0_1)
    return variant


# --------------------------------------------------------------------------- generators


def _probabilities(rng, n, *, soft=False, empty_first=False):
    """pred in [0.02, 0.98], a binary (or soft) mask; (N, 1, 2, 3) as the original's binary (N, 1, H, W)."""
    shape = (n, 1, 2, 3)
    pred = rng.uniform(0.02, 0.98, size=shape)
    target = rng.uniform(0.0, 1.0, size=shape) if soft else binary(rng, shape)
    if empty_first:  # sample 0: an empty mask and an almost empty prediction
        target[0] = 0.0
        pred[0] = rng.uniform(1e-3, 2e-3, size=shape[1:])
    return {"pred": pred, "target": target}


def _logits(rng, n, *, axis=1, classes=C, absent=None):
    """Logits with ``classes`` on ``axis`` ((N, C, H, W) or (N, H, W, C)) and (N, H, W) labels.

    ``absent="first"``: sample 0 has no pixel of the last class; ``"all"``: no sample has one.
    """
    shape = (n, classes, *SPATIAL) if axis == 1 else (n, *SPATIAL, classes)
    target = labels(rng, (n, *SPATIAL), classes)
    if absent is not None:
        rows = target[:1] if absent == "first" else target
        rows[...] = labels(rng, rows.shape, classes - 1)
        rows[:, 0, 0], rows[:, 0, 1] = 0, 1  # the other classes stay present
    return {"pred": normal(rng, shape, 2.0), "target": target}


def _integer(m, target) -> bool:
    """Class indices (the logits form) rather than a floating mask, for a torch tensor."""
    return not m.torch.is_floating_point(target)


# --------------------------------------------------------------------------- NumPy loops


def _np_groups(a, p):
    """[(index, p_flat, t_flat)] per group and the output shape, computed element by element."""
    pred, target = np.asarray(a["pred"], dtype=np.float64), np.asarray(a["target"])
    per_sample = p.get("per_sample", False)
    if not np.issubdtype(target.dtype, np.integer):
        mask = target.astype(np.float64)
        if per_sample:
            return [((i,), pred[i].ravel(), mask[i].ravel()) for i in range(len(pred))], (len(pred),)
        return [((), pred.ravel(), mask.ravel())], ()
    logits = np.moveaxis(pred, p.get("axis", -1), -1)
    classes = logits.shape[-1]
    probs = np.zeros(logits.shape)
    for idx in np.ndindex(logits.shape[:-1]):  # softmax one pixel at a time
        e = np.exp(logits[idx] - logits[idx].max())
        probs[idx] = e / e.sum()
    onehot = np.zeros(logits.shape)
    ignore = p.get("ignore_index")
    for idx in np.ndindex(target.shape):
        if ignore is not None and int(target[idx]) == ignore:
            probs[idx] = 0.0  # an ignored pixel counts nowhere
            continue
        onehot[idx][int(target[idx])] = 1.0
    if per_sample:
        groups = [
            ((i, c), probs[i, ..., c].ravel(), onehot[i, ..., c].ravel())
            for i in range(len(probs))
            for c in range(classes)
        ]
        return groups, (len(probs), classes)
    return [((c,), probs[..., c].ravel(), onehot[..., c].ravel()) for c in range(classes)], (classes,)


def _np_sums(pg, tg):
    tp = fp = fn = 0.0
    for pi, ti in zip(pg, tg, strict=True):
        tp += pi * ti
        fp += pi * (1.0 - ti)
        fn += (1.0 - pi) * ti
    return tp, fp, fn


def _np_ratio(num, den):
    return 1.0 if num == 0 and den == 0 else num / den  # an empty group is a perfect score


def _np_loop(group_loss):
    def ref(m, a, p, r):
        groups, shape = _np_groups(a, p)
        out = np.zeros(shape)
        for index, pg, tg in groups:
            out[index] = group_loss(*_np_sums(pg, tg), p)
        if "class_weight" in a:
            out = out * np.asarray(a["class_weight"])
        if p.get("ignore_background", False):
            out = out[..., 1:]
        return reduce_reference(np, out, r)

    return ref


def _np_dice(tp, fp, fn, p):
    s = p.get("smooth", 1.0)
    # sum(p) = TP + FP, sum(t) = TP + FN
    return 1.0 - _np_ratio(2 * tp + s, (tp + fp) + (tp + fn) + s)


def _np_tversky_index(tp, fp, fn, p):
    s = p.get("smooth", 1.0)
    return _np_ratio(tp + s, tp + p.get("alpha", 0.5) * fp + p.get("beta", 0.5) * fn + s)


def _np_tversky(tp, fp, fn, p):
    return 1.0 - _np_tversky_index(tp, fp, fn, p)


def _np_focal_tversky(tp, fp, fn, p):
    return (1.0 - _np_tversky_index(tp, fp, fn, p)) ** p.get("gamma", 0.75)


def _np_jaccard(tp, fp, fn, p):
    s = p.get("smooth", 1.0)
    # union = sum(p) + sum(t) - TP = TP + FP + FN
    return 1.0 - _np_ratio(tp + s, tp + fp + fn + s)


# --------------------------------------------------------------------------- torch helpers


def _channels_first(m, a, p):
    """(logits (N, C, ...), labels) with the class axis moved to 1, as the upstream code expects."""
    return m.torch.movedim(a["pred"], p.get("axis", -1), 1), a["target"]


def _per_sample_or_pooled(m, a, p, r, pooled):
    """``pooled(pred, target)`` -> scalar or (C,); called per sample when ``per_sample``."""
    if p.get("per_sample", False):
        out = m.torch.stack([pooled(a["pred"][i : i + 1], a["target"][i : i + 1]) for i in range(len(a["pred"]))])
    else:
        out = pooled(a["pred"], a["target"])
    return reduce_reference(m.torch, out, r)


# --------------------------------------------------------------------------- optax


def _optax_dice(score: str):
    """``optax.losses.dice_loss`` (per sample, classes last, softmax applied; ``class_weights``,
    ``ignore_background``): its smooth enters numerator and denominator once with the intersection
    counted once, so polyloss's Dice with ``smooth`` is optax's with ``smooth / 2``; Tversky is its
    alpha/beta, Jaccard its alpha = beta = 1."""

    def ref(m, a, p, r):
        target = a["target"]
        axis = p.get("axis", -1)
        if not p.get("per_sample", False) or m.jnp.issubdtype(target.dtype, m.jnp.floating):
            raise NotApplicable("optax's dice_loss scores each sample's classes from logits and one-hot targets")
        if axis not in (-1, a["pred"].ndim - 1) or p.get("ignore_index") is not None:
            raise NotApplicable("optax's dice_loss takes classes last and has no ignore_index")
        smooth = p.get("smooth", 1.0)
        alpha, beta = {"dice": (0.5, 0.5), "jaccard": (1.0, 1.0)}.get(score, (p.get("alpha", 0.5), p.get("beta", 0.5)))
        out = m.optax.losses.dice_loss(
            a["pred"],
            m.jax.nn.one_hot(target, a["pred"].shape[-1], dtype=a["pred"].dtype),
            class_weights=a.get("class_weight"),
            smooth=smooth / 2 if score == "dice" else smooth,
            alpha=alpha,
            beta=beta,
            reduction="none",
            ignore_background=p.get("ignore_background", False),
        )
        return reduce_reference(m.jnp, out, r)

    return Reference(f"optax.losses.dice_loss ({score})", "jax", ref)


def _logits_ignored(rng, n, *, axis=1):
    """Logits and labels with about a quarter of the pixels labelled 255 (void)."""
    arrays = _logits(rng, n, axis=axis)
    arrays["target"] = np.where(rng.random(arrays["target"].shape) < 0.25, 255, arrays["target"])
    return arrays


def _logits_class_weight(rng, n):
    return {**_logits(rng, n, axis=-1), "class_weight": rng.uniform(0.2, 2.0, size=C)}


def _class_option_variants(**params: object) -> tuple[Variant, ...]:
    """The per-class options of dice, tversky and jaccard (``params``: the loss's own settings)."""
    return (
        _variant("logits,axis=1,ignore_index=255", _logits_ignored, axis=1, ignore_index=255, **params),
        _variant(
            "logits,axis=-1,per_sample,class_weight,ignore_background",
            _logits_class_weight,
            per_sample=True,
            ignore_background=True,
            **params,
        ),
        _variant(
            "logits,axis=-1,per_sample,ignore_background",
            lambda rng, n: _logits(rng, n, axis=-1),
            per_sample=True,
            ignore_background=True,
            **params,
        ),
    )


# --------------------------------------------------------------------------- dice


def _study_hub_dice(m, a, p, r):
    """Study-hub's ``DiceLoss`` (probabilities) and ``MultiClassDiceLoss`` (logits), re-typed.

    The original returns the mean over classes; "sum" and "none" extend it with the
    same per-class terms (their sum, their vector). It pools the whole batch.
    """
    torch = m.torch
    if p.get("per_sample", False):
        raise NotApplicable("the original Dice pools the whole batch")
    if "class_weight" in a or p.get("ignore_index") is not None or p.get("ignore_background", False):
        raise NotApplicable("the original has no ignore_index, class weights or ignore_background")
    smooth = p.get("smooth", 1.0)
    if not _integer(m, a["target"]):
        pred_flat = a["pred"].reshape(-1)  # the original's .view(-1)
        target_flat = a["target"].reshape(-1)
        intersection = (pred_flat * target_flat).sum()
        dice_score = (2.0 * intersection + smooth) / (pred_flat.sum() + target_flat.sum() + smooth)
        return 1 - dice_score  # a scalar: every reduction of one group is itself
    pred, target = _channels_first(m, a, p)
    num_classes = pred.size(1)
    pred_softmax = torch.softmax(pred, dim=1)
    target_one_hot = torch.movedim(m.F.one_hot(target, num_classes), -1, 1).to(pred.dtype)  # the original's permute
    losses = []
    for c in range(num_classes):
        pred_c = pred_softmax[:, c]
        target_c = target_one_hot[:, c]
        intersection = (pred_c * target_c).sum()
        dice = (2.0 * intersection + smooth) / (pred_c.sum() + target_c.sum() + smooth)
        losses.append(1 - dice)
    if r == "mean":
        return sum(losses) / num_classes  # the original's total_loss / num_classes
    return torch.stack(losses).sum() if r == "sum" else torch.stack(losses)


def _smp(score: str):
    """segmentation_models_pytorch's DiceLoss / JaccardLoss / TverskyLoss (gamma=1), re-typed.

    ``binary`` mode (``from_logits=False``) for probabilities, ``multiclass`` mode
    (``from_logits=True``) for logits; ``dims=(0, 2)`` pools the batch, so
    ``per_sample`` calls it on each sample. smp zeroes the loss of a class absent
    from the target (polyloss penalises predicting it): those cases are n/a. smp
    returns the mean over classes; "sum" and "none" use its per-class losses.
    """

    def compute_score(m, output, target, p, dims):
        torch, smooth, eps = m.torch, p.get("smooth", 1.0), 1e-7
        intersection = torch.sum(output * target, dim=dims)
        if score == "dice":
            cardinality = torch.sum(output + target, dim=dims)
            return (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
        if score == "jaccard":
            cardinality = torch.sum(output + target, dim=dims)
            union = cardinality - intersection
            return (intersection + smooth) / (union + smooth).clamp_min(eps)
        fp = torch.sum(output * (1.0 - target), dim=dims)
        fn = torch.sum((1 - output) * target, dim=dims)
        alpha, beta = p.get("alpha", 0.5), p.get("beta", 0.5)
        return (intersection + smooth) / (intersection + alpha * fp + beta * fn + smooth).clamp_min(eps)

    def ref(m, a, p, r):
        if "class_weight" in a or p.get("ignore_background", False):
            raise NotApplicable("smp has no class weights (its classes= subset is not re-typed)")
        integer = _integer(m, a["target"])
        pred, target = _channels_first(m, a, p) if integer else (a["pred"], a["target"])
        ignore_index = p.get("ignore_index")

        def pooled(y_pred, y_true):
            bs = y_true.size(0)
            dims = (0, 2)
            if integer:  # MULTICLASS_MODE, from_logits=True
                num_classes = y_pred.size(1)
                y_pred = y_pred.log_softmax(dim=1).exp()
                y_true = y_true.reshape(bs, -1)
                y_pred = y_pred.reshape(bs, num_classes, -1)
                if ignore_index is not None:
                    mask = y_true != ignore_index
                    y_pred = y_pred * mask.unsqueeze(1)
                    y_true = m.F.one_hot((y_true * mask).to(m.torch.long), num_classes)  # N,H*W -> N,H*W, C
                    y_true = y_true.permute(0, 2, 1) * mask.unsqueeze(1)  # N, C, H*W
                else:
                    y_true = m.F.one_hot(y_true, num_classes).permute(0, 2, 1)
            else:  # BINARY_MODE, from_logits=False
                y_true = y_true.reshape(bs, 1, -1)
                y_pred = y_pred.reshape(bs, 1, -1)
            scores = compute_score(m, y_pred, y_true.type(y_pred.dtype), p, dims)
            loss = 1.0 - scores
            mask = y_true.sum(dims) > 0
            if not bool(mask.all()):
                raise NotApplicable("smp zeroes the loss of a class absent from the target")
            loss = loss * mask.to(loss.dtype)
            return loss if integer else loss[0]  # binary mode: one channel, one group

        return _per_sample_or_pooled(m, {"pred": pred, "target": target}, p, r, pooled)

    names = {"dice": "DiceLoss", "jaccard": "JaccardLoss", "tversky": "TverskyLoss"}
    return Reference(f"segmentation_models_pytorch {names[score]} (re-typed)", "torch", ref)


def _torch_logits_check(m, a, name):
    if _integer(m, a["target"]):
        raise NotApplicable(f"the {name} takes probabilities and a mask")


def _loss_library(focal: bool):
    """The "Loss Function Library" ``TverskyLoss`` / ``FocalTverskyLoss`` (Kaggle), re-typed
    without its sigmoid (polyloss takes probabilities); pooled, called per sample for ``per_sample``."""

    name = "FocalTverskyLoss" if focal else "TverskyLoss"

    def ref(m, a, p, r):
        _torch_logits_check(m, a, name)
        smooth, alpha, beta, gamma = p.get("smooth", 1.0), p.get("alpha", 0.5), p.get("beta", 0.5), p.get("gamma", 0.75)

        def forward(inputs, targets):
            inputs = inputs.reshape(-1)
            targets = targets.reshape(-1)
            TP = (inputs * targets).sum()
            FP = ((1 - targets) * inputs).sum()
            FN = (targets * (1 - inputs)).sum()
            Tversky = (TP + smooth) / (TP + alpha * FP + beta * FN + smooth)
            if focal:
                return (1 - Tversky) ** gamma
            return 1 - Tversky

        return _per_sample_or_pooled(m, a, p, r, forward)

    return Reference(f"Loss Function Library {name} (Kaggle, re-typed)", "torch", ref)


register(
    LossSpec(
        name="dice",
        variants=(
            _variant("probabilities", _probabilities),
            _variant("probabilities,per_sample,smooth=0", _probabilities, per_sample=True, smooth=0.0),
            _variant("soft target,smooth=0.5", lambda rng, n: _probabilities(rng, n, soft=True), smooth=0.5),
            _variant("logits,axis=1", _logits, axis=1),
            _variant("logits,axis=-1,per_sample", lambda rng, n: _logits(rng, n, axis=-1), per_sample=True),
            _variant(
                "logits,axis=1,smooth=0,class absent", lambda rng, n: _logits(rng, n, absent="all"), axis=1, smooth=0.0
            ),
            _variant(
                "near-empty sample 0,per_sample",
                lambda rng, n: _probabilities(rng, n, empty_first=True),
                per_sample=True,
            ),
            _variant(
                "near-empty sample 0,per_sample,smooth=0",
                lambda rng, n: _probabilities(rng, n, empty_first=True),
                per_sample=True,
                smooth=0.0,
            ),
            *_class_option_variants(),
        ),
        references=(
            Reference("study-hub DiceLoss / MultiClassDiceLoss (re-typed)", "torch", _study_hub_dice),
            _smp("dice"),
            _optax_dice("dice"),
            Reference("dice loop", "numpy", _np_loop(_np_dice), grads=False),
        ),
        layout=_pooled_unless_per_sample,
        half_precision=HalfPrecision(
            variants=("logits,axis=1,smooth=0,class absent",),
            zero_cases=(
                _empty_sample("dice", "probabilities,per_sample,smooth=0"),
                ZeroCase(
                    "dice all empty,smooth=0",
                    "probabilities,per_sample,smooth=0",
                    (set_to("pred", slice(None), 0.0), set_to("target", slice(None), 0.0)),
                    {"per_sample": False},
                ),
            ),
        ),
        plot=_overlap_plot(),
    )
)


# --------------------------------------------------------------------------- tversky


register(
    LossSpec(
        name="tversky",
        variants=(
            _variant("probabilities,alpha=0.3,beta=0.7", _probabilities, alpha=0.3, beta=0.7),
            _variant(
                "probabilities,per_sample,alpha=0.7,beta=0.3,smooth=0",
                _probabilities,
                per_sample=True,
                alpha=0.7,
                beta=0.3,
                smooth=0.0,
            ),
            _variant("soft target,alpha=beta=1", lambda rng, n: _probabilities(rng, n, soft=True), alpha=1.0, beta=1.0),
            _variant("logits,axis=1", _logits, axis=1),
            _variant(
                "logits,axis=-1,per_sample,alpha=0.2,beta=0.8,smooth=0.5",
                lambda rng, n: _logits(rng, n, axis=-1),
                per_sample=True,
                alpha=0.2,
                beta=0.8,
                smooth=0.5,
            ),
            _variant(
                "near-empty sample 0,per_sample,alpha=0.4,beta=0.6",
                lambda rng, n: _probabilities(rng, n, empty_first=True),
                per_sample=True,
                alpha=0.4,
                beta=0.6,
            ),
            *_class_option_variants(alpha=0.3, beta=0.7),
        ),
        references=(
            _loss_library(focal=False),
            _smp("tversky"),
            _optax_dice("tversky"),
            Reference("tversky loop (TP, FP, FN)", "numpy", _np_loop(_np_tversky), grads=False),
        ),
        layout=_pooled_unless_per_sample,
        half_precision=HalfPrecision(
            zero_cases=(_empty_sample("tversky", "probabilities,per_sample,alpha=0.7,beta=0.3,smooth=0"),)
        ),
        plot=_overlap_plot(("alpha", (0.3, 0.5, 0.7))),
    )
)


# --------------------------------------------------------------------------- focal_tversky


register(
    LossSpec(
        name="focal_tversky",
        variants=(
            _variant("probabilities", _probabilities),
            _variant(
                "probabilities,per_sample,gamma=2,alpha=0.3,beta=0.7,smooth=0",
                _probabilities,
                per_sample=True,
                gamma=2.0,
                alpha=0.3,
                beta=0.7,
                smooth=0.0,
            ),
            _variant("soft target,gamma=1.5", lambda rng, n: _probabilities(rng, n, soft=True), gamma=1.5),
            _variant("logits,axis=1,gamma=0.5", _logits, axis=1, gamma=0.5),
            _variant(
                "logits,axis=-1,per_sample,gamma=4/3,alpha=0.7,beta=0.3",
                lambda rng, n: _logits(rng, n, axis=-1),
                per_sample=True,
                gamma=4 / 3,
                alpha=0.7,
                beta=0.3,
            ),
            _variant("logits,axis=1,ignore_index=255", _logits_ignored, axis=1, ignore_index=255),
        ),
        references=(
            _loss_library(focal=True),
            Reference("focal tversky loop ((1 - TI)^gamma)", "numpy", _np_loop(_np_focal_tversky), grads=False),
        ),
        layout=_pooled_unless_per_sample,
        half_precision=HalfPrecision(
            zero_cases=(_empty_sample("focal_tversky", "probabilities,per_sample,gamma=2,alpha=0.3,beta=0.7,smooth=0"),)
        ),
        plot=_overlap_plot(("gamma", (0.75, 1.0, 2.0))),
    )
)


# --------------------------------------------------------------------------- jaccard


register(
    LossSpec(
        name="jaccard",
        variants=(
            _variant("probabilities", _probabilities),
            _variant("probabilities,per_sample,smooth=0", _probabilities, per_sample=True, smooth=0.0),
            _variant("soft target,smooth=0.5", lambda rng, n: _probabilities(rng, n, soft=True), smooth=0.5),
            _variant("logits,axis=1", _logits, axis=1),
            _variant(
                "logits,axis=-1,per_sample,smooth=0",
                lambda rng, n: _logits(rng, n, axis=-1),
                per_sample=True,
                smooth=0.0,
            ),
            _variant(
                "near-empty sample 0,per_sample",
                lambda rng, n: _probabilities(rng, n, empty_first=True),
                per_sample=True,
            ),
            *_class_option_variants(),
        ),
        references=(
            _smp("jaccard"),
            _optax_dice("jaccard"),
            Reference("jaccard loop", "numpy", _np_loop(_np_jaccard), grads=False),
        ),
        layout=_pooled_unless_per_sample,
        half_precision=HalfPrecision(zero_cases=(_empty_sample("jaccard", "probabilities,per_sample,smooth=0"),)),
        plot=_overlap_plot(),
    )
)


# --------------------------------------------------------------------------- generalized_dice


def _monai_generalized_dice(m, a, p, r):
    """MONAI's ``GeneralizedDiceLoss(softmax=True, to_onehot_y=True, w_type="square",
    smooth_nr=smooth_dr=smooth, batch=not per_sample)``, re-typed (monai/losses/dice.py).

    MONAI takes (B, C, spatial) logits and (B, 1, spatial) labels; its "none"
    keeps broadcastable (B, 1, 1, 1) dimensions, squeezed to polyloss's shape. MONAI has no
    ``ignore_index``: the void pixels are zeroed in both the probabilities and the one-hot
    labels, as segmentation_models_pytorch's ``DiceLoss(ignore_index=...)`` does.
    """
    torch = m.torch
    input, target = _channels_first(m, a, p)
    target = target.unsqueeze(1)  # (B, 1, spatial)
    ignore = p.get("ignore_index")
    keep = None if ignore is None else target != ignore
    if keep is not None:
        target = torch.where(keep, target, 0)
    smooth = p.get("smooth", 1e-5)
    smooth_nr = smooth_dr = float(smooth)
    batch = not p.get("per_sample", False)

    n_pred_ch = input.shape[1]
    input = torch.softmax(input, 1)
    # monai.networks.one_hot: scatter along dim 1
    sh = list(target.shape)
    sh[1] = n_pred_ch
    target = torch.zeros(sh, dtype=input.dtype).scatter_(1, target.long(), 1)
    if keep is not None:
        input, target = input * keep, target * keep

    reduce_axis = torch.arange(2, len(input.shape)).tolist()
    if batch:
        reduce_axis = [0, *reduce_axis]
    intersection = torch.sum(target * input, reduce_axis)
    ground_o = torch.sum(target, reduce_axis)
    pred_o = torch.sum(input, reduce_axis)
    denominator = ground_o + pred_o

    w = torch.reciprocal(ground_o * ground_o)  # w_type="square"
    infs = torch.isinf(w)
    if batch:
        w[infs] = 0.0
        w = w + infs * torch.max(w)
    else:
        w[infs] = 0.0
        max_values = torch.max(w, dim=1)[0].unsqueeze(dim=1)
        w = w + infs * max_values

    final_reduce_dim = 0 if batch else 1
    numer = 2.0 * (intersection * w).sum(final_reduce_dim, keepdim=True) + smooth_nr
    denom = (denominator * w).sum(final_reduce_dim, keepdim=True) + smooth_dr
    f = 1.0 - (numer / denom)
    if r == "mean":
        return torch.mean(f)
    if r == "sum":
        return torch.sum(f)
    return f.reshape(()) if batch else f.reshape(-1)


def _np_generalized_dice(m, a, p, r):
    """Sudre et al.'s formula one group at a time; an absent class takes the largest present weight."""
    groups, shape = _np_groups(a, p)
    s = p.get("smooth", 1e-5)
    per_group: dict[tuple[int, ...], list[tuple[float, float, float]]] = {}
    for index, pg, tg in groups:
        inter = sum(pi * ti for pi, ti in zip(pg, tg, strict=True))
        per_group.setdefault(index[:-1], []).append((inter, float(sum(tg)), float(sum(pg))))
    out = np.zeros(shape[:-1])
    for key, classes in per_group.items():
        present = [1.0 / v**2 for _, v, _ in classes if v > 0]
        w_max = max(present) if present else 0.0
        weights = [1.0 / v**2 if v > 0 else w_max for _, v, _ in classes]
        numer = 2 * sum(w * i for w, (i, _, _) in zip(weights, classes, strict=True)) + s
        denom = sum(w * (v + q) for w, (_, v, q) in zip(weights, classes, strict=True)) + s
        out[key] = 1.0 - _np_ratio(numer, denom)
    return reduce_reference(np, out, r)


register(
    LossSpec(
        name="generalized_dice",
        variants=(
            _variant("axis=1", _logits, axis=1),
            _variant("axis=1,per_sample", _logits, axis=1, per_sample=True),
            _variant(
                "axis=-1,per_sample,class absent in sample 0",
                lambda rng, n: _logits(rng, n, axis=-1, absent="first"),
                per_sample=True,
            ),
            _variant(
                "axis=1,class absent,smooth=0",
                lambda rng, n: _logits(rng, n, axis=1, classes=C + 1, absent="all"),
                axis=1,
                smooth=0.0,
            ),
            _variant("axis=-1,smooth=1", lambda rng, n: _logits(rng, n, axis=-1, classes=2), smooth=1.0),
            _variant("axis=1,per_sample,ignore_index=255", _logits_ignored, axis=1, per_sample=True, ignore_index=255),
        ),
        references=(
            Reference("MONAI GeneralizedDiceLoss (re-typed)", "torch", _monai_generalized_dice),
            Reference("generalized dice loop", "numpy", _np_generalized_dice, grads=False),
        ),
        notes="the class weights 1/V_c^2 depend on the labels only (no gradient), as in MONAI.",
        layout=_pooled_unless_per_sample,
        half_precision=HalfPrecision(variants=("axis=1,class absent,smooth=0",)),
        plot=_logit_plot(),
    )
)


# --------------------------------------------------------------------------- dice_ce


def _study_hub_combined(m, a, p, r):
    """Study-hub's ``CombinedLoss`` (``nn.CrossEntropyLoss()`` + ``MultiClassDiceLoss``), re-typed,
    with its weights and Dice smoothing as parameters; "sum" sums both terms (pixels, classes)."""
    torch = m.torch
    if "class_weight" in a or p.get("ignore_index") is not None or p.get("ignore_background", False):
        raise NotApplicable("the original has no ignore_index, class weights or ignore_background")
    pred, target = _channels_first(m, a, p)
    ce_weight, dice_weight, smooth = p.get("ce_weight", 0.5), p.get("dice_weight", 0.5), p.get("smooth", 1.0)
    ce_loss = m.F.cross_entropy(pred, target, reduction=r)
    num_classes = pred.size(1)
    pred_softmax = torch.softmax(pred, dim=1)
    target_one_hot = torch.movedim(m.F.one_hot(target, num_classes), -1, 1).to(pred.dtype)
    total_loss = 0
    for c in range(num_classes):
        pred_c = pred_softmax[:, c]
        target_c = target_one_hot[:, c]
        intersection = (pred_c * target_c).sum()
        dice = (2.0 * intersection + smooth) / (pred_c.sum() + target_c.sum() + smooth)
        total_loss += 1 - dice
    dice_loss = total_loss / num_classes if r == "mean" else total_loss
    return ce_weight * ce_loss + dice_weight * dice_loss


def _np_dice_ce(m, a, p, r):
    """CE one pixel at a time (ignored pixels skipped; "mean" over the kept ones) plus the Dice loop."""
    logits = np.moveaxis(np.asarray(a["pred"], dtype=np.float64), p.get("axis", -1), -1)
    target, ignore = np.asarray(a["target"]), p.get("ignore_index")
    terms = []
    for idx in np.ndindex(target.shape):
        label = int(target[idx])
        if ignore is not None and label == ignore:
            continue
        row = logits[idx]
        top = row.max()
        terms.append(top + math.log(math.fsum(math.exp(v - top) for v in row)) - row[label])
    ce = math.fsum(terms)
    if r == "mean":
        ce = ce / len(terms) if terms else 0.0
    dice = _np_loop(_np_dice)(m, a, p, r)
    return np.asarray(p.get("ce_weight", 0.5) * ce + p.get("dice_weight", 0.5) * float(dice))


register(
    LossSpec(
        name="dice_ce",
        variants=(
            _variant("axis=1", _logits, axis=1),
            _variant(
                "axis=-1,ce_weight=1,dice_weight=2,smooth=0.5",
                lambda rng, n: _logits(rng, n, axis=-1),
                ce_weight=1.0,
                dice_weight=2.0,
                smooth=0.5,
            ),
            _variant("axis=1,class absent,smooth=0", lambda rng, n: _logits(rng, n, absent="all"), axis=1, smooth=0.0),
            _variant("axis=1,ignore_index=255", _logits_ignored, axis=1, ignore_index=255),
            _variant(
                "axis=-1,class_weight,ignore_background,ignore_index=255",
                lambda rng, n: {**_logits_ignored(rng, n, axis=-1), "class_weight": rng.uniform(0.2, 2.0, size=C)},
                ignore_background=True,
                ignore_index=255,
            ),
        ),
        references=(
            Reference("study-hub CombinedLoss (re-typed)", "torch", _study_hub_combined),
            Reference("CE and Dice loops", "numpy", _np_dice_ce, grads=False),
        ),
        layout=Layout(
            ("pred", "target"),
            shared=("class_weight",),
            none=None,
            coupled="CE over every pixel plus Dice pooled over the batch; no 'none'",
        ),
        mean=Mean(
            "ce_weight * CE summed over pixels / pixels + dice_weight * Dice summed over classes / classes (no 'none')",
            expected=_dice_ce_mean,
        ),
        half_precision=HalfPrecision(
            zero_cases=(ZeroCase("dice_ce class absent,smooth=0", "axis=1,class absent,smooth=0"),)
        ),
        plot=_logit_plot(("ce_weight", (0.0, 0.5, 1.0))),
    )
)


# --------------------------------------------------------------------------- Lovász


def _hinge_mask(rng, n, *, void=False):
    """(N, 2, 3) logits whose hinge errors 1 -+ x stay away from 0, and a binary mask (an integer
    one with about a fifth of the pixels 255 when ``void``)."""
    shape = (n, 2, 3)
    target = binary(rng, shape)
    if void:
        target = np.where(rng.random(shape) < 0.2, 255, target.astype(np.int64))
    return {"pred": away_from_kinks(rng, shape, kinks=(1.0,)), "target": target}


def _smp_lovasz_grad(gt_sorted, dtype):
    """segmentation_models_pytorch's ``_lovasz_grad`` (Berman's Algorithm 1), re-typed; in the
    errors' ``dtype`` where smp calls ``.float()`` (its float32 cannot be dotted with float64 errors)."""
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.to(dtype).cumsum(0)
    union = gts + (1 - gt_sorted).to(dtype).cumsum(0)
    jaccard = 1.0 - intersection / union
    if p > 1:  # cover 1-pixel case
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def _smp_lovasz_hinge(m, a, p, r):
    """segmentation_models_pytorch's ``LovaszLoss(mode="binary")`` (``_lovasz_hinge``,
    ``_lovasz_hinge_flat``, ``_flatten_binary_scores``; losses/lovasz.py), re-typed; ``"sum"``
    and ``"none"`` keep the per-image losses its mean averages."""
    torch, F = m.torch, m.F
    ignore = p.get("ignore_index")

    def flat(logits, labels):
        scores, labels = logits.reshape(-1), labels.reshape(-1)
        if ignore is not None:
            valid = labels != ignore
            scores, labels = scores[valid], labels[valid]
        if len(labels) == 0:
            return scores.sum() * 0.0  # only void pixels, the gradients should be 0
        signs = 2.0 * labels.float() - 1.0
        errors = 1.0 - scores * signs.to(scores.dtype)
        errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
        gt_sorted = labels[perm.data]
        return torch.dot(F.relu(errors_sorted), _smp_lovasz_grad(gt_sorted, scores.dtype))

    return _per_sample_or_pooled(m, a, p, r, flat)


def _smp_lovasz_softmax(m, a, p, r):
    """segmentation_models_pytorch's ``LovaszLoss(mode="multiclass")`` (softmax over the classes,
    ``_lovasz_softmax``, ``_lovasz_softmax_flat``, ``_flatten_probas``; losses/lovasz.py), re-typed,
    with ``classes`` passed through as its helper takes it (smp's class fixes "present")."""
    torch = m.torch
    pred, target = _channels_first(m, a, p)
    ignore, classes = p.get("ignore_index"), p.get("classes", "present")

    def flat(logits, labels):
        probas = logits.softmax(dim=1)
        C = probas.size(1)
        probas = torch.movedim(probas, 1, -1).reshape(-1, C)  # [P, C]
        labels = labels.reshape(-1)
        if ignore is not None:
            valid = labels != ignore
            probas, labels = probas[valid], labels[valid]
        if probas.numel() == 0:
            return logits.sum() * 0.0  # only void pixels, the gradients should be 0
        losses = []
        for c in range(C):
            fg = (labels == c).type_as(probas)  # foreground for class c
            if classes == "present" and fg.sum() == 0:
                continue
            errors = (fg - probas[:, c]).abs()
            errors_sorted, perm = torch.sort(errors, 0, descending=True)
            losses.append(torch.dot(errors_sorted, _smp_lovasz_grad(fg[perm.data], probas.dtype)))
        return sum(losses) / len(losses) if losses else logits.sum() * 0.0

    return _per_sample_or_pooled(m, {"pred": pred, "target": target}, p, r, flat)


def _np_lovasz(errors, foreground):
    """The Lovász extension of the Jaccard loss by its definition: the pixels join the mispredicted
    set M in decreasing error, each adding its error times the increase of |M| / |F u M|."""
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    fg = {i for i, f in enumerate(foreground) if f}
    total, mispredicted, previous = 0.0, set(), 0.0
    for i in order:
        mispredicted.add(i)
        jaccard = len(mispredicted) / len(fg | mispredicted)
        total += errors[i] * (jaccard - previous)
        previous = jaccard
    return total


def _np_lovasz_groups(a, p, *, softmax):
    """[(probabilities or logits, labels)] of each group's kept pixels, one pixel at a time."""
    pred, target = np.asarray(a["pred"], dtype=np.float64), np.asarray(a["target"])
    if softmax:
        pred = np.moveaxis(pred, p.get("axis", -1), -1)
    ignore = p.get("ignore_index")
    samples = (
        [(pred[i : i + 1], target[i : i + 1]) for i in range(len(pred))] if p.get("per_sample") else [(pred, target)]
    )
    groups = []
    for sample_pred, sample_target in samples:
        kept = []
        for idx in np.ndindex(sample_target.shape):
            if ignore is not None and int(sample_target[idx]) == ignore:
                continue
            row = sample_pred[idx]
            if softmax:
                e = np.exp(row - row.max())
                row = e / e.sum()
            kept.append((row, int(sample_target[idx])))
        groups.append(kept)
    return groups


def _np_lovasz_hinge(m, a, p, r):
    losses = []
    for kept in _np_lovasz_groups(a, p, softmax=False):
        errors = [max(1.0 - float(x) * (2 * t - 1), 0.0) for x, t in kept]
        losses.append(_np_lovasz(errors, [t == 1 for _, t in kept]))
    out = np.asarray(losses) if p.get("per_sample") else np.asarray(losses[0])
    return reduce_reference(np, out, r)


def _np_lovasz_softmax(m, a, p, r):
    classes = np.asarray(a["pred"]).shape[p.get("axis", -1)]
    losses = []
    for kept in _np_lovasz_groups(a, p, softmax=True):
        per_class = []
        for c in range(classes):
            foreground = [t == c for _, t in kept]
            if p.get("classes", "present") == "present" and not any(foreground):
                continue
            per_class.append(
                _np_lovasz([abs(float(f) - row[c]) for (row, _), f in zip(kept, foreground, strict=True)], foreground)
            )
        losses.append(math.fsum(per_class) / len(per_class) if per_class else 0.0)
    out = np.asarray(losses) if p.get("per_sample") else np.asarray(losses[0])
    return reduce_reference(np, out, r)


register(
    LossSpec(
        name="lovasz_hinge",
        variants=(
            _variant("mask", _hinge_mask),
            _variant("mask,per_sample", _hinge_mask, per_sample=True),
            _variant("integer mask,ignore_index=255", lambda rng, n: _hinge_mask(rng, n, void=True), ignore_index=255),
            _variant(
                "integer mask,per_sample,ignore_index=255",
                lambda rng, n: _hinge_mask(rng, n, void=True),
                per_sample=True,
                ignore_index=255,
            ),
        ),
        references=(
            Reference("segmentation_models_pytorch LovaszLoss binary (re-typed)", "torch", _smp_lovasz_hinge),
            Reference("Lovász extension by its definition", "numpy", _np_lovasz_hinge, grads=False),
        ),
        not_differentiable={"target": "a binary mask"},
        layout=_pooled_unless_per_sample,
        plot=_LOVASZ_HINGE_PLOT,
    )
)


register(
    LossSpec(
        name="lovasz_softmax",
        variants=(
            _variant("axis=1", _logits, axis=1),
            _variant("axis=-1,per_sample", lambda rng, n: _logits(rng, n, axis=-1), per_sample=True),
            _variant("axis=1,classes=all", _logits, axis=1, classes="all"),
            _variant(
                "axis=-1,per_sample,class absent in sample 0",
                lambda rng, n: _logits(rng, n, axis=-1, absent="first"),
                per_sample=True,
            ),
            _variant(
                "axis=-1,per_sample,class absent in sample 0,classes=all",
                lambda rng, n: _logits(rng, n, axis=-1, absent="first"),
                per_sample=True,
                classes="all",
            ),
            _variant("axis=1,ignore_index=255", _logits_ignored, axis=1, ignore_index=255),
            _variant("axis=1,per_sample,ignore_index=255", _logits_ignored, axis=1, per_sample=True, ignore_index=255),
        ),
        references=(
            Reference("segmentation_models_pytorch LovaszLoss multiclass (re-typed)", "torch", _smp_lovasz_softmax),
            Reference("Lovász extension by its definition", "numpy", _np_lovasz_softmax, grads=False),
        ),
        layout=_pooled_unless_per_sample,
        plot=_LOVASZ_SOFTMAX_PLOT,
    )
)
