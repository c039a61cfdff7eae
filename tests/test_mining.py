"""``triplet_mined``: every mining rule against a slow loop over all (anchor, positive, negative).

The oracle is the spec's slow loop (``polyloss.verify.specs.metric``), written from the
definitions alone (no masks, no vectorisation) and checked by hand below: for each anchor,
its positives (same label, another row) and its negatives (other labels), then the rule:

* batch_hard: relu(max_p d_ap - min_n d_an + margin) per anchor with both; mean over those anchors;
* batch_all: sum over (p, n) of relu(d_ap - d_an + margin); mean over the triplets with a positive loss;
* semi_hard: per (a, p), the closest negative farther than p (else the farthest negative),
  relu(margin + d_ap - d_an*); mean over the pairs (a, p) whose anchor has a negative.

It is compared with polyloss.numpy, polyloss.torch and polyloss.jax (eager, jax.jit and
jax.vmap over a stacked batch) for every reduction, and batches without a valid triplet
must give exactly 0 with a finite, zero gradient.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import HARNESSES, MODULES, NUMPY, close, to_numpy

import polyloss.jax as pj
import polyloss.torch as pt
from polyloss.verify.specs import SPECS

MININGS = ("batch_hard", "batch_all", "semi_hard")
REDUCTIONS = ("mean", "sum", "none")
MARGINS = (1.0, 0.3)  # one per seed (margin 0 in the random-labels test)
SEEDS = (0, 1)

LABELS = {
    "three classes": [0, 0, 1, 1, 2, 2],
    "two classes": [1, 0, 1, 0, 0, 1],
    "singleton class": [4, 4, 4, 9, 9, 1],
    "two singletons": [7, 3, 3, 5, 3, 3],
    "all same": [3, 3, 3, 3, 3, 3],
    "all distinct": [0, 1, 2, 3, 4, 5],
    "four classes": [2, 0, 2, 8, 0, 5],
    "one row": [0],
}


# --------------------------------------------------------------------------- the slow loop

#: the spec's slow loop (``polyloss.verify.specs.metric``), the one mined-triplet oracle
MINING_LOOP = next(r for r in SPECS["triplet_mined"].references if r.name == "mining loop over (a, p, n)")


def slow_triplet_mined(
    e: np.ndarray, y: list[int], *, margin: float, mining: str, squared: bool, reduction: str
) -> np.ndarray:
    arrays = {"embeddings": np.asarray(e, dtype=np.float64), "labels": np.asarray(y, dtype=np.int64)}
    params = {"margin": margin, "mining": mining, "squared": squared}
    return np.asarray(MINING_LOOP.fn(NUMPY.reference_modules(), arrays, params, reduction))


def test_slow_loop_by_hand():
    """The loop itself, on a batch small enough to work out on paper (1-D embeddings)."""
    e = np.array([[0.0], [1.0], [3.0], [3.5]])
    y = [0, 0, 1, 1]
    # d: 0-1: 1, 0-2: 3, 0-3: 3.5, 1-2: 2, 1-3: 2.5, 2-3: 0.5
    # batch_hard, margin 1: a0: 1 - 3 + 1 < 0; a1: 1 - 2 + 1 = 0; a2: 0.5 - 2 + 1 < 0; a3: 0.5 - 2.5 + 1 < 0
    assert slow_triplet_mined(e, y, margin=1.0, mining="batch_hard", squared=False, reduction="sum") == 0.0
    # margin 2.5: a0: 0.5, a1: 1.5, a2: 1.0, a3: 0.5 -> sum 3.5, mean 3.5 / 4
    out = slow_triplet_mined(e, y, margin=2.5, mining="batch_hard", squared=False, reduction="none")
    np.testing.assert_allclose(out, [0.5, 1.5, 1.0, 0.5])
    # batch_all, margin 2.5: a0: (1-3+2.5)=0.5, (1-3.5+2.5)=0 -> 0.5 (1 positive triplet)
    # a1: (1-2+2.5)=1.5, (1-2.5+2.5)=1 -> 2.5 (2); a2: (0.5-3+2.5)=0, (0.5-2+2.5)=1 -> 1 (1)
    # a3: (0.5-3.5+2.5)<0, (0.5-2.5+2.5)=0.5 -> 0.5 (1): sum 4.5 over 5 positive triplets
    assert slow_triplet_mined(e, y, margin=2.5, mining="batch_all", squared=False, reduction="mean") == 4.5 / 5
    # semi_hard, margin 1: a0 (p=1, d=1): negatives 3, 3.5 farther -> 3: 1 + 1 - 3 < 0
    # a1 (p=0, d=1): negatives 2, 2.5 -> 2: 1 + 1 - 2 = 0; a2 (p=3, d=0.5): 3, 2 -> 2: 1 + 0.5 - 2 < 0
    # a3 (p=2, d=0.5): 3.5, 2.5 -> 2.5: < 0
    assert slow_triplet_mined(e, y, margin=1.0, mining="semi_hard", squared=False, reduction="sum") == 0.0
    # no negative farther than the positive: e = [0, 3, 1] with y = [0, 0, 1]: a0: d_ap 3, negative at 1
    # (not farther) -> the farthest negative 1: 1 + 3 - 1 = 3; a1: d_ap 3, negative at 2 -> 1 + 3 - 2 = 2
    e2, y2 = np.array([[0.0], [3.0], [1.0]]), [0, 0, 1]
    np.testing.assert_allclose(
        slow_triplet_mined(e2, y2, margin=1.0, mining="semi_hard", squared=False, reduction="none"), [3.0, 2.0, 0.0]
    )


# --------------------------------------------------------------------------- helpers


def batch(seed: int, kind: str, dim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(LABELS[kind], dtype=np.int64)
    rng = np.random.default_rng([seed, len(labels), sum(LABELS[kind])])
    return rng.normal(size=(len(labels), dim)), labels


def call(backend: str, e: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
    harness = HARNESSES[backend]
    return to_numpy(MODULES[backend].triplet_mined(harness.asarray(e), harness.asarray(y), **kwargs))


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("kind", list(LABELS))
def test_equals_slow_loop(kind, mining, squared):
    for seed, margin in zip(SEEDS, MARGINS, strict=True):
        e, y = batch(seed, kind)
        for reduction in REDUCTIONS:
            kwargs = {"margin": margin, "mining": mining, "squared": squared, "reduction": reduction}
            expected = slow_triplet_mined(e, list(y), **kwargs)
            for backend in ("numpy", "torch", "jax"):
                out = call(backend, e, y, **kwargs)
                assert out.shape == expected.shape, (backend, out.shape, expected.shape)
                close(out, expected)


@pytest.mark.parametrize("mining", MININGS)
def test_random_labels_equal_slow_loop(mining):
    """Random sizes and labels from a few classes (any may be a singleton or absent)."""
    rng = np.random.default_rng(123)
    for _ in range(4):
        n = 6  # one shape: each new shape costs jax a fresh compilation of every op
        e = rng.normal(scale=float(rng.uniform(0.3, 2.0)), size=(n, 2))
        y = rng.integers(0, 3, size=n).astype(np.int64)
        margin = float(rng.choice([0.0, rng.uniform(0.0, 1.5)]))
        for reduction in REDUCTIONS:
            kwargs = {"margin": margin, "mining": mining, "squared": bool(rng.integers(2)), "reduction": reduction}
            expected = slow_triplet_mined(e, list(y), **kwargs)
            for backend in ("numpy", "torch", "jax"):
                close(call(backend, e, y, **kwargs), expected)


@pytest.mark.parametrize("mining", MININGS)
def test_jax_jit_and_vmap_equal_slow_loop(mining):
    kinds = ("three classes", "singleton class", "all same", "two classes")
    batches = [batch(seed, kind) for seed, kind in zip((5, 6, 7, 8), kinds, strict=True)]
    stacked_e = jnp.asarray(np.stack([e for e, _ in batches]))
    stacked_y = jnp.asarray(np.stack([y for _, y in batches]))
    for squared in (False, True):
        kwargs = {"margin": 0.7, "mining": mining, "squared": squared}

        def every_reduction(e, y, kwargs=kwargs):
            return tuple(pj.triplet_mined(e, y, reduction=r, **kwargs) for r in REDUCTIONS)

        expected = [[slow_triplet_mined(e, list(y), reduction=r, **kwargs) for e, y in batches] for r in REDUCTIONS]
        jitted = jax.jit(every_reduction)
        for i, (e, y) in enumerate(batches):
            for got, want in zip(jitted(jnp.asarray(e), jnp.asarray(y)), expected, strict=True):
                close(got, want[i])
        for got, want in zip(jax.vmap(every_reduction)(stacked_e, stacked_y), expected, strict=True):
            close(got, np.stack(want))


# --------------------------------------------------------------------------- no valid triplet


def _empty_batches():
    rng = np.random.default_rng(7)
    e = rng.normal(size=(6, 3))
    return {
        "all same labels": (e, np.full(6, 2, dtype=np.int64)),
        "all distinct labels": (e, np.arange(6, dtype=np.int64)),
        "all same labels, coincident rows": (np.tile(e[:1], (6, 1)), np.zeros(6, dtype=np.int64)),
        "all distinct labels, coincident rows": (np.tile(e[:1], (6, 1)), np.arange(6, dtype=np.int64) * 3),
        "one row": (e[:1], np.zeros(1, dtype=np.int64)),
    }


@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("name", list(_empty_batches()))
def test_no_valid_triplet_gives_zero_with_zero_gradient(name, mining):
    e, y = _empty_batches()[name]
    # squared=True matters where rows coincide (no sqrt at d = 0 to guard); elsewhere squared=False suffices
    squared_values = (False, True) if "coincident" in name else (False,)
    for squared, reduction in [(sq, r) for sq in squared_values for r in REDUCTIONS]:
        kwargs = {"margin": 1.0, "mining": mining, "squared": squared, "reduction": reduction}
        zeros = np.zeros(len(y)) if reduction == "none" else np.float64(0.0)
        close(slow_triplet_mined(e, list(y), **kwargs), zeros)
        assert np.array_equal(call("numpy", e, y, **kwargs), zeros)

        x = torch.as_tensor(e).clone().requires_grad_(True)
        out = pt.triplet_mined(x, torch.as_tensor(y), **kwargs)
        (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
        assert np.array_equal(out.detach().numpy(), zeros)
        grad = np.zeros_like(e) if grad is None else grad.numpy()
        assert np.all(np.isfinite(grad)) and np.all(grad == 0.0), grad

        def total(v, kwargs=kwargs):
            return jnp.sum(pj.triplet_mined(v, jnp.asarray(y), **kwargs))

        value, grad = jax.value_and_grad(total)(jnp.asarray(e))
        assert float(value) == 0.0
        assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad) == 0.0), grad


@pytest.mark.parametrize("mining", MININGS)
def test_no_valid_triplet_under_jit(mining):
    """The same under jax.jit (labels traced: no concrete check can short-cut the masks)."""

    @jax.jit
    def values_and_grads(v, y):
        out = []
        for squared in (False, True):
            for r in REDUCTIONS:

                def total(w, squared=squared, r=r):
                    return jnp.sum(pj.triplet_mined(w, y, margin=1.0, mining=mining, squared=squared, reduction=r))

                out.append(jax.value_and_grad(total)(v))
        return out

    for e, y in _empty_batches().values():
        for value, grad in values_and_grads(jnp.asarray(e), jnp.asarray(y)):
            assert float(value) == 0.0
            assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad) == 0.0), grad


@pytest.mark.parametrize("mining", MININGS)
def test_coincident_rows_with_valid_triplets_have_finite_gradients(mining):
    """Two rows of one class at the same point (d = 0 between them) next to another class."""
    rng = np.random.default_rng(3)
    e = rng.normal(size=(6, 3))
    e[1] = e[0]
    y = np.array([0, 0, 1, 1, 2, 2], dtype=np.int64)
    for reduction in REDUCTIONS:
        kwargs = {"margin": 1.0, "mining": mining, "reduction": reduction}
        expected = slow_triplet_mined(e, list(y), squared=False, **kwargs)
        x = torch.as_tensor(e).clone().requires_grad_(True)
        out = pt.triplet_mined(x, torch.as_tensor(y), **kwargs)
        close(out.detach().numpy(), expected)
        (g_torch,) = torch.autograd.grad(out.sum(), x)
        g_jax = jax.grad(lambda v, kwargs=kwargs: jnp.sum(pj.triplet_mined(v, jnp.asarray(y), **kwargs)))(
            jnp.asarray(e)
        )
        assert np.all(np.isfinite(g_torch.numpy())) and np.all(np.isfinite(np.asarray(g_jax)))
        close(g_torch.numpy(), np.asarray(g_jax))


@pytest.mark.parametrize("triplets_at_once", [36, 80])
@pytest.mark.parametrize("mining", ("batch_all", "semi_hard"))
def test_anchors_mined_a_few_at_a_time_equal_the_slow_loop(monkeypatch, mining, triplets_at_once):
    """The ``(anchor, positive, negative)`` comparisons made a chunk of anchors at a time (1 and 2
    anchors of 6 here; the default chunk holds 2**24 comparisons): values and gradients unchanged."""
    import polyloss.core.metric as core_metric

    monkeypatch.setattr(core_metric, "_TRIPLETS_AT_ONCE", triplets_at_once)
    assert len(core_metric._anchor_chunks(6)) == 6 // (triplets_at_once // 36)
    e, y = batch(0, "three classes")
    for reduction in REDUCTIONS:
        kwargs = {"margin": 1.0, "mining": mining, "squared": False, "reduction": reduction}
        for backend in ("numpy", "torch", "jax"):
            close(call(backend, e, y, **kwargs), slow_triplet_mined(e, list(y), **kwargs))
    x = torch.tensor(e, requires_grad=True)
    pt.triplet_mined(x, torch.tensor(y), mining=mining).backward()
    grad = jax.grad(lambda v: pj.triplet_mined(v, jnp.asarray(y), mining=mining))(jnp.asarray(e))
    monkeypatch.undo()  # one chunk: the path the conformance checks compare with finite differences
    x_whole = torch.tensor(e, requires_grad=True)
    pt.triplet_mined(x_whole, torch.tensor(y), mining=mining).backward()
    assert x.grad is not None and x_whole.grad is not None
    close(x.grad.numpy(), x_whole.grad.numpy())
    close(np.asarray(grad), x_whole.grad.numpy())
