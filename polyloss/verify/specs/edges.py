"""The edge-case corpus: singular and extreme inputs of every loss, each with its asserted outcome.

Data, not tests: :func:`polyloss.verify.conformance.check_edge_case` runs each case on
every backend that has the loss (and in each listed dtype), eagerly, and every
case with a value outcome also under ``jax.jit`` and ``torch.compile(fullgraph=True)``
in float32; ``python -m polyloss verify`` reports the coverage per loss. An outcome is

* :class:`Finite`: a finite loss, equal to a stated number when one is given
  (computed here from the definition with Python's ``math`` on the same,
  dtype-rounded inputs, never by polyloss), with finite gradients, or exactly
  zero gradients with ``grad="zero"``;
* :class:`Infinite`: ``+inf`` where the mathematics is infinite (documented in
  the loss' docstring), with gradients that are finite (no NaN);
* :class:`Raises`: a named exception whose message matches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

INF = math.inf


@dataclass(frozen=True)
class Finite:
    value: float | Callable[[dict[str, np.ndarray]], float] | None = None  # stated, or from the rounded inputs
    rtol: float = 1e-12  # float64; lower precisions use the dtype's own (see ``conformance``)
    grad: str = "finite"  # "finite", "zero" or "any"


@dataclass(frozen=True)
class Infinite:
    grad: str = "finite"


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    match: str


Outcome = Union[Finite, Infinite, Raises]


@dataclass(frozen=True)
class EdgeCase:
    loss: str
    name: str
    arrays: dict[str, Any]
    expect: Outcome
    params: dict[str, Any] = field(default_factory=dict)
    reduction: str = "mean"
    dtypes: tuple[str, ...] = ("float64", "float32")


EDGE_CASES: list[EdgeCase] = []


def case(loss: str, name: str, arrays: dict[str, Any], expect: Outcome, **options: Any) -> None:
    EDGE_CASES.append(EdgeCase(loss, name, dict(arrays), expect, **options))


def f64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def i64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --------------------------------------------------------------------------- independent scalar maths


def _logsumexp(row: list[float]) -> float:
    top = max(row)
    if top == -INF:
        return -INF
    return top + math.log(math.fsum(math.exp(x - top) for x in row))


def _ce(rows: Any, labels: Any) -> list[float]:
    return [_logsumexp(list(r)) - r[y] for r, y in zip(np.asarray(rows, dtype=float).tolist(), labels)]


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


# --------------------------------------------------------------------------- classification

SATURATED = {"+-20": 20.0, "+-100": 100.0, "+-1e4": 1e4}

case(
    "cross_entropy",
    "all rows ignored, -inf logits on them",
    {"logits": f64([[-INF, -INF, 0.0], [-INF, 1.0, -INF]]), "target": i64([-100, -100])},
    Finite(0.0, grad="zero"),
    params={"ignore_index": -100},
)
case(
    "cross_entropy",
    "one row ignored with -inf logits, one kept",
    {"logits": f64([[-INF, -INF, -INF], [0.5, -1.0, 2.0]]), "target": i64([-100, 2])},
    Finite(lambda a: _ce(a["logits"][1:], [2])[0]),
    params={"ignore_index": -100},
)
case(
    "cross_entropy",
    "-inf on non-target classes (masked vocabulary)",
    {"logits": f64([[0.0, -INF, 1.0], [-INF, 2.0, -INF]]), "target": i64([2, 1])},
    Finite(lambda a: _mean([math.log(1 + math.exp(-1.0)), 0.0])),
)
case("cross_entropy", "-inf at the target class", {"logits": f64([[0.0, -INF, 1.0]]), "target": i64([1])}, Infinite())
for label, big in SATURATED.items():
    case(
        "cross_entropy",
        f"logits at {label}, right and wrong class",
        {"logits": f64([[big, -big], [big, -big]]), "target": i64([0, 1])},
        Finite(lambda a: _mean(_ce(a["logits"], [0, 1])), rtol=1e-12),
        dtypes=("float64", "float32", "float16", "bfloat16"),
    )
case(
    "cross_entropy",
    "large shared offset (1e4) on every logit",
    {"logits": f64([[1e4 + 0.5, 1e4 - 0.25, 1e4 + 1.25], [1e4 + 2.0, 1e4 - 1.0, 1e4]]), "target": i64([2, 0])},
    Finite(lambda a: _mean(_ce(a["logits"], [2, 0]))),
    dtypes=("float64", "float32", "float16", "bfloat16"),
)
case(
    "cross_entropy",
    "label smoothing with a -inf (masked) class: smoothing mass on it",
    {"logits": f64([[0.5, -INF, 1.0]]), "target": i64([0])},
    Infinite(),
    params={"label_smoothing": 0.1},
)
case(
    "cross_entropy",
    "label smoothing, saturated logits",
    {"logits": f64([[100.0, -100.0]]), "target": i64([0])},
    Finite(lambda a: 0.9 * _ce(a["logits"], [0])[0] + 0.05 * (_ce(a["logits"], [0])[0] + _ce(a["logits"], [1])[0])),
    params={"label_smoothing": 0.1},
)
case(
    "cross_entropy",
    "class index out of range",
    {"logits": f64([[0.0, 1.0]]), "target": i64([2])},
    Raises(ValueError, r"class index 2, outside \[0, 2\)"),
)
case(
    "cross_entropy",
    "-1 is not silently the last class",
    {"logits": f64([[0.0, 1.0]]), "target": i64([-1])},
    Raises(ValueError, r"class index -1"),
)

case(
    "nll",
    "all rows ignored",
    {"log_probs": f64([[-INF, 0.0], [0.0, -INF]]), "target": i64([-1, -1])},
    Finite(0.0, grad="zero"),
    params={"ignore_index": -1},
)
case("nll", "-inf at the target", {"log_probs": f64([[-INF, 0.0]]), "target": i64([0])}, Infinite())

for gamma in (0.0, 0.5, 1.0, 2.0):
    case(
        "focal",
        f"gamma={gamma}, saturated right class: loss 0",
        {"logits": f64([[100.0, -100.0], [-1e4, 1e4]]), "target": i64([0, 1])},
        Finite(0.0),
        params={"gamma": gamma},
        dtypes=("float64", "float32", "float16", "bfloat16"),
    )
    case(
        "focal",
        f"gamma={gamma}, saturated wrong class",
        {"logits": f64([[100.0, -100.0]]), "target": i64([1])},
        Finite(lambda a: 200.0),
        params={"gamma": gamma},
    )
case(
    "focal",
    "all rows ignored with -inf logits",
    {"logits": f64([[-INF, -INF]]), "target": i64([-1])},
    Finite(0.0, grad="zero"),
    params={"ignore_index": -1},
)

for label, big in SATURATED.items():
    case(
        "bce_with_logits",
        f"logits at {label}",
        {"logits": f64([big, -big, big, -big]), "target": f64([1.0, 0.0, 0.0, 1.0])},
        Finite(lambda a: (2 * _softplus(-a["logits"][0]) + 2 * _softplus(a["logits"][0])) / 4),
        dtypes=("float64", "float32", "float16", "bfloat16"),
    )
case(
    "bce_with_logits",
    "logits at +-inf with their right targets",
    {"logits": f64([INF, -INF]), "target": f64([1.0, 0.0])},
    Finite(0.0, grad="zero"),
)
case("bce_with_logits", "logit at +inf, target 0", {"logits": f64([INF]), "target": f64([0.0])}, Infinite())
case(
    "bce",
    "probabilities exactly 0 and 1 (log clamped at -100)",
    {"probs": f64([0.0, 1.0, 0.0, 1.0]), "target": f64([1.0, 0.0, 0.0, 1.0])},
    Finite(50.0),
)
case(
    "bce",
    "probability outside [0, 1]",
    {"probs": f64([1.5]), "target": f64([1.0])},
    Raises(ValueError, r"probs must contain probabilities in \[0, 1\], got a value of 1.5"),
)
for gamma in (0.0, 0.5, 1.0, 2.0):
    case(
        "sigmoid_focal",
        f"gamma={gamma} at saturated logits (torchvision: NaN gradient at 0.5)",
        {"logits": f64([30.0, -30.0, 1e4]), "target": f64([1.0, 0.0, 1.0])},
        Finite(),
        params={"gamma": gamma},
    )
case("poly1", "saturated right class", {"logits": f64([[1e4, -1e4]]), "target": i64([0])}, Finite(0.0))
case("hinge", "large margins", {"scores": f64([1e4, -1e4]), "target": f64([1.0, -1.0])}, Finite(0.0, grad="zero"))
case(
    "squared_hinge",
    "large violations",
    {"scores": f64([-1e4]), "target": f64([1.0])},
    Finite((1 + 1e4) ** 2),
    dtypes=("float64",),
)

# --------------------------------------------------------------------------- regression

case("mse", "exactly equal inputs", {"pred": f64([1.0, -2.0]), "target": f64([1.0, -2.0])}, Finite(0.0, grad="zero"))
case(
    "mae", "zero error: subgradient 0", {"pred": f64([1.0, -2.0]), "target": f64([1.0, -2.0])}, Finite(0.0, grad="zero")
)
case("huber", "error exactly at delta", {"pred": f64([1.0]), "target": f64([0.0])}, Finite(0.5), params={"delta": 1.0})
case("smooth_l1", "zero error", {"pred": f64([3.0]), "target": f64([3.0])}, Finite(0.0, grad="zero"))
case(
    "log_cosh",
    "huge error (no cosh overflow)",
    {"pred": f64([1e4]), "target": f64([0.0])},
    Finite(1e4 - math.log(2.0)),
    dtypes=("float64", "float32"),
)
case("quantile", "zero error", {"pred": f64([1.0]), "target": f64([1.0])}, Finite(0.0))
case(
    "poisson_nll",
    "log_input with a large log-rate",
    {"pred": f64([50.0]), "target": f64([2.0])},
    Finite(math.exp(50.0) - 100.0),
    dtypes=("float64",),
)
case(
    "gaussian_nll",
    "zero variance is clamped to eps",
    {"pred": f64([1.0]), "target": f64([1.0]), "var": f64([0.0])},
    Finite(0.5 * math.log(1e-6)),
)
case("asymmetric_mse", "zero error", {"pred": f64([1.0]), "target": f64([1.0])}, Finite(0.0, grad="zero"))
case(
    "mse",
    "every weight 0: mean 0 (sum(w) = 0)",
    {"pred": f64([1.0, 2.0]), "target": f64([0.0, 0.0]), "weight": f64([0.0, 0.0])},
    Finite(0.0),
)
case("mse", "huge error", {"pred": f64([1e4]), "target": f64([-1e4])}, Finite(4e8))
case("huber", "huge error: linear branch", {"pred": f64([1e4]), "target": f64([0.0])}, Finite(1e4 - 0.5))
case(
    "smooth_l1",
    "beta=0 is L1",
    {"pred": f64([3.0, -1.0]), "target": f64([1.0, 1.0])},
    Finite(2.0),
    params={"beta": 0.0},
)
case(
    "quantile",
    "q=0: under-prediction costs nothing, over-prediction all",
    {"pred": f64([2.0]), "target": f64([1.0])},
    Finite(1.0),
    params={"q": 0.0},
)
case(
    "quantile",
    "q=1 over-prediction costs nothing",
    {"pred": f64([2.0]), "target": f64([1.0])},
    Finite(0.0),
    params={"q": 1.0},
)
case(
    "poisson_nll",
    "rate 0 and count 0: 0",
    {"pred": f64([0.0]), "target": f64([0.0])},
    Finite(0.0),
    params={"log_input": False},
)
case(
    "poisson_nll",
    "log-rate -100 (rate underflows)",
    {"pred": f64([-100.0]), "target": f64([3.0])},
    Finite(lambda a: math.exp(a["pred"][0]) - 3.0 * a["pred"][0]),
)
case(
    "gaussian_nll",
    "variance 1e30",
    {"pred": f64([0.0]), "target": f64([1.0]), "var": f64([1e30])},
    Finite(lambda a: 0.5 * (math.log(a["var"][0]) + 1.0 / a["var"][0])),
)
case("log_cosh", "huge negative error", {"pred": f64([-1e4]), "target": f64([0.0])}, Finite(1e4 - math.log(2.0)))
case(
    "asymmetric_mse",
    "over- and under-estimate",
    {"pred": f64([2.0, 0.0]), "target": f64([1.0, 1.0])},
    Finite((2.0 * 1.0 + 1.0) / 2),
    params={"over_penalty": 2.0},
)

# --------------------------------------------------------------------------- distribution

case(
    "kl_div",
    "zero target probabilities with -inf log_q (masked classes)",
    {"log_q": f64([[math.log(0.5), math.log(0.5), -INF]]), "p": f64([[0.25, 0.75, 0.0]])},
    Finite(0.25 * math.log(0.5) + 0.75 * math.log(1.5)),
)
case("kl_div", "target mass where q is 0: infinite", {"log_q": f64([[0.0, -INF]]), "p": f64([[0.5, 0.5]])}, Infinite())
case(
    "kl_div",
    "log targets of -inf",
    {"log_q": f64([[-INF, 0.0]]), "p": f64([[-INF, 0.0]])},
    Finite(0.0),
    params={"log_target": True},
)
case(
    "js_div",
    "disjoint supports: log 2",
    {"log_p": f64([[0.0, -INF]]), "log_q": f64([[-INF, 0.0]])},
    Finite(math.log(2.0)),
)
case(
    "js_div",
    "classes impossible under both",
    {"log_p": f64([[0.0, -INF, -INF]]), "log_q": f64([[0.0, -INF, -INF]])},
    Finite(0.0),
)
case(
    "distillation",
    "teacher rules a class out (-inf)",
    {"student_logits": f64([[1.0, 0.0, -1.0]]), "teacher_logits": f64([[2.0, 0.0, -INF]])},
    Finite(),
)
case(
    "distillation",
    "saturated student logits",
    {"student_logits": f64([[1e4, -1e4]]), "teacher_logits": f64([[1e4, -1e4]]), "target": i64([0])},
    Finite(0.0),
)

# --------------------------------------------------------------------------- metric

E = f64([[1.0, 2.0], [1.0, 2.0]])
case(
    "contrastive",
    "coincident pair, similar",
    {"x1": E, "x2": E, "similar": f64([1.0, 1.0])},
    Finite(lambda a: 2 * 1e-12),
)
case(
    "contrastive",
    "zero embeddings, dissimilar",
    {"x1": f64([[0.0, 0.0]]), "x2": f64([[0.0, 0.0]]), "similar": f64([0.0])},
    Finite(lambda a: (1.0 - math.sqrt(2) * 1e-6) ** 2),
)
case("triplet", "coincident anchor, positive and negative", {"anchor": E, "positive": E, "negative": E}, Finite(1.0))
case(
    "triplet",
    "zero embeddings, p=1",
    {"anchor": f64([[0.0, 0.0]]), "positive": f64([[0.0, 0.0]]), "negative": f64([[0.0, 0.0]])},
    Finite(1.0),
    params={"p": 1.0},
)
for mining in ("batch_hard", "batch_all", "semi_hard"):
    case(
        "triplet_mined",
        f"{mining}: all-same labels (no negative): 0",
        {"embeddings": f64([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), "labels": i64([3, 3, 3])},
        Finite(0.0, grad="zero"),
        params={"mining": mining},
    )
    case(
        "triplet_mined",
        f"{mining}: single-member classes (no positive): 0",
        {"embeddings": f64([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), "labels": i64([0, 1, 2])},
        Finite(0.0, grad="zero"),
        params={"mining": mining},
    )
    case(
        "triplet_mined",
        f"{mining}: coincident embeddings",
        {"embeddings": f64([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), "labels": i64([0, 0, 1, 1])},
        Finite(1.0),
        params={"mining": mining},
    )
case(
    "cosine_embedding",
    "zero vectors: cosine 0",
    {"x1": f64([[0.0, 0.0], [0.0, 0.0]]), "x2": f64([[1.0, 0.0], [0.0, 0.0]]), "target": f64([1.0, -1.0])},
    Finite(0.5, grad="zero"),
)
case(
    "cosine_embedding",
    "target other than +-1",
    {"x1": E, "x2": E, "target": f64([1.0, 0.0])},
    Raises(ValueError, r"target must contain only 1 and -1, got a value of 0.0"),
)
case(
    "margin_ranking",
    "target other than +-1",
    {"x1": f64([1.0]), "x2": f64([0.0]), "target": f64([2.0])},
    Raises(ValueError, r"target must contain only 1 and -1"),
)
case(
    "margin_ranking",
    "large scores",
    {"x1": f64([1e4]), "x2": f64([-1e4]), "target": f64([1.0])},
    Finite(0.0, grad="zero"),
)
W = f64([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
case(
    "arcface",
    "embedding on its class weight (cos = 1)",
    {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
    Finite(),
)
case(
    "arcface",
    "embedding opposite its class weight (cos = -1)",
    {"embeddings": f64([[-2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
    Finite(),
)
case("arcface", "zero embedding", {"embeddings": f64([[0.0, 0.0]]), "class_weights": W, "labels": i64([1])}, Finite())
case(
    "cosface",
    "embedding on its class weight",
    {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
    Finite(),
)
case(
    "cosface",
    "class index out of range",
    {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([3])},
    Raises(ValueError, r"class index 3"),
)

# --------------------------------------------------------------------------- contrastive

COLLINEAR = f64([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
case(
    "infonce",
    "temperature 0.01, collinear keys",
    {"query": COLLINEAR, "key": 2.0 * COLLINEAR},
    Finite(),
    params={"temperature": 0.01},
)
case(
    "infonce",
    "zero query vectors",
    {"query": f64([[0.0, 0.0], [1.0, 0.0]]), "key": f64([[1.0, 0.0], [0.0, 1.0]])},
    Finite(lambda a: _mean(_ce([[0.0, 0.0], [10.0, 0.0]], [0, 1]))),
)
case(
    "nt_xent",
    "a single pair: loss 0",
    {"z1": f64([[1.0, 2.0]]), "z2": f64([[-3.0, 0.5]])},
    Finite(0.0, grad="zero"),
    params={"temperature": 0.01},
)
case(
    "nt_xent",
    "temperature 0.01, collinear views",
    {"z1": COLLINEAR, "z2": 3.0 * COLLINEAR},
    Finite(),
    params={"temperature": 0.01},
)
case(
    "clip",
    "zero embeddings",
    {"image_emb": f64([[0.0, 0.0], [0.0, 0.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
    Finite(math.log(2.0), grad="zero"),
    params={"logit_scale": 100.0},
)
case(
    "siglip",
    "large logit scale, matching pairs",
    {"image_emb": f64([[1.0, 0.0], [0.0, 1.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
    Finite(lambda a: (2 * _softplus(-90.0) + 2 * _softplus(-10.0)) / 2),
    params={"logit_scale": 100.0, "logit_bias": -10.0},
)

case(
    "siglip",
    "zero image embeddings: every cosine 0",
    {"image_emb": f64([[0.0, 0.0], [0.0, 0.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
    Finite(lambda a: (2 * _softplus(10.0) + 2 * _softplus(-10.0)) / 2, grad="zero"),
    params={"logit_scale": 10.0, "logit_bias": -10.0},
)
case(
    "nt_xent",
    "zero first views, orthogonal second views: log 3 per anchor",
    {"z1": f64([[0.0, 0.0], [0.0, 0.0]]), "z2": f64([[1.0, 0.0], [0.0, 1.0]])},
    Finite(math.log(3.0)),
    params={"temperature": 0.5},
)
case(
    "clip",
    "temperature 0.01 (logit scale 100), collinear pairs",
    {"image_emb": COLLINEAR, "text_emb": 2.0 * COLLINEAR},
    Finite(),
    params={"logit_scale": 100.0},
)

# --------------------------------------------------------------------------- segmentation

EMPTY = f64([[0.0, 0.0], [0.0, 0.0]])
FULL = f64([[1.0, 1.0], [1.0, 1.0]])
for loss in ("dice", "tversky", "jaccard", "focal_tversky"):
    case(
        loss,
        "empty prediction of an empty mask, smooth=0: 0",
        {"pred": EMPTY, "target": EMPTY},
        Finite(0.0, grad="zero"),
        params={"smooth": 0.0},
    )
    case(loss, "full prediction of a full mask: 0", {"pred": FULL, "target": FULL}, Finite(0.0), params={"smooth": 0.0})
    case(
        loss,
        "inverted mask: 1",
        {"pred": f64([[1.0, 0.0], [0.0, 1.0]]), "target": f64([[0.0, 1.0], [1.0, 0.0]])},
        Finite(1.0),
        params={"smooth": 0.0},
    )
case(
    "dice",
    "foreground predicted on an empty mask is penalised",
    {"pred": f64([[0.5, 0.5]]), "target": f64([[0.0, 0.0]])},
    Finite(1.0 - 1.0 / 2.0),
)
case(
    "dice",
    "probability outside [0, 1]",
    {"pred": f64([[1.5, 0.0]]), "target": f64([[1.0, 0.0]])},
    Raises(ValueError, r"pred must contain probabilities in \[0, 1\]"),
)
case(
    "generalized_dice",
    "a class absent from the labels",
    {"pred": f64([[[5.0, -5.0, 0.0], [5.0, -5.0, 0.0]]]), "target": i64([[0, 0]])},
    Finite(),
)
case(
    "dice_ce",
    "saturated logits, every class present",
    {"pred": f64([[[100.0, -100.0], [-100.0, 100.0]]]), "target": i64([[0, 1]])},
    Finite(lambda a: 0.5 * (1 - 1.0)),
)

# --------------------------------------------------------------------------- boxes

SAME = f64([[0.0, 0.0, 2.0, 1.0]])
for loss in ("box_iou", "box_giou", "box_diou", "box_ciou"):
    case(loss, "identical boxes: 0", {"pred": SAME, "target": SAME}, Finite(0.0), params={"eps": 0.0})
    case(loss, "zero-height predicted box", {"pred": f64([[0.0, 1.0, 2.0, 1.0]]), "target": SAME}, Finite())
    case(
        loss,
        "zero-area (point) boxes, identical",
        {"pred": f64([[1.0, 1.0, 1.0, 1.0]]), "target": f64([[1.0, 1.0, 1.0, 1.0]])},
        Finite(),
    )
    case(
        loss,
        "inverted box (x2 < x1)",
        {"pred": f64([[2.0, 0.0, 0.0, 1.0]]), "target": SAME},
        Raises(ValueError, r"pred boxes must be \(x1, y1, x2, y2\) with x1 <= x2"),
    )
case(
    "box_iou",
    "disjoint boxes: 1",
    {"pred": f64([[0.0, 0.0, 1.0, 1.0]]), "target": f64([[2.0, 2.0, 3.0, 3.0]])},
    Finite(1.0, grad="zero"),
    params={"eps": 0.0},
)

# --------------------------------------------------------------------------- sequence

LP = np.log(np.full((1, 2, 3), 1.0 / 3.0))
case(
    "ctc",
    "target longer than the input allows: inf",
    {"log_probs": LP, "targets": i64([[1, 2, 1]]), "input_lengths": i64([2]), "target_lengths": i64([3])},
    Infinite(),
    reduction="sum",
)
case(
    "ctc",
    "impossible, zero_infinity: 0",
    {"log_probs": LP, "targets": i64([[1, 2, 1]]), "input_lengths": i64([2]), "target_lengths": i64([3])},
    Finite(0.0, grad="zero"),
    params={"zero_infinity": True},
    reduction="sum",
)
case(
    "ctc",
    "repeated label needs a blank between: 3 frames needed, 2 given",
    {"log_probs": LP, "targets": i64([[1, 1]]), "input_lengths": i64([2]), "target_lengths": i64([2])},
    Infinite(),
    reduction="sum",
)
case(
    "ctc",
    "repeated label, exactly enough frames: one path",
    {
        "log_probs": np.log(np.full((1, 3, 3), 1.0 / 3.0)),
        "targets": i64([[1, 1]]),
        "input_lengths": i64([3]),
        "target_lengths": i64([2]),
    },
    Finite(3 * math.log(3.0)),
    reduction="sum",
)
case(
    "ctc",
    "blank inside the target",
    {"log_probs": LP, "targets": i64([[1, 0]]), "input_lengths": i64([2]), "target_lengths": i64([2])},
    Raises(ValueError, r"targets\[0, 1\] is the blank"),
)
case(
    "ctc",
    "empty target: every frame blank",
    {"log_probs": LP, "targets": i64([[1]]), "input_lengths": i64([2]), "target_lengths": i64([0])},
    Finite(2 * math.log(3.0)),
    reduction="sum",
)

# --------------------------------------------------------------------------- generative

for label, big in SATURATED.items():
    case(
        "gan_discriminator",
        f"logits at {label}",
        {"real_logits": f64([big]), "fake_logits": f64([-big])},
        Finite(lambda a, big=big: 2 * _softplus(-big)),
    )
    case(
        "gan_generator",
        f"minimax at {label}",
        {"fake_logits": f64([-big])},
        Finite(lambda a, big=big: -_softplus(-big)),
        params={"non_saturating": False},
    )
case(
    "gan_generator",
    "non-saturating, rejected fakes (-1e4)",
    {"fake_logits": f64([-1e4])},
    Finite(1e4),
    dtypes=("float64", "float32"),
)
case(
    "wgan_critic",
    "large scores",
    {"real_scores": f64([1e4]), "fake_scores": f64([-1e4])},
    Finite(-2e4),
    dtypes=("float64", "float32"),
)
case("wgan_generator", "large scores", {"fake_scores": f64([1e4])}, Finite(-1e4), dtypes=("float64", "float32"))
case(
    "hinge_discriminator",
    "beyond both margins",
    {"real_logits": f64([5.0]), "fake_logits": f64([-5.0])},
    Finite(0.0, grad="zero"),
)
case("hinge_generator", "large scores", {"fake_logits": f64([1e4])}, Finite(-1e4), dtypes=("float64", "float32"))
for logvar in (90.0, -90.0):
    case(
        "vae_kl",
        f"logvar at {logvar:+g}",
        {"mu": f64([[0.0]]), "logvar": f64([[logvar]])},
        Finite(-0.5 * (1.0 + logvar - math.exp(logvar)), rtol=1e-12),
        dtypes=("float64",),
    )
case(
    "vae_kl",
    "logvar at +90 overflows float32: the KL is that large",
    {"mu": f64([[0.0]]), "logvar": f64([[90.0]])},
    Infinite(grad="any"),
    dtypes=("float32",),
)
case(
    "vae",
    "reconstruction exactly 0 and 1 (log clamped at -100)",
    {"recon": f64([[0.0, 1.0]]), "x": f64([[1.0, 1.0]]), "mu": f64([[0.0]]), "logvar": f64([[0.0]])},
    Finite(100.0),
    reduction="sum",
)
case(
    "perceptual",
    "identical inputs",
    {"pred": f64([[1.0, 2.0]]), "target": f64([[1.0, 2.0]])},
    Finite(0.0, grad="zero"),
    params={"features": lambda x: [x, 2.0 * x]},
)
case(
    "gradient_penalty",
    "critic with unit gradient everywhere: 0",
    {"real": f64([[1.0, 0.0], [0.0, 2.0]]), "fake": f64([[0.0, 0.0], [3.0, 1.0]]), "interpolation": f64([0.0, 1.0])},
    # the 0 * x**2 term keeps the penalty on the autograd graph (a constant has no gradient to take)
    Finite(0.0),
    params={"critic": lambda x: x[..., 0] * 0.6 + x[..., 1] * 0.8 + 0.0 * x[..., 0] ** 2},
)
case(
    "gradient_penalty",
    "interpolation outside [0, 1]",
    {"real": f64([[1.0, 0.0]]), "fake": f64([[0.0, 0.0]]), "interpolation": f64([1.5])},
    Raises(ValueError, r"interpolation must contain probabilities in \[0, 1\]"),
    params={"critic": lambda x: x[..., 0]},
)

# --------------------------------------------------------------------------- multitask

case(
    "uncertainty_weighting",
    "very confident task (log_var -50) with zero loss",
    {"losses": f64([0.0, 1.0]), "log_vars": f64([-50.0, 0.0])},
    Finite(-50.0 + 1.0),
    reduction="sum",
)
case(
    "curriculum",
    "progress 0: nothing kept, weights 0",
    {"losses": f64([1.0, 2.0]), "difficulty": f64([0.5, 0.9])},
    Finite(0.0, grad="zero"),
    params={"progress": 0.0},
    reduction="sum",
)


def cases_by_loss() -> dict[str, list[EdgeCase]]:
    out: dict[str, list[EdgeCase]] = {}
    for edge in EDGE_CASES:
        out.setdefault(edge.loss, []).append(edge)
    return out
