"""Specs of the contrastive losses (see ``polyloss/core/contrastive.py``).

Every loss contrasts the rows of an (N, D) batch of embeddings with each other.
The torch references re-type the upstream code (the ``info-nce-pytorch``
package, open_clip's ``ClipLoss`` / ``SigLipLoss``, study-hub's (eunsu-park/study-hub, lesson 24) ``InfoNCELoss``
with its label bug fixed); the JAX references build the same logits and hand
them to optax (``optax.losses.ntxent`` takes the embeddings themselves).
"""

from __future__ import annotations

import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import normal, set_to
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Raises, ce, f64, fmean, i64, softplus
from polyloss.verify.specs.record import (
    DEFAULT_TOLERANCES,
    Case,
    HalfPrecision,
    Layout,
    LossSpec,
    Mean,
    Plot,
    Variant,
    ZeroCase,
)
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the contrastive plots' axis (shared by the family's comparison plot, infonce at several temperatures)
COSINE_AXIS = "cosine similarity of the positive pair"


def _at_cosine(x: float) -> np.ndarray:
    """A unit vector at cosine ``x`` from ``(1, 0, 0)``, in the plane of the first and third axes."""
    return np.array([x, 0.0, math.sqrt(max(1.0 - x * x, 0.0))])


def _pair_plot(first: str, second: str, sweep: tuple[str, tuple[float, ...]] | None, **params: float) -> Plot:
    """Two samples (two views or modalities each): the first pair at cosine x, the second pair
    identical and orthogonal to the first sample's view, so each is the other's negative."""
    return Plot(
        COSINE_AXIS,
        lambda x: {first: f64([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), second: np.stack([_at_cosine(x), [0.0, 1.0, 0.0]])},
        span=(-0.99, 0.99),
        sweep=sweep,
        params=dict(params),
    )


_NEGATIVES = f64([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [-0.6, 0.0, -0.8]])


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    COLLINEAR = f64([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    edges.case(
        "infonce",
        "temperature 0.01, collinear keys",
        {"query": COLLINEAR, "key": 2.0 * COLLINEAR},
        Finite(),
        params={"temperature": 0.01},
    )
    edges.case(
        "infonce",
        "zero query vectors",
        {"query": f64([[0.0, 0.0], [1.0, 0.0]]), "key": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(lambda a: fmean(ce([[0.0, 0.0], [10.0, 0.0]], [0, 1]))),
    )
    edges.case(
        "nt_xent",
        "a single pair: loss 0",
        {"z1": f64([[1.0, 2.0]]), "z2": f64([[-3.0, 0.5]])},
        Finite(0.0, grad="zero"),
        params={"temperature": 0.01},
    )
    edges.case(
        "nt_xent",
        "temperature 0.01, collinear views",
        {"z1": COLLINEAR, "z2": 3.0 * COLLINEAR},
        Finite(),
        params={"temperature": 0.01},
    )
    edges.case(
        "clip",
        "zero embeddings",
        {"image_emb": f64([[0.0, 0.0], [0.0, 0.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(math.log(2.0), grad="zero"),
        params={"logit_scale": 100.0},
    )
    edges.case(
        "siglip",
        "large logit scale, matching pairs",
        {"image_emb": f64([[1.0, 0.0], [0.0, 1.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(lambda a: (2 * softplus(-90.0) + 2 * softplus(-10.0)) / 2),
        params={"logit_scale": 100.0, "logit_bias": -10.0},
    )

    edges.case(
        "siglip",
        "zero image embeddings: every cosine 0",
        {"image_emb": f64([[0.0, 0.0], [0.0, 0.0]]), "text_emb": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(lambda a: (2 * softplus(10.0) + 2 * softplus(-10.0)) / 2, grad="zero"),
        params={"logit_scale": 10.0, "logit_bias": -10.0},
    )
    edges.case(
        "nt_xent",
        "zero first views, orthogonal second views: log 3 per anchor",
        {"z1": f64([[0.0, 0.0], [0.0, 0.0]]), "z2": f64([[1.0, 0.0], [0.0, 1.0]])},
        Finite(math.log(3.0)),
        params={"temperature": 0.5},
    )
    edges.case(
        "clip",
        "temperature 0.01 (logit scale 100), collinear pairs",
        {"image_emb": COLLINEAR, "text_emb": 2.0 * COLLINEAR},
        Finite(),
        params={"logit_scale": 100.0},
    )
    two_views = {"z1": f64([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "z2": f64([[1.0, 0.5], [-0.5, 1.0], [0.0, 1.0]])}
    edges.case(
        "nt_xent",
        "one label for every sample: no negative, 0",
        {**two_views, "labels": i64([4, 4, 4])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "nt_xent",
        "labels of the wrong shape",
        {**two_views, "labels": i64([0, 1])},
        Raises(ValueError, r"labels must have shape \(3,\), got \(2,\)"),
    )
    edges.case(
        "nt_xent",
        "floating labels",
        {**two_views, "labels": f64([0.0, 1.0, 0.0])},
        Raises(TypeError, r"labels must hold integer labels, got dtype"),
    )
    NO_ROWS = np.zeros((0, 4))
    edges.empty_batch("infonce", {"query": NO_ROWS, "key": NO_ROWS}, (0,))
    edges.empty_batch("nt_xent", {"z1": NO_ROWS, "z2": NO_ROWS}, (0,))
    edges.case(
        "nt_xent",
        "no sample, with labels: 0",
        {"z1": NO_ROWS, "z2": NO_ROWS, "labels": np.zeros(0, dtype=np.int64)},
        Finite(0.0, grad="zero", shape=()),
    )
    # the shared scale and bias get a gradient of exactly 0
    edges.empty_batch("clip", {"image_emb": NO_ROWS, "text_emb": NO_ROWS, "logit_scale": f64(10.0)}, (0,))
    edges.empty_batch(
        "siglip",
        {"image_emb": NO_ROWS, "text_emb": NO_ROWS, "logit_scale": f64(10.0), "logit_bias": f64(-10.0)},
        (0,),
    )
    return edges


EDGES = _edge_cases()

_IN_BATCH = "in-batch contrastive: every other sample of the batch is a negative"


def _infonce_layout(case: Case) -> Layout:
    negatives = case.arrays.get("negatives")
    if negatives is None:
        return Layout(("query", "key"), coupled="in-batch negatives: every other key is a negative")
    if negatives.ndim == 3:  # (N, M, D): negatives[i] belong to query i
        return Layout(("query", "key", "negatives"))
    return Layout(("query", "key"), shared=("negatives",))  # (M, D) shared by every query


def _zero_rows(name: str, variant: str, first: str, second: str, second_row: int) -> HalfPrecision:
    """Zero rows in both inputs: their gradient is exactly 0."""
    return HalfPrecision(
        zero_cases=(
            ZeroCase(
                f"{name} zero rows",
                variant,
                (set_to(first, 0, 0.0), set_to(second, second_row, 0.0)),
                zero_row_gradients={first: (0,), second: (second_row,)},
            ),
        ),
    )


D = 4  # embedding width
M = 3  # explicit negatives per query

# float32 at temperature 0.01: the logits reach 1/T = 100, whose float32 spacing is 2**-17 = 7.6e-6, and the loss
# (log-sum-exp minus the positive logit) cannot be more accurate than a few such spacings. The default atol (1e-6)
# was reached at 0.96 of its bound in 1000 drawn cases (jax, infonce); 3e-5 (~4 spacings) leaves a 3x margin.
HARD_TEMPERATURE_TOLERANCES = {**DEFAULT_TOLERANCES, "float32": (2e-5, 3e-5)}


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


def _torch_reduce(m, out, r):
    return reduce_reference(m.torch, out, r)


def _jax_normalize(m, x):
    """F.normalize(x, dim=-1) in jax: x / max(||x||, 1e-12)."""
    return x / m.jnp.maximum(m.jnp.sqrt(m.jnp.sum(x * x, axis=-1, keepdims=True)), 1e-12)


# -- infonce --------------------------------------------------------------------


def _infonce_arrays(rng, n, *, negatives=None, scale=1.0, collinear=False):
    query = normal(rng, (n, D), scale)
    if collinear:
        key = rng.uniform(0.5, 2.0, size=(n, 1)) * query  # a positive multiple of each query
    else:
        key = query + normal(rng, (n, D), 0.7 * scale)  # correlated positives
    arrays = {"query": query, "key": key}
    if negatives == "unpaired":
        arrays["negatives"] = normal(rng, (M, D), scale)
    elif negatives == "paired":
        arrays["negatives"] = normal(rng, (n, M, D), scale)
    return arrays


def _info_nce_package(m, normalize_inputs: bool):
    """``info_nce`` of the ``info-nce-pytorch`` package (RElbers), re-typed from its published source.

    The package always normalizes; ``normalize_inputs=False`` swaps its ``normalize``
    helper for the identity (polyloss's ``normalize=False``), nothing else changes.
    """
    torch, F = m.torch, m.F

    def transpose(x):
        return x.transpose(-2, -1)

    def normalize(*xs):
        if not normalize_inputs:
            return list(xs)
        return [None if x is None else F.normalize(x, dim=-1) for x in xs]

    def info_nce(query, positive_key, negative_keys=None, temperature=0.1, reduction="mean", negative_mode="unpaired"):
        query, positive_key, negative_keys = normalize(query, positive_key, negative_keys)
        if negative_keys is not None:
            positive_logit = torch.sum(query * positive_key, dim=1, keepdim=True)
            if negative_mode == "unpaired":
                negative_logits = query @ transpose(negative_keys)
            elif negative_mode == "paired":
                query = query.unsqueeze(1)
                negative_logits = query @ transpose(negative_keys)
                negative_logits = negative_logits.squeeze(1)
            logits = torch.cat([positive_logit, negative_logits], dim=1)
            labels = torch.zeros(len(logits), dtype=torch.long, device=query.device)
        else:
            logits = query @ transpose(positive_key)
            labels = torch.arange(len(query), device=query.device)
        return F.cross_entropy(logits / temperature, labels, reduction=reduction)

    return info_nce


def _torch_infonce(m, a, p, r):
    negatives = a.get("negatives")
    mode = "paired" if negatives is not None and negatives.dim() == 3 else "unpaired"
    info_nce = _info_nce_package(m, p.get("normalize", True))
    return info_nce(
        a["query"], a["key"], negatives, temperature=p.get("temperature", 0.1), reduction=r, negative_mode=mode
    )


def _optax_infonce(m, a, p, r):
    jnp = m.jnp
    query, key, negatives = a["query"], a["key"], a.get("negatives")
    if p.get("normalize", True):
        query, key = _jax_normalize(m, query), _jax_normalize(m, key)
        negatives = None if negatives is None else _jax_normalize(m, negatives)
    if negatives is None:
        logits, labels = query @ key.T, jnp.arange(query.shape[0])
    else:
        positive = jnp.sum(query * key, axis=-1, keepdims=True)
        if negatives.ndim == 2:
            negative = query @ negatives.T
        else:
            negative = jnp.einsum("nd,nmd->nm", query, negatives)
        logits, labels = jnp.concatenate([positive, negative], axis=1), jnp.zeros(query.shape[0], dtype=jnp.int64)
    out = m.optax.losses.softmax_cross_entropy_with_integer_labels(logits / p.get("temperature", 0.1), labels)
    return reduce_reference(jnp, out, r)


register(
    LossSpec(
        name="infonce",
        variants=(
            _variant("in-batch", _infonce_arrays),
            _variant("negatives (M,D) unpaired", lambda rng, n: _infonce_arrays(rng, n, negatives="unpaired")),
            _variant("negatives (N,M,D) paired", lambda rng, n: _infonce_arrays(rng, n, negatives="paired")),
            _variant(
                "normalize=False,small inputs", lambda rng, n: _infonce_arrays(rng, n, scale=0.3), normalize=False
            ),
            _variant("temperature=0.01", _infonce_arrays, temperature=0.01),
            _variant(
                "temperature=0.01,negatives paired",
                lambda rng, n: _infonce_arrays(rng, n, negatives="paired"),
                temperature=0.01,
            ),
            _variant("collinear (key = c * query)", lambda rng, n: _infonce_arrays(rng, n, collinear=True)),
            _variant("in-batch,chunk_size=2", _infonce_arrays, chunk_size=2),
        ),
        references=(
            Reference("info-nce-pytorch info_nce (re-typed)", "torch", _torch_infonce),
            Reference("optax.losses.softmax_cross_entropy_with_integer_labels", "jax", _optax_infonce),
        ),
        tolerances=dict(HARD_TEMPERATURE_TOLERANCES),
        notes=(
            "normalize=False is polyloss's extension: the info-nce-pytorch package always normalizes. "
            "float32 atol 3e-5: at temperature 0.01 the logits reach 100 (float32 spacing 7.6e-6), "
            "see HARD_TEMPERATURE_TOLERANCES."
        ),
        layout=_infonce_layout,
        scale_invariant=("query", "key", "negatives"),
        half_precision=HalfPrecision(
            variants=("temperature=0.01",),
            zero_cases=_zero_rows("infonce", "in-batch", "query", "key", 1).zero_cases,
        ),
        plot=Plot(
            COSINE_AXIS,
            lambda x: {"query": f64([[1.0, 0.0, 0.0]]), "key": _at_cosine(x)[None], "negatives": _NEGATIVES},
            span=(-0.99, 0.99),
            sweep=("temperature", (0.1, 0.5, 1.0)),
        ),
    )
)


# -- nt_xent --------------------------------------------------------------------


def _views(rng, n, *, collinear=False):
    z1 = normal(rng, (n, D))
    z2 = rng.uniform(0.5, 2.0, size=(n, 1)) * z1 if collinear else z1 + normal(rng, (n, D), 0.7)
    return {"z1": z1, "z2": z2}


def _study_hub_infonce(m, a, p, r):
    """Study-hub's ``InfoNCELoss.forward`` re-typed, with its labels fixed.

    As printed, the labels ``arange(N) + N`` index the (2N, 2N - 1) matrix left after
    removing the diagonal: for the first N rows the positive sits at column
    ``N + i - 1`` (column ``N + i`` of the full matrix, shifted left by the removed
    diagonal entry), and ``2N - 1`` is out of range (IndexError for every N).
    """
    if "labels" in a:
        raise NotApplicable("study-hub's InfoNCELoss has one positive per anchor, no labels")
    torch, nn = m.torch, m.torch.nn
    z_i, z_j, temperature = a["z1"], a["z2"], p.get("temperature", 0.5)
    batch_size = z_i.size(0)
    z_i = nn.functional.normalize(z_i, dim=1)
    z_j = nn.functional.normalize(z_j, dim=1)
    representations = torch.cat([z_i, z_j], dim=0)
    similarity_matrix = torch.mm(representations, representations.T)
    labels = torch.cat(
        [
            torch.arange(batch_size) + batch_size - 1,  # fixed: the original has `+ batch_size`
            torch.arange(batch_size),
        ],
        dim=0,
    ).to(z_i.device)
    mask = torch.eye(2 * batch_size, dtype=torch.bool, device=z_i.device)
    similarity_matrix = similarity_matrix[~mask].view(2 * batch_size, -1)
    similarity_matrix = similarity_matrix / temperature
    return nn.functional.cross_entropy(similarity_matrix, labels, reduction=r)


def _labelled_views(rng, n, *, classes=2):
    """Two views and ``(N,)`` labels from ``classes`` labels: several positives per anchor."""
    return {**_views(rng, n), "labels": rng.integers(0, classes, size=n).astype(np.int64)}


def _positive_pairs(case: Case) -> int:
    """The number of (anchor, positive) pairs over the 2N views: 2N without labels."""
    n = case.arrays["z1"].shape[0]
    if "labels" not in case.arrays:
        return 2 * n
    groups = np.concatenate([case.arrays["labels"], case.arrays["labels"]])
    return int((groups[:, None] == groups[None, :]).sum()) - 2 * n


def _optax_ntxent(m, a, p, r):
    """optax.losses.ntxent on concat(z1, z2) with labels concat(labels, labels) (or
    concat(arange(N), arange(N)) without labels).

    It averages over every matched (i, j) pair, so "sum" is that mean times the number of positive
    pairs (2N without labels); it returns no per-anchor values.
    """
    if r == "none":
        raise NotApplicable("optax.losses.ntxent returns only the mean")
    jnp = m.jnp
    n = a["z1"].shape[0]
    labels = jnp.arange(n) if "labels" not in a else a["labels"]
    loss = m.optax.losses.ntxent(
        jnp.concatenate([a["z1"], a["z2"]], axis=0),
        jnp.concatenate([labels, labels]),
        temperature=p.get("temperature", 0.5),
    )
    if r == "mean":
        return loss
    groups = jnp.concatenate([labels, labels])
    return loss * (jnp.sum(groups[:, None] == groups[None, :]) - 2 * n)


def _np_nt_xent(m, a, p, r):
    """Each positive pair's -log(e^{s_ip} / (e^{s_ip} + sum over the other-label views e^{s_ik})), in
    float64 one pair at a time; summed per anchor ("none"), "mean" over the pairs."""
    z = np.concatenate([np.asarray(a["z1"], dtype=np.float64), np.asarray(a["z2"], dtype=np.float64)])
    n = len(z) // 2
    labels = np.asarray(a["labels"]) if "labels" in a else np.arange(n)
    groups = np.concatenate([labels, labels])
    norms = [math.sqrt(math.fsum(v * v for v in row)) for row in z]
    unit = [row / max(norm, 1e-12) for row, norm in zip(z, norms, strict=True)]
    tau = float(p.get("temperature", 0.5))
    per_anchor, pairs = [], 0
    for i in range(2 * n):
        sims = [math.fsum(unit[i] * unit[k]) / tau for k in range(2 * n)]
        negatives = [sims[k] for k in range(2 * n) if groups[k] != groups[i]]
        total = 0.0
        for j in range(2 * n):
            if j == i or groups[j] != groups[i]:
                continue
            pairs += 1
            top = max([sims[j], *negatives])
            total += top + math.log(math.fsum(math.exp(v - top) for v in [sims[j], *negatives])) - sims[j]
        per_anchor.append(total)
    if r == "none":
        return np.asarray(per_anchor)
    return np.asarray(math.fsum(per_anchor) / pairs if r == "mean" and pairs else math.fsum(per_anchor))


def _nt_xent_layout(case: Case) -> Layout:
    if "labels" in case.arrays:
        return Layout(
            ("z1", "z2", "labels"),
            none="halves",
            coupled=_IN_BATCH + " ((2N,) anchors; the other views of a label are positives)",
        )
    return Layout(("z1", "z2"), none="halves", coupled=_IN_BATCH + " ((2N,) anchors)")


register(
    LossSpec(
        name="nt_xent",
        variants=(
            _variant("random", _views),
            _variant("N=1 (loss 0)", lambda rng, n: _views(rng, 1)),
            _variant("temperature=0.01", _views, temperature=0.01),
            _variant("collinear views (z2 = c * z1)", lambda rng, n: _views(rng, n, collinear=True)),
            _variant("labels", _labelled_views),
            _variant("labels,temperature=0.1", lambda rng, n: _labelled_views(rng, n, classes=3), temperature=0.1),
            _variant("labels all equal (no negative: 0)", lambda rng, n: _labelled_views(rng, n, classes=1)),
        ),
        references=(
            Reference("study-hub InfoNCELoss (re-typed, labels fixed)", "torch", _study_hub_infonce),
            Reference("optax.losses.ntxent", "jax", _optax_ntxent),
            Reference("positive-pair loop", "numpy", _np_nt_xent, grads=False),
        ),
        notes=(
            "optax.losses.ntxent normalizes with sqrt(max(||z||^2, finfo.eps)) (norm floor 1.5e-8 in float64, "
            "3.5e-4 in float32) where F.normalize uses max(||z||, 1e-12): they differ only for rows shorter than "
            "that floor, which no variant has. Its mean is over the 2N anchors, so 'sum' = mean * 2N. float32 atol "
            "3e-5: at temperature 0.01 the logits reach 100 (float32 spacing 7.6e-6), see HARD_TEMPERATURE_TOLERANCES."
        ),
        tolerances=dict(HARD_TEMPERATURE_TOLERANCES),
        layout=_nt_xent_layout,
        mean=Mean(
            "the number of positive pairs (2N without labels)", normaliser=lambda case, none: _positive_pairs(case)
        ),
        scale_invariant=("z1", "z2"),
        half_precision=_zero_rows("nt_xent", "random", "z1", "z2", 0),
        plot=_pair_plot("z1", "z2", ("temperature", (0.1, 0.5, 1.0))),
    )
)


# -- clip -----------------------------------------------------------------------

CLIP_SCALE = math.exp(math.log(1 / 0.07))  # open_clip's initial logit_scale.exp()


def _pairs(rng, n, *, scale=1.0, **extra):
    image = normal(rng, (n, D), scale)
    return {"image_emb": image, "text_emb": image + normal(rng, (n, D), 0.8 * scale), **extra}


def _scale(m, a, p, name, default=None):
    value = a.get(name, p.get(name, default))
    if value is None:
        raise NotApplicable(f"{name} missing")
    return value


def _open_clip_loss(m, a, p, r):
    """open_clip ``ClipLoss.forward`` (world_size=1) re-typed; the model normalizes the features first."""
    F = m.F
    image_features, text_features = a["image_emb"], a["text_emb"]
    if p.get("normalize", True):
        image_features, text_features = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1)
    logit_scale = _scale(m, a, p, "logit_scale")
    logits_per_image = logit_scale * image_features @ text_features.T
    logits_per_text = logit_scale * text_features @ image_features.T
    labels = m.torch.arange(logits_per_image.shape[0], device=image_features.device, dtype=m.torch.long)
    if r == "mean":
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
    per_index = (
        F.cross_entropy(logits_per_image, labels, reduction="none")
        + F.cross_entropy(logits_per_text, labels, reduction="none")
    ) / 2
    return _torch_reduce(m, per_index, r)


def _optax_clip(m, a, p, r):
    jnp, optax = m.jnp, m.optax
    image, text = a["image_emb"], a["text_emb"]
    if p.get("normalize", True):
        image, text = _jax_normalize(m, image), _jax_normalize(m, text)
    logits = _scale(m, a, p, "logit_scale") * image @ text.T
    labels = jnp.arange(logits.shape[0])
    per_index = (
        optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
        + optax.losses.softmax_cross_entropy_with_integer_labels(logits.T, labels)
    ) / 2
    return reduce_reference(jnp, per_index, r)


register(
    LossSpec(
        name="clip",
        variants=(
            _variant("logit_scale=1/0.07 (array)", lambda rng, n: _pairs(rng, n, logit_scale=np.asarray(CLIP_SCALE))),
            _variant(
                "normalize=False,small inputs,random logit_scale",
                lambda rng, n: _pairs(rng, n, scale=0.5, logit_scale=np.asarray(rng.uniform(0.5, 2.0))),
                normalize=False,
            ),
            _variant("logit_scale=10.0 (float param)", _pairs, logit_scale=10.0),
            _variant("N=1", lambda rng, n: _pairs(rng, 1, logit_scale=np.asarray(rng.uniform(5.0, 20.0)))),
            _variant(
                "chunk_size=2 (array logit_scale)",
                lambda rng, n: _pairs(rng, n, logit_scale=np.asarray(CLIP_SCALE)),
                chunk_size=2,
            ),
        ),
        references=(
            Reference("open_clip ClipLoss (re-typed)", "torch", _open_clip_loss),
            Reference("optax.losses.softmax_cross_entropy_with_integer_labels", "jax", _optax_clip),
        ),
        notes="'none' is (CE_image_i + CE_text_i) / 2 per index i; its mean is open_clip's value.",
        layout=Layout(
            ("image_emb", "text_emb"), shared=("logit_scale",), coupled=_IN_BATCH + " (softmax over the batch)"
        ),
        scale_invariant=("image_emb", "text_emb"),
        half_precision=_zero_rows("clip", "logit_scale=1/0.07 (array)", "image_emb", "text_emb", 1),
        plot=_pair_plot("image_emb", "text_emb", ("logit_scale", (1.0, 10.0, 100.0))),
    )
)


# -- siglip ---------------------------------------------------------------------


def _open_clip_siglip(m, a, p, r):
    """open_clip ``SigLipLoss._loss`` (world_size=1) re-typed; the row sums give the per-image losses."""
    torch, F = m.torch, m.F
    image_features, text_features = a["image_emb"], a["text_emb"]
    if p.get("normalize", True):
        image_features, text_features = F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1)
    logit_scale, logit_bias = _scale(m, a, p, "logit_scale"), _scale(m, a, p, "logit_bias")
    logits = logit_scale * image_features @ text_features.T
    logits = logits + logit_bias
    num_logits = image_features.shape[0]
    labels = -torch.ones((num_logits, num_logits), device=image_features.device, dtype=image_features.dtype)
    labels = 2 * torch.eye(num_logits, device=image_features.device, dtype=image_features.dtype) + labels
    if r == "mean":
        return -F.logsigmoid(labels * logits).sum() / image_features.shape[0]
    return _torch_reduce(m, -F.logsigmoid(labels * logits).sum(dim=1), r)


def _optax_siglip(m, a, p, r):
    jnp = m.jnp
    image, text = a["image_emb"], a["text_emb"]
    if p.get("normalize", True):
        image, text = _jax_normalize(m, image), _jax_normalize(m, text)
    logits = _scale(m, a, p, "logit_scale") * image @ text.T + _scale(m, a, p, "logit_bias")
    targets = jnp.eye(logits.shape[0], dtype=logits.dtype)
    per_image = m.optax.losses.sigmoid_binary_cross_entropy(logits, targets).sum(axis=1)
    return reduce_reference(jnp, per_image, r)


register(
    LossSpec(
        name="siglip",
        variants=(
            _variant(
                "open_clip init scale=10,bias=-10 (arrays)",
                lambda rng, n: _pairs(rng, n, logit_scale=np.asarray(10.0), logit_bias=np.asarray(-10.0)),
            ),
            _variant(
                "normalize=False,small inputs,random scale/bias",
                lambda rng, n: _pairs(
                    rng,
                    n,
                    scale=0.5,
                    logit_scale=np.asarray(rng.uniform(0.5, 3.0)),
                    logit_bias=np.asarray(rng.uniform(-2.0, 1.0)),
                ),
                normalize=False,
            ),
            _variant("logit_scale=5.0,logit_bias=-2.0 (float params)", _pairs, logit_scale=5.0, logit_bias=-2.0),
            _variant(
                "N=1",
                lambda rng, n: _pairs(
                    rng,
                    1,
                    logit_scale=np.asarray(rng.uniform(1.0, 10.0)),
                    logit_bias=np.asarray(rng.uniform(-5.0, 0.0)),
                ),
            ),
        ),
        references=(
            Reference("open_clip SigLipLoss (re-typed)", "torch", _open_clip_siglip),
            Reference("optax.losses.sigmoid_binary_cross_entropy", "jax", _optax_siglip),
        ),
        notes="'none' is the row sum over texts per image, shape (N,); its mean is open_clip's value.",
        layout=Layout(
            ("image_emb", "text_emb"),
            shared=("logit_scale", "logit_bias"),
            coupled=_IN_BATCH + " (every non-matching pair is a negative)",
        ),
        scale_invariant=("image_emb", "text_emb"),
        half_precision=_zero_rows("siglip", "open_clip init scale=10,bias=-10 (arrays)", "image_emb", "text_emb", 1),
        plot=_pair_plot("image_emb", "text_emb", ("logit_scale", (5.0, 10.0, 20.0)), logit_bias=-10.0),
    )
)


# -- supcon -----------------------------------------------------------------------------

SUPCON_EDGES = EdgeCorpus()
SUPCON_EDGES.case(
    "supcon",
    "a label with a single member and one view: no positive, 0",
    {"features": f64([[[1.0, 0.0]], [[0.0, 1.0]]]), "labels": np.array([0, 1])},
    Finite(0.0, grad="zero"),
)
SUPCON_EDGES.case(
    "supcon",
    "a zero embedding: normalised to 0, finite",
    {"features": f64([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])},
    Finite(),
)
SUPCON_EDGES.case(
    "supcon",
    "one sample, one view",
    {"features": f64([[[0.3, 0.4]]])},
    Finite(0.0, grad="zero"),
)
SUPCON_EDGES.case(
    "supcon",
    "two identical views, nothing else: log 1 = 0",
    {"features": f64([[[0.6, 0.8], [0.6, 0.8]]])},
    Finite(0.0),
)
SUPCON_EDGES.empty_batch("supcon", {"features": np.zeros((0, 2, 3)), "labels": np.zeros(0, dtype=np.int64)}, (0, 2))


def _supcon_arrays(rng, n, *, views=2, labelled=True):
    arrays = {"features": normal(rng, (n + 2, views, D))}
    if labelled:
        arrays["labels"] = rng.integers(0, 3, size=n + 2).astype(np.int64)
    return arrays


def _supcontrast(m, a, p, r):
    """``SupConLoss.forward`` of HobbitLong/SupContrast (``losses.py``, ``contrast_mode="all"``), re-typed;
    the features normalised first (as its training script does) unless ``normalize=False``. "none" is its
    per-anchor loss before the final mean, as (N, V)."""
    torch = m.torch
    features = a["features"]
    if p.get("normalize", True):
        features = m.F.normalize(features, dim=2)
    temperature, base_temperature = p.get("temperature", 0.07), p.get("base_temperature", 0.07)
    batch_size = features.shape[0]
    labels = a.get("labels")
    if labels is None:
        mask = torch.eye(batch_size, dtype=features.dtype)
    else:
        labels = labels.contiguous().view(-1, 1)
        mask = torch.eq(labels, labels.T).to(features.dtype)
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    anchor_feature = contrast_feature
    anchor_count = contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mask_pos_pairs = mask.sum(1)
    mask_pos_pairs = torch.where(mask_pos_pairs < 1e-6, 1, mask_pos_pairs)
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask_pos_pairs
    loss = -(temperature / base_temperature) * mean_log_prob_pos
    loss = loss.view(anchor_count, batch_size)
    if r == "none":
        return loss.T
    return loss.mean() if r == "mean" else loss.sum()


def _numpy_supcon_loop(m, a, p, r):
    np_ = m.np
    features = np_.asarray(a["features"], dtype=float)
    if p.get("normalize", True):
        features = features / np_.maximum(np_.linalg.norm(features, axis=2, keepdims=True), 1e-12)
    n, views, _ = features.shape
    labels = a.get("labels")
    group = [int(labels[i]) if labels is not None else i for i in range(n)]
    temperature, base_temperature = p.get("temperature", 0.07), p.get("base_temperature", 0.07)
    out = np_.zeros((n, views))
    anchors = [(i, v) for i in range(n) for v in range(views)]
    for i, v in anchors:
        others = [(j, w) for j, w in anchors if (j, w) != (i, v)]
        sims = [float(features[i, v] @ features[j, w]) / temperature for j, w in others]
        top = max(sims)
        log_z = top + math.log(math.fsum(math.exp(s - top) for s in sims))
        positives = [s - log_z for (j, _), s in zip(others, sims, strict=True) if group[j] == group[i]]
        out[i, v] = -(temperature / base_temperature) * (math.fsum(positives) / len(positives) if positives else 0.0)
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="supcon",
        variants=(
            _variant("labels,2 views", _supcon_arrays),
            _variant(
                "no labels (SimCLR),2 views,T=0.5",
                lambda rng, n: _supcon_arrays(rng, n, labelled=False),
                temperature=0.5,
            ),
            _variant("labels,3 views,T=0.2,base 0.07", lambda rng, n: _supcon_arrays(rng, n, views=3), temperature=0.2),
            _variant(
                "labels,1 view,normalize=False,T=2",
                lambda rng, n: _supcon_arrays(rng, n, views=1),
                normalize=False,
                temperature=2.0,
            ),
        ),
        references=(
            Reference("HobbitLong/SupContrast SupConLoss (re-typed)", "torch", _supcontrast),
            Reference("SupCon loop", "numpy", _numpy_supcon_loop, grads=False),
        ),
        notes="'mean' averages over the N V anchors, those without a positive (loss 0) included, as the "
        "reference code's .mean().",
        layout=Layout(("features", "labels"), coupled=_IN_BATCH + " (every other view is a contrast)"),
        scale_invariant=(),
        plot=Plot(
            COSINE_AXIS,
            lambda x: {
                "features": np.stack(
                    [np.stack([f64([1.0, 0.0, 0.0]), _at_cosine(x)]), f64([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])]
                )
            },
            span=(-0.99, 0.99),
            sweep=("temperature", (0.07, 0.5, 1.0)),
        ),
    )
)
