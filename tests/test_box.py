"""Identities and edge behaviour of the bounding-box losses, on numpy, torch and jax.

Each property compares a loss with an independent computation: a closed form
written here (identical boxes), the same loss on transformed boxes (translated,
rescaled), another loss of the family (the GIoU/DIoU/CIoU penalties are
non-negative), or torchvision's code re-typed in the spec (degenerate boxes,
where it returns NaN). Gradients come from torch autograd and ``jax.grad``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import torch
from helpers import AUTODIFF, JAX, NUMPY, TORCH, close, namespace, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from polyloss.testing import boxes
from polyloss.verify.harness.base import Harness
from polyloss.verify.specs import box as box_spec  # the re-typed torchvision losses

LOSSES = ("box_iou", "box_giou", "box_diou", "box_ciou")
N = 6  # box pairs per batch: one shape throughout, so jax compiles each eager op once
TORCHVISION = {
    "box_giou": box_spec.tv_generalized_box_iou_loss,
    "box_diou": box_spec.tv_distance_box_iou_loss,
    "box_ciou": box_spec.tv_complete_box_iou_loss,
}
TORCH_MODULES = types.SimpleNamespace(torch=torch)


# --------------------------------------------------------------------------- helpers


def loss_fn(backend: Harness, name: str, **kwargs: Any) -> Callable[[Any, Any], Any]:
    fn = getattr(namespace(backend), name)
    return lambda pred, target: fn(pred, target, reduction="none", **kwargs)


def random_boxes(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Valid (x1, y1, x2, y2) boxes anywhere in [-3, 3]^2: overlapping, nested and disjoint pairs alike."""
    x = np.sort(rng.uniform(-3.0, 3.0, size=(*shape, 2)), axis=-1)
    y = np.sort(rng.uniform(-3.0, 3.0, size=(*shape, 2)), axis=-1)
    return np.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], axis=-1)


@st.composite
def box_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """N (pred, target) pairs (polyloss.testing.boxes: sides 0.5 to 10, ties and touching edges
    included) and, every other pair, the target a copy of the prediction moved by at most 0.2 per
    coordinate (overlapping)."""
    pred, target = draw(boxes(batch=N, max_coordinate=10.0, min_size=0.5))
    jitter = draw(hnp.arrays(np.float64, (N, 4), elements=st.floats(-0.2, 0.2)))
    target = target.copy()
    target[::2] = pred[::2] + jitter[::2]  # x1 <= x2 and y1 <= y2 still: sides >= 0.5 move by <= 0.4
    return pred, target


#: offsets of magnitude 1 to 10 (so that moving one box of an overlapping pair changes its loss)
OFFSETS = hnp.arrays(np.float64, (N, 2), elements=st.one_of(st.floats(-10.0, -1.0), st.floats(1.0, 10.0)))


def area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


# --------------------------------------------------------------------------- identical boxes


def test_identical_boxes_give_zero_loss(backend):
    boxes = random_boxes(np.random.default_rng(0), (N,))
    for name in LOSSES:
        # eps = 0: IoU is exactly 1 and every penalty 0 (same enclosing box, same center, same aspect)
        out = loss_fn(backend, name, eps=0.0)(backend.asarray(boxes), backend.asarray(boxes))
        np.testing.assert_allclose(to_numpy(out), 0.0, atol=1e-15)
        # default eps: only the IoU term moves, 1 - A / (A + eps) = eps / (A + eps)
        out = loss_fn(backend, name)(backend.asarray(boxes), backend.asarray(boxes))
        close(out, 1e-7 / (area(boxes) + 1e-7), rtol=1e-6, atol=0.0)
        if backend.has_autodiff:
            for eps in (0.0, 1e-7):
                _, grads = backend.value_and_grad(
                    loss_fn(backend, name, eps=eps), [backend.asarray(boxes), backend.asarray(boxes)], (0, 1)
                )
                assert all(np.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------- degenerate boxes

DEGENERATE = {  # (pred, target)
    "point vs box": ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 3.0]),
    "zero width vs box": ([1.0, 0.5, 1.0, 2.0], [0.0, 0.0, 2.0, 3.0]),
    "zero height vs box": ([0.5, 1.0, 2.5, 1.0], [0.0, 0.0, 2.0, 3.0]),
    "box vs zero height": ([0.0, 0.0, 2.0, 3.0], [0.5, 1.0, 2.5, 1.0]),
    "identical points": ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),
    "identical zero height": ([0.0, 1.0, 2.0, 1.0], [0.0, 1.0, 2.0, 1.0]),
}


@pytest.mark.parametrize("eps", [1e-7, 0.0])
@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_degenerate_boxes_give_finite_values_and_gradients(backend, eps):
    names = list(DEGENERATE)  # one batch: pairs are independent under reduction="none"
    pred, target = degenerate_batch()
    identical = np.array([c.startswith("identical") for c in names])
    for name in LOSSES:
        value, grads = backend.value_and_grad(
            loss_fn(backend, name, eps=eps), [backend.asarray(pred), backend.asarray(target)], (0, 1)
        )
        assert np.isfinite(value).all(), (name, value)
        assert all(np.isfinite(g).all() for g in grads), (name, grads)
        close(value, to_numpy(loss_fn(NUMPY, name, eps=eps)(pred, target)))
        # identical empty boxes: IoU 0 (0 / 0 with eps = 0 is taken as 0), no enclosing-area,
        # center or aspect penalty
        close(value[identical], 1.0, atol=1e-15)
    # an empty box never intersects: IoU 0
    close(loss_fn(backend, "box_iou", eps=eps)(backend.asarray(pred), backend.asarray(target)), np.ones(len(names)))


def degenerate_batch() -> tuple[np.ndarray, np.ndarray]:
    pairs = list(DEGENERATE.values())
    return np.asarray([p[0] for p in pairs]), np.asarray([p[1] for p in pairs])


def _torchvision_value_and_grad(name: str, pred, target, eps: float = 1e-7):
    p = torch.as_tensor(np.asarray(pred, dtype="float64")).requires_grad_(True)
    out = TORCHVISION[name](TORCH_MODULES, p, torch.as_tensor(np.asarray(target, dtype="float64")), eps=eps)
    (grad,) = torch.autograd.grad(out.sum(), p)
    return to_numpy(out), to_numpy(grad)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_ciou_zero_height_box_is_finite_where_torchvision_is_nan(backend):
    """atan(w / h) at h = 0: torchvision's value is pi/2 (atan(inf)) but its gradient
    0 * inf = NaN; polyloss's atan2 has the same value and a finite gradient."""
    pred, target = degenerate_batch()
    row = {name: i for i, name in enumerate(DEGENERATE)}
    value, grads = backend.value_and_grad(
        loss_fn(backend, "box_ciou"), [backend.asarray(pred), backend.asarray(target)], (0, 1)
    )
    assert np.isfinite(value).all() and np.isfinite(grads[0]).all()
    tv_value, tv_grad = _torchvision_value_and_grad("box_ciou", pred, target)
    zero_height = row["zero height vs box"]
    assert np.isfinite(tv_value[zero_height]) and np.isnan(tv_grad[zero_height]).any()
    close(value[zero_height], tv_value[zero_height])
    # a point box: torchvision's atan(0 / 0) makes the value NaN too; polyloss takes angle 0
    assert np.isnan(tv_value[row["point vs box"]])
    # identical empty boxes with eps = 0: torchvision divides 0 by 0 (GIoU, DIoU), polyloss gives 1
    tv_value, _ = _torchvision_value_and_grad("box_giou", pred, target, eps=0.0)
    ours = to_numpy(loss_fn(backend, "box_giou", eps=0.0)(backend.asarray(pred), backend.asarray(target)))
    assert np.isnan(tv_value[row["identical points"]]) and ours[row["identical points"]] == 1.0


# --------------------------------------------------------------------------- invalid boxes


@pytest.mark.parametrize("coordinate", [0, 1])  # x1 > x2 or y1 > y2
@pytest.mark.parametrize("which", ["pred", "target"])
@pytest.mark.parametrize("name", LOSSES)
def test_inverted_boxes_raise(backend, name, which, coordinate):
    good = random_boxes(np.random.default_rng(1), (N,))
    bad = good.copy()
    bad[1, coordinate], bad[1, coordinate + 2] = bad[1, coordinate + 2], bad[1, coordinate]
    pred, target = (bad, good) if which == "pred" else (good, bad)
    fn = getattr(namespace(backend), name)
    fn(backend.asarray(good), backend.asarray(good))  # the valid pair passes
    with pytest.raises(ValueError, match=which):
        fn(backend.asarray(pred), backend.asarray(target))


# --------------------------------------------------------------------------- invariances and bounds


@given(pairs=box_pairs(), shift=OFFSETS)
@settings(max_examples=3)
def test_translating_both_boxes_leaves_every_loss_unchanged(backend, pairs, shift):
    pred, target = pairs
    offset = np.tile(shift, 2)  # (dx, dy, dx, dy) per pair
    for name in LOSSES:
        fn = loss_fn(backend, name)
        base = to_numpy(fn(backend.asarray(pred), backend.asarray(target)))
        close(fn(backend.asarray(pred + offset), backend.asarray(target + offset)), base, rtol=1e-9, atol=1e-12)
        # moving one box only changes the loss (the property is not vacuous)
        assert not np.allclose(to_numpy(fn(backend.asarray(pred + offset), backend.asarray(target))), base)


@given(pairs=box_pairs())
@settings(max_examples=3)
def test_scaling_both_boxes_leaves_every_loss_unchanged_without_eps(backend, pairs):
    pred, target = pairs
    for name in LOSSES:
        fn = loss_fn(backend, name, eps=0.0)
        base = to_numpy(fn(backend.asarray(pred), backend.asarray(target)))
        for c in (1e-3, 0.37, 12.5, 1e3):
            close(fn(backend.asarray(c * pred), backend.asarray(c * target)), base, rtol=1e-9, atol=1e-12)
    # with eps > 0 the invariance holds only up to eps: tiny boxes (areas ~1e-8) feel eps = 1e-7
    with_eps = loss_fn(backend, "box_iou")
    p, t = np.tile([0.0, 0.0, 2.0, 2.0], (N, 1)), np.tile([1.0, 1.0, 3.0, 3.0], (N, 1))  # IoU 1/7
    close(with_eps(backend.asarray(p), backend.asarray(t)), np.full(N, 6.0 / 7.0), rtol=1e-6)
    close(with_eps(backend.asarray(1e-4 * p), backend.asarray(1e-4 * t)), np.full(N, 1.0 - 1e-8 / (7e-8 + 1e-7)))


@given(pairs=box_pairs())
@settings(max_examples=3)
def test_penalties_bound_the_losses(backend, pairs):
    """IoU <= GIoU <= IoU + 1, IoU <= DIoU < IoU + 1 and DIoU <= CIoU, pair by pair."""
    pred, target = pairs
    p, t = backend.asarray(pred), backend.asarray(target)
    iou, giou, diou, ciou = (to_numpy(loss_fn(backend, name)(p, t)) for name in LOSSES)
    assert np.all((iou >= 0.0) & (iou <= 1.0))
    tol = 1e-12  # C - U of nested boxes is 0 up to rounding (-1e-16 seen)
    assert np.all(giou >= iou - tol) and np.all(giou <= iou + 1.0)
    assert np.all(diou >= iou - tol) and np.all(diou < iou + 1.0)
    assert np.all(ciou >= diou - tol)
    # the penalties are what is left for disjoint (non-empty) pairs; GIoU's only where a gap separates
    # them (two boxes that touch can fill their enclosing box: GIoU = IoU = 1 there)
    disjoint = iou == 1.0
    gap = (np.maximum(pred[:, 0], target[:, 0]) > np.minimum(pred[:, 2], target[:, 2])) | (
        np.maximum(pred[:, 1], target[:, 1]) > np.minimum(pred[:, 3], target[:, 3])
    )
    assert np.all(giou[gap] > 1.0) and np.all(diou[disjoint] > 1.0)


# --------------------------------------------------------------------------- ties


TIED = {  # (pred, target) pairs sharing edges: every max/min of the geometry ties somewhere
    "identical": ([0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 2.0, 1.0]),
    "shared x1 and y2": ([0.0, 0.5, 2.0, 3.0], [0.0, 1.0, 1.5, 3.0]),
    "nested touching three edges": ([0.0, 0.0, 3.0, 2.0], [0.0, 0.0, 1.0, 2.0]),
    "touching side by side": ([0.0, 0.0, 1.0, 2.0], [1.0, 0.5, 2.5, 1.5]),
    "touching corners": ([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 2.0, 3.0]),
    "shared y1 only": ([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 1.0]),
}


@pytest.mark.parametrize("eps", [1e-7, 0.0])
def test_torch_and_jax_gradients_agree_on_tied_coordinates(eps):
    pred, target = (np.asarray([pair[i] for pair in TIED.values()]) for i in (0, 1))
    for name in LOSSES:
        torch_value, torch_grads = TORCH.value_and_grad(
            loss_fn(TORCH, name, eps=eps), [TORCH.asarray(pred), TORCH.asarray(target)], (0, 1)
        )
        jax_value, jax_grads = JAX.value_and_grad(
            loss_fn(JAX, name, eps=eps), [JAX.asarray(pred), JAX.asarray(target)], (0, 1)
        )
        close(torch_value, jax_value)
        for gt, gj in zip(torch_grads, jax_grads, strict=True):
            assert np.isfinite(gt).all()
            close(gt, gj, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["box_iou", "box_giou", "box_diou", "box_ciou"])
def test_integer_boxes_are_promoted_as_torchvision_does(name):
    """Pixel boxes as integers: the loss of their float copies, in the framework's default floating
    dtype (torch float32; NumPy float64; JAX float64 here, under jax_enable_x64), or in the other
    input's dtype when one is floating."""
    pred = np.array([[0, 0, 10, 10], [2, 3, 8, 9]])
    target = np.array([[1, 1, 11, 12], [0, 0, 5, 5]])
    defaults = {"numpy": "float64", "torch": "float32", "jax": str(jax.numpy.asarray(0.0).dtype)}
    for harness in (NUMPY, TORCH, JAX):
        fn = getattr(namespace(harness), name)
        as_float = to_numpy(fn(harness.asarray(pred.astype(np.float64)), harness.asarray(target.astype(np.float64))))
        from_ints = fn(harness.asarray(pred), harness.asarray(target))
        assert str(from_ints.dtype).removeprefix("torch.") == defaults[harness.name], (harness.name, from_ints.dtype)
        close(to_numpy(from_ints), as_float, rtol=1e-6, atol=1e-7)
        mixed = fn(harness.asarray(pred.astype(np.float64)), harness.asarray(target))
        assert str(mixed.dtype).removeprefix("torch.") == "float64", (harness.name, mixed.dtype)
        close(to_numpy(mixed), as_float)
