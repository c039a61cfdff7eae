"""Edge behaviour of CTC (``polyloss.<backend>.ctc``), on numpy, torch and jax.

Each property compares the loss with an independent computation: a closed form
(a single frame), ``torch.nn.functional.ctc_loss``, the same loss on one sample
at a time, or the same loss in another precision / under a JAX transformation.
The upstream references (torch, optax, brute force over alignments) are checked
by the conformance harness from ``polyloss/verify/specs/sequence.py``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import AUTODIFF, MODULES, namespace, to_numpy

import polyloss.jax as pj
import polyloss.numpy as pn
from polyloss.verify.harness.base import Harness

# --------------------------------------------------------------------------- helpers


def np_log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def inputs(seed: int, n: int = 3, frames: int = 6, classes: int = 5):
    """Log-softmax inputs and feasible padded targets: [1, 1, 2] (a repeat), [3, 4] and [] (empty)."""
    rng = np.random.default_rng(seed)
    log_probs = np_log_softmax(rng.normal(scale=1.5, size=(n, frames, classes)))
    targets = np.array([[1, 1, 2], [3, 4, 0], [2, 0, 0]], dtype=np.int64)[:n]
    input_lengths = np.array([frames, frames - 1, 2], dtype=np.int64)[:n]
    target_lengths = np.array([3, 2, 0], dtype=np.int64)[:n]
    return log_probs, targets, input_lengths, target_lengths


@functools.cache
def _jax_jitted(kind: str, params: tuple[tuple[str, object], ...]):
    """jax.jit of the loss (or of its value and gradient) for fixed keyword parameters: compiled once per
    shape. Eager JAX retraces CTC's scan on every call; the eager path is checked by the jit/vmap test
    (and, for validation errors, by ``call(..., eager=True)``)."""
    kwargs = dict(params)
    if kind == "value":
        return jax.jit(lambda *args: MODULES["jax"].ctc(*args, **kwargs))

    def total(log_probs, *rest):
        out = pj.ctc(log_probs, *rest, **kwargs)
        return jnp.sum(out), out

    return jax.jit(jax.value_and_grad(total, has_aux=True))


def call(backend: Harness, log_probs, targets, input_lengths, target_lengths, dtype="float64", eager=False, **kwargs):
    args = (
        backend.asarray(log_probs, dtype),
        backend.asarray(targets),
        backend.asarray(input_lengths),
        backend.asarray(target_lengths),
    )
    if backend.name == "jax" and not eager:
        return _jax_jitted("value", tuple(sorted(kwargs.items())))(*args)
    return namespace(backend).ctc(*args, **kwargs)


def value_and_grad(backend: Harness, log_probs, rest, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(loss, d sum(loss) / d log_probs): the harness's autodiff, jitted for jax (see ``_jax_jitted``)."""
    if backend.name == "jax":
        fn = _jax_jitted("grad", tuple(sorted(kwargs.items())))
        (_, out), grad = fn(jnp.asarray(log_probs), *(jnp.asarray(r) for r in rest))
        return to_numpy(out), to_numpy(grad)
    arrays = [backend.asarray(a) for a in (log_probs, *rest)]
    out, (grad,) = backend.value_and_grad(lambda x, *r: namespace(backend).ctc(x, *r, **kwargs), arrays, (0,))
    return out, grad


# --------------------------------------------------------------------------- impossible alignments


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_impossible_alignment_is_inf_with_zero_gradient(backend):
    log_probs, targets, input_lengths, target_lengths = inputs(0, n=2)
    input_lengths = np.array([3, 5])  # [1, 1, 2] needs 4 frames (a blank between the 1s)
    rest = (targets, input_lengths, target_lengths)
    loss, grad = value_and_grad(backend, log_probs, rest, reduction="none")
    assert np.isinf(loss[0]) and loss[0] > 0 and np.isfinite(loss[1])
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[0], 0.0)
    # the possible sample keeps its own loss and gradient
    alone, alone_grad = value_and_grad(backend, log_probs[1:], tuple(r[1:] for r in rest), reduction="none")
    np.testing.assert_allclose(loss[1:], alone, rtol=1e-12)
    np.testing.assert_allclose(grad[1:], alone_grad, rtol=1e-12, atol=1e-15)
    assert np.abs(grad[1]).max() > 0.1
    for reduction in ("mean", "sum"):
        assert to_numpy(call(backend, log_probs, *rest, reduction=reduction)) == np.inf
    assert torch.isinf(
        F.ctc_loss(torch.as_tensor(log_probs).transpose(0, 1), *(torch.as_tensor(r) for r in rest), reduction="none")[0]
    )  # torch agrees that it is impossible

    zeroed, zeroed_grad = value_and_grad(backend, log_probs, rest, zero_infinity=True, reduction="none")
    assert zeroed[0] == 0.0
    np.testing.assert_allclose(zeroed[1], loss[1], rtol=1e-12)
    np.testing.assert_array_equal(zeroed_grad[0], 0.0)
    np.testing.assert_allclose(zeroed_grad[1], grad[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        to_numpy(call(backend, log_probs, *rest, zero_infinity=True, reduction="sum")), loss[1], rtol=1e-12
    )


def test_impossible_alignment_on_numpy():
    log_probs, targets, _, target_lengths = inputs(1, n=2)
    out = pn.ctc(log_probs, targets, np.array([3, 5]), target_lengths, reduction="none")
    assert out[0] == np.inf and np.isfinite(out[1])
    assert pn.ctc(log_probs, targets, np.array([3, 5]), target_lengths, zero_infinity=True, reduction="none")[0] == 0


# --------------------------------------------------------------------------- invalid inputs and padding


def test_blank_inside_the_target_raises_and_padding_is_ignored(backend):
    log_probs, targets, input_lengths, target_lengths = inputs(2)
    with_blank = targets.copy()
    with_blank[1, 1] = 0  # inside target_lengths[1] = 2
    with pytest.raises(ValueError, match="blank"):
        call(backend, log_probs, with_blank, input_lengths, target_lengths, eager=True)
    with pytest.raises(ValueError, match="blank"):  # a non-zero blank too
        call(backend, log_probs, np.where(targets == 4, 3, targets), input_lengths, target_lengths, eager=True, blank=3)
    expected = to_numpy(call(backend, log_probs, targets, input_lengths, target_lengths, reduction="none"))
    for pad in (0, 3, -1, 99):  # the blank, a class, out of range: all past the lengths
        padded = targets.copy()
        padded[1, 2:] = pad
        padded[2, :] = pad
        got = to_numpy(call(backend, log_probs, padded, input_lengths, target_lengths, reduction="none"))
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError):  # a label outside [0, C) inside the length
        call(backend, log_probs, np.where(targets == 4, 5, targets), input_lengths, target_lengths, eager=True)


@pytest.mark.parametrize(
    "which,values",
    [
        ("input_lengths", [6, 0, 2]),
        ("input_lengths", [7, 5, 2]),
        ("target_lengths", [3, -1, 0]),
        ("target_lengths", [3, 2, 4]),
    ],
)
def test_lengths_out_of_range_raise(backend, which, values):
    log_probs, targets, input_lengths, target_lengths = inputs(3)
    lengths = {"input_lengths": input_lengths, "target_lengths": target_lengths}
    lengths[which] = np.array(values, dtype=np.int64)
    with pytest.raises(ValueError, match=which):
        call(backend, log_probs, targets, lengths["input_lengths"], lengths["target_lengths"], eager=True)


# --------------------------------------------------------------------------- closed forms and decomposition


def test_single_frame_closed_form(backend):
    """T = 1: a one-label target has loss -log p(label), an empty one -log p(blank), two labels are impossible."""
    log_probs = np_log_softmax(np.random.default_rng(4).normal(size=(3, 1, 4)))
    targets = np.array([[2, 0], [0, 0], [1, 3]])
    out = to_numpy(
        call(backend, log_probs, targets, np.array([1, 1, 1]), np.array([1, 0, 2]), blank=0, reduction="none")
    )
    np.testing.assert_allclose(out[:2], [-log_probs[0, 0, 2], -log_probs[1, 0, 0]], rtol=1e-13)
    assert out[2] == np.inf
    out = to_numpy(
        call(backend, log_probs, targets, np.array([1, 1, 1]), np.array([1, 0, 1]), blank=3, reduction="none")
    )
    np.testing.assert_allclose(out, [-log_probs[0, 0, 2], -log_probs[1, 0, 3], -log_probs[2, 0, 1]], rtol=1e-13)


def test_per_sample_losses_equal_one_sample_at_a_time_and_mean_divides_by_length(backend):
    log_probs, targets, input_lengths, target_lengths = inputs(5)
    rows = to_numpy(call(backend, log_probs, targets, input_lengths, target_lengths, reduction="none"))
    for i in range(len(rows)):
        one = call(
            backend,
            log_probs[i : i + 1],
            targets[i : i + 1],
            input_lengths[i : i + 1],
            target_lengths[i : i + 1],
            reduction="none",
        )
        np.testing.assert_allclose(to_numpy(one), rows[i : i + 1], rtol=1e-12)
        # frames past the input length take no part
        trimmed = call(
            backend,
            log_probs[i : i + 1, : input_lengths[i]],
            targets[i : i + 1],
            input_lengths[i : i + 1],
            target_lengths[i : i + 1],
            reduction="sum",
        )
        np.testing.assert_allclose(to_numpy(trimmed), rows[i], rtol=1e-12)
    mean = to_numpy(call(backend, log_probs, targets, input_lengths, target_lengths))
    np.testing.assert_allclose(mean, np.mean(rows / np.maximum(target_lengths, 1)), rtol=1e-12)
    expected = F.ctc_loss(
        torch.as_tensor(log_probs).transpose(0, 1),
        torch.as_tensor(targets),
        torch.as_tensor(input_lengths),
        torch.as_tensor(target_lengths),
        reduction="none",
    )
    np.testing.assert_allclose(rows, expected.numpy(), rtol=1e-10)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_gradient_is_minus_the_posteriors(backend):
    """d loss_n / d log_probs[n, t] = -gamma_t: sums to -1 over the classes of each frame t < T_n, 0 past it,
    and equals torch's gradient minus the softmax term torch folds in (exp(log_probs) on those frames)."""
    log_probs, targets, input_lengths, target_lengths = inputs(6)
    _, grad = value_and_grad(backend, log_probs, (targets, input_lengths, target_lengths), reduction="none")
    on_frame = np.arange(log_probs.shape[1])[None, :] < input_lengths[:, None]
    np.testing.assert_allclose(grad.sum(axis=-1), np.where(on_frame, -1.0, 0.0), atol=1e-12)
    assert (grad <= 1e-15).all()
    x = torch.as_tensor(log_probs).requires_grad_(True)
    total = F.ctc_loss(
        x.transpose(0, 1),
        torch.as_tensor(targets),
        torch.as_tensor(input_lengths),
        torch.as_tensor(target_lengths),
        reduction="sum",
    )
    (torch_grad,) = torch.autograd.grad(total, x)
    np.testing.assert_allclose(grad, torch_grad.numpy() - np.exp(log_probs) * on_frame[..., None], atol=1e-12)


# --------------------------------------------------------------------------- precision and transformations


def test_float32_agrees_with_float64(backend):
    log_probs, targets, input_lengths, target_lengths = inputs(7, frames=8)
    for reduction in ("mean", "none"):
        wide = to_numpy(call(backend, log_probs, targets, input_lengths, target_lengths, reduction=reduction))
        narrow = call(backend, log_probs, targets, input_lengths, target_lengths, "float32", reduction=reduction)
        assert "float32" in str(narrow.dtype)
        np.testing.assert_allclose(to_numpy(narrow), wide, rtol=1e-4)


def test_jax_jit_and_vmap_equal_eager():
    cases = [inputs(seed) for seed in (8, 9)]
    cases[1][2][:] = [5, 6, 3]  # other lengths per stacked case
    cases[1][3][:] = [2, 1, 1]

    def loss(log_probs, targets, input_lengths, target_lengths):
        return pj.ctc(log_probs, targets, input_lengths, target_lengths, reduction="mean")

    def grad(*args):
        return jax.grad(loss)(*args)

    eager = [tuple(map(to_numpy, jax.value_and_grad(loss)(*map(jnp.asarray, c)))) for c in cases]
    for i, c in enumerate(cases):
        args = list(map(jnp.asarray, c))
        np.testing.assert_allclose(to_numpy(jax.jit(loss)(*args)), eager[i][0], rtol=1e-12)
        np.testing.assert_allclose(to_numpy(jax.jit(grad)(*args)), eager[i][1], rtol=1e-12, atol=1e-15)
    stacked = [jnp.asarray(np.stack([c[k] for c in cases])) for k in range(4)]
    np.testing.assert_allclose(to_numpy(jax.vmap(loss)(*stacked)), [e[0] for e in eager], rtol=1e-12)
    np.testing.assert_allclose(
        to_numpy(jax.jit(jax.vmap(grad))(*stacked)), np.stack([e[1] for e in eager]), rtol=1e-12, atol=1e-15
    )


def test_torch_eager_runs_torch_kernel_with_the_definitions_gradients():
    """Eager float tensors go through torch's CTC kernel (one pass each way), corrected to polyloss's
    gradient: equal to the alpha recursion's (run through torch.func, which takes the definition) in
    value, gradient and second derivative; an impossible sample keeps its zero gradient."""
    import polyloss.torch as pt

    rng = np.random.default_rng(3)
    log_probs = torch.tensor(np_log_softmax(rng.normal(size=(3, 9, 5))), requires_grad=True)
    targets = torch.tensor(rng.integers(1, 5, size=(3, 4)))
    input_lengths, target_lengths = torch.tensor([9, 7, 2]), torch.tensor([4, 3, 4])  # sample 2: impossible

    def loss(lp: torch.Tensor) -> torch.Tensor:
        return pt.ctc(lp, targets, input_lengths, target_lengths, reduction="none")

    native = loss(log_probs)
    assert type(native.grad_fn).__name__ == "_NativeCTCBackward"
    # torch.func traces its inputs: the backend then runs the definition, the reference here
    definition, vjp = torch.func.vjp(loss, log_probs.detach())
    np.testing.assert_allclose(native.detach().numpy(), definition.numpy(), rtol=1e-12)
    cotangent = torch.tensor([0.7, -1.3, 0.0])
    (expected,) = vjp(cotangent)
    (got,) = torch.autograd.grad(native, log_probs, cotangent, create_graph=True)
    np.testing.assert_allclose(got.detach().numpy(), expected.numpy(), rtol=1e-10, atol=1e-12)
    assert torch.all(got[2] == 0.0)  # the impossible sample
    # second order: the gradient of <grad, direction> against the definition's
    direction = torch.tensor(rng.normal(size=(3, 9, 5)))
    (second,) = torch.autograd.grad((got * direction).sum(), log_probs)
    second_expected = torch.func.grad(lambda lp: (vjp_of(loss, lp, cotangent) * direction).sum())(log_probs.detach())
    np.testing.assert_allclose(second.numpy(), second_expected.numpy(), rtol=1e-9, atol=1e-12)


def vjp_of(fn, x: torch.Tensor, cotangent: torch.Tensor) -> torch.Tensor:
    return torch.func.vjp(fn, x)[1](cotangent)[0]
