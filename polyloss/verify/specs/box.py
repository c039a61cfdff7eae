"""Specs of the bounding-box losses (see ``polyloss/core/box.py``).

Boxes are ``(..., 4)`` in ``(x1, y1, x2, y2)`` form; ``reduction="none"`` gives one
value per box pair. Every generator keeps the finite-difference checks away from
the kinks: along each axis the four coordinates of a pair (``x1, x2`` of the
prediction and of the target) are drawn as four distinct values at least ``GAP``
apart, so no ``max``/``min`` of the intersection or the enclosing box ties and no
overlap width or height is near 0.

References: torchvision's ``generalized_box_iou_loss``, ``distance_box_iou_loss``
and ``complete_box_iou_loss`` (with their helper ``_loss_inter_union``) and
detectron2's ``ciou_loss``, re-typed in torch (torchvision is not a dependency);
study-hub's (eunsu-park/study-hub, lesson 24) ``iou_loss`` and ``giou_loss`` (eps 1e-6, mean only); and a
slow per-box NumPy loop of the papers' formulas. optax 0.2.8 has no box loss.
"""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Raises, f64
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the box losses' axis (shared by the family's comparison plot)
OFFSET_AXIS = "left edge of a 2 x 1 predicted box (unit box target)"


def _offset_plot() -> Plot:
    """The loss of a wide box ``(x, 0, x + 2, 1)`` against the unit target ``(0, 0, 1, 1)``: overlapping
    for ``-2 < x < 1``, apart beyond (IoU loss 1 there, GIoU's and DIoU's still growing); its aspect
    ratio (2:1 against 1:1) is what CIoU adds to DIoU."""
    return Plot(
        OFFSET_AXIS,
        lambda x: {"pred": f64([[x, 0.0, x + 2.0, 1.0]]), "target": f64([[0.0, 0.0, 1.0, 1.0]])},
        span=(-4.0, 3.0),
    )


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    SAME = f64([[0.0, 0.0, 2.0, 1.0]])
    for loss in ("box_iou", "box_giou", "box_diou", "box_ciou"):
        edges.case(loss, "identical boxes: 0", {"pred": SAME, "target": SAME}, Finite(0.0), params={"eps": 0.0})
        edges.case(loss, "zero-height predicted box", {"pred": f64([[0.0, 1.0, 2.0, 1.0]]), "target": SAME}, Finite())
        edges.case(
            loss,
            "zero-area (point) boxes, identical",
            {"pred": f64([[1.0, 1.0, 1.0, 1.0]]), "target": f64([[1.0, 1.0, 1.0, 1.0]])},
            Finite(),
        )
        edges.case(
            loss,
            "inverted box (x2 < x1)",
            {"pred": f64([[2.0, 0.0, 0.0, 1.0]]), "target": SAME},
            Raises(ValueError, r"pred boxes must be \(x1, y1, x2, y2\) with x1 <= x2"),
        )
    edges.case(
        "box_iou",
        "disjoint boxes: 1",
        {"pred": f64([[0.0, 0.0, 1.0, 1.0]]), "target": f64([[2.0, 2.0, 3.0, 3.0]])},
        Finite(1.0, grad="zero"),
        params={"eps": 0.0},
    )
    for loss in ("box_iou", "box_giou", "box_diou", "box_ciou"):  # an image without boxes
        edges.empty_batch(loss, {"pred": np.zeros((0, 4)), "target": np.zeros((0, 4))}, (0,))
    return edges


EDGES = _edge_cases()


def _zero_area_boxes(arrays: dict[str, np.ndarray]) -> None:
    """Degenerate boxes (x1 == x2 and/or y1 == y2) as both prediction and target: union 0."""
    boxes = np.array([[1.0, 2.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.25, 0.5, 1.5]])
    shape = arrays["pred"].shape
    filled = np.resize(boxes, (int(np.prod(shape[:-1])), 4)).reshape(shape)
    arrays["pred"], arrays["target"] = filled.copy(), filled.copy()


def _box_half_precision(name: str, *variants: str) -> HalfPrecision:
    return HalfPrecision(
        variants=variants,
        zero_cases=(
            ZeroCase(f"{name} zero-area boxes", "overlapping", (_zero_area_boxes,)),
            ZeroCase(f"{name} zero-area boxes,eps=0", "mixed,shape=(n,2,4),eps=0.0", (_zero_area_boxes,)),
        ),
    )


GAP = 0.05  # minimal distance between any two compared coordinates of a box pair (one axis)
TORCHVISION_EPS = 1e-7


# -- generators ---------------------------------------------------------------------

# How the two intervals of one axis sit on four sorted values a < b < c < d:
# (pred, target) index pairs into (a, b, c, d).
_OVERLAP = (((0, 2), (1, 3)), ((1, 3), (0, 2)))  # interleaved: partial overlap
_NESTED = (((0, 3), (1, 2)), ((1, 2), (0, 3)))  # one interval inside the other
_DISJOINT = (((0, 1), (2, 3)), ((2, 3), (0, 1)))  # apart: no overlap on this axis


def _four_values(rng: np.random.Generator) -> np.ndarray:
    """Four sorted values, consecutive ones between GAP and 2 apart."""
    return rng.uniform(-2.0, 2.0) + np.cumsum(np.concatenate([[0.0], rng.uniform(GAP, 2.0, size=3)]))


def _axis(rng: np.random.Generator, layouts) -> tuple[tuple[float, float], tuple[float, float]]:
    values = _four_values(rng)
    (p1, p2), (t1, t2) = layouts[rng.integers(len(layouts))]
    return (values[p1], values[p2]), (values[t1], values[t2])


def _pair(rng: np.random.Generator, x_layouts, y_layouts) -> tuple[np.ndarray, np.ndarray]:
    (px1, px2), (tx1, tx2) = _axis(rng, x_layouts)
    (py1, py2), (ty1, ty2) = _axis(rng, y_layouts)
    return np.array([px1, py1, px2, py2]), np.array([tx1, ty1, tx2, ty2])


_EVERY = _OVERLAP + _NESTED + _DISJOINT
_LAYOUTS = {
    "overlapping": (_OVERLAP + _NESTED, _OVERLAP),  # both axes overlap: IoU in (0, 1)
    "disjoint": (_DISJOINT, _EVERY),  # apart along x (y anything): IoU 0, only the penalties pull
    "mixed": (_EVERY, _EVERY),
}


def _boxes(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    pred, target = np.zeros((*shape, 4)), np.zeros((*shape, 4))
    for idx in np.ndindex(shape):
        if kind == "nested":  # one box strictly inside the other (the same one on both axes)
            inner = (_NESTED[rng.integers(2)],)
            pred[idx], target[idx] = _pair(rng, inner, inner)
        else:
            pred[idx], target[idx] = _pair(rng, *_LAYOUTS[kind])
    return {"pred": pred, "target": target}


def _variant(kind: str, extra_axis: bool = False, **params: object) -> Variant:
    def make(rng: np.random.Generator, n: int) -> Case:
        return Case(_boxes(kind, rng, (n, 2) if extra_axis else (n,)), dict(params))

    name = ",".join([kind] + (["shape=(n,2,4)"] if extra_axis else []) + [f"{k}={v}" for k, v in params.items()])
    return Variant(name, make)


VARIANTS = (
    _variant("overlapping"),
    _variant("disjoint"),
    _variant("nested"),
    _variant("mixed", eps=1e-6),
    _variant("mixed", extra_axis=True, eps=0.0),
)


# -- torchvision (re-typed) ------------------------------------------------------------


def _tv_loss_inter_union(m, boxes1, boxes2):
    """torchvision.ops._utils._loss_inter_union."""
    torch = m.torch
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)

    # Intersection keypoints
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)

    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk

    return intsctk, unionk


def _tv_reduce(loss, reduction):
    """torchvision's reduction tail (default "none")."""
    if reduction == "mean":
        loss = loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def _tv_enclosing_box(m, boxes1, boxes2):
    """The smallest enclosing box's corners: lines torchvision's and detectron2's losses share."""
    torch = m.torch
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    return torch.min(x1, x1g), torch.min(y1, y1g), torch.max(x2, x2g), torch.max(y2, y2g)


def _diagonal_and_centers(m, boxes1, boxes2, eps):
    """The enclosing box's squared diagonal plus eps, and the squared distance of the centres
    (torchvision's ``_diou_iou_loss`` and detectron2's ``ciou_loss`` write the same lines)."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1, yc1, xc2, yc2 = _tv_enclosing_box(m, boxes1, boxes2)
    # The diagonal distance of the smallest enclosing box squared
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    # centers of boxes
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    # The distance between boxes' centers squared.
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    return diagonal_distance_squared, centers_distance_squared


def _aspect_term(m, boxes1, boxes2):
    """CIoU's aspect-ratio term v, as torchvision and detectron2 write it."""
    torch = m.torch
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    # width and height of boxes
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    return (4 / (torch.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)


def tv_generalized_box_iou_loss(m, boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.generalized_box_iou_loss."""
    intsctk, unionk = _tv_loss_inter_union(m, boxes1, boxes2)
    iouk = intsctk / (unionk + eps)

    # smallest enclosing box
    xc1, yc1, xc2, yc2 = _tv_enclosing_box(m, boxes1, boxes2)

    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))

    loss = 1 - miouk
    return _tv_reduce(loss, reduction)


def _tv_diou_iou_loss(m, boxes1, boxes2, eps=1e-7):
    """torchvision.ops.diou_loss._diou_iou_loss."""
    intsct, union = _tv_loss_inter_union(m, boxes1, boxes2)
    iou = intsct / (union + eps)
    diagonal_distance_squared, centers_distance_squared = _diagonal_and_centers(m, boxes1, boxes2, eps)
    # The distance IoU is the IoU penalized by a normalized
    # distance between boxes' centers squared.
    loss = 1 - iou + (centers_distance_squared / diagonal_distance_squared)
    return loss, iou


def tv_distance_box_iou_loss(m, boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.distance_box_iou_loss."""
    loss, _ = _tv_diou_iou_loss(m, boxes1, boxes2, eps)
    return _tv_reduce(loss, reduction)


def tv_complete_box_iou_loss(m, boxes1, boxes2, reduction="none", eps=1e-7):
    """torchvision.ops.complete_box_iou_loss: note ``_diou_iou_loss`` is called without
    ``eps`` (so with its default 1e-7); only ``alpha`` sees the argument."""
    torch = m.torch
    diou_loss, iou = _tv_diou_iou_loss(m, boxes1, boxes2)
    v = _aspect_term(m, boxes1, boxes2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)

    loss = diou_loss + alpha * v
    return _tv_reduce(loss, reduction)


def d2_ciou_loss(m, boxes1, boxes2, reduction="none", eps=1e-7):
    """detectron2.layers.losses.ciou_loss (torchvision's original): eps in every place."""
    torch = m.torch
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)

    assert (x2 >= x1).all(), "bad box: x1 larger than x2"
    assert (y2 >= y1).all(), "bad box: y1 larger than y2"

    # Intersection keypoints
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)

    intsct = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsct[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsct + eps
    iou = intsct / union

    diag_len, distance = _diagonal_and_centers(m, boxes1, boxes2, eps)
    v = _aspect_term(m, boxes1, boxes2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)

    # Eqn. (10)
    loss = 1 - iou + (distance / diag_len) + alpha * v
    return _tv_reduce(loss, reduction)


def _torchvision(name: str, fn, eps_only_default: bool = False) -> Reference:
    def ref(m, a, p, r):
        eps = p.get("eps", TORCHVISION_EPS)
        if eps_only_default and eps != TORCHVISION_EPS:
            raise NotApplicable(
                "torchvision's complete_box_iou_loss calls _diou_iou_loss without eps: its IoU and distance "
                "terms always use 1e-7 (see the detectron2 reference for other eps)"
            )
        return fn(m, a["pred"], a["target"], reduction=r, eps=eps)

    return Reference(name, "torch", ref)


# -- study-hub, lesson 24 (re-typed) --------------------------------------------------------


def _study_hub_iou_and_union(m, pred_boxes, target_boxes):
    """The lines study-hub's iou_loss and giou_loss share (re-typed once): the IoU and the union."""
    torch = m.torch
    # Intersection coordinates
    x1_inter = torch.max(pred_boxes[:, 0], target_boxes[:, 0])
    y1_inter = torch.max(pred_boxes[:, 1], target_boxes[:, 1])
    x2_inter = torch.min(pred_boxes[:, 2], target_boxes[:, 2])
    y2_inter = torch.min(pred_boxes[:, 3], target_boxes[:, 3])
    # Intersection area
    inter_area = torch.clamp(x2_inter - x1_inter, min=0) * torch.clamp(y2_inter - y1_inter, min=0)
    # Union area
    pred_area = (pred_boxes[:, 2] - pred_boxes[:, 0]) * (pred_boxes[:, 3] - pred_boxes[:, 1])
    target_area = (target_boxes[:, 2] - target_boxes[:, 0]) * (target_boxes[:, 3] - target_boxes[:, 1])
    union_area = pred_area + target_area - inter_area
    # IoU
    iou = inter_area / (union_area + 1e-6)
    return iou, union_area


def study_hub_iou_loss(m, pred_boxes, target_boxes):
    iou, _ = _study_hub_iou_and_union(m, pred_boxes, target_boxes)
    return 1 - iou.mean()


def study_hub_giou_loss(m, pred_boxes, target_boxes):
    torch = m.torch
    iou, union_area = _study_hub_iou_and_union(m, pred_boxes, target_boxes)
    # Enclosing box
    x1_c = torch.min(pred_boxes[:, 0], target_boxes[:, 0])
    y1_c = torch.min(pred_boxes[:, 1], target_boxes[:, 1])
    x2_c = torch.max(pred_boxes[:, 2], target_boxes[:, 2])
    y2_c = torch.max(pred_boxes[:, 3], target_boxes[:, 3])
    enclosing_area = (x2_c - x1_c) * (y2_c - y1_c)
    # GIoU
    giou = iou - (enclosing_area - union_area) / (enclosing_area + 1e-6)
    return 1 - giou.mean()


def _study_hub(name: str, fn) -> Reference:
    def ref(m, a, p, r):
        if p.get("eps", TORCHVISION_EPS) != 1e-6:
            raise NotApplicable("the original code hard-codes eps=1e-6")
        if r != "mean":
            raise NotApplicable("the original function returns the mean only")
        if a["pred"].ndim != 2:
            raise NotApplicable("the original function takes (N, 4) boxes")
        return fn(m, a["pred"], a["target"])

    return Reference(f"study-hub {name} (re-typed)", "torch", ref)


# -- a slow per-box loop of the papers' formulas ---------------------------------------------


def _box_terms(p: list[float], t: list[float], eps: float) -> dict[str, float]:
    """One pair of boxes, plain floats: IoU and the three penalties, as the papers define them."""
    px1, py1, px2, py2 = p
    tx1, ty1, tx2, ty2 = t
    overlap_w = max(0.0, min(px2, tx2) - max(px1, tx1))
    overlap_h = max(0.0, min(py2, ty2) - max(py1, ty1))
    inter = overlap_w * overlap_h
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    iou = inter / (union + eps)
    cw, ch = max(px2, tx2) - min(px1, tx1), max(py2, ty2) - min(py1, ty1)
    hull = cw * ch
    rho2 = ((px1 + px2) / 2 - (tx1 + tx2) / 2) ** 2 + ((py1 + py2) / 2 - (ty1 + ty2) / 2) ** 2
    v = 4 / math.pi**2 * (math.atan((tx2 - tx1) / (ty2 - ty1)) - math.atan((px2 - px1) / (py2 - py1))) ** 2
    return {
        "box_iou": 1 - iou,
        "box_giou": 1 - iou + (hull - union) / (hull + eps),
        "box_diou": 1 - iou + rho2 / (cw * cw + ch * ch + eps),
        "box_ciou": 1 - iou + rho2 / (cw * cw + ch * ch + eps) + v / (1 - iou + v + eps) * v,
    }


def _numpy_loop(loss: str) -> Reference:
    def ref(m, a, p, r):
        pred, target = m.np.asarray(a["pred"]), m.np.asarray(a["target"])
        out = m.np.zeros(pred.shape[:-1])
        for idx in m.np.ndindex(out.shape):
            terms = _box_terms(
                [float(v) for v in pred[idx]], [float(v) for v in target[idx]], p.get("eps", TORCHVISION_EPS)
            )
            out[idx] = terms[loss]
        return reduce_reference(m.np, out, r)

    return Reference("per-box loop of the paper's formula", "numpy", ref, grads=False)


# -- specs -------------------------------------------------------------------------------

register(
    LossSpec(
        name="box_iou",
        variants=VARIANTS,
        references=(_study_hub("iou_loss", study_hub_iou_loss), _numpy_loop("box_iou")),
        notes="torchvision has no plain IoU loss (its IoU term is the first term of the GIoU/DIoU references).",
        layout=Layout(("pred", "target")),
        half_precision=_box_half_precision("box_iou", "mixed,shape=(n,2,4),eps=0.0"),
        plot=_offset_plot(),
    )
)

register(
    LossSpec(
        name="box_giou",
        variants=VARIANTS,
        references=(
            _torchvision("torchvision.ops.generalized_box_iou_loss (re-typed)", tv_generalized_box_iou_loss),
            _study_hub("giou_loss", study_hub_giou_loss),
            _numpy_loop("box_giou"),
        ),
        layout=Layout(("pred", "target")),
        half_precision=_box_half_precision("box_giou"),
        plot=_offset_plot(),
    )
)

register(
    LossSpec(
        name="box_diou",
        variants=VARIANTS,
        references=(
            _torchvision("torchvision.ops.distance_box_iou_loss (re-typed)", tv_distance_box_iou_loss),
            _numpy_loop("box_diou"),
        ),
        layout=Layout(("pred", "target")),
        half_precision=_box_half_precision("box_diou"),
        plot=_offset_plot(),
    )
)

register(
    LossSpec(
        name="box_ciou",
        variants=VARIANTS,
        references=(
            _torchvision(
                "torchvision.ops.complete_box_iou_loss (re-typed)", tv_complete_box_iou_loss, eps_only_default=True
            ),
            _torchvision("detectron2.layers.losses.ciou_loss (re-typed)", d2_ciou_loss),
            _numpy_loop("box_ciou"),
        ),
        finite_differences=False,
        notes=(
            "alpha is held constant in the gradient (paper, torchvision, detectron2), so the gradient is not that "
            "of the value and finite differences do not apply; the gradient is checked against torch autograd "
            "through the re-typed torchvision and detectron2 CIoU instead (and torch against jax). torchvision "
            "passes eps only to alpha (its IoU and distance terms use 1e-7 whatever eps): compared at eps=1e-7 only."
        ),
        layout=Layout(("pred", "target")),
        half_precision=_box_half_precision("box_ciou", "disjoint"),
        plot=_offset_plot(),
    )
)
