"""Specs of the metric losses (see ``polyloss/core/metric.py``).

Embeddings are ``(N, D)`` with the embedding dimension last; ``reduction="none"``
gives one value per row (per anchor for ``triplet_mined``). Every generator keeps
the finite-difference checks away from the non-smooth points: hinge arguments,
ties between mined distances and threshold switches stay ``GAP`` away (redrawn
from the case's generator until they do), and no embedding difference vanishes
where a norm is taken without ``eps``.
"""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import ENDPOINTS_OF_0_1, SIGN_LABEL, register
from polyloss.verify.specs._gen import away_from_kinks, binary, copy_of, labels, normal, set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Raises, f64, i64, softplus
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_kept_reference, reduce_reference

# --------------------------------------------------------------------------- plots


def _direction(angle: float) -> np.ndarray:
    """The unit vector of the plane at ``angle`` (radians) from ``(1, 0)``."""
    return np.array([math.cos(angle), math.sin(angle)])


def _at_cosine(x: float) -> np.ndarray:
    """A unit vector at cosine ``x`` from ``(1, 0, 0)``, in the plane of the first and third axes."""
    return np.array([x, 0.0, math.sqrt(max(1.0 - x * x, 0.0))])


def _sign_sweep(name: str) -> tuple[str, tuple[np.ndarray, ...]]:
    """Both arms of a pair loss: the pair's label 1 (similar), then -1 (dissimilar)."""
    return (name, (f64([1.0]), f64([-1.0])))


def _angle_plot(sweep: tuple[str, tuple[float, ...]]) -> Plot:
    """ArcFace and CosFace: an embedding at angle x from its class centre, the other class's centre
    opposite the first."""
    return Plot(
        "angle to the true class centre (radians; the other class opposite)",
        lambda x: {
            "embeddings": _direction(x)[None],
            "class_weights": np.stack([_direction(0.0), _direction(math.pi)]),
            "labels": i64([0]),
        },
        span=(0.05, math.pi - 0.05),
        sweep=sweep,
    )


def _batch_plot(sweep: tuple[str, tuple[float, ...]]) -> Plot:
    """Circle and multi-similarity losses: a positive pair at cosine x, and a third sample of the
    other label at a right angle to both."""
    return Plot(
        "cosine similarity of the positive pair (the negative at a right angle)",
        lambda x: {
            "embeddings": np.stack([f64([1.0, 0.0, 0.0]), _at_cosine(x), f64([0.0, 1.0, 0.0])]),
            "labels": i64([0, 0, 1]),
        },
        span=(-0.99, 0.99),
        sweep=sweep,
    )


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    E = f64([[1.0, 2.0], [1.0, 2.0]])
    edges.case(
        "contrastive",
        "coincident pair, similar",
        {"x1": E, "x2": E, "similar": f64([1.0, 1.0])},
        Finite(lambda a: 2 * 1e-12),
    )
    edges.case(
        "contrastive",
        "zero embeddings, dissimilar",
        {"x1": f64([[0.0, 0.0]]), "x2": f64([[0.0, 0.0]]), "similar": f64([0.0])},
        Finite(lambda a: (1.0 - math.sqrt(2) * 1e-6) ** 2),
    )
    edges.case(
        "triplet", "coincident anchor, positive and negative", {"anchor": E, "positive": E, "negative": E}, Finite(1.0)
    )
    edges.case(
        "triplet",
        "zero embeddings, p=1",
        {"anchor": f64([[0.0, 0.0]]), "positive": f64([[0.0, 0.0]]), "negative": f64([[0.0, 0.0]])},
        Finite(1.0),
        params={"p": 1.0},
    )
    for mining in ("batch_hard", "batch_all", "semi_hard"):
        edges.case(
            "triplet_mined",
            f"{mining}: all-same labels (no negative): 0",
            {"embeddings": f64([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), "labels": i64([3, 3, 3])},
            Finite(0.0, grad="zero"),
            params={"mining": mining},
        )
        edges.case(
            "triplet_mined",
            f"{mining}: single-member classes (no positive): 0",
            {"embeddings": f64([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), "labels": i64([0, 1, 2])},
            Finite(0.0, grad="zero"),
            params={"mining": mining},
        )
        edges.case(
            "triplet_mined",
            f"{mining}: coincident embeddings",
            {"embeddings": f64([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]), "labels": i64([0, 0, 1, 1])},
            Finite(1.0),
            params={"mining": mining},
        )
    edges.case(
        "cosine_embedding",
        "zero vectors: cosine 0",
        {"x1": f64([[0.0, 0.0], [0.0, 0.0]]), "x2": f64([[1.0, 0.0], [0.0, 0.0]]), "target": f64([1.0, -1.0])},
        Finite(0.5, grad="zero"),
    )
    edges.case(
        "cosine_embedding",
        "target other than +-1",
        {"x1": E, "x2": E, "target": f64([1.0, 0.0])},
        Raises(ValueError, r"target must contain only 1 and -1, got a value of 0.0"),
    )
    edges.case(
        "margin_ranking",
        "target other than +-1",
        {"x1": f64([1.0]), "x2": f64([0.0]), "target": f64([2.0])},
        Raises(ValueError, r"target must contain only 1 and -1"),
    )
    edges.case(
        "margin_ranking",
        "large scores",
        {"x1": f64([1e4]), "x2": f64([-1e4]), "target": f64([1.0])},
        Finite(0.0, grad="zero"),
    )
    W = f64([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    edges.case(
        "arcface",
        "embedding on its class weight (cos = 1)",
        {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
        Finite(),
    )
    edges.case(
        "arcface",
        "embedding opposite its class weight (cos = -1)",
        {"embeddings": f64([[-2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
        Finite(),
    )
    edges.case(
        "arcface", "zero embedding", {"embeddings": f64([[0.0, 0.0]]), "class_weights": W, "labels": i64([1])}, Finite()
    )
    edges.case(
        "cosface",
        "embedding on its class weight",
        {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([0])},
        Finite(),
    )
    edges.case(
        "cosface",
        "class index out of range",
        {"embeddings": f64([[2.0, 0.0]]), "class_weights": W, "labels": i64([3])},
        Raises(ValueError, r"class index 3"),
    )
    NO_ROWS = np.zeros((0, 3))
    edges.empty_batch("contrastive", {"x1": NO_ROWS, "x2": NO_ROWS, "similar": np.zeros(0)}, (0,))
    edges.empty_batch("triplet", {"anchor": NO_ROWS, "positive": NO_ROWS, "negative": NO_ROWS}, (0,))
    edges.empty_batch("triplet_mined", {"embeddings": NO_ROWS, "labels": np.zeros(0, dtype=np.int64)}, (0,))
    edges.empty_batch("cosine_embedding", {"x1": NO_ROWS, "x2": NO_ROWS, "target": np.zeros(0)}, (0,))
    edges.empty_batch("margin_ranking", {"x1": np.zeros(0), "x2": np.zeros(0), "target": np.zeros(0)}, (0,))
    for loss in ("arcface", "cosface"):  # the class weights get a gradient of exactly 0
        edges.empty_batch(
            loss, {"embeddings": np.zeros((0, 2)), "class_weights": W, "labels": np.zeros(0, dtype=np.int64)}, (0,)
        )
    return edges


EDGES = _edge_cases()


def _mined_triplet_count(case: Case, none: np.ndarray) -> float:
    """batch_hard: anchors with a positive and a negative; batch_all: triplets with a positive loss;
    semi_hard: positive pairs whose anchor has a negative."""
    e, labels = case.arrays["embeddings"], case.arrays["labels"]
    margin = case.params.get("margin", 1.0)
    squared_distance = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    d = squared_distance if case.params.get("squared", False) else np.sqrt(squared_distance)
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    negative = ~same
    mining = case.params.get("mining", "batch_hard")
    if mining == "batch_hard":
        return float((positive.any(1) & negative.any(1)).sum())
    if mining == "batch_all":
        loss = d[:, :, None] - d[:, None, :] + margin
        return float((positive[:, :, None] & negative[:, None, :] & (loss > 0)).sum())
    return float((positive & negative.any(1)[:, None]).sum())


def _parallel_to_class_weight(arrays: dict[str, np.ndarray]) -> None:
    """The embedding equals its class weight: target cosine 1, where sin(theta) = sqrt(1 - cos^2) = 0."""
    arrays["embeddings"][1] = arrays["class_weights"][arrays["labels"][1]]


def _zero_embedding_and_class_weight(name: str) -> ZeroCase:
    return ZeroCase(
        f"{name} zero embedding and class weight",
        "default",
        (set_to("embeddings", 0, 0.0), set_to("class_weights", 0, 0.0)),
        zero_row_gradients={"embeddings": (0,), "class_weights": (0,)},
    )


D = 4  # embedding dimension
GAP = 0.05  # distance of every switching quantity from its switch point
TIE = 5e-3  # minimal difference between two pairwise distances of a mined batch (max/min/semi-hard choices)
TRIES = 10_000


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n, **params), dict(params)))


def _draw(rng: np.random.Generator, draw, ok):
    """``draw()`` until ``ok(value)``: deterministic in ``rng``, so every case stays reproducible."""
    for _ in range(TRIES):
        value = draw()
        if ok(value):
            return value
    raise RuntimeError("no admissible draw: the generator's constraints are too tight")


# -- contrastive --------------------------------------------------------------------


def _contrastive_arrays(rng, n, *, margin=1.0, eps=1e-6, identical=False, soft=False, **_):
    """``soft``: pair labels in (0.1, 0.9) (a soft similarity, differentiated), else 0 or 1."""
    x1 = normal(rng, (n, D))
    if identical:  # d = ||eps||_2 = sqrt(D) * eps > 0: a finite gradient, similar pairs only (see notes)
        return {"x1": x1, "x2": x1.copy(), "similar": np.ones(n)}
    similar = rng.uniform(0.1, 0.9, size=(n,)) if soft else binary(rng, (n,))
    x2 = np.stack(
        [
            _draw(
                rng,
                lambda row=row: row + normal(rng, (D,), 0.4 * margin),
                lambda cand, row=row: abs(margin - np.linalg.norm(row - cand + eps)) > GAP,
            )
            for row in x1
        ]
    )
    return {"x1": x1, "x2": x2, "similar": similar}


def _retyped_contrastive(study_hub: bool, mean_only: bool) -> Reference:
    """Study-hub's ContrastiveLoss class (eunsu-park/study-hub, lesson 24) or the contrastive_loss of the
    "Loss Functions" interview-prep overview, re-typed (same formula)."""

    def ref(m, a, p, r):
        if p.get("eps", 1e-6) != 1e-6:
            raise NotApplicable("the original code calls pairwise_distance with its default eps=1e-6")
        if mean_only and r != "mean":
            raise NotApplicable("the original function returns the mean only")
        margin, label = p.get("margin", 1.0), a["similar"]
        euclidean_distance = m.F.pairwise_distance(a["x1"], a["x2"])
        loss = label * m.torch.pow(euclidean_distance, 2) + (1 - label) * m.torch.pow(
            m.torch.clamp(margin - euclidean_distance, min=0.0), 2
        )
        return reduce_reference(m.torch, loss, r)

    name = "study-hub ContrastiveLoss" if study_hub else "interview-prep overview contrastive_loss"
    return Reference(f"{name} (re-typed)", "torch", ref)


def _numpy_contrastive(m, a, p, r):
    np_ = m.np
    margin, eps = p.get("margin", 1.0), p.get("eps", 1e-6)
    x1, x2, s = np_.asarray(a["x1"]), np_.asarray(a["x2"]), np_.asarray(a["similar"])
    out = np_.zeros(len(s))
    for i in range(len(s)):
        d = math.sqrt(sum((float(u) - float(v) + eps) ** 2 for u, v in zip(x1[i], x2[i], strict=True)))
        out[i] = s[i] * d**2 + (1 - s[i]) * max(0.0, margin - d) ** 2
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="contrastive",
        variants=(
            _variant("random pairs", _contrastive_arrays).excluding(similar=ENDPOINTS_OF_0_1),
            _variant(
                "identical pairs,similar", lambda rng, n, **k: _contrastive_arrays(rng, n, identical=True)
            ).excluding(similar=ENDPOINTS_OF_0_1),
            _variant("margin=2", _contrastive_arrays, margin=2.0).excluding(similar=ENDPOINTS_OF_0_1),
            _variant("eps=0", _contrastive_arrays, eps=0.0).excluding(similar=ENDPOINTS_OF_0_1),
            _variant("soft similar", lambda rng, n, **k: _contrastive_arrays(rng, n, soft=True)),
        ),
        references=(
            _retyped_contrastive(study_hub=True, mean_only=False),
            _retyped_contrastive(study_hub=False, mean_only=True),
            Reference("contrastive loop", "numpy", _numpy_contrastive, grads=False),
        ),
        notes="identical pairs are generated similar only: for a dissimilar identical pair d = sqrt(D) * eps = 2e-6 is "
        "on the scale of the finite-difference step, so (margin - d)^2 has curvature ~1/d there and finite "
        "differences cannot check it (the value and autodiff gradient are still finite).",
        layout=Layout(("x1", "x2", "similar")),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase("contrastive zero distance", "random pairs", (copy_of("x1", "x2"),)),
                ZeroCase("contrastive zero distance,eps=0", "eps=0", (copy_of("x1", "x2"),)),
            ),
        ),
        plot=Plot(
            "distance between the pair",
            lambda x: {"x1": f64([[0.0, 0.0]]), "x2": f64([[x, 0.0]]), "similar": f64([1.0])},
            span=(0.01, 2.5),
            sweep=("similar", (f64([1.0]), f64([0.0]))),
        ),
    )
)


# -- triplet --------------------------------------------------------------------------


def _pnorm_distance(x, y, p, eps, squared):
    if squared:
        return float(np.sum((x - y) ** 2))
    return float(np.sum(np.abs(x - y + eps) ** p) ** (1.0 / p))


def _triplet_arrays(rng, n, *, margin=1.0, p=2.0, eps=1e-6, swap=False, squared=False, **_):
    def draw():
        a = normal(rng, (D,))
        return a, a + normal(rng, (D,), 0.8), a + normal(rng, (D,), 1.0)

    def ok(row):
        a, pos, neg = row
        diffs = np.concatenate([a - pos, a - neg, pos - neg]) + (0.0 if squared else eps)
        if np.min(np.abs(diffs)) < GAP:  # every |component| of a norm's argument away from 0
            return False
        d_ap, d_an, d_pn = (_pnorm_distance(x, y, p, eps, squared) for x, y in ((a, pos), (a, neg), (pos, neg)))
        if swap and abs(d_an - d_pn) < GAP:
            return False
        return abs(d_ap - (min(d_an, d_pn) if swap else d_an) + margin) > GAP

    rows = [_draw(rng, draw, ok) for _ in range(n)]
    return {name: np.stack([row[i] for row in rows]) for i, name in enumerate(("anchor", "positive", "negative"))}


def _torch_triplet(m, a, p, r):
    if p.get("squared", False):
        raise NotApplicable("F.triplet_margin_loss has no squared distances")
    return m.F.triplet_margin_loss(
        a["anchor"],
        a["positive"],
        a["negative"],
        margin=p.get("margin", 1.0),
        p=p.get("p", 2.0),
        eps=p.get("eps", 1e-6),
        swap=p.get("swap", False),
        reduction=r,
    )


def _study_hub_triplet(m, a, p, r):
    """Study-hub's TripletLoss class, re-typed (squared Euclidean distances, no eps)."""
    if not p.get("squared", False) or p.get("swap", False):
        raise NotApplicable("the original class uses squared distances without swap")
    anchor, positive, negative = a["anchor"], a["positive"], a["negative"]
    distance_positive = (anchor - positive).pow(2).sum(1)
    distance_negative = (anchor - negative).pow(2).sum(1)
    losses = m.torch.relu(distance_positive - distance_negative + p.get("margin", 1.0))
    return reduce_reference(m.torch, losses, r)


def _interview_prep_triplet(m, a, p, r):
    """The triplet_loss of the "Loss Functions" interview-prep overview, re-typed (pairwise_distance
    defaults: p=2, eps=1e-6; mean only)."""
    if p.get("squared", False) or p.get("swap", False) or p.get("p", 2.0) != 2.0 or p.get("eps", 1e-6) != 1e-6:
        raise NotApplicable("the original function uses pairwise_distance's defaults, no swap")
    if r != "mean":
        raise NotApplicable("the original function returns the mean only")
    pos_dist = m.F.pairwise_distance(a["anchor"], a["positive"])
    neg_dist = m.F.pairwise_distance(a["anchor"], a["negative"])
    return m.torch.clamp(pos_dist - neg_dist + p.get("margin", 1.0), min=0.0).mean()


def _numpy_triplet(m, a, p, r):
    np_ = m.np
    margin, pn, eps = p.get("margin", 1.0), p.get("p", 2.0), p.get("eps", 1e-6)
    swap, squared = p.get("swap", False), p.get("squared", False)
    anchor, positive, negative = (np_.asarray(a[k]) for k in ("anchor", "positive", "negative"))
    out = np_.zeros(len(anchor))
    for i in range(len(anchor)):
        d_ap = _pnorm_distance(anchor[i], positive[i], pn, eps, squared)
        d_an = _pnorm_distance(anchor[i], negative[i], pn, eps, squared)
        if swap:
            d_an = min(d_an, _pnorm_distance(positive[i], negative[i], pn, eps, squared))
        out[i] = max(0.0, d_ap - d_an + margin)
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="triplet",
        variants=(
            _variant("default", _triplet_arrays),
            _variant("p=1", _triplet_arrays, p=1.0),
            _variant("p=3", _triplet_arrays, p=3.0),
            _variant("swap", _triplet_arrays, swap=True),
            _variant("squared", _triplet_arrays, squared=True),
            _variant("margin=0.2", _triplet_arrays, margin=0.2),
            _variant("squared,swap,margin=2", _triplet_arrays, squared=True, swap=True, margin=2.0),
        ),
        references=(
            Reference("torch.nn.functional.triplet_margin_loss", "torch", _torch_triplet),
            Reference("study-hub TripletLoss (re-typed)", "torch", _study_hub_triplet),
            Reference("interview-prep overview triplet_loss (re-typed)", "torch", _interview_prep_triplet),
            Reference("triplet loop", "numpy", _numpy_triplet, grads=False),
        ),
        layout=Layout(("anchor", "positive", "negative")),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase("triplet zero distances", "default", (copy_of("anchor", "positive", "negative"),)),
                ZeroCase("triplet zero distances,p=3", "p=3", (copy_of("anchor", "positive", "negative"),)),
                ZeroCase(
                    "triplet zero distances,eps=0",
                    "default",
                    (copy_of("anchor", "positive", "negative"),),
                    {"eps": 0.0},
                ),
            ),
        ),
        plot=Plot(
            "distance to the negative (the positive at distance 1)",
            lambda x: {"anchor": f64([[0.0, 0.0]]), "positive": f64([[1.0, 0.0]]), "negative": f64([[0.0, x]])},
            span=(0.05, 3.5),
            sweep=("margin", (0.5, 1.0, 2.0)),
        ),
    )
)


# -- triplet_mined ----------------------------------------------------------------------

N_MINED = 6  # rows of a mined batch, whatever n (one n, one shape)
D_MINED = 3
CLASS_SIZES = {
    "classes": ((2, 2, 2), (3, 3), (4, 2)),
    "singleton class": ((3, 2, 1), (2, 2, 1, 1), (4, 1, 1)),
    "all same labels": ((6,),),
    "all distinct labels": ((1, 1, 1, 1, 1, 1),),
}


def _mined_labels(rng, kind):
    options = CLASS_SIZES[kind]
    sizes = options[int(rng.integers(len(options)))]
    values = rng.choice(10, size=len(sizes), replace=False)  # arbitrary, non-contiguous class ids
    return rng.permutation(np.repeat(values, sizes)).astype(np.int64)


def _pairwise(e, squared):
    d2 = np.sum((e[:, None, :] - e[None, :, :]) ** 2, axis=-1)
    return d2 if squared else np.sqrt(d2)


def _mined_stable(e, y, margin, squared):
    """Every selection of every mining rule is stable under a 1e-6 perturbation."""
    dist = _pairwise(e, squared)
    upper = np.sort(dist[np.triu_indices(len(e), 1)])
    if upper[0] < GAP or np.min(np.diff(upper)) < TIE:  # no two rows close, no two distances tied
        return False
    for a in range(len(y)):
        for p in range(len(y)):
            if p == a or y[p] != y[a]:
                continue
            for q in range(len(y)):
                if y[q] != y[a] and abs(dist[a, p] - dist[a, q] + margin) < TIE:
                    return False
    return True


def _mined_arrays(rng, n, *, kind="classes", margin=1.0, squared=False, **_):
    y = _mined_labels(rng, kind)
    classes = np.unique(y, return_inverse=True)[1]

    def draw():
        # loose clusters: some anchors' hinges active, others not
        centers = normal(rng, (len(y), D_MINED), 0.6 if squared else 0.8)
        return centers[classes] + normal(rng, (N_MINED, D_MINED), 0.6)

    e = _draw(rng, draw, lambda e: _mined_stable(e, y, margin, squared))
    return {"embeddings": e, "labels": y}


def _mined_variant(mining, kind="classes", **params):
    name = ",".join(
        [f"mining={mining}"] + ([] if kind == "classes" else [kind]) + [f"{k}={v}" for k, v in params.items()]
    )
    return Variant(name, lambda rng, n: Case(_mined_arrays(rng, n, kind=kind, **params), {"mining": mining, **params}))


def _study_hub_online_triplet(m, a, p, r):
    """Study-hub's OnlineTripletLoss (batch-hard), re-typed; "sum"/"none" from its per-anchor terms."""
    if p.get("mining", "batch_hard") != "batch_hard" or p.get("squared", False):
        raise NotApplicable("the original class mines the hardest positive and negative on Euclidean distances")
    torch, embeddings, labels_ = m.torch, a["embeddings"], a["labels"]
    margin = p.get("margin", 1.0)
    pairwise_dist = torch.cdist(embeddings, embeddings, p=2)
    batch_size = embeddings.size(0)
    zero = embeddings.sum() * 0.0  # the original's `0`, kept on the autograd graph for the empty case
    triplet_loss, num_triplets, per_anchor = zero, 0, [zero] * batch_size
    for i in range(batch_size):
        pos_mask = labels_ == labels_[i]
        pos_mask[i] = False
        neg_mask = labels_ != labels_[i]
        if pos_mask.any() and neg_mask.any():
            hardest_positive_dist = pairwise_dist[i][pos_mask].max()
            hardest_negative_dist = pairwise_dist[i][neg_mask].min()
            loss = torch.relu(hardest_positive_dist - hardest_negative_dist + margin)
            triplet_loss = triplet_loss + loss
            per_anchor[i] = loss
            num_triplets += 1
    if r == "none":
        return torch.stack(per_anchor)
    return triplet_loss if r == "sum" else triplet_loss / max(num_triplets, 1)


def _tfa_semihard(m, a, p, r):
    """tfa.losses.triplet_semihard_loss, re-typed in NumPy (its tf ops one by one), plus polyloss's two
    documented deviations: anchors without a negative contribute nothing (TFA: margin + d_ap through a
    masked maximum over an empty set) and a batch without such a pair gives 0 (TFA: 0 / 0 = NaN)."""
    if p.get("mining", "batch_hard") != "semi_hard":
        raise NotApplicable("semi-hard mining only")
    np_ = m.np
    labels_, embeddings = np_.asarray(a["labels"]), np_.asarray(a["embeddings"], dtype=np_.float64)
    margin = p.get("margin", 1.0)

    # metric_learning.pairwise_distance(embeddings, squared=...)
    sq = np_.sum(embeddings**2, axis=1, keepdims=True)
    pairwise_distances_squared = np_.maximum(sq + sq.T - 2.0 * embeddings @ embeddings.T, 0.0)
    error_mask = pairwise_distances_squared <= 0.0
    if p.get("squared", False):
        pdist_matrix = pairwise_distances_squared
    else:
        pdist_matrix = np_.sqrt(pairwise_distances_squared + error_mask * 1e-16)
    pdist_matrix = pdist_matrix * np_.logical_not(error_mask)
    batch_size = len(labels_)
    pdist_matrix = pdist_matrix * (1.0 - np_.eye(batch_size))

    def masked_maximum(data, mask):
        axis_minimums = np_.min(data, axis=1, keepdims=True)
        return np_.max((data - axis_minimums) * mask, axis=1, keepdims=True) + axis_minimums

    def masked_minimum(data, mask):
        axis_maximums = np_.max(data, axis=1, keepdims=True)
        return np_.min((data - axis_maximums) * mask, axis=1, keepdims=True) + axis_maximums

    lab = labels_.reshape(batch_size, 1)
    adjacency = lab == lab.T
    adjacency_not = np_.logical_not(adjacency)
    pdist_matrix_tile = np_.tile(pdist_matrix, (batch_size, 1))
    mask = np_.logical_and(np_.tile(adjacency_not, (batch_size, 1)), pdist_matrix_tile > pdist_matrix.T.reshape(-1, 1))
    mask_final = (np_.sum(mask.astype(np_.float64), axis=1, keepdims=True) > 0.0).reshape(batch_size, batch_size).T
    adjacency_not = adjacency_not.astype(np_.float64)
    mask = mask.astype(np_.float64)
    negatives_outside = masked_minimum(pdist_matrix_tile, mask).reshape(batch_size, batch_size).T
    negatives_inside = np_.tile(masked_maximum(pdist_matrix, adjacency_not), (1, batch_size))
    semi_hard_negatives = np_.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = margin + pdist_matrix - semi_hard_negatives
    mask_positives = adjacency.astype(np_.float64) - np_.eye(batch_size)

    # polyloss's deviations: only anchors with a negative count, and 0 / 0 -> 0
    mask_positives = mask_positives * (np_.sum(adjacency_not, axis=1, keepdims=True) > 0)
    per_pair = np_.maximum(loss_mat * mask_positives, 0.0)
    num_positives = np_.sum(mask_positives)
    if r == "none":
        return np_.sum(per_pair, axis=1)
    if r == "sum":
        return np_.sum(per_pair)
    return np_.sum(per_pair) / num_positives if num_positives > 0 else np_.float64(0.0)


def _mined_loop(m, a, p, r):
    """A slow loop over every (anchor, positive, negative) and the three mining rules' definitions."""
    np_ = m.np
    e, y = np_.asarray(a["embeddings"]), [int(v) for v in np_.asarray(a["labels"])]
    margin, mining, squared = p.get("margin", 1.0), p.get("mining", "batch_hard"), p.get("squared", False)
    n = len(y)

    def dist(i, j):
        d2 = sum((float(u) - float(v)) ** 2 for u, v in zip(e[i], e[j], strict=True))
        return d2 if squared else math.sqrt(d2)

    per_anchor, count = np_.zeros(n), 0
    for i in range(n):
        positives = [j for j in range(n) if j != i and y[j] == y[i]]
        negatives = [k for k in range(n) if y[k] != y[i]]
        if not positives or not negatives:
            continue
        if mining == "batch_hard":
            per_anchor[i] = max(0.0, max(dist(i, j) for j in positives) - min(dist(i, k) for k in negatives) + margin)
            count += 1
        elif mining == "batch_all":
            for j in positives:
                for k in negatives:
                    term = max(0.0, dist(i, j) - dist(i, k) + margin)
                    per_anchor[i] += term
                    count += term > 0
        else:  # semi_hard
            for j in positives:
                farther = [dist(i, k) for k in negatives if dist(i, k) > dist(i, j)]
                chosen = min(farther) if farther else max(dist(i, k) for k in negatives)
                per_anchor[i] += max(0.0, margin + dist(i, j) - chosen)
                count += 1
    if r == "none":
        return per_anchor
    total = per_anchor.sum()
    return total if r == "sum" else (total / count if count else np_.float64(0.0))


register(
    LossSpec(
        name="triplet_mined",
        variants=(
            _mined_variant("batch_hard"),
            _mined_variant("batch_all"),
            _mined_variant("semi_hard"),
            _mined_variant("batch_hard", squared=True),
            _mined_variant("batch_all", squared=True),
            _mined_variant("semi_hard", squared=True),
            _mined_variant("batch_hard", "singleton class", margin=0.2),
            _mined_variant("batch_all", "singleton class"),
            _mined_variant("semi_hard", "singleton class", margin=0.5),
            _mined_variant("batch_hard", "all same labels"),
            _mined_variant("batch_all", "all same labels"),
            _mined_variant("semi_hard", "all same labels"),
            _mined_variant("semi_hard", "all distinct labels"),
        ),
        references=(
            Reference("study-hub OnlineTripletLoss (re-typed)", "torch", _study_hub_online_triplet),
            Reference(
                "tfa.losses.triplet_semihard_loss (re-typed, polyloss's empty-set rules)",
                "numpy",
                _tfa_semihard,
                grads=False,
            ),
            Reference("mining loop over (a, p, n)", "numpy", _mined_loop, grads=False),
        ),
        notes="semi_hard deviates from TFA where an anchor has no negative (TFA: loss margin + d_ap from a masked "
        "maximum over an empty set; polyloss: nothing) and where no positive pair has a negative (TFA: 0 / 0 = "
        "NaN; polyloss: 0); the TFA reference applies both rules. Mined batches have a fixed N=6 rows.",
        layout=Layout(
            ("embeddings", "labels"), coupled="mined inside the batch: positives and negatives are the other samples"
        ),
        mean=Mean(
            "batch_hard: anchors with a positive and a negative; batch_all: triplets with a positive "
            "loss; semi_hard: positive pairs whose anchor has a negative",
            _mined_triplet_count,
        ),
        half_precision=HalfPrecision(
            variants=("mining=batch_all", "mining=semi_hard"),
            zero_cases=(
                ZeroCase(
                    "triplet_mined identical embeddings", "mining=batch_hard", (set_to("embeddings", slice(None), 0.5),)
                ),
                ZeroCase(
                    "triplet_mined identical embeddings,semi_hard",
                    "mining=semi_hard",
                    (set_to("embeddings", slice(None), 0.5),),
                ),
            ),
        ),
        plot=Plot(
            "distance between the two classes (each a pair 1 apart)",
            lambda x: {"embeddings": f64([[0.0, 0.0], [1.0, 0.0], [0.0, x], [1.0, x]]), "labels": i64([0, 0, 1, 1])},
            span=(0.05, 3.5),
            sweep=("mining", ("batch_hard", "batch_all", "semi_hard")),
        ),
    )
)


# -- cosine_embedding -------------------------------------------------------------------


def _torch_cos(x1, x2):
    """torch's cosine_embedding_loss cosine, in NumPy (eps 1e-12 on each squared magnitude)."""
    return float(np.sum(x1 * x2) / np.sqrt((np.sum(x1 * x1) + 1e-12) * (np.sum(x2 * x2) + 1e-12)))


def _cosine_arrays(rng, n, *, margin=0.0, zero=False, **_):
    target = rng.choice([-1.0, 1.0], size=n)
    rows = [
        _draw(
            rng,
            lambda: normal(rng, (2, D)),
            lambda pair, t=t: t == 1.0 or abs(_torch_cos(pair[0], pair[1]) - margin) > GAP,
        )
        for t in target
    ]
    x1, x2 = np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])
    if zero:
        # A zero row (x1's first, x2's last) with target -1. Perturbing a zero row by h v moves its cosine
        # to ~cos(v, other) * h|v| / sqrt(h^2 |v|^2 + 1e-12): up to ~0.9 for jax's random directions at
        # h = 1e-6, so only a margin above that keeps the hinge flat under finite differences (see notes).
        x1[0], target[0] = 0.0, -1.0
        x2[-1], target[-1] = 0.0, -1.0
    return {"x1": x1, "x2": x2, "target": target}


def _torch_cosine_embedding(m, a, p, r):
    return m.F.cosine_embedding_loss(a["x1"], a["x2"], a["target"], margin=p.get("margin", 0.0), reduction=r)


def _numpy_cosine_embedding(m, a, p, r):
    np_ = m.np
    margin = p.get("margin", 0.0)
    out = np_.zeros(len(a["target"]))
    for i, t in enumerate(np_.asarray(a["target"])):
        c = _torch_cos(np_.asarray(a["x1"][i]), np_.asarray(a["x2"][i]))
        out[i] = 1.0 - c if t == 1 else max(0.0, c - margin)
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="cosine_embedding",
        variants=(
            _variant("random", _cosine_arrays),
            _variant("margin=0.3", _cosine_arrays, margin=0.3),
            _variant(
                "zero vectors,margin=0.99", lambda rng, n, **k: _cosine_arrays(rng, n, zero=True, **k), margin=0.99
            ),
        ),
        not_differentiable={"target": SIGN_LABEL},
        references=(
            Reference("torch.nn.functional.cosine_embedding_loss", "torch", _torch_cosine_embedding),
            Reference("cosine embedding loop", "numpy", _numpy_cosine_embedding, grads=False),
        ),
        notes="zero-vector rows are generated with target -1 and margin 0.99 (a flat hinge) only: the loss is smooth "
        "there but the cosine's slope at the zero vector is ~1 / sqrt(1e-12) = 1e6, so a finite-difference step "
        "of 1e-6 moves it by O(1) (across any smaller margin, or along 1 - cos for target 1).",
        layout=Layout(("x1", "x2", "target")),
        scale_invariant=("x1", "x2"),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase(
                    "cosine_embedding zero vectors",
                    "random",
                    (set_to("x1", 0, 0.0), set_to("x2", 0, 0.0), set_to("x2", 1, 0.0)),
                    zero_row_gradients={"x1": (0, 1), "x2": (0, 1)},  # every pair has a zero vector
                ),
            ),
        ),
        plot=Plot(
            "cosine similarity of the pair",
            lambda x: {"x1": f64([[1.0, 0.0, 0.0]]), "x2": _at_cosine(x)[None], "target": f64([1.0])},
            span=(-0.99, 0.99),
            sweep=_sign_sweep("target"),
            params={"margin": 0.2},
        ),
    )
)


# -- margin_ranking ---------------------------------------------------------------------


def _ranking_arrays(rng, n, *, margin=0.0, **_):
    target = rng.choice([-1.0, 1.0], size=n)
    x2 = normal(rng, (n,))
    # -y (x1 - x2) + margin = -s with |s| >= 0.05: away from the hinge's kink
    x1 = x2 + target * (margin + away_from_kinks(rng, (n,), ()))
    return {"x1": x1, "x2": x2, "target": target}


def _torch_margin_ranking(m, a, p, r):
    return m.F.margin_ranking_loss(a["x1"], a["x2"], a["target"], margin=p.get("margin", 0.0), reduction=r)


register(
    LossSpec(
        name="margin_ranking",
        variants=(
            _variant("default", _ranking_arrays),
            _variant("margin=0.5", _ranking_arrays, margin=0.5),
        ),
        not_differentiable={"target": SIGN_LABEL},
        references=(Reference("torch.nn.functional.margin_ranking_loss", "torch", _torch_margin_ranking),),
        second_order=False,  # piecewise linear
        layout=Layout(("x1", "x2", "target")),
        plot=Plot(
            "score difference x1 - x2 (target 1: x1 ranks first)",
            lambda x: {"x1": f64([x]), "x2": f64([0.0]), "target": f64([1.0])},
            span=(-3.0, 3.0),
            sweep=("margin", (0.0, 0.5, 1.0)),
        ),
    )
)


# -- hinge_embedding -----------------------------------------------------------------------

HINGE_EMBEDDING_EDGES = EdgeCorpus()
HINGE_EMBEDDING_EDGES.case(
    "hinge_embedding",
    "a dissimilar pair exactly at the margin: 0, derivative 0",
    {"distance": f64([1.0, 0.5]), "target": f64([-1.0, 1.0])},
    Finite(0.25),
)
HINGE_EMBEDDING_EDGES.case(
    "hinge_embedding",
    "a target of 0",
    {"distance": f64([1.0]), "target": f64([0.0])},
    Raises(ValueError, r"target must contain only 1 and -1, got a value of 0.0"),
)
HINGE_EMBEDDING_EDGES.empty_batch("hinge_embedding", {"distance": np.zeros(0), "target": np.zeros(0)}, (0,))


def _hinge_embedding_arrays(rng, n, *, margin=1.0, **_):
    target = rng.choice([-1.0, 1.0], size=(n, 2))
    distance = np.abs(margin + away_from_kinks(rng, (n, 2), (), high=margin))  # |x - m| >= 0.05
    return {"distance": distance, "target": target}


def _torch_hinge_embedding(m, a, p, r):
    return m.F.hinge_embedding_loss(a["distance"], a["target"], margin=p.get("margin", 1.0), reduction=r)


register(
    LossSpec(
        name="hinge_embedding",
        variants=(
            _variant("default", _hinge_embedding_arrays),
            _variant("margin=2", _hinge_embedding_arrays, margin=2.0),
        ),
        not_differentiable={"target": SIGN_LABEL},
        references=(Reference("torch.nn.functional.hinge_embedding_loss", "torch", _torch_hinge_embedding),),
        second_order=False,  # piecewise linear
        layout=Layout(("distance", "target")),
        plot=Plot(
            "distance of the pair",
            lambda x: {"distance": f64([x]), "target": f64([1.0])},
            span=(0.0, 2.5),
            sweep=_sign_sweep("target"),
        ),
    )
)


# -- arcface / cosface --------------------------------------------------------------------

C = 5  # classes


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _margin_arrays(rng, n, *, margin, arc, below=False, near=False, **_):
    """Embeddings, class weights and labels; the target cosine keeps GAP from ArcFace's threshold
    cos(pi - m) and every |cos| < 0.99 (sine = sqrt(1 - cos^2) stays smooth)."""
    weights = normal(rng, (C, D))
    y = labels(rng, (n,), C)
    threshold = math.cos(math.pi - margin)
    rows = []
    for i, c in enumerate(y):
        w = _unit(weights[c])
        if below and i % 2 == 0:  # nearly opposite its class weight: the cos - sin(pi - m) m branch
            draw = lambda w=w: -w + normal(rng, (D,), 0.25)  # noqa: E731
        elif near:  # near its class weight: a small loss
            draw = lambda w=w: w + normal(rng, (D,), 0.3)  # noqa: E731
        else:
            draw = lambda: normal(rng, (D,))  # noqa: E731

        def ok(e, c=c, i=i):
            cos = _unit(weights) @ _unit(e)
            if np.max(np.abs(cos)) > 0.99 or (arc and abs(cos[c] - threshold) < GAP):
                return False
            return not (below and i % 2 == 0 and arc) or cos[c] < threshold

        rows.append(_draw(rng, draw, ok))
    return {"embeddings": np.stack(rows), "class_weights": weights, "labels": y}


def _arc_variant(name, arc, **params):
    defaults = {"margin": 0.5 if arc else 0.35}
    return Variant(
        name,
        lambda rng, n: Case(
            _margin_arrays(rng, n, arc=arc, **{**defaults, **params}),
            {k: v for k, v in params.items() if k in ("scale", "margin")},
        ),
    )


def _arc_margin_product(m, a, p, r):
    """arcface-pytorch's ArcMarginProduct.forward (easy_margin=False), re-typed, then F.cross_entropy."""
    torch, F = m.torch, m.F
    s, mg = p.get("scale", 64.0), p.get("margin", 0.5)
    cos_m, sin_m = math.cos(mg), math.sin(mg)
    th, mm = math.cos(math.pi - mg), math.sin(math.pi - mg) * mg
    label = a["labels"]
    cosine = F.linear(F.normalize(a["embeddings"]), F.normalize(a["class_weights"]))
    sine = torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))
    phi = cosine * cos_m - sine * sin_m
    phi = torch.where(cosine > th, phi, cosine - mm)
    one_hot = torch.zeros(cosine.size(), dtype=cosine.dtype)
    one_hot.scatter_(1, label.view(-1, 1).long(), 1)
    output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
    output = output * s
    return F.cross_entropy(output, label, reduction=r)


def _add_margin_product(m, a, p, r):
    """arcface-pytorch's AddMarginProduct.forward (CosFace), re-typed, then F.cross_entropy."""
    torch, F = m.torch, m.F
    s, mg = p.get("scale", 64.0), p.get("margin", 0.35)
    label = a["labels"]
    cosine = F.linear(F.normalize(a["embeddings"]), F.normalize(a["class_weights"]))
    phi = cosine - mg
    one_hot = torch.zeros(cosine.size(), dtype=cosine.dtype)
    one_hot.scatter_(1, label.view(-1, 1).long(), 1)
    output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
    output = output * s
    return F.cross_entropy(output, label, reduction=r)


def _margin_loop(arc: bool):
    """One sample at a time, from the angles: ArcFace's target logit is s cos(theta + m) (above the threshold,
    else s (cos - sin(pi - m) m)), CosFace's s (cos - m); then -log softmax at the label."""

    def ref(m, a, p, r):
        np_ = m.np
        s, mg = p.get("scale", 64.0), p.get("margin", 0.5 if arc else 0.35)
        e, w, y = (np_.asarray(a[k]) for k in ("embeddings", "class_weights", "labels"))
        out = np_.zeros(len(y))
        for i, c in enumerate(y):
            logits = []
            for j in range(len(w)):
                cos = float(e[i] @ w[j]) / (max(np_.linalg.norm(e[i]), 1e-12) * max(np_.linalg.norm(w[j]), 1e-12))
                if j == c and arc and cos > math.cos(math.pi - mg):
                    cos = math.cos(math.acos(cos) + mg)
                elif j == c and arc:
                    cos = cos - math.sin(math.pi - mg) * mg
                elif j == c:
                    cos = cos - mg
                logits.append(s * cos)
            top = max(logits)
            out[i] = top + math.log(sum(math.exp(v - top) for v in logits)) - logits[c]
        return reduce_reference(np_, out, r)

    return Reference(f"{'arcface' if arc else 'cosface'} loop (angles)", "numpy", ref, grads=False)


register(
    LossSpec(
        name="arcface",
        variants=(
            _arc_variant("default", True),
            _arc_variant("scale=30,margin=0.3", True, scale=30.0, margin=0.3),
            _arc_variant("target cosine below cos(pi - m)", True, below=True),
            _arc_variant("near class weight,scale=16", True, near=True, scale=16.0),
        ),
        references=(
            Reference("arcface-pytorch ArcMarginProduct + F.cross_entropy (re-typed)", "torch", _arc_margin_product),
            _margin_loop(arc=True),
        ),
        layout=Layout(("embeddings", "labels"), shared=("class_weights",)),
        scale_invariant=("embeddings", "class_weights"),
        half_precision=HalfPrecision(
            variants=("target cosine below cos(pi - m)",),
            zero_cases=(
                _zero_embedding_and_class_weight("arcface"),
                ZeroCase("arcface target cosine 1", "default", (_parallel_to_class_weight,)),
            ),
        ),
        plot=_angle_plot(("margin", (0.2, 0.35, 0.5))),
    )
)

register(
    LossSpec(
        name="cosface",
        variants=(
            _arc_variant("default", False),
            _arc_variant("scale=30,margin=0.2", False, scale=30.0, margin=0.2),
            _arc_variant("near class weight,scale=16", False, near=True, scale=16.0),
        ),
        references=(
            Reference("arcface-pytorch AddMarginProduct + F.cross_entropy (re-typed)", "torch", _add_margin_product),
            _margin_loop(arc=False),
        ),
        layout=Layout(("embeddings", "labels"), shared=("class_weights",)),
        scale_invariant=("embeddings", "class_weights"),
        half_precision=HalfPrecision(zero_cases=(_zero_embedding_and_class_weight("cosface"),)),
        plot=_angle_plot(("margin", (0.1, 0.35, 0.5))),
    )
)


# -- circle -------------------------------------------------------------------------------

CIRCLE_EDGES = EdgeCorpus()
CIRCLE_EDGES.case(
    "circle",
    "every label distinct: no positive, 0",
    {"embeddings": f64([[1.0, 0.0], [0.0, 1.0]]), "labels": i64([0, 1])},
    Finite(0.0, grad="zero"),
)
CIRCLE_EDGES.case(
    "circle",
    "one class: no negative, 0",
    {"embeddings": f64([[1.0, 0.0], [0.6, 0.8]]), "labels": i64([3, 3])},
    Finite(0.0, grad="zero"),
)
CIRCLE_EDGES.case(
    "circle",
    "a zero embedding: similarity 0, finite",
    {"embeddings": f64([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), "labels": i64([0, 0, 1])},
    Finite(),
)
CIRCLE_EDGES.empty_batch("circle", {"embeddings": np.zeros((0, D)), "labels": np.zeros(0, dtype=np.int64)}, (0,))


def _circle_arrays(rng, n, **_):
    classes = max(2, (n + 3) // 2)
    y = labels(rng, (n + 3,), classes)
    y[:2] = 0  # a positive pair and
    y[2] = 1  # a negative for the first anchors
    return {"embeddings": normal(rng, (n + 3, D)), "labels": y}


def _pml_circle(m, a, p, r):
    """pytorch-metric-learning's ``CircleLoss._compute_loss`` (``losses/circle_loss.py``) on
    ``CosineSimilarity`` pairs, re-typed; its ``AvgNonZeroReducer`` is "mean" (the mean of the positive
    losses), "none" the per-anchor losses."""
    torch = m.torch
    margin, gamma = p.get("m", 0.4), p.get("gamma", 80.0)
    op, on, delta_p, delta_n = 1 + margin, -margin, 1 - margin, margin
    embeddings = m.F.normalize(a["embeddings"], p=2, dim=1)
    mat = embeddings @ embeddings.T
    labels = a["labels"]
    same = labels[:, None] == labels[None, :]
    pos_mask = (same & ~torch.eye(len(labels), dtype=torch.bool)).to(mat.dtype)
    neg_mask = (~same).to(mat.dtype)
    pos_mask_bool, neg_mask_bool = pos_mask.bool(), neg_mask.bool()
    anchor_positive, anchor_negative = mat[pos_mask_bool], mat[neg_mask_bool]
    new_mat = torch.zeros_like(mat)
    new_mat[pos_mask_bool] = -gamma * torch.relu(op - anchor_positive.detach()) * (anchor_positive - delta_p)
    new_mat[neg_mask_bool] = gamma * torch.relu(anchor_negative.detach() - on) * (anchor_negative - delta_n)

    def logsumexp(x, keep_mask, dim=1):  # pml's lmu.logsumexp(add_one=False); c_f.neg_inf is finfo.min
        x = x.masked_fill(~keep_mask, torch.finfo(x.dtype).min)
        output = torch.logsumexp(x, dim=dim, keepdim=True)
        return output.masked_fill(~torch.any(keep_mask, dim=dim, keepdim=True), 0)

    losses = m.F.softplus(logsumexp(new_mat, pos_mask_bool) + logsumexp(new_mat, neg_mask_bool)).squeeze(1)
    zero_rows = (torch.sum(pos_mask, dim=1) == 0) | (torch.sum(neg_mask, dim=1) == 0)
    losses = torch.where(zero_rows, torch.zeros_like(losses), losses)
    if r == "none":
        return losses
    if r == "sum":
        return losses.sum()
    nonzero = losses > 0
    return losses[nonzero].mean() if bool(nonzero.any()) else losses.sum() * 0


def _numpy_circle_loop(m, a, p, r):
    margin, gamma = p.get("m", 0.4), p.get("gamma", 80.0)
    emb = np.asarray(a["embeddings"], dtype=float)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    y = np.asarray(a["labels"])
    out, kept = [], 0
    for i in range(len(y)):
        pos = [float(emb[i] @ emb[j]) for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [float(emb[i] @ emb[j]) for j in range(len(y)) if y[j] != y[i]]
        if not pos or not neg:
            out.append(0.0)
            continue
        lp = [-gamma * max(0.0, 1 + margin - s) * (s - (1 - margin)) for s in pos]
        ln = [gamma * max(0.0, s + margin) * (s - margin) for s in neg]

        def lse(v):
            top = max(v)
            return top + math.log(math.fsum(math.exp(x - top) for x in v))

        out.append(softplus(lse(lp) + lse(ln)))
        kept += 1
    return reduce_kept_reference(out, kept, r)


register(
    LossSpec(
        name="circle",
        variants=(
            _variant("m=0.4,gamma=80", _circle_arrays),
            _variant("m=0.25,gamma=32", _circle_arrays, m=0.25, gamma=32.0),
        ),
        references=(
            Reference("pytorch-metric-learning CircleLoss (re-typed)", "torch", _pml_circle),
            Reference("circle loop", "numpy", _numpy_circle_loop, grads=False),
        ),
        finite_differences=False,  # the weights alpha are held constant (the paper's, pml's .detach())
        notes="The weights alpha_p, alpha_n are held constant, as the paper and pytorch-metric-learning do: the "
        "gradient is not the derivative of the value; pml's re-typed loss checks it. 'mean' averages the anchors "
        "with a positive and a negative (pml's AvgNonZeroReducer).",
        layout=Layout(("embeddings", "labels"), coupled="pairs within the batch: every other sample is a pair"),
        mean=Mean(
            "the number of anchors with a positive and a negative",
            lambda case, none: float(
                sum(
                    1
                    for i, yi in enumerate(case.arrays["labels"])
                    if (case.arrays["labels"] == yi).sum() > 1 and (case.arrays["labels"] != yi).any()
                )
            ),
        ),
        plot=_batch_plot(("m", (0.25, 0.4, 0.6))),
    )
)


# -- multi_similarity ---------------------------------------------------------------------

MULTI_SIMILARITY_EDGES = EdgeCorpus()
MULTI_SIMILARITY_EDGES.case(
    "multi_similarity",
    "every label distinct: the negative terms only",
    {"embeddings": f64([[1.0, 0.0], [0.0, 1.0]]), "labels": i64([0, 1])},
    Finite(math.log1p(math.exp(50.0 * (0.0 - 0.5))) / 50.0),
)
MULTI_SIMILARITY_EDGES.case(
    "multi_similarity",
    "identical positives, no negative: log(1 + e^{-alpha (1 - base)}) / alpha",
    {"embeddings": f64([[0.6, 0.8], [0.6, 0.8]]), "labels": i64([2, 2])},
    Finite(math.log1p(math.exp(-2.0 * (1.0 - 0.5))) / 2.0, rtol=1e-9),
)
MULTI_SIMILARITY_EDGES.empty_batch(
    "multi_similarity", {"embeddings": np.zeros((0, D)), "labels": np.zeros(0, dtype=np.int64)}, (0,)
)


def _pml_multi_similarity(m, a, p, r):
    """pytorch-metric-learning's ``MultiSimilarityLoss._compute_loss`` (``losses/multi_similarity_loss.py``) on
    ``CosineSimilarity`` pairs (``margin(x, y) = y - x``, inverted), with ``lmu.logsumexp(add_one=True)``;
    its ``MeanReducer`` is "mean"."""
    torch = m.torch
    alpha, beta, base = p.get("alpha", 2.0), p.get("beta", 50.0), p.get("base", 0.5)
    embeddings = m.F.normalize(a["embeddings"], p=2, dim=1)
    mat = embeddings @ embeddings.T
    labels = a["labels"]
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~torch.eye(len(labels), dtype=torch.bool)
    neg_mask = ~same

    def logsumexp(x, keep_mask, dim=1):  # lmu.logsumexp(add_one=True)
        x = x.masked_fill(~keep_mask, torch.finfo(x.dtype).min)
        zeros = torch.zeros(x.size(dim - 1), dtype=x.dtype).unsqueeze(dim)
        x = torch.cat([x, zeros], dim=dim)
        output = torch.logsumexp(x, dim=dim, keepdim=True)
        return output.masked_fill(~torch.any(keep_mask, dim=dim, keepdim=True), 0)

    pos_exp = base - mat  # margin(mat, base) for an inverted distance
    neg_exp = mat - base  # margin(base, mat)
    pos_loss = (1.0 / alpha) * logsumexp(alpha * pos_exp, keep_mask=pos_mask)
    neg_loss = (1.0 / beta) * logsumexp(beta * neg_exp, keep_mask=neg_mask)
    return reduce_reference(torch, (pos_loss + neg_loss).squeeze(1), r)


def _numpy_multi_similarity_loop(m, a, p, r):
    alpha, beta, base = p.get("alpha", 2.0), p.get("beta", 50.0), p.get("base", 0.5)
    emb = np.asarray(a["embeddings"], dtype=float)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    y = np.asarray(a["labels"])
    out = []
    for i in range(len(y)):
        pos = [float(emb[i] @ emb[j]) for j in range(len(y)) if j != i and y[j] == y[i]]
        neg = [float(emb[i] @ emb[j]) for j in range(len(y)) if y[j] != y[i]]
        term_p = math.log1p(math.fsum(math.exp(-alpha * (s - base)) for s in pos)) / alpha
        term_n = math.log1p(math.fsum(math.exp(beta * (s - base)) for s in neg)) / beta
        out.append(term_p + term_n)
    return reduce_reference(np, np.array(out), r)


register(
    LossSpec(
        name="multi_similarity",
        variants=(
            _variant("alpha=2,beta=50,base=0.5", _circle_arrays),
            _variant("alpha=1,beta=10,base=0.2", _circle_arrays, alpha=1.0, beta=10.0, base=0.2),
        ),
        references=(
            Reference("pytorch-metric-learning MultiSimilarityLoss (re-typed)", "torch", _pml_multi_similarity),
            Reference("multi-similarity loop", "numpy", _numpy_multi_similarity_loop, grads=False),
        ),
        layout=Layout(("embeddings", "labels"), coupled="pairs within the batch: every other sample is a pair"),
        plot=_batch_plot(("alpha", (1.0, 2.0, 5.0))),
    )
)
