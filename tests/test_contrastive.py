"""Identities and edge behaviour of the contrastive losses, on numpy, torch and jax.

Each property compares a loss with an independent computation: a NumPy loop
written here, another loss of the catalogue (``cross_entropy``), or the same loss
on transformed inputs (rescaled rows, swapped views). Gradients come from torch
autograd and ``jax.grad``.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from helpers import AUTODIFF, close, namespace, to_numpy
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

REDUCTIONS = ("mean", "sum", "none")
D = 4


def drawn(*shape: int) -> st.SearchStrategy[np.ndarray]:
    """Embeddings of a fixed shape (eager JAX compiles each op once per shape), every element between
    0.1 and 3 in magnitude (no zero row to normalise); repeated values and identical rows occur."""
    return hnp.arrays(np.float64, shape, elements=st.one_of(st.floats(-3.0, -0.1), st.floats(0.1, 3.0)))


# --------------------------------------------------------------------------- helpers


def reduce(rows: np.ndarray, reduction: str):
    return {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]


def np_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_ce(logits: np.ndarray, target: int) -> float:
    """-log softmax(logits)[target] for one row, in float64."""
    top = logits.max()
    return float(np.log(np.sum(np.exp(logits - top))) + top - logits[target])


def np_nt_xent_rows(z1: np.ndarray, z2: np.ndarray, temperature: float) -> np.ndarray:
    """SimCLR's 2N anchors one at a time: the partner view against every other row."""
    z = np.concatenate([np_normalize(z1), np_normalize(z2)])
    n = len(z1)
    out = np.zeros(2 * n)
    for i in range(2 * n):
        others = [j for j in range(2 * n) if j != i]
        logits = np.array([z[i] @ z[j] for j in others]) / temperature
        out[i] = np_ce(logits, others.index(i + n if i < n else i - n))
    return out


def np_siglip_rows(img, txt, scale, bias) -> np.ndarray:
    img, txt = np_normalize(img), np_normalize(txt)
    out = np.zeros(len(img))
    for i in range(len(img)):
        for j in range(len(txt)):
            z = scale * img[i] @ txt[j] + bias
            sign = 1.0 if i == j else -1.0
            out[i] += np.logaddexp(0.0, -sign * z)  # -log sigmoid(sign * z)
    return out


def embeddings(seed: int, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for shape in shapes]


# --------------------------------------------------------------------------- infonce


@given(q=drawn(4, D), k=drawn(4, D))
@settings(max_examples=2)
def test_infonce_in_batch_equals_cross_entropy_of_similarities(backend, q, k):
    m = namespace(backend)
    sim = np_normalize(q) @ np_normalize(k).T / 0.2
    labels = np.arange(4)
    for reduction in REDUCTIONS:
        out = m.infonce(backend.asarray(q), backend.asarray(k), temperature=0.2, reduction=reduction)
        ce = m.cross_entropy(backend.asarray(sim), backend.asarray(labels, "int64"), reduction=reduction)
        close(out, to_numpy(ce))
        close(out, reduce(np.array([np_ce(sim[i], i) for i in range(4)]), reduction))


@given(q=drawn(4, D), k=drawn(4, D), shared=drawn(3, D), paired=drawn(4, 3, D))
@settings(max_examples=2)
def test_infonce_explicit_negatives_put_the_positive_at_column_zero(backend, q, k, shared, paired):
    qn, kn = np_normalize(q), np_normalize(k)
    m = namespace(backend)
    for negatives, per_row in ((shared, lambda i: np_normalize(shared)), (paired, lambda i: np_normalize(paired[i]))):
        rows = np.array([np_ce(np.concatenate([[qn[i] @ kn[i]], per_row(i) @ qn[i]]) / 0.1, 0) for i in range(4)])
        out = m.infonce(backend.asarray(q), backend.asarray(k), negatives=backend.asarray(negatives), reduction="none")
        close(out, rows)


@given(
    q=drawn(4, D),
    k=drawn(4, D),
    neg=drawn(4, 3, D),
    cq=hnp.arrays(np.float64, (4, 1), elements=st.floats(0.1, 10.0)),
    ck=hnp.arrays(np.float64, (4, 1), elements=st.floats(0.1, 10.0)),
    cn=hnp.arrays(np.float64, (4, 3, 1), elements=st.floats(0.1, 10.0)),
)
@settings(max_examples=2)
def test_infonce_normalized_is_invariant_to_positive_row_scaling(backend, q, k, neg, cq, ck, cn):
    m = namespace(backend)
    as_array = lambda x: None if x is None else backend.asarray(x)  # noqa: E731
    for negatives, scaled in ((None, None), (neg, neg * cn)):
        base = m.infonce(backend.asarray(q), backend.asarray(k), negatives=as_array(negatives), reduction="none")
        moved = m.infonce(
            backend.asarray(q * cq), backend.asarray(k * ck), negatives=as_array(scaled), reduction="none"
        )
        close(moved, to_numpy(base), rtol=1e-10)
    # without normalization the same rescaling changes the loss (the property is not vacuous)
    raw = m.infonce(backend.asarray(q), backend.asarray(k), normalize=False, reduction="none")
    raw_moved = m.infonce(backend.asarray(q * cq), backend.asarray(k * ck), normalize=False, reduction="none")
    assume(not np.allclose(to_numpy(raw), to_numpy(raw_moved)))  # a rescaling that changes it (not all 1)


# --------------------------------------------------------------------------- nt_xent


@given(z1=drawn(4, D), z2=drawn(4, D))
@settings(max_examples=2)
def test_nt_xent_matches_a_loop_over_the_2n_anchors(backend, z1, z2):
    m = namespace(backend)
    rows = np_nt_xent_rows(z1, z2, 0.5)
    for reduction in REDUCTIONS:
        close(m.nt_xent(backend.asarray(z1), backend.asarray(z2), reduction=reduction), reduce(rows, reduction))


@given(z1=drawn(4, D), z2=drawn(4, D), permutation=st.permutations(range(4)))
@settings(max_examples=2)
def test_nt_xent_with_distinct_labels_is_the_loss_without_labels(backend, z1, z2, permutation):
    """Distinct labels (in any order) leave one positive per anchor: the unlabelled loss, values and gradients."""
    m = namespace(backend)
    labels = backend.asarray(np.asarray(permutation, dtype=np.int64))
    inputs = [backend.asarray(z1), backend.asarray(z2)]
    for reduction in REDUCTIONS:
        with_labels = functools.partial(m.nt_xent, labels=labels, reduction=reduction)
        without = functools.partial(m.nt_xent, reduction=reduction)
        close(with_labels(*inputs), to_numpy(without(*inputs)))
        if backend.has_autodiff:
            _, got = backend.value_and_grad(with_labels, inputs, (0, 1))
            _, expected = backend.value_and_grad(without, inputs, (0, 1))
            for g, e in zip(got, expected, strict=True):
                close(g, to_numpy(e))


@pytest.mark.parametrize("temperature", [0.5, 0.01])
def test_nt_xent_single_pair_is_zero(backend, temperature):
    z1, z2 = embeddings(7, (1, D), (1, D))
    m = namespace(backend)
    fn = lambda a, b: m.nt_xent(a, b, temperature=temperature, reduction="none")  # noqa: E731
    out = to_numpy(fn(backend.asarray(z1), backend.asarray(z2)))
    assert out.shape == (2,)
    np.testing.assert_array_equal(out, np.zeros(2))  # each anchor's only candidate is its positive
    if backend.has_autodiff:
        _, grads = backend.value_and_grad(fn, [backend.asarray(z1), backend.asarray(z2)], (0, 1))
        for grad in grads:
            np.testing.assert_allclose(to_numpy(grad), 0.0, atol=1e-12)


@given(z1=drawn(4, D), z2=drawn(4, D))
@settings(max_examples=2)
def test_nt_xent_swapping_the_views_permutes_the_anchors(backend, z1, z2):
    n = 4
    m = namespace(backend)
    out = to_numpy(m.nt_xent(backend.asarray(z1), backend.asarray(z2), reduction="none"))
    swapped = to_numpy(m.nt_xent(backend.asarray(z2), backend.asarray(z1), reduction="none"))
    assert out.shape == (2 * n,)
    close(swapped, np.concatenate([out[n:], out[:n]]))
    close(m.nt_xent(backend.asarray(z2), backend.asarray(z1)), out.mean())
    assume(not np.allclose(out[:n], out[n:]))  # anchors that differ, so that the order is really checked


# --------------------------------------------------------------------------- clip / siglip


@given(img=drawn(4, D), txt=drawn(4, D))
@settings(max_examples=2)
def test_clip_is_symmetric_in_image_and_text(backend, img, txt):
    m = namespace(backend)
    scale = 1 / 0.07
    fn = lambda a, b: m.clip(a, b, logit_scale=scale, reduction="none")  # noqa: E731
    out = to_numpy(fn(backend.asarray(img), backend.asarray(txt)))
    close(fn(backend.asarray(txt), backend.asarray(img)), out)
    logits = scale * np_normalize(img) @ np_normalize(txt).T
    close(out, [(np_ce(logits[i], i) + np_ce(logits[:, i], i)) / 2 for i in range(4)])
    if backend.has_autodiff:
        _, (g_img, g_txt) = backend.value_and_grad(fn, [backend.asarray(img), backend.asarray(txt)], (0, 1))
        _, (g_txt2, g_img2) = backend.value_and_grad(fn, [backend.asarray(txt), backend.asarray(img)], (0, 1))
        close(g_img2, to_numpy(g_img))
        close(g_txt2, to_numpy(g_txt))


@given(img=drawn(4, D), txt=drawn(4, D))
@settings(max_examples=2)
def test_siglip_none_is_the_per_image_row_sum(backend, img, txt):
    m = namespace(backend)
    rows = np_siglip_rows(img, txt, 10.0, -10.0)
    out = {
        r: m.siglip(backend.asarray(img), backend.asarray(txt), logit_scale=10.0, logit_bias=-10.0, reduction=r)
        for r in REDUCTIONS
    }
    assert to_numpy(out["none"]).shape == (4,)
    close(out["none"], rows)
    close(out["sum"], rows.sum())
    close(out["mean"], rows.sum() / 4)  # open_clip's -sum(logsigmoid) / N


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_clip_and_siglip_learnable_scale_gets_a_gradient(backend):
    img, txt = embeddings(3, (4, D), (4, D))
    m = namespace(backend)
    x, y = backend.asarray(img), backend.asarray(txt)
    scale, bias = backend.asarray(10.0), backend.asarray(-10.0)
    _, (g_scale,) = backend.value_and_grad(lambda s: m.clip(x, y, logit_scale=s), [scale], (0,))
    logits = np_normalize(img) @ np_normalize(txt).T
    h = 1e-6  # central difference of the float64 NumPy formula in the scale

    def clip_np(s):
        return np.mean([(np_ce(s * logits[i], i) + np_ce(s * logits[:, i], i)) / 2 for i in range(4)])

    close(g_scale, (clip_np(10.0 + h) - clip_np(10.0 - h)) / (2 * h), rtol=1e-6, atol=1e-8)
    _, (gs, gb) = backend.value_and_grad(
        lambda s, b: m.siglip(x, y, logit_scale=s, logit_bias=b), [scale, bias], (0, 1)
    )
    sig_np = lambda s, b: np_siglip_rows(img, txt, s, b).mean()  # noqa: E731
    close(gs, (sig_np(10.0 + h, -10.0) - sig_np(10.0 - h, -10.0)) / (2 * h), rtol=1e-6, atol=1e-8)
    close(gb, (sig_np(10.0, -10.0 + h) - sig_np(10.0, -10.0 - h)) / (2 * h), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- zero vectors, hard temperatures


def _zero_rows():
    q, k, neg = embeddings(11, (4, D), (4, D), (4, 3, D))
    q[0] = 0.0
    k[1] = 0.0
    neg[2, 1] = 0.0
    return q, k, neg


CALLS = {
    "infonce": lambda m, q, k, neg: m.infonce(q, k, reduction="none"),
    "infonce,paired negatives": lambda m, q, k, neg: m.infonce(q, k, negatives=neg, reduction="none"),
    "nt_xent": lambda m, q, k, neg: m.nt_xent(q, k, reduction="none"),
    "clip": lambda m, q, k, neg: m.clip(q, k, logit_scale=1 / 0.07, reduction="none"),
    "siglip": lambda m, q, k, neg: m.siglip(q, k, logit_scale=10.0, logit_bias=-10.0, reduction="none"),
}


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("loss", list(CALLS))
def test_zero_vectors_give_finite_values_and_gradients(backend, loss):
    q, k, neg = _zero_rows()
    m = namespace(backend)
    fn = lambda a, b, c: CALLS[loss](m, a, b, c)  # noqa: E731
    value, grads = backend.value_and_grad(fn, [backend.asarray(q), backend.asarray(k), backend.asarray(neg)], (0, 1, 2))
    assert np.all(np.isfinite(to_numpy(value))), to_numpy(value)
    for grad in grads:
        assert np.all(np.isfinite(to_numpy(grad))), to_numpy(grad)
    # a zero row normalizes to zero, so every cosine with it is 0: the value equals the
    # NumPy formula with that row's similarities set to 0
    qn, kn = np_normalize(q), np_normalize(k)
    assert not np.isnan(qn).any() and np.all(qn[0] == 0.0)
    if loss == "infonce":
        close(value, [np_ce(qn[i] @ kn.T / 0.1, i) for i in range(4)])
        # the gradient is F.normalize's (torch autograd) on the other rows; on a zero row it is 0, where
        # F.normalize's is 1 / 1e-12 times the upstream gradient (its floor's slope: about 1e12 here)
        tq, tk = (torch.tensor(x, requires_grad=True) for x in (q, k))
        logits = torch.nn.functional.normalize(tq, dim=-1) @ torch.nn.functional.normalize(tk, dim=-1).T / 0.1
        torch.nn.functional.cross_entropy(logits, torch.arange(4), reduction="sum").backward()
        assert np.abs(tq.grad.numpy()[0]).max() > 1e10 and np.abs(tk.grad.numpy()[1]).max() > 1e10
        expected_q, expected_k = tq.grad.numpy().copy(), tk.grad.numpy().copy()
        expected_q[0], expected_k[1] = 0.0, 0.0
        close(grads[0], expected_q, rtol=1e-10, atol=0)
        close(grads[1], expected_k, rtol=1e-10, atol=0)
    elif loss == "nt_xent":
        close(value, np_nt_xent_rows(q, k, 0.5))
    elif loss == "clip":
        logits = qn @ kn.T / 0.07
        close(value, [(np_ce(logits[i], i) + np_ce(logits[:, i], i)) / 2 for i in range(4)])
    elif loss == "siglip":
        close(value, np_siglip_rows(q, k, 10.0, -10.0))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_temperature_001_with_collinear_embeddings_is_finite(backend, dtype):
    q, _ = embeddings(5, (4, D), (4, 3, D))
    k = np.array([[0.5], [1.0], [2.0], [3.0]]) * q  # key = positive multiple of query: cosine 1
    m = namespace(backend)
    qn = np_normalize(q)
    rtol = 1e-10 if dtype == "float64" else 1e-4
    calls = {
        "infonce": (
            lambda a, b: m.infonce(a, b, temperature=0.01, reduction="none"),
            [np_ce(qn[i] @ qn.T / 0.01, i) for i in range(4)],
        ),
        "nt_xent": (lambda a, b: m.nt_xent(a, b, temperature=0.01, reduction="none"), np_nt_xent_rows(q, k, 0.01)),
    }
    for fn, expected in calls.values():
        out = to_numpy(fn(backend.asarray(q, dtype), backend.asarray(k, dtype)))
        assert out.dtype == np.dtype(dtype) and np.all(np.isfinite(out))
        close(out, expected, rtol=rtol, atol=rtol)
        if backend.has_autodiff:
            _, grads = backend.value_and_grad(fn, [backend.asarray(q, dtype), backend.asarray(k, dtype)], (0, 1))
            assert all(np.all(np.isfinite(to_numpy(g))) for g in grads)
