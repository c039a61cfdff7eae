"""Specs of the ranking losses (see ``polyloss/core/ranking.py``).

References: Rax (``rax.softmax_loss``, ``listmle_loss``, ``pairwise_logistic_loss``,
``pairwise_hinge_loss``), optax's ``ranking_softmax_loss`` and float64 loops over the lists and pairs.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import normal
from polyloss.verify.specs.edges import EdgeCorpus, Finite, f64, i64, softplus
from polyloss.verify.specs.record import Case, Layout, LossSpec, Mean, Plot, Variant
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_kept_reference, reduce_reference

LIST = 5  # items per list
NAMES = ("ranking_softmax", "listmle", "pairwise_logistic", "pairwise_hinge", "approx_ndcg")


# --------------------------------------------------------------------------- plots


def _relevant_plot(sweep: tuple[str, tuple[float, ...]] | None = None) -> Plot:
    """One list of three items, the first relevant (label 1): the loss against its score, the two
    irrelevant ones scored 0."""
    return Plot(
        "score of the relevant item (two irrelevant ones at 0)",
        lambda x: {"scores": f64([[x, 0.0, 0.0]]), "labels": f64([[1.0, 0.0, 0.0]])},
        span=(-4.0, 4.0),
        sweep=sweep,
    )


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    padded = {
        "scores": f64([[1.0, 2.0, 0.5], [0.3, -0.2, 0.0]]),
        "labels": i64([[2, 0, 1], [1, 0, 0]]),
        "mask": np.array([[True, True, True], [False, False, False]]),
    }
    for name in NAMES:
        edges.case(name, "a list that is all padding: 0, left out of the mean", padded, Finite(grad="finite"))
        edges.case(
            name,
            "every list all padding: 0",
            {**padded, "mask": np.zeros((2, 3), dtype=bool)},
            Finite(0.0, grad="zero"),
        )
        edges.case(
            name,
            "saturated scores (+-1e4)",
            {"scores": f64([[1e4, -1e4, 0.0]]), "labels": i64([[0, 2, 1]])},
            Finite(),
        )
        edges.empty_batch(name, {"scores": np.zeros((0, LIST)), "labels": np.zeros((0, LIST))}, (0,))
    edges.case(
        "pairwise_logistic",
        "equal labels: no pair, 0",
        {"scores": f64([[1.0, 2.0]]), "labels": i64([[1, 1]])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "pairwise_logistic",
        "one ordered pair",
        {"scores": f64([[0.5, 2.0]]), "labels": i64([[1, 0]])},
        Finite(softplus(-(0.5 - 2.0))),
    )
    edges.case(
        "listmle",
        "tied labels rank in order of appearance",
        {"scores": f64([[0.0, 1.0]]), "labels": i64([[1, 1]])},
        Finite(-(0.0 - math.log(1.0 + math.e))),
    )
    edges.case(
        "approx_ndcg",
        "no relevant item (IDCG 0): 0",
        {"scores": f64([[1.0, 2.0, 0.5]]), "labels": i64([[0, 0, 0]])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "approx_ndcg",
        "a single valid item: its rank is 1, NDCG 1",
        {"scores": f64([[3.0, -1.0]]), "labels": i64([[2, 1]]), "mask": np.array([[True, False]])},
        Finite(-1.0, grad="zero"),
    )
    edges.case(
        "approx_ndcg",
        "far-apart scores in the ideal order at temperature 0.01: the true NDCG, 1",
        {"scores": f64([[30.0, 20.0, 10.0]]), "labels": i64([[2, 1, 0]])},
        Finite(-1.0),
        params={"temperature": 0.01},
    )
    return edges


EDGES = _edge_cases()


def _list_arrays(rng: np.random.Generator, n: int, *, graded: bool = True, padded: bool = False) -> dict:
    """n + 1 lists: scores, labels (integer grades 0..3, or distinct floats), and a padding mask
    that keeps at least two items per list (one list all padding when ``padded``)."""
    rows = n + 1
    arrays: dict[str, np.ndarray] = {"scores": normal(rng, (rows, LIST), 1.5)}
    if graded:
        arrays["labels"] = rng.integers(0, 4, size=(rows, LIST)).astype(np.int64)
    else:
        arrays["labels"] = rng.permutation(rows * LIST).reshape(rows, LIST).astype(np.float64) / LIST
    if padded:
        lengths = rng.integers(2, LIST + 1, size=rows)
        mask = np.arange(LIST)[None, :] < lengths[:, None]
        mask[-1] = False  # a list that is all padding
        arrays["mask"] = mask
    return arrays


def _variants(graded_only: bool = False) -> tuple[Variant, ...]:
    made = [
        Variant("graded labels", lambda rng, n: Case(_list_arrays(rng, n))),
        Variant("graded labels,padded", lambda rng, n: Case(_list_arrays(rng, n, padded=True))),
    ]
    if not graded_only:
        made.append(Variant("distinct float labels", lambda rng, n: Case(_list_arrays(rng, n, graded=False))))
    return tuple(made)


def _rax(fn_name: str, pairwise: bool = False):
    def ref(m, a, p, r):
        if pairwise and r == "none":
            raise NotApplicable("Rax's pairwise losses reduce over pairs, not lists")
        reduce_fn = {"mean": m.jnp.mean, "sum": m.jnp.sum, "none": None}[r]
        out = getattr(m.rax, fn_name)(a["scores"], a["labels"], where=a.get("mask"), reduce_fn=reduce_fn)
        if r == "none":
            valid = a.get("mask")
            return out if valid is None else m.jnp.where(valid.any(axis=-1), out, 0.0)
        return out

    return Reference(f"rax.{fn_name}", "jax", ref)


def _optax_ranking_softmax(m, a, p, r):
    if r == "none":
        out = m.optax.losses.ranking_softmax_loss(a["scores"], a["labels"], where=a.get("mask"), reduce_fn=None)
        valid = a.get("mask")
        return out if valid is None else m.jnp.where(valid.any(axis=-1), out, 0.0)
    fn = m.jnp.mean if r == "mean" else m.jnp.sum
    return m.optax.losses.ranking_softmax_loss(a["scores"], a["labels"], where=a.get("mask"), reduce_fn=fn)


def _items(a, row: int) -> list[int]:
    mask = a.get("mask")
    return [i for i in range(a["scores"].shape[-1]) if mask is None or bool(mask[row][i])]


def _loop(kind: str):
    """One list at a time, one item or one pair at a time, in Python floats."""

    def ref(m, a, p, r):
        np_ = m.np
        scores, labels = np_.asarray(a["scores"], dtype=float), np_.asarray(a["labels"], dtype=float)
        per_list, kept_lists, pairs = [], 0, 0
        for row in range(scores.shape[0]):
            items = _items(a, row)
            kept_lists += bool(items)
            s = {i: float(scores[row][i]) for i in items}
            y = {i: float(labels[row][i]) for i in items}
            if kind == "ranking_softmax":
                if not items:
                    per_list.append(0.0)
                    continue
                top = max(s.values())
                log_z = top + math.log(math.fsum(math.exp(v - top) for v in s.values()))
                per_list.append(-math.fsum(y[i] * (s[i] - log_z) for i in items))
            elif kind == "listmle":
                ranked = sorted(items, key=lambda i: -y[i])  # stable: ties keep their order
                total = 0.0
                for position, i in enumerate(ranked):
                    rest = [s[j] for j in ranked[position:]]
                    top = max(rest)
                    total += s[i] - (top + math.log(math.fsum(math.exp(v - top) for v in rest)))
                per_list.append(-total)
            else:
                terms = []
                for i in items:
                    for j in items:
                        if y[i] > y[j]:
                            gap = s[i] - s[j]
                            terms.append(softplus(-gap) if kind == "pairwise_logistic" else max(0.0, 1.0 - gap))
                pairs += len(terms)
                per_list.append(math.fsum(terms))
        out = np_.array(per_list)
        if r != "mean":
            return reduce_reference(np_, out, r)
        denominator = pairs if kind.startswith("pairwise") else kept_lists
        return np_.asarray(out.sum() / denominator if denominator else 0.0)

    return Reference(f"{kind} loop", "numpy", ref, grads=False)


def _kept_lists(case: Case, none: np.ndarray) -> float:
    mask = case.arrays.get("mask")
    return float(none.size if mask is None else mask.any(axis=-1).sum())


def _ordered_pairs(case: Case, none: np.ndarray) -> float:
    labels = case.arrays["labels"]
    mask = case.arrays.get("mask", np.ones(labels.shape, dtype=bool))
    ordered = (labels[..., :, None] > labels[..., None, :]) & mask[..., :, None] & mask[..., None, :]
    return float(ordered.sum())


_LISTWISE_MEAN = Mean("the number of lists with a valid item", _kept_lists)
_PAIRWISE_MEAN = Mean("the number of ordered pairs (y_i > y_j, both valid) in the batch", _ordered_pairs)
_LAYOUT = Layout(("scores", "labels", "mask"))
_LABEL_ORDER = (
    "the labels only order the items (a sort, or comparisons): piecewise constant, derivative 0 away from ties"
)

register(
    LossSpec(
        name="ranking_softmax",
        variants=_variants(),
        references=(
            _rax("softmax_loss"),
            Reference("optax.losses.ranking_softmax_loss", "jax", _optax_ranking_softmax),
            _loop("ranking_softmax"),
        ),
        layout=_LAYOUT,
        mean=_LISTWISE_MEAN,
        plot=_relevant_plot(),
    )
)

register(
    LossSpec(
        name="listmle",
        variants=_variants(),
        references=(_rax("listmle_loss"), _loop("listmle")),
        notes=_LABEL_ORDER + "; the float-label variant draws distinct labels.",
        layout=_LAYOUT,
        mean=_LISTWISE_MEAN,
        plot=_relevant_plot(),
    )
)

register(
    LossSpec(
        name="pairwise_logistic",
        variants=_variants(),
        references=(_rax("pairwise_logistic_loss", pairwise=True), _loop("pairwise_logistic")),
        notes=_LABEL_ORDER + "; 'none' is the sum over each list's pairs, 'mean' divides by the batch's pairs.",
        layout=_LAYOUT,
        mean=_PAIRWISE_MEAN,
        plot=_relevant_plot(),
    )
)


def _rax_approx_ndcg(m, a, p, r):
    """``rax.approx_t12n(rax.ndcg_metric, temperature)``, spelled out: its body on Rax 0.4's own
    ``ndcg_metric`` and ``utils.approx_ranks`` (the transformation's ``jax.util.wraps`` decorator is
    gone from JAX 0.10, so ``approx_t12n`` itself cannot be called there)."""
    jax, jnp = m.jax, m.jnp
    temperature = p.get("temperature", 1.0)
    rank_fn = functools.partial(m.rax.utils.approx_ranks, step_fn=lambda x: jax.nn.sigmoid(x / temperature))
    cutoff_fn = functools.partial(m.rax.utils.approx_cutoff, step_fn=lambda x: jax.nn.sigmoid(x / temperature))
    reduce_fn = {"mean": jnp.mean, "sum": jnp.sum, "none": None}[r]
    where = a.get("mask")
    out = -m.rax.ndcg_metric(
        a["scores"], a["labels"], where=where, rank_fn=rank_fn, cutoff_fn=cutoff_fn, reduce_fn=reduce_fn
    )
    if r == "none" and where is not None:
        return jnp.where(where.any(axis=-1), out, 0.0)
    return out


def _np_approx_ndcg(m, a, p, r):
    """Minus NDCG with the smooth ranks 1 + sum_j sigmoid((s_j - s_i) / T), one list and one item at a time."""
    scores, labels = np.asarray(a["scores"], dtype=float), np.asarray(a["labels"], dtype=float)
    temperature = float(p.get("temperature", 1.0))
    per_list, kept = [], 0
    for row in range(scores.shape[0]):
        items = _items(a, row)
        kept += bool(items)
        gains = {i: 2.0 ** labels[row][i] - 1.0 for i in items}
        dcg = 0.0
        for i in items:
            rank = 1.0 + math.fsum(
                1.0 / (1.0 + math.exp(-(scores[row][j] - scores[row][i]) / temperature)) for j in items if j != i
            )
            dcg += gains[i] / math.log2(1.0 + rank)
        ideal = math.fsum(g / math.log2(2.0 + k) for k, g in enumerate(sorted(gains.values(), reverse=True)))
        per_list.append(-dcg / ideal if ideal else 0.0)
    return reduce_kept_reference(per_list, kept, r)


register(
    LossSpec(
        name="approx_ndcg",
        variants=(
            *_variants(),
            Variant(
                "graded labels,padded,temperature=0.5",
                lambda rng, n: Case(_list_arrays(rng, n, padded=True), {"temperature": 0.5}),
            ),
        ),
        references=(
            Reference("rax.approx_t12n(rax.ndcg_metric) (its body)", "jax", _rax_approx_ndcg),
            Reference("approx NDCG loop", "numpy", _np_approx_ndcg, grads=False),
        ),
        layout=_LAYOUT,
        mean=_LISTWISE_MEAN,
        plot=_relevant_plot(("temperature", (0.1, 1.0, 5.0))),
    )
)

register(
    LossSpec(
        name="pairwise_hinge",
        variants=_variants(),
        references=(_rax("pairwise_hinge_loss", pairwise=True), _loop("pairwise_hinge")),
        notes=_LABEL_ORDER + "; 'none' is the sum over each list's pairs, 'mean' divides by the batch's pairs.",
        second_order=False,  # piecewise linear
        layout=_LAYOUT,
        mean=_PAIRWISE_MEAN,
        plot=_relevant_plot(),
    )
)
