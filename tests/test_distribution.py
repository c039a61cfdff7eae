"""Identities and edge behaviour of the distribution losses (kl_div, js_div, distillation).

Each test compares polyloss with an independent computation (a NumPy formula
written here, or another loss the identity relates it to) on numpy, torch and
jax; gradients come from torch autograd and ``jax.grad``. Exact zeros
(log-probability ``-inf``) live here rather than in the specs: finite
differences cannot perturb ``-inf``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import AUTODIFF, close, namespace, to_numpy

import polyloss.torch as pt

REDUCTIONS = ("mean", "sum", "none")
K = 5
LOG_2 = math.log(2.0)


# --------------------------------------------------------------------------- helpers


def reduce(values: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return values
    return np.asarray(np.mean(values) if reduction == "mean" else np.sum(values))


def np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def np_kl_rows(log_q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """sum_c p (log p - log q) per row, a loop with 0 log 0 = 0."""
    out = np.zeros(len(p))
    for i in range(len(p)):
        out[i] = sum(p[i, c] * (math.log(p[i, c]) - log_q[i, c]) for c in range(p.shape[1]) if p[i, c] > 0)
    return out


def np_js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = (p + q) / 2
    return 0.5 * np_kl_rows(np_log(m), p) + 0.5 * np_kl_rows(np_log(m), q)


def probabilities(rng: np.random.Generator, n: int = 4, zeros: int = 0) -> np.ndarray:
    """(n, K) rows of probabilities; ``zeros`` random classes per row exactly 0."""
    p = rng.gamma(1.0, size=(n, K))
    for row in p:
        row[rng.choice(K, size=zeros, replace=False)] = 0.0
    return p / p.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- kl_div


@pytest.mark.parametrize("zeros", [0, 2])
def test_kl_of_p_with_itself_is_zero(backend, zeros):
    p = probabilities(np.random.default_rng(zeros), zeros=zeros)
    m = namespace(backend)
    for reduction in REDUCTIONS:
        expected = reduce(np.zeros(len(p)), reduction)
        close(m.kl_div(backend.asarray(np_log(p)), backend.asarray(p), reduction=reduction), expected, atol=1e-15)
        close(
            m.kl_div(backend.asarray(np_log(p)), backend.asarray(np_log(p)), log_target=True, reduction=reduction),
            expected,
            atol=1e-15,
        )
    # and a different q gives the (positive) loop value
    log_q = np_log_softmax(np.random.default_rng(9).normal(size=p.shape))
    out = to_numpy(m.kl_div(backend.asarray(log_q), backend.asarray(p), reduction="none"))
    assert np.all(out > 1e-3)
    close(out, np_kl_rows(log_q, p))


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_zero_targets_with_minus_inf_log_q_are_finite(backend, dtype, log_target):
    """Masked classes (p == 0 and log_q == -inf): a finite value and gradient -p / N, no NaN."""
    rng = np.random.default_rng(3)
    p = probabilities(rng, zeros=2)
    logits = np.where(p == 0, -np.inf, rng.normal(size=p.shape))
    log_q = np_log_softmax(logits)
    assert np.isinf(log_q).sum() == 8
    target = np_log(p) if log_target else p
    fn = lambda lq, t: namespace(backend).kl_div(lq, t, log_target=log_target)  # noqa: E731
    value, (grad,) = backend.value_and_grad(fn, [backend.asarray(log_q, dtype), backend.asarray(target, dtype)], (0,))
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert np.isfinite(to_numpy(value)) and np.all(np.isfinite(grad))
    close(value, np_kl_rows(log_q, p).mean(), rtol=tol, atol=tol)
    close(grad, -p / len(p), rtol=tol, atol=tol)  # KL is linear in log_q
    assert np.all(grad[p == 0] == 0.0)


@pytest.mark.parametrize("differentiated", [("log_q",), ("log_q", "p")])
def test_compiled_torch_kl_div_equals_the_eager_definition(differentiated):
    """Under torch.compile the terms go through a custom autograd function (its backward pass writes
    the derivatives out): the same values and gradients as the eager definition, at zero targets, at
    -inf log-probabilities and at both (the guard). In float64, the value and the gradient in log q
    to the last bit; the gradient in p within a few ulp (autograd of the definition adds ``p / p``
    where the written-out derivative adds 1)."""
    rng = np.random.default_rng(5)
    p = probabilities(rng, zeros=2)
    logits = np.where(p == 0, -np.inf, rng.normal(size=p.shape))
    logits[0, :] = rng.normal(size=K)  # a zero target with a finite log q: d/dp is -log q there
    logits[1, np.argmax(p[1])] = -np.inf  # p > 0 with log q = -inf: an infinite divergence
    log_q = np_log_softmax(logits)

    def value_and_grads(fn):
        inputs = {
            "log_q": torch.tensor(log_q, requires_grad=True),
            "p": torch.tensor(p, requires_grad="p" in differentiated),
        }
        value = fn(inputs["log_q"], inputs["p"])
        grads = torch.autograd.grad(value, [inputs[name] for name in differentiated])
        return [value.detach().numpy(), *(g.numpy() for g in grads)]

    summed = lambda lq, t: pt.kl_div(lq, t, reduction="sum")  # noqa: E731
    eager = value_and_grads(summed)
    compiled = value_and_grads(torch.compile(summed, fullgraph=True, backend="aot_eager"))
    assert np.isinf(eager[0])
    for a, b in zip(compiled[:2], eager[:2], strict=True):
        np.testing.assert_array_equal(a, b)
    if "p" in differentiated:
        np.testing.assert_allclose(compiled[2], eager[2], rtol=4 * np.finfo(np.float64).eps, atol=0.0)


def test_torch_kl_div_gives_nan_for_masked_classes():
    """Documents the deliberate difference: torch's 0 * -inf is NaN, polyloss's is 0."""
    log_q = torch.tensor([[0.0, -math.inf]], dtype=torch.float64)
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert torch.isnan(F.kl_div(log_q, p, reduction="batchmean"))
    assert torch.isnan(F.kl_div(log_q, torch.log(p), reduction="batchmean", log_target=True))
    assert pt.kl_div(log_q, p) == 0.0
    assert pt.kl_div(log_q, torch.log(p), log_target=True) == 0.0


@pytest.mark.parametrize("zeros", [0, 2])
def test_kl_log_target_equals_exp_targets(backend, zeros):
    rng = np.random.default_rng(5 + zeros)
    log_p = np_log(probabilities(rng, zeros=zeros))
    log_q = np_log_softmax(rng.normal(scale=2.0, size=log_p.shape))
    m = namespace(backend)
    for reduction in REDUCTIONS:
        with_log = m.kl_div(backend.asarray(log_q), backend.asarray(log_p), log_target=True, reduction=reduction)
        plain = m.kl_div(backend.asarray(log_q), backend.asarray(np.exp(log_p)), reduction=reduction)
        close(with_log, to_numpy(plain))
        close(with_log, reduce(np_kl_rows(log_q, np.exp(log_p)), reduction))
    if backend.has_autodiff:
        _, (g_log,) = backend.value_and_grad(
            lambda lq, t: m.kl_div(lq, t, log_target=True), [backend.asarray(log_q), backend.asarray(log_p)], (0,)
        )
        _, (g_plain,) = backend.value_and_grad(
            lambda lq, t: m.kl_div(lq, t), [backend.asarray(log_q), backend.asarray(np.exp(log_p))], (0,)
        )
        close(g_log, g_plain)
        close(g_log, -np.exp(log_p) / len(log_p))


# --------------------------------------------------------------------------- js_div


@pytest.mark.parametrize("seed", [0, 1])
def test_js_div_symmetric_bounded_and_zero_on_equal_inputs(backend, seed):
    rng = np.random.default_rng(seed)
    log_p = np_log_softmax(rng.normal(scale=3.0, size=(6, K)))
    log_q = np_log_softmax(rng.normal(scale=3.0, size=(6, K)))
    m = namespace(backend)
    p_q = to_numpy(m.js_div(backend.asarray(log_p), backend.asarray(log_q), reduction="none"))
    q_p = to_numpy(m.js_div(backend.asarray(log_q), backend.asarray(log_p), reduction="none"))
    close(p_q, q_p)
    assert np.all(p_q > 0.0) and np.all(p_q <= LOG_2)
    close(p_q, np_js_rows(np.exp(log_p), np.exp(log_q)))
    for reduction in REDUCTIONS:
        close(
            m.js_div(backend.asarray(log_p), backend.asarray(log_p), reduction=reduction),
            reduce(np.zeros(6), reduction),
            atol=1e-15,
        )


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_js_div_minus_inf_log_probabilities_are_finite(backend):
    """Exact zeros in one, the other, both (same class) and disjoint supports (value log 2)."""
    p = np.array(
        [
            [0.5, 0.5, 0.0, 0.0, 0.0],  # zeros in p only
            [0.2, 0.3, 0.0, 0.5, 0.0],  # zeros in both, classes 2 and 4 shared
            [1.0, 0.0, 0.0, 0.0, 0.0],  # disjoint from q: log 2
            [0.1, 0.2, 0.3, 0.25, 0.15],
        ]
    )
    q = np.array(
        [[0.1, 0.2, 0.3, 0.2, 0.2], [0.4, 0.0, 0.0, 0.6, 0.0], [0.0, 0.25, 0.25, 0.25, 0.25], [0.0, 0.5, 0.0, 0.5, 0.0]]
    )  # zeros in q only
    m = namespace(backend)
    value, (g_p, g_q) = backend.value_and_grad(
        lambda a, b: m.js_div(a, b, reduction="none"), [backend.asarray(np_log(p)), backend.asarray(np_log(q))], (0, 1)
    )
    expected = np_js_rows(p, q)
    close(value, expected)
    assert to_numpy(value)[2] == pytest.approx(LOG_2, rel=1e-15)
    assert np.all(np.isfinite(g_p)) and np.all(np.isfinite(g_q))
    # d/d log p_c of the per-sample JS is p_c (log p_c - log m_c) / 2 (0 where p_c == 0), likewise for q
    log_m = np_log((p + q) / 2)
    with np.errstate(invalid="ignore"):  # -inf - -inf in the discarded branch
        close(g_p, np.where(p > 0, 0.5 * p * (np_log(p) - log_m), 0.0))
        close(g_q, np.where(q > 0, 0.5 * q * (np_log(q) - log_m), 0.0))


# --------------------------------------------------------------------------- distillation


def _distillation_case(seed: int, n: int = 4):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=2.0, size=(n, K)), rng.normal(scale=2.0, size=(n, K)), rng.integers(0, K, size=n)


@pytest.mark.parametrize("temperature", [3.0, 0.7])
def test_distillation_alpha_one_is_scaled_kl_and_alpha_zero_is_cross_entropy(backend, temperature):
    student, teacher, target = _distillation_case(int(temperature * 10))
    m = namespace(backend)
    s, t, y = backend.asarray(student), backend.asarray(teacher), backend.asarray(target)
    T2 = temperature**2
    log_q = np_log_softmax(student / temperature)
    p = np.exp(np_log_softmax(teacher / temperature))
    kl_rows = np_kl_rows(log_q, p)
    ce_rows = -np_log_softmax(student)[np.arange(len(target)), target]
    for reduction in REDUCTIONS:
        soft = m.distillation(s, t, y, temperature=temperature, alpha=1.0, reduction=reduction)
        close(soft, reduce(T2 * kl_rows, reduction))
        close(soft, T2 * to_numpy(m.kl_div(backend.asarray(log_q), backend.asarray(p), reduction=reduction)))
        hard = m.distillation(s, t, y, temperature=temperature, alpha=0.0, reduction=reduction)
        close(hard, to_numpy(m.cross_entropy(s, y, reduction=reduction)))
        close(hard, reduce(ce_rows, reduction))
        mixed = m.distillation(s, t, y, temperature=temperature, alpha=0.3, reduction=reduction)
        close(mixed, reduce(0.3 * T2 * kl_rows + 0.7 * ce_rows, reduction))
        # without a target: T^2 KL whatever alpha is
        for alpha in (0.0, 0.3, 1.0):
            close(
                m.distillation(s, t, temperature=temperature, alpha=alpha, reduction=reduction),
                reduce(T2 * kl_rows, reduction),
            )


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("with_target", [False, True])
def test_distillation_teacher_gradient_is_exactly_zero(backend, with_target):
    student, teacher, target = _distillation_case(11)
    m = namespace(backend)
    inputs = [backend.asarray(student), backend.asarray(teacher)] + ([backend.asarray(target)] if with_target else [])
    _, (g_student, g_teacher) = backend.value_and_grad(
        lambda *xs: m.distillation(*xs, reduction="none"), inputs, (0, 1)
    )
    assert g_teacher.shape == teacher.shape and np.all(g_teacher == 0.0)
    # the student's gradient is the soft term's T (q - p) (+ the CE term's softmax - onehot)
    T, alpha = 3.0, 0.1
    q, p = np.exp(np_log_softmax(student / T)), np.exp(np_log_softmax(teacher / T))
    expected = T * (q - p)
    if with_target:
        expected = alpha * expected + (1 - alpha) * (np.exp(np_log_softmax(student)) - np.eye(K)[target])
    close(g_student, expected, rtol=1e-11, atol=1e-13)


def test_torch_distillation_leaves_teacher_out_of_the_graph():
    """torch: a teacher that requires grad gets no gradient from backward()."""
    student, teacher, target = _distillation_case(12)
    s = torch.tensor(student, requires_grad=True)
    t = torch.tensor(teacher, requires_grad=True)
    pt.distillation(s, t, torch.as_tensor(target)).backward()
    assert s.grad is not None and torch.any(s.grad != 0)
    assert t.grad is None or torch.all(t.grad == 0)
