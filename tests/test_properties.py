"""Identities and documented edge behaviour, checked on numpy, torch and jax.

Every property compares the loss with an independent computation: a NumPy
formula written here, another loss of the catalogue the identity relates it
to, or the same loss on a reduced input (dropped rows, rescaled weights).
Gradients come from torch autograd and ``jax.grad``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import AUTODIFF, close, namespace, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import polyloss.jax as pj
import polyloss.torch as pt
from polyloss.testing import logits_and_targets

K = 5
# Drawn inputs: fixed shapes (eager JAX compiles each op once per shape), logits within +-10 (saturated
# rows, ties and zeros included: hypothesis draws them), class weights and binary or soft targets.
CLASS_CASES = logits_and_targets(num_classes=K, batch=4, max_abs=10.0)
WEIGHTS = hnp.arrays(np.float64, K, elements=st.floats(0.2, 2.0))
SCORES = hnp.arrays(np.float64, (4, 3), elements=st.floats(-10.0, 10.0))
ZERO_ONE = hnp.arrays(np.float64, (4, 3), elements=st.sampled_from([0.0, 1.0]))


# --------------------------------------------------------------------------- helpers


def np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_ce_rows(logits: np.ndarray, target: np.ndarray, weight=None, smoothing: float = 0.0) -> np.ndarray:
    """Per-sample CE of (N, K) logits in float64, torch's formula, written as a loop."""
    out = np.zeros(len(target))
    w = np.ones(logits.shape[-1]) if weight is None else np.asarray(weight, dtype=np.float64)
    for i, y in enumerate(target):
        lp = np_log_softmax(np.asarray(logits[i], dtype=np.float64))
        out[i] = -(1 - smoothing) * w[y] * lp[y] - smoothing / len(lp) * np.sum(w * lp)
    return out


def np_softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def np_bce_logits(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    return t * np_softplus(-x) + (1 - t) * np_softplus(x)


def np_focal_rows(logits: np.ndarray, target: np.ndarray, gamma: float) -> np.ndarray:
    lp = np_log_softmax(np.asarray(logits, dtype=np.float64))[np.arange(len(target)), target]
    return -((-np.expm1(lp)) ** gamma) * lp


def class_case(seed: int, n: int = 4, k: int = K):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=2.0, size=(n, k)), rng.integers(0, k, size=n), rng.uniform(0.2, 2.0, size=k)


# --------------------------------------------------------------------------- focal == CE, sigmoid_focal == BCE


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(case=CLASS_CASES)
@settings(max_examples=3)
def test_focal_gamma0_equals_cross_entropy(backend, reduction, case):
    logits, target = case[0], case[1].copy()
    target[1] = -1  # also through the ignore path
    m = namespace(backend)
    x, y = backend.asarray(logits), backend.asarray(target)
    focal = lambda v, t: m.focal(v, t, gamma=0.0, alpha=None, ignore_index=-1, reduction=reduction)  # noqa: E731
    ce = lambda v, t: m.cross_entropy(v, t, ignore_index=-1, reduction=reduction)  # noqa: E731
    kept = np_ce_rows(logits[target != -1], target[target != -1])
    expected = {"mean": kept.mean(), "sum": kept.sum(), "none": np.insert(kept, 1, 0.0)}[reduction]
    close(focal(x, y), expected)
    close(ce(x, y), expected)
    if backend.has_autodiff:
        _, (g_focal,) = backend.value_and_grad(focal, [x, y], (0,))
        _, (g_ce,) = backend.value_and_grad(ce, [x, y], (0,))
        close(g_focal, to_numpy(g_ce))
        assert np.all(to_numpy(g_focal)[1] == 0.0)


@given(logits=SCORES, binary=ZERO_ONE, soft=hnp.arrays(np.float64, (4, 3), elements=st.floats(0.0, 1.0)))
@settings(max_examples=3)
def test_sigmoid_focal_gamma0_equals_bce_with_logits(backend, logits, binary, soft):
    target = np.concatenate([binary[:2], soft[2:]])  # hard and soft targets
    m = namespace(backend)
    x, t = backend.asarray(logits), backend.asarray(target)
    sf = lambda v, y: m.sigmoid_focal(v, y, gamma=0.0, alpha=None, reduction="none")  # noqa: E731
    bce = lambda v, y: m.bce_with_logits(v, y, reduction="none")  # noqa: E731
    close(sf(x, t), np_bce_logits(logits, target))
    close(bce(x, t), np_bce_logits(logits, target))
    if backend.has_autodiff:
        _, (g_sf,) = backend.value_and_grad(sf, [x, t], (0,))
        _, (g_bce,) = backend.value_and_grad(bce, [x, t], (0,))
        close(g_sf, to_numpy(g_bce))
        close(g_bce, np_sigmoid(logits) - target)  # d/dx of BCE-with-logits is sigmoid(x) - t


# --------------------------------------------------------------------------- cross_entropy: ignore, weights, reductions


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@given(case=logits_and_targets(num_classes=K, batch=5, max_abs=10.0), weight=WEIGHTS)
@settings(max_examples=2)
def test_cross_entropy_ignored_row_equals_dropped_row(backend, reduction, weighted, smoothing, case, weight):
    logits, target = case[0], case[1].copy()
    target[[0, 3]] = -100
    keep = target != -100
    m = namespace(backend)
    w = backend.asarray(weight) if weighted else None
    full = m.cross_entropy(
        backend.asarray(logits),
        backend.asarray(target),
        weight=w,
        ignore_index=-100,
        label_smoothing=smoothing,
        reduction=reduction,
    )
    dropped = m.cross_entropy(
        backend.asarray(logits[keep]),
        backend.asarray(target[keep]),
        weight=w,
        label_smoothing=smoothing,
        reduction=reduction,
    )
    close(full, to_numpy(dropped))
    rows = np_ce_rows(logits[keep], target[keep], weight if weighted else None, smoothing)
    norm = weight[target[keep]].sum() if weighted else keep.sum()
    close(full, rows.sum() / norm if reduction == "mean" else rows.sum())


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@given(case=CLASS_CASES)
@settings(max_examples=2)
def test_cross_entropy_all_ones_weight_equals_no_weight(backend, smoothing, case):
    logits, target = case
    m = namespace(backend)
    for reduction in ("mean", "sum", "none"):
        plain = m.cross_entropy(
            backend.asarray(logits), backend.asarray(target), label_smoothing=smoothing, reduction=reduction
        )
        ones = m.cross_entropy(
            backend.asarray(logits),
            backend.asarray(target),
            weight=backend.asarray(np.ones(K)),
            label_smoothing=smoothing,
            reduction=reduction,
        )
        close(ones, to_numpy(plain))
        close(
            plain,
            {"mean": np.mean, "sum": np.sum, "none": lambda r: r}[reduction](
                np_ce_rows(logits, target, smoothing=smoothing)
            ),
        )


@given(case=CLASS_CASES, weight=WEIGHTS)
@settings(max_examples=3)
def test_cross_entropy_label_smoothing_zero_equals_plain(backend, case, weight):
    logits, target = case
    m = namespace(backend)
    x, y, w = backend.asarray(logits), backend.asarray(target), backend.asarray(weight)
    for kwargs in ({}, {"weight": w}):
        plain = m.cross_entropy(x, y, reduction="none", **kwargs)
        zero = m.cross_entropy(x, y, label_smoothing=0.0, reduction="none", **kwargs)
        close(zero, to_numpy(plain))
        close(zero, np_ce_rows(logits, target, weight if kwargs else None))
    # and a non-zero smoothing really changes it, by the documented formula
    close(m.cross_entropy(x, y, label_smoothing=0.3, reduction="none"), np_ce_rows(logits, target, smoothing=0.3))


@given(
    case=logits_and_targets(num_classes=K, batch=6, max_abs=10.0),
    weight=hnp.arrays(np.float64, K, elements=st.floats(1.5, 3.0)),  # > 1: the weight sum exceeds the count
)
@settings(max_examples=3)
def test_cross_entropy_weighted_mean_is_sum_over_kept_weight_sum(backend, case, weight):
    logits, target = case[0], case[1].copy()
    target[[1, 4]] = 7  # ignore_index outside the class range
    keep = target != 7
    m = namespace(backend)
    x, y, w = backend.asarray(logits), backend.asarray(target), backend.asarray(weight)
    mean = m.cross_entropy(x, y, weight=w, ignore_index=7)
    total = m.cross_entropy(x, y, weight=w, ignore_index=7, reduction="sum")
    close(mean, to_numpy(total) / weight[target[keep]].sum())
    close(total, np_ce_rows(logits[keep], target[keep], weight).sum())
    assert not np.isclose(to_numpy(mean), to_numpy(total) / keep.sum(), rtol=1e-3, atol=0)  # not the plain count


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "focal"])
def test_reduction_none_gives_zero_for_ignored_rows(backend, loss):
    logits, target, _ = class_case(3, n=5)
    target[[0, 2]] = -1
    inputs = np_log_softmax(logits) if loss == "nll" else logits
    out = to_numpy(
        getattr(namespace(backend), loss)(
            backend.asarray(inputs), backend.asarray(target), ignore_index=-1, reduction="none"
        )
    )
    assert out.shape == (5,)
    assert out[0] == 0.0 and out[2] == 0.0
    keep = target != -1
    expected = (
        np_ce_rows(logits[keep], target[keep]) if loss != "focal" else np_focal_rows(logits[keep], target[keep], 2.0)
    )
    close(out[keep], expected)


# --------------------------------------------------------------------------- all-ignored batches and -inf rows


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "focal"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_batch_is_exactly_zero_with_zero_gradient(backend, loss, reduction, weighted):
    logits, _, weight = class_case(0, n=3)
    inputs = np_log_softmax(logits) if loss == "nll" else logits
    target = np.full(3, -100)
    m = namespace(backend)
    kwargs = {"ignore_index": -100, "reduction": reduction}
    if weighted:
        kwargs["alpha" if loss == "focal" else "weight"] = backend.asarray(weight)
    fn = lambda v, t: getattr(m, loss)(v, t, **kwargs)  # noqa: E731
    x, y = backend.asarray(inputs), backend.asarray(target)
    assert to_numpy(fn(x, y)) == 0.0
    if backend.has_autodiff:
        value, (grad,) = backend.value_and_grad(fn, [x, y], (0,))
        assert to_numpy(value) == 0.0
        assert np.all(np.isfinite(to_numpy(grad))) and np.all(to_numpy(grad) == 0.0)


def test_torch_cross_entropy_gives_nan_for_all_ignored_batch():
    """Documents the deliberate difference: torch's own mean is 0/0 there."""
    out = F.cross_entropy(torch.zeros(3, K, dtype=torch.float64), torch.full((3,), -100))
    assert torch.isnan(out)
    assert pt.cross_entropy(torch.zeros(3, K, dtype=torch.float64), torch.full((3,), -100), ignore_index=-100) == 0.0


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("loss", ["cross_entropy", "focal"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_ignored_rows_with_minus_inf_logits_give_zero_gradient(backend, loss, dtype):
    logits, target, _ = class_case(1, n=4)
    logits[[1, 2]] = -np.inf
    target[[1, 2]] = -100
    keep = target != -100
    m = namespace(backend)
    fn = lambda v, t: getattr(m, loss)(v, t, ignore_index=-100)  # noqa: E731
    value, (grad,) = backend.value_and_grad(fn, [backend.asarray(logits, dtype), backend.asarray(target)], (0,))
    grad = to_numpy(grad)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~keep] == 0.0)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    if loss == "cross_entropy":
        close(value, np_ce_rows(logits[keep], target[keep]).mean(), rtol=rtol, atol=rtol)
        onehot = np.eye(K)[target[keep]]
        close(grad[keep], (np.exp(np_log_softmax(logits[keep])) - onehot) / keep.sum(), rtol=rtol * 10, atol=rtol)
    else:
        close(value, np_focal_rows(logits[keep], target[keep], 2.0).mean(), rtol=rtol, atol=rtol)


def test_torch_cross_entropy_gives_nan_gradient_for_ignored_minus_inf_rows():
    """Documents the deliberate difference: torch's backward is NaN on such rows."""
    logits = torch.tensor([[1.0, 2.0, 3.0], [-np.inf] * 3], dtype=torch.float64, requires_grad=True)
    F.cross_entropy(logits, torch.tensor([0, -100])).backward()
    assert torch.isnan(logits.grad[1]).all()


# --------------------------------------------------------------------------- float32 shift invariance


@given(
    steps=hnp.arrays(np.int64, (4, K), elements=st.integers(-3, 3)),
    target=hnp.arrays(np.int64, 4, elements=st.integers(0, K - 1)),
)
@settings(max_examples=3)
def test_cross_entropy_float32_shift_invariance(backend, steps, target):
    # Every logit is 1e8 + 8k, exactly representable in float32 (its spacing at 1e8 is 8).
    # A "logsumexp minus the target logit" formula (e.g. optax's
    # softmax_cross_entropy_with_integer_labels) loses everything to cancellation here;
    # polyloss is not compared with it, only with the exact float64 answer.
    small = 8.0 * steps
    logits32 = np.float32(small + 1e8)
    exact = np.float64(logits32) - 1e8
    np.testing.assert_array_equal(exact, small)
    expected = np_ce_rows(exact, target)
    m = namespace(backend)
    out = m.cross_entropy(backend.asarray(logits32), backend.asarray(target), reduction="none")
    assert to_numpy(out).dtype == np.float32
    close(out, expected, rtol=1e-5, atol=1e-6)
    close(m.cross_entropy(backend.asarray(logits32), backend.asarray(target)), expected.mean(), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- bce_with_logits at extreme logits


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_with_logits_exact_at_plus_minus_1000(backend, dtype):
    logits = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    target = np.array([1.0, 0.0, 0.0, 1.0])
    expected = np.array([0.0, 0.0, 1000.0, 1000.0])  # |x| on the wrong side, 0 on the right side
    m = namespace(backend)
    out = to_numpy(m.bce_with_logits(backend.asarray(logits, dtype), backend.asarray(target, dtype), reduction="none"))
    np.testing.assert_array_equal(out, expected)
    if backend.has_autodiff:
        fn = lambda v, t: m.bce_with_logits(v, t, reduction="none")  # noqa: E731
        _, (grad,) = backend.value_and_grad(fn, [backend.asarray(logits, dtype), backend.asarray(target, dtype)], (0,))
        np.testing.assert_array_equal(to_numpy(grad), np.array([0.0, 0.0, 1.0, -1.0]))  # sigmoid(x) - t


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_with_logits_at_infinity(backend, dtype):
    logits = np.array([np.inf, -np.inf, np.inf, -np.inf])
    target = np.array([1.0, 0.0, 0.0, 1.0])
    m = namespace(backend)
    fn = lambda v, t: m.bce_with_logits(v, t, reduction="none")  # noqa: E731
    out = to_numpy(fn(backend.asarray(logits, dtype), backend.asarray(target, dtype)))
    np.testing.assert_array_equal(out, np.array([0.0, 0.0, np.inf, np.inf]))
    if backend.has_autodiff:
        for i in range(4):  # one element at a time: an infinite loss elsewhere must not leak into the gradient

            def single(v, t, i=i):
                return m.bce_with_logits(v, t, reduction="none")[i]

            _, (grad,) = backend.value_and_grad(
                single, [backend.asarray(logits, dtype), backend.asarray(target, dtype)], (0,)
            )
            grad = to_numpy(grad)
            assert np.all(np.isfinite(grad)), (i, grad)
            # sigmoid(x) - t: 0 on the correct side (i < 2), +1 / -1 on the wrong side
            expected = np.zeros(4)
            expected[i] = (0.0, 0.0, 1.0, -1.0)[i]
            np.testing.assert_array_equal(grad, expected)


# --------------------------------------------------------------------------- focal losses at saturated logits


def np_sigmoid_focal_grad(x: np.ndarray, t: np.ndarray, gamma: float) -> np.ndarray:
    """d/dx of (1 - p_t)^gamma BCE(x, t) for hard targets, alpha=None, in closed form."""
    s = np_sigmoid(np.where(t == 1, -x, x))  # 1 - p_t
    sp = np_softplus(np.where(t == 1, -x, x))  # BCE
    mag = s**gamma * (gamma * (1 - s) * sp + s)
    return np.where(t == 1, -mag, mag)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_focal_gamma_half_finite_gradient_at_saturation(backend, dtype):
    logits = np.array([30.0, -30.0, 30.0, -30.0, 1.5, -0.5])
    target = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    m = namespace(backend)
    fn = lambda v, t: m.sigmoid_focal(v, t, gamma=0.5, alpha=None, reduction="sum")  # noqa: E731
    value, (grad,) = backend.value_and_grad(fn, [backend.asarray(logits, dtype), backend.asarray(target, dtype)], (0,))
    grad = to_numpy(grad)
    assert np.all(np.isfinite(grad)), grad
    rtol = 1e-10 if dtype == "float64" else 1e-4
    close(grad, np_sigmoid_focal_grad(logits, target, 0.5), rtol=rtol, atol=1e-30)
    s = np_sigmoid(np.where(target == 1, -logits, logits))
    close(value, np.sum(s**0.5 * np_bce_logits(logits, target)), rtol=rtol, atol=0)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_finite_gradient_at_saturated_correct_class(backend, dtype, gamma):
    logits = np.array([[100.0, 0.0, 0.0, 0.0], [0.0, 0.0, 100.0, 0.0], [0.5, -1.0, 2.0, 0.0]])
    target = np.array([0, 2, 1])
    m = namespace(backend)
    fn = lambda v, t: m.focal(v, t, gamma=gamma, reduction="none")  # noqa: E731
    value, (grad,) = backend.value_and_grad(fn, [backend.asarray(logits, dtype), backend.asarray(target)], (0,))
    grad = to_numpy(grad)
    assert np.all(np.isfinite(grad)), grad
    assert np.all(np.abs(grad[:2]) < 1e-30)  # the true gradient is below 1e-40 there
    tol = 1e-10 if dtype == "float64" else 1e-5
    close(to_numpy(value)[2], np_focal_rows(logits[2:], target[2:], gamma)[0], rtol=tol, atol=0)
    # the non-saturated row against central differences of the NumPy formula
    h = 1e-6
    fd = np.zeros(4)
    for c in range(4):
        up, down = logits[2:].copy(), logits[2:].copy()
        up[0, c] += h
        down[0, c] -= h
        fd[c] = (np_focal_rows(up, target[2:], gamma)[0] - np_focal_rows(down, target[2:], gamma)[0]) / (2 * h)
    close(grad[2], fd, rtol=1e-6 if dtype == "float64" else 1e-4, atol=1e-7 if dtype == "float64" else 1e-5)


# --------------------------------------------------------------------------- half precision


def _half_cases(rng: np.random.Generator):
    logits = rng.normal(scale=2.0, size=(4, K))
    labels = rng.integers(0, K, size=4)
    pred, tgt = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    bl, bt = rng.normal(scale=3.0, size=(4, 3)), rng.integers(0, 2, size=(4, 3)).astype(np.float64)
    return {
        "cross_entropy": (logits, labels, lambda x, t: np_ce_rows(x, t).mean()),
        "mse": (pred, tgt, lambda x, t: np.mean((x - t) ** 2)),
        "bce_with_logits": (bl, bt, lambda x, t: np.mean(np_bce_logits(x, t))),
        "focal": (logits, labels, lambda x, t: np_focal_rows(x, t, 2.0).mean()),
    }


@pytest.mark.parametrize(
    "backend,dtype", [("torch", "float16"), ("torch", "bfloat16"), ("jax", "bfloat16")], indirect=["backend"]
)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce_with_logits", "focal"])
def test_half_precision_inputs_compute_in_float32(backend, dtype, loss):
    x_np, t_np, reference = _half_cases(np.random.default_rng(7))[loss]
    x_half = backend.asarray(x_np, dtype)
    t_half = backend.asarray(t_np) if t_np.dtype.kind == "i" else backend.asarray(t_np, dtype)
    fn = getattr(namespace(backend), loss)
    # the framework's own autodiff, not the harness's (whose NumPy results hold half precision as float32)
    if backend.name == "torch":
        x = x_half.detach().clone().requires_grad_(True)
        value = fn(x, t_half)
        (grad,) = torch.autograd.grad(value.sum(), x)
    else:
        value, grad = fn(x_half, t_half), jax.grad(lambda v: jnp.sum(fn(v, t_half)))(x_half)
    assert str(value.dtype).endswith("float32"), value.dtype
    assert grad.dtype == x_half.dtype, (grad.dtype, x_half.dtype)
    assert grad.shape == x_half.shape
    # the float32 result on the same (rounded) inputs, computed in float64 NumPy
    x_rounded = to_numpy(x_half).astype(np.float64)
    t_rounded = t_np if t_np.dtype.kind == "i" else to_numpy(t_half).astype(np.float64)
    np.testing.assert_allclose(to_numpy(value), reference(x_rounded, t_rounded), rtol=1e-5)
    np.testing.assert_allclose(to_numpy(value), reference(x_np, t_np), rtol=1e-2)
    assert np.all(np.isfinite(to_numpy(grad)))


# --------------------------------------------------------------------------- out-of-range class indices


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "focal", "poly1"])
@pytest.mark.parametrize("bad", [5, -1, 9])
def test_out_of_range_class_index_raises_in_eager_mode(backend, loss, bad):
    logits, target, _ = class_case(0, n=3)
    target[1] = bad
    m = namespace(backend)
    kwargs = {} if loss == "poly1" else {"ignore_index": -100}  # another ignore_index does not excuse it
    with pytest.raises(ValueError, match=rf"class index {bad}\b.*outside \[0, {K}\)"):
        getattr(m, loss)(backend.asarray(logits), backend.asarray(target), **kwargs)


def _nan_pattern(out, logits: np.ndarray, target: np.ndarray, loss: str) -> None:
    """Sample 1 (the bad label) is NaN; samples 0 and 2 equal the NumPy formula."""
    out = to_numpy(out)
    assert np.isnan(out[1]), out
    good = [0, 2]
    close(out[good], np_class_loss(loss, logits[good], target[good]), rtol=1e-10, atol=1e-12)


def np_class_loss(loss: str, logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    rows = np.arange(len(target))
    if loss == "cross_entropy":
        return np_ce_rows(logits, target)
    if loss == "nll":
        return -logits[rows, target]
    if loss == "focal":
        return np_focal_rows(logits, target, 2.0)
    p_y = np.exp(np_log_softmax(logits)[rows, target])
    return np_ce_rows(logits, target) + (1.0 - p_y)  # poly1, epsilon=1


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "focal", "poly1"])
@pytest.mark.parametrize("bad", [5, -1])
def test_out_of_range_class_index_is_nan_when_traced(loss, bad):
    """Under jax.jit, jax.vmap and torch.func.vmap (no concrete values to check)."""
    logits, target, _ = class_case(0, n=3)
    target[1] = bad
    x, y = jnp.asarray(logits), jnp.asarray(target)
    per_sample = {
        name: functools.partial(getattr(ns, loss), reduction="none") for name, ns in (("jax", pj), ("torch", pt))
    }
    _nan_pattern(jax.jit(per_sample["jax"])(x, y), logits, target, loss)
    _nan_pattern(jax.vmap(per_sample["jax"])(x, y), logits, target, loss)
    _nan_pattern(
        torch.func.vmap(per_sample["torch"])(torch.as_tensor(logits), torch.as_tensor(target)), logits, target, loss
    )
    assert np.isnan(to_numpy(jax.jit(getattr(pj, loss))(x, y)))  # and so is the mean


def test_out_of_range_class_index_is_nan_under_torch_compile():
    torch._dynamo.reset()
    compiled = torch.compile(lambda v, t: pt.cross_entropy(v, t, reduction="none"), fullgraph=True, dynamic=False)
    logits, target, _ = class_case(0, n=3)
    for bad in (5, -1):  # same shapes: one compilation serves both
        target[1] = bad
        _nan_pattern(compiled(torch.as_tensor(logits), torch.as_tensor(target)), logits, target, "cross_entropy")


# --------------------------------------------------------------------------- hinge labels


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
@given(scores=SCORES, zero_one=ZERO_ONE)
@settings(max_examples=3)
def test_hinge_zero_one_targets_equal_plus_minus_one(backend, loss, scores, zero_one):
    pm_one = 2.0 * zero_one - 1.0
    m = getattr(namespace(backend), loss)
    expected = np.maximum(0.0, 1.0 - pm_one * scores)
    expected = expected**2 if loss == "squared_hinge" else expected
    for reduction, ref in (("none", expected), ("mean", expected.mean()), ("sum", expected.sum())):
        a = m(backend.asarray(scores), backend.asarray(zero_one), reduction=reduction)
        b = m(backend.asarray(scores), backend.asarray(pm_one), reduction=reduction)
        close(a, to_numpy(b))
        close(a, ref)


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge"])
@pytest.mark.parametrize("target", [[-1.0, 0.0, 1.0], [0.0, 1.0, 2.0], [-1.0, 0.5, 1.0]])
def test_hinge_mixed_targets_raise(backend, loss, target):
    with pytest.raises(ValueError, match=r"target must hold labels in \{-1, 1\} or in \{0, 1\}"):
        getattr(namespace(backend), loss)(backend.asarray(np.zeros(3)), backend.asarray(np.asarray(target)))


# --------------------------------------------------------------------------- (N, 1) against (N,)


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "bce_with_logits"])
def test_n_by_1_against_n_is_refused(backend, loss):
    fn = getattr(namespace(backend), loss)
    column, flat = np.zeros((4, 1)), np.zeros(4)
    both = r"(\(4, 1\).*\(4,\)|\(4,\).*\(4, 1\))"
    with pytest.raises(ValueError, match=rf"shape.*{both}"):
        fn(backend.asarray(column), backend.asarray(flat))
    with pytest.raises(ValueError, match=rf"shape.*{both}"):
        fn(backend.asarray(flat), backend.asarray(column))
