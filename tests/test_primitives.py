"""The primitive set, checked directly on every backend at its singular points."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from polyloss.verify.harness.jax import HARNESS as JAX
from polyloss.verify.harness.numpy import HARNESS as NUMPY
from polyloss.verify.harness.strict import HARNESS as STRICT
from polyloss.verify.harness.torch import HARNESS as TORCH

jax.config.update("jax_enable_x64", True)
ALL = [NUMPY, STRICT, TORCH, JAX]  # harnesses: .backend holds the primitives
POINTS = np.array([-math.inf, -1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0, math.inf])


def _softplus_exact(x: float) -> float:
    if math.isinf(x):
        return 0.0 if x < 0 else math.inf
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
def test_softplus_values(harness):
    out = harness.to_numpy(harness.backend.softplus(harness.asarray(POINTS, "float64")))
    np.testing.assert_allclose(out, [_softplus_exact(v) for v in POINTS], rtol=1e-15, atol=0)


def test_softplus_first_and_second_derivatives_are_finite_and_exact():
    with np.errstate(over="ignore"):
        sigmoid = 1.0 / (1.0 + np.exp(-POINTS))
        decay = np.exp(-np.abs(POINTS))
    curvature = decay / (1.0 + decay) ** 2  # sigmoid(x) sigmoid(-x), without cancellation
    x = torch.tensor(POINTS, requires_grad=True)
    (g,) = torch.autograd.grad(TORCH.backend.softplus(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    jg = jax.grad(lambda v: JAX.backend.softplus(v).sum())
    jh = jax.grad(lambda v: jg(v).sum())
    for first, second in (
        (g.detach().numpy(), h.numpy()),
        (np.asarray(jg(jnp.asarray(POINTS))), np.asarray(jh(jnp.asarray(POINTS)))),
    ):
        np.testing.assert_allclose(first, sigmoid, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(second, curvature, rtol=1e-12, atol=1e-14)  # a few ulp of 1 near saturation


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
def test_one_hot(harness):
    labels = harness.asarray(np.array([2, 0, 1]))
    out = harness.to_numpy(harness.backend.one_hot(labels, 3, harness.backend.xp.float64))
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1]])


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_softmax_cross_entropy_matches_a_loop_and_marks_invalid_samples(harness, reduction):
    rng = np.random.default_rng(0)
    logits, index = rng.normal(size=(4, 3, 5)), rng.integers(0, 3, size=(4, 5))
    expected = np.zeros((4, 5))
    for i in range(4):
        for j in range(5):
            column = logits[i, :, j]
            expected[i, j] = np.log(np.exp(column - column.max()).sum()) + column.max() - column[index[i, j]]
    valid = np.ones((4, 5), dtype=bool)
    valid[1, 2] = False
    expected[1, 2] = np.nan
    out = harness.backend.softmax_cross_entropy(
        harness.asarray(logits, "float64"), harness.asarray(index), 1, reduction, valid=harness.asarray(valid)
    )
    reduced = {"none": expected, "mean": np.mean(expected), "sum": np.sum(expected)}[reduction]
    np.testing.assert_allclose(harness.to_numpy(out), reduced, rtol=1e-13)


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
def test_logsumexp_with_minus_inf_entries(harness):
    x = np.array([[0.0, -math.inf, 1.0], [-math.inf, -math.inf, 2.0]])
    out = harness.to_numpy(harness.backend.logsumexp(harness.asarray(x, "float64"), 1))
    np.testing.assert_allclose(out, [np.log(1 + np.e), 2.0], rtol=1e-15)


# --------------------------------------------------------------------------- safe primitives (core/_reduce.py)

from polyloss.core import _reduce as safe  # noqa: E402

INF = math.inf
# (name, f(b, *args), args, expected value, expected gradient of the sum w.r.t. each arg)
SINGULAR = [
    ("safe_sqrt at 0", lambda b, x: safe.safe_sqrt(b.xp, x), ([0.0, 4.0],), [0.0, 2.0], ([0.0, 0.25],)),
    (
        "safe_norm of the zero vector",
        lambda b, x: safe.safe_norm(b.xp, x),
        ([[0.0, 0.0], [3.0, 4.0]],),
        [0.0, 5.0],
        ([[0.0, 0.0], [0.6, 0.8]],),
    ),
    ("safe_pow(x, 0.5) at 0", lambda b, x: safe.safe_pow(b.xp, x, 0.5), ([0.0, 4.0],), [0.0, 2.0], ([0.0, 0.25],)),
    # (+ 0 * x: a constant output has no autograd graph in torch)
    (
        "safe_pow(x, 0) at 0",
        lambda b, x: safe.safe_pow(b.xp, x, 0.0) + 0.0 * x,
        ([0.0, 4.0],),
        [1.0, 1.0],
        ([0.0, 0.0],),
    ),
    (
        "xlogy(0, 0)",
        lambda b, x, y: safe.xlogy(b.xp, x, y),
        ([0.0, 2.0], [0.0, math.e]),
        [0.0, 2.0],
        ([0.0, 1.0], [0.0, 2.0 / math.e]),
    ),
    (
        "xlogy(0, y > 0): d/dx is log y",
        lambda b, x, y: safe.xlogy(b.xp, x, y),
        ([0.0, 0.0], [math.e, 1.0]),
        [0.0, 0.0],
        ([1.0, 0.0], [0.0, 0.0]),
    ),
    (
        "zero_times(0, +-inf or nan)",
        lambda b, c, v: safe.zero_times(b.xp, c, v),
        ([0.0, 0.0, 0.0, 2.0], [INF, -INF, math.nan, 3.0]),
        [0.0, 0.0, 0.0, 6.0],
        ([0.0, 0.0, 0.0, 3.0], [0.0, 0.0, 0.0, 2.0]),
    ),
    # the coefficient's derivative survives at coefficient == 0 wherever the value is finite
    (
        "zero_times(0, finite): d/dcoefficient is the value",
        lambda b, c, v: safe.zero_times(b.xp, c, v),
        ([0.0, 0.0, 0.0, -2.0], [-3.0, 0.0, 5.0, 3.0]),
        [0.0, 0.0, 0.0, -6.0],
        ([-3.0, 0.0, 5.0, 3.0], [0.0, 0.0, 0.0, -2.0]),
    ),
    (
        "safe_divide(x, 0)",
        lambda b, n, d: safe.safe_divide(b.xp, n, d),
        ([1.0, 1.0], [0.0, 2.0]),
        [0.0, 0.5],
        ([0.0, 0.5], [0.0, -0.25]),
    ),
    (
        "safe_logaddexp(-inf, -inf)",
        lambda b, x, y: safe.safe_logaddexp(b, x, y),
        ([-INF, 0.0], [-INF, 0.0]),
        [-INF, math.log(2.0)],
        ([0.0, 0.5], [0.0, 0.5]),
    ),
    (
        "safe_atan2(0, 0)",
        lambda b, y, x: safe.safe_atan2(b.xp, y, x),
        ([0.0, 1.0], [0.0, 0.0]),
        [0.0, math.pi / 2],
        ([0.0, 0.0], [0.0, -1.0]),
    ),
    ("clamped_log(0)", lambda b, p: safe.clamped_log(b.xp, p), ([0.0, 1.0],), [-100.0, 0.0], ([0.0, 1.0],)),
    ("relu at 0", lambda b, x: b.relu(x), ([0.0, 2.0, -1.0, -INF],), [0.0, 2.0, 0.0, 0.0], ([0.0, 1.0, 0.0, 0.0],)),
    ("abs at 0", lambda b, x: b.abs(x), ([0.0, 2.0, -1.0],), [0.0, 2.0, 1.0], ([0.0, 1.0, -1.0],)),
    # gradient 0 at the zero vector (F.normalize: 1e12, the floor's slope); below the floor, F.normalize's x / 1e-12
    (
        "l2_normalize of the zero vector",
        lambda b, x: safe.l2_normalize(b.xp, x)[..., 0],
        ([[0.0, 0.0], [3.0, 4.0], [1e-13, 0.0]],),
        [0.0, 0.6, 0.1],
        ([[0.0, 0.0], [0.128, -0.096], [1e12, 0.0]],),
    ),
]


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
@pytest.mark.parametrize("name,f,args,value,grads", SINGULAR, ids=[s[0] for s in SINGULAR])
def test_safe_primitive_value_at_its_singular_point(harness, name, f, args, value, grads):
    out = harness.to_numpy(f(harness.backend, *(harness.asarray(np.asarray(a), "float64") for a in args)))
    np.testing.assert_allclose(out, value, rtol=1e-15, atol=0)


@pytest.mark.parametrize("harness", ALL, ids=lambda b: b.name)
@pytest.mark.parametrize("primitive", ["relu", "abs", "softplus"])
def test_primitive_propagates_nan(harness, primitive):
    """A NaN input is never hidden behind a finite number (torch's relu and abs keep it too)."""
    out = harness.to_numpy(getattr(harness.backend, primitive)(harness.asarray(np.array([np.nan, 1.0]), "float64")))
    assert np.isnan(out[0]) and np.isfinite(out[1]), out


@pytest.mark.parametrize("harness", [TORCH, JAX], ids=lambda b: b.name)
@pytest.mark.parametrize("name,f,args,value,grads", SINGULAR, ids=[s[0] for s in SINGULAR])
def test_safe_primitive_gradient_at_its_singular_point(harness, name, f, args, value, grads):
    arrays = [harness.asarray(np.asarray(a), "float64") for a in args]
    _out, got = harness.value_and_grad(lambda *xs: f(harness.backend, *xs), arrays, list(range(len(arrays))))
    for g, expected in zip(got, grads, strict=True):
        assert np.all(np.isfinite(g)), (name, g)
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)


# (name, f(b, *args), args away from the singular points): every argument's derivative (first and
# second order) against central finite differences
REGULAR = [
    ("safe_sqrt", lambda b, x: safe.safe_sqrt(b.xp, x), ([0.3, 4.0],)),
    ("safe_norm", lambda b, x: safe.safe_norm(b.xp, x), ([[0.5, -1.0], [3.0, 4.0]],)),
    ("safe_pow(x, 1.5)", lambda b, x: safe.safe_pow(b.xp, x, 1.5), ([0.2, 4.0],)),
    ("safe_pow(x, 0.5)", lambda b, x: safe.safe_pow(b.xp, x, 0.5), ([0.2, 4.0],)),
    ("xlogy", lambda b, x, y: safe.xlogy(b.xp, x, y), ([0.5, -2.0], [0.3, 2.0])),
    ("zero_times", lambda b, c, v: safe.zero_times(b.xp, c, v), ([0.5, -2.0, 1e-3], [-0.7, 3.0, 2.0])),
    ("safe_divide", lambda b, n, d: safe.safe_divide(b.xp, n, d), ([1.0, -0.5], [0.4, -2.0])),
    ("safe_logaddexp", lambda b, x, y: safe.safe_logaddexp(b, x, y), ([-1.0, 0.5], [0.3, -30.0])),
    ("safe_atan2", lambda b, y, x: safe.safe_atan2(b.xp, y, x), ([0.4, -1.0], [1.5, -0.3])),
    ("clamped_log", lambda b, p: safe.clamped_log(b.xp, p), ([0.1, 0.9],)),
    ("clamped_bce", lambda b, p, t: safe.clamped_bce(b.xp, p, t), ([0.2, 0.7], [0.0, 1.0])),
    ("relu", lambda b, x: b.relu(x), ([0.5, -1.0],)),
    ("abs", lambda b, x: b.abs(x), ([0.5, -1.0],)),
    ("l2_normalize", lambda b, x: safe.l2_normalize(b.xp, x), ([[0.5, -1.0], [3.0, 4.0]],)),
]


@pytest.mark.parametrize("harness", [TORCH, JAX], ids=lambda b: b.name)
@pytest.mark.parametrize("name,f,args", REGULAR, ids=[s[0] for s in REGULAR])
def test_safe_primitive_derivative_in_every_argument(harness, name, f, args):
    arrays = [harness.asarray(np.asarray(a), "float64") for a in args]
    with harness.scope():
        harness.check_finite_differences(lambda *xs: f(harness.backend, *xs), arrays, list(range(len(arrays))), 2)


@pytest.mark.parametrize("harness", [TORCH, JAX], ids=lambda b: b.name)
def test_binary_losses_target_gradient_at_exact_0_and_1(harness):
    """d/dt of the probability-target cross-entropy, poly1 and bce_with_logits at target entries of exactly
    0 and 1, against the closed forms (d/dt_c CE = -log p_c; d/dt BCE = softplus(-x) - softplus(x) = -x)."""
    from polyloss.verify.cases import bound
    from polyloss.verify.specs import SPECS

    logits = np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.4]])
    target = np.array([[0.0, 0.0, 1.0], [0.25, 0.0, 0.75]])
    log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    epsilon = 0.7
    closed = {
        "cross_entropy": -log_p,
        # poly1: CE - eps * sum_c t_c (p_c - 1)
        "poly1": -log_p - epsilon * np.expm1(log_p),
    }
    for name, expected in closed.items():
        loss = bound(SPECS[name], harness)
        params = {"epsilon": epsilon} if name == "poly1" else {}
        arrays = [harness.asarray(logits, "float64"), harness.asarray(target, "float64")]
        with harness.scope():
            _, (g,) = harness.value_and_grad(functools.partial(loss, reduction="sum", **params), arrays, [1])
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15, err_msg=name)
    x = np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.4]])
    t = np.array([[0.0, 1.0, 1.0], [0.0, 0.5, 0.0]])
    loss = bound(SPECS["bce_with_logits"], harness)
    arrays = [harness.asarray(x, "float64"), harness.asarray(t, "float64")]
    with harness.scope():
        _, (g,) = harness.value_and_grad(lambda a, b: loss(a, b, reduction="sum"), arrays, [1])
    np.testing.assert_allclose(g, -x, rtol=1e-12, atol=1e-15)


def test_target_gradient_at_exact_0_and_1_matches_torch_autograd():
    """The same target gradients as torch.nn.functional's autograd (cross_entropy with probabilities,
    binary_cross_entropy_with_logits), which differentiates in the target."""
    import torch.nn.functional as F

    from polyloss import torch as pt

    logits = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.5, -0.4]], dtype=torch.float64)
    for target in ([[0.0, 0.0, 1.0], [0.25, 0.0, 0.75]], [[0.0, 1.0, 1.0], [0.0, 0.5, 0.0]]):
        ours_t = torch.tensor(target, dtype=torch.float64, requires_grad=True)
        theirs_t = torch.tensor(target, dtype=torch.float64, requires_grad=True)
        if sum(map(sum, target)) == 2.0:  # rows sum to one: probability targets
            pt.cross_entropy(logits, ours_t, reduction="sum").backward()
            F.cross_entropy(logits, theirs_t, reduction="sum").backward()
            assert ours_t.grad is not None and theirs_t.grad is not None
            torch.testing.assert_close(ours_t.grad, theirs_t.grad, rtol=1e-12, atol=1e-15)
        ours_t.grad = theirs_t.grad = None
        pt.bce_with_logits(logits, ours_t, reduction="sum").backward()
        F.binary_cross_entropy_with_logits(logits, theirs_t, reduction="sum").backward()
        assert ours_t.grad is not None and theirs_t.grad is not None
        torch.testing.assert_close(ours_t.grad, theirs_t.grad, rtol=1e-12, atol=1e-15)
        assert torch.count_nonzero(ours_t.grad) == ours_t.grad.numel()


def test_no_loss_re_implements_a_guard():
    """Guards live in core/_reduce.py: the family modules call them instead of their own double where."""
    import inspect
    import re

    from polyloss.core import box, contrastive, distribution, metric, segmentation, sequence

    for module in (box, contrastive, distribution, metric, segmentation, sequence):
        source = inspect.getsource(module)
        doubled = re.findall(r"where\([^()]*,\s*xp\.(?:log|sqrt)\(xp\.where", source)
        assert not doubled, (module.__name__, doubled)
        assert "xp.logaddexp(" not in source, module.__name__
