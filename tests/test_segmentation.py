"""Identities and edge behaviour of the segmentation losses, on numpy, torch and jax.

Each property compares a loss with an independent computation: the overlap
formulas written here in NumPy, another loss of the catalogue the identity
relates it to (Tversky with alpha = beta = 1/2 is Dice, with alpha = beta = 1
Jaccard; focal Tversky with gamma = 1 is Tversky; dice_ce is cross-entropy plus
Dice), or the analytic gradient at an empty mask. Gradients come from torch
autograd and ``jax.grad``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import close, namespace, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from polyloss.testing import masks
from polyloss.verify.harness.base import Harness

REDUCTIONS = ("mean", "sum", "none")
OVERLAP = ("dice", "jaccard", "tversky", "focal_tversky")  # the losses with both input forms
C = 3
# Drawn inputs of fixed shapes (eager JAX compiles each op once per shape): probabilities in [0.02, 0.98]
# with binary (N, 1, 2, 3) masks, empty and full ones included; (N, C, 2, 3) logits within +-6 with labels.
PROBABILITY_CASES = masks(batch=3, height=2, width=3, margin=0.02).map(lambda c: (c[0][:, None], c[1][:, None]))
LOGIT_CASES = st.tuples(
    hnp.arrays(np.float64, (2, C, 2, 3), elements=st.floats(-6.0, 6.0)),
    hnp.arrays(np.int64, (2, 2, 3), elements=st.integers(0, C - 1)),
)


# --------------------------------------------------------------------------- helpers


def reduce(values: np.ndarray, reduction: str):
    return {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_one_hot_last(labels: np.ndarray, classes: int) -> np.ndarray:
    return (labels[..., None] == np.arange(classes)).astype(np.float64)


def np_group_loss(name: str, p: np.ndarray, t: np.ndarray, *, smooth=1.0, alpha=0.5, beta=0.5, gamma=0.75) -> float:
    """The documented formula of one group (no empty-group special case: callers avoid 0/0)."""
    tp, fp, fn = np.sum(p * t), np.sum(p * (1 - t)), np.sum((1 - p) * t)
    if name == "dice":
        return 1 - (2 * tp + smooth) / (np.sum(p) + np.sum(t) + smooth)
    if name == "jaccard":
        return 1 - (tp + smooth) / (np.sum(p) + np.sum(t) - tp + smooth)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return 1 - index if name == "tversky" else (1 - index) ** gamma


def logits_case(seed: int, n: int = 2, axis: int = 1):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, C, 2, 3))
    target = rng.integers(0, C, size=(n, 2, 3))
    return (logits if axis == 1 else np.moveaxis(logits, 1, -1)), target


def call(backend: Harness, name: str, pred, target, **kwargs):
    return getattr(namespace(backend), name)(backend.asarray(pred), backend.asarray(target), **kwargs)


def assert_same_loss(backend: Harness, first, second, pred, target) -> None:
    """``first(x, t)`` == ``second(x, t)`` for every reduction, and their gradients (autodiff backends)."""
    for reduction in REDUCTIONS:
        x, t = backend.asarray(pred), backend.asarray(target)
        close(first(x, t, reduction), to_numpy(second(x, t, reduction)))
    if backend.has_autodiff:
        t = backend.asarray(target)
        _, (g1,) = backend.value_and_grad(lambda x: first(x, t, "none"), [backend.asarray(pred)], (0,))
        _, (g2,) = backend.value_and_grad(lambda x: second(x, t, "none"), [backend.asarray(pred)], (0,))
        close(g1, to_numpy(g2))


# --------------------------------------------------------------------------- identities between losses


@pytest.mark.parametrize("form", ["probabilities,per_sample", "logits"])
@given(probabilities=PROBABILITY_CASES, logits=LOGIT_CASES)
@settings(max_examples=2)
def test_tversky_with_half_weights_and_no_smoothing_is_dice(backend, form, probabilities, logits):
    m = namespace(backend)
    if form == "logits":
        (pred, target), kw = logits, {"axis": 1}
    else:
        (pred, target), kw = probabilities, {"per_sample": True}
    assert_same_loss(
        backend,
        lambda x, t, r, kw=kw: m.tversky(x, t, alpha=0.5, beta=0.5, smooth=0.0, reduction=r, **kw),
        lambda x, t, r: m.dice(x, t, smooth=0.0, reduction=r, **kw),
        pred,
        target,
    )
    # with smoothing the two differ ((TP + s) / (TP + (FP + FN) / 2 + s) is not Dice): the identity is not vacuous
    smoothed = to_numpy(call(backend, "tversky", pred, target, smooth=1.0, reduction="none", **kw))
    assert not np.allclose(smoothed, to_numpy(call(backend, "dice", pred, target, smooth=1.0, reduction="none", **kw)))


@pytest.mark.parametrize("smooth", [0.0, 0.7])
@given(probabilities=PROBABILITY_CASES, logits=LOGIT_CASES)
@settings(max_examples=2)
def test_tversky_with_unit_weights_is_jaccard(backend, smooth, probabilities, logits):
    m = namespace(backend)
    for (pred, target), kw in ((probabilities, {"per_sample": True}), (logits, {"axis": 1})):
        assert_same_loss(
            backend,
            lambda x, t, r, kw=kw: m.tversky(x, t, alpha=1.0, beta=1.0, smooth=smooth, reduction=r, **kw),
            lambda x, t, r, kw=kw: m.jaccard(x, t, smooth=smooth, reduction=r, **kw),
            pred,
            target,
        )


@given(probabilities=PROBABILITY_CASES, logits=LOGIT_CASES)
@settings(max_examples=2)
def test_focal_tversky_with_gamma_one_is_tversky_and_powers_each_group(backend, probabilities, logits):
    m = namespace(backend)
    params = {"alpha": 0.3, "beta": 0.7, "smooth": 0.5}
    for (pred, target), kw in ((probabilities, {"per_sample": True}), (logits, {"axis": 1})):
        assert_same_loss(
            backend,
            lambda x, t, r, kw=kw: m.focal_tversky(x, t, gamma=1.0, reduction=r, **params, **kw),
            lambda x, t, r, kw=kw: m.tversky(x, t, reduction=r, **params, **kw),
            pred,
            target,
        )
        # gamma applies to each group's loss before the reduction, not to the reduced loss
        groups = to_numpy(call(backend, "tversky", pred, target, reduction="none", **params, **kw))
        for reduction in REDUCTIONS:
            close(
                call(backend, "focal_tversky", pred, target, gamma=2.0, reduction=reduction, **params, **kw),
                reduce(groups**2, reduction),
            )


@pytest.mark.parametrize("axis", [1, -1])
def test_dice_ce_is_weighted_cross_entropy_plus_dice(backend, axis):
    pred, target = logits_case(11, axis=axis)
    m = namespace(backend)
    x, t = backend.asarray(pred), backend.asarray(target)
    for reduction in ("mean", "sum"):
        ce = to_numpy(m.cross_entropy(x, t, axis=axis, reduction=reduction))
        dice = to_numpy(m.dice(x, t, axis=axis, smooth=0.5, reduction=reduction))
        close(
            m.dice_ce(x, t, axis=axis, ce_weight=0.3, dice_weight=2.0, smooth=0.5, reduction=reduction),
            0.3 * ce + 2.0 * dice,
        )


# --------------------------------------------------------------------------- multi-class from logits


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("axis", [1, -1])
def test_multiclass_from_logits_is_the_mean_of_per_class_losses(backend, name, axis):
    pred, target = logits_case(5, axis=axis)
    probs = np.moveaxis(np_softmax(pred, axis), axis, -1)  # (N, H, W, C)
    onehot = np_one_hot_last(target, C)
    params = {"smooth": 0.5} if name in ("dice", "jaccard") else {"alpha": 0.3, "beta": 0.7, "smooth": 0.5}
    pooled = np.array([np_group_loss(name, probs[..., c], onehot[..., c], **params) for c in range(C)])
    per_sample = np.array(
        [
            [np_group_loss(name, probs[i, ..., c], onehot[i, ..., c], **params) for c in range(C)]
            for i in range(len(pred))
        ]
    )
    for reduction in REDUCTIONS:
        close(call(backend, name, pred, target, axis=axis, reduction=reduction, **params), reduce(pooled, reduction))
        close(
            call(backend, name, pred, target, axis=axis, per_sample=True, reduction=reduction, **params),
            reduce(per_sample, reduction),
        )
    # the same as the probabilities form applied to each class's softmax column and one-hot mask
    columns = [
        to_numpy(call(backend, name, probs[..., c], onehot[..., c], reduction="none", **params)) for c in range(C)
    ]
    close(call(backend, name, pred, target, axis=axis, reduction="none", **params), np.stack(columns))


def test_generalized_dice_gives_an_absent_class_the_largest_weight(backend):
    pred, target = logits_case(3, n=2)
    target[0] = np.where(target[0] == 2, 0, target[0])  # sample 0 has no pixel of class 2
    target[0, 0, :2] = [0, 1]
    probs = np.moveaxis(np_softmax(pred, 1), 1, -1)
    onehot = np_one_hot_last(target, C)

    def rows(absent_weight):
        out = []
        for i in range(2):
            volume = onehot[i].sum(axis=(0, 1))
            weight = np.where(volume > 0, 1.0 / np.maximum(volume, 1) ** 2, 0.0)
            weight = np.where(volume > 0, weight, absent_weight(weight))
            inter, mass = (probs[i] * onehot[i]).sum(axis=(0, 1)), probs[i].sum(axis=(0, 1))
            out.append(1 - (2 * np.sum(weight * inter) + 1e-5) / (np.sum(weight * (volume + mass)) + 1e-5))
        return np.array(out)

    assert onehot[0, ..., 2].sum() == 0 and onehot[1, ..., 2].sum() > 0
    out = to_numpy(call(backend, "generalized_dice", pred, target, axis=1, per_sample=True, reduction="none"))
    close(out, rows(np.max))
    # weighting the absent class with 0 (dropping it) would give another value: the rule is really exercised
    assert not np.isclose(out[0], rows(lambda w: 0.0)[0])


# --------------------------------------------------------------------------- empty, perfect and penalised


EMPTY_GRADIENT = {  # d loss / d p_j at p = t = 0 with smoothing s: 1/s for Dice and Jaccard, alpha/s for Tversky
    "dice": lambda s: 1.0 / s,
    "jaccard": lambda s: 1.0 / s,
    "tversky": lambda s: 0.3 / s,
    "focal_tversky": lambda s: 0.0,  # (1 - TI)^0.75 at TI = 1: the guarded power has gradient 0, not inf
}


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("smooth", [1.0, 0.0])
def test_empty_prediction_of_an_empty_mask_is_zero_with_a_finite_gradient(backend, name, smooth):
    rng = np.random.default_rng(0)
    pred, target = rng.uniform(0.1, 0.9, size=(3, 1, 2, 3)), rng.integers(0, 2, size=(3, 1, 2, 3)).astype(np.float64)
    target[1], pred[1] = 0.0, 0.0  # sample 1: nothing predicted, nothing to find
    target[[0, 2], 0, 0, 0] = 1.0  # the others are not empty
    kw = {"smooth": smooth} | ({"alpha": 0.3, "beta": 0.7} if "tversky" in name else {})
    loss = getattr(namespace(backend), name)
    fn = lambda x, r: loss(x, backend.asarray(target), per_sample=True, reduction=r, **kw)  # noqa: E731
    out = to_numpy(fn(backend.asarray(pred), "none"))
    assert out[1] == 0.0
    for i in (0, 2):
        close(out[i], np_group_loss(name, pred[i], target[i], **kw))
    # the whole batch empty: every reduction is 0
    empty = np.zeros_like(pred)
    for reduction in REDUCTIONS:
        assert to_numpy(loss(backend.asarray(empty), backend.asarray(empty), reduction=reduction, **kw)) == 0.0
    if backend.has_autodiff:
        _, (grad,) = backend.value_and_grad(lambda x: fn(x, "none"), [backend.asarray(pred)], (0,))
        grad = to_numpy(grad)
        assert np.isfinite(grad).all()
        expected = EMPTY_GRADIENT[name](smooth) if smooth else 0.0  # smooth=0: a perfect score held constant
        close(grad[1], np.full(pred[1].shape, expected))


@pytest.mark.parametrize("name", OVERLAP)
@pytest.mark.parametrize("smooth", [1.0, 0.0])
def test_predicting_foreground_on_an_empty_target_is_penalised(backend, name, smooth):
    """Unlike segmentation_models_pytorch, which zeroes the loss of classes absent from the target."""
    pred, target = np.full((3, 1, 2, 3), 0.3), np.zeros((3, 1, 2, 3))
    m = getattr(namespace(backend), name)
    out = to_numpy(m(backend.asarray(pred), backend.asarray(target), smooth=smooth, per_sample=True, reduction="none"))
    close(out, [np_group_loss(name, pred[0], target[0], smooth=smooth)] * 3)
    assert (out > 0.1).all()
    if backend.has_autodiff:  # with smoothing, lowering the prediction lowers the loss; without, the loss is 1 flat
        t = backend.asarray(target)
        _, (grad,) = backend.value_and_grad(
            lambda x: m(x, t, smooth=smooth, per_sample=True, reduction="none"), [backend.asarray(pred)], (0,)
        )
        if smooth:
            assert (to_numpy(grad) > 0).all()
        else:
            close(out, np.ones(3))
            close(grad, np.zeros(pred.shape))
    # from logits: a class absent from the labels but predicted has a positive loss of its own
    logits, labels = logits_case(2)
    labels = np.minimum(labels, 1)  # class 2 absent
    per_class = to_numpy(
        getattr(namespace(backend), name)(
            backend.asarray(logits), backend.asarray(labels), axis=1, smooth=smooth, reduction="none"
        )
    )
    probs = np_softmax(logits, 1)[:, 2]
    close(per_class[2], np_group_loss(name, probs, np.zeros_like(probs), smooth=smooth))
    assert per_class[2] > 0.1


@pytest.mark.parametrize("name", OVERLAP)
def test_perfect_prediction_is_zero_without_smoothing(backend, name):
    rng = np.random.default_rng(4)
    target = rng.integers(0, 2, size=(3, 1, 2, 3)).astype(np.float64)
    target[:, 0, 0, 0] = 1.0  # no sample is empty
    m = getattr(namespace(backend), name)
    for per_sample in (False, True):
        for reduction in REDUCTIONS:
            value = to_numpy(
                m(
                    backend.asarray(target),
                    backend.asarray(target),
                    smooth=0.0,
                    per_sample=per_sample,
                    reduction=reduction,
                )
            )
            close(value, np.zeros(value.shape), atol=1e-15)
    # a slightly wrong prediction is not zero (the check can fail)
    assert to_numpy(m(backend.asarray(0.9 * target), backend.asarray(target), smooth=0.0)) > 1e-3
    if backend.has_autodiff:
        t = backend.asarray(target)
        _, (grad,) = backend.value_and_grad(
            lambda x: m(x, t, smooth=0.0, per_sample=True, reduction="none"), [backend.asarray(target)], (0,)
        )
        assert np.isfinite(to_numpy(grad)).all()


# --------------------------------------------------------------------------- bad labels


@pytest.mark.parametrize("name", (*OVERLAP, "generalized_dice", "dice_ce"))
@pytest.mark.parametrize("bad", [C, -1])
def test_out_of_range_labels_raise(backend, name, bad):
    pred, target = logits_case(0)
    fn = getattr(namespace(backend), name)
    fn(backend.asarray(pred), backend.asarray(target), axis=1)  # in range: fine
    target[1, 1, 2] = bad
    with pytest.raises(ValueError, match=rf"class index {bad}, outside \[0, {C}\)"):
        fn(backend.asarray(pred), backend.asarray(target), axis=1)
