"""The edge-case corpus: singular and extreme inputs of every loss, each with its asserted outcome.

Each loss states its cases at its registration (``LossSpec.edge_cases``, in its family's
spec module, built with an :class:`EdgeCorpus` or :func:`edge`); this module holds the
outcome types, the independent scalar maths the stated values use, and the corpus
collected from the specs (:data:`EDGE_CASES`, :func:`cases_by_loss`).

Data, not tests: :func:`polyloss.verify.conformance.check_edge_case` runs each case on
every backend that has the loss (and in each listed dtype), eagerly, and every
case with a value outcome also under ``jax.jit`` and ``torch.compile(fullgraph=True)``
in float32; ``python -m polyloss verify`` reports the coverage per loss. An outcome is

* :class:`Finite`: a finite loss, equal to a stated number when one is given
  (computed here from the definition with Python's ``math`` on the same,
  dtype-rounded inputs, never by polyloss), with finite gradients, or exactly
  zero gradients with ``grad="zero"``;
* :class:`Infinite`: ``+inf`` where the mathematics is infinite (documented in
  the loss' docstring), with gradients that are finite (no NaN), except those of the
  inputs it names in ``infinite_slope`` (the coefficient of the infinite term), which
  may be infinite as the maths says, never NaN;
* :class:`Raises`: a named exception whose message matches.

Every loss states the empty-batch policy (``docs/index.md``) as cases of its own:
:func:`empty_batch` (or :meth:`EdgeCorpus.empty_batch`) gives one case per reduction,
``"mean"`` and ``"sum"`` 0 and ``"none"`` an empty array of a stated shape, with
gradients of the inputs' (empty) shapes that are exactly 0; a loss whose inputs have
no batch axis says why instead (:meth:`EdgeCorpus.no_empty_batch`). A structural test
requires one or the other of every loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

INF = math.inf


@dataclass(frozen=True)
class Finite:
    value: float | Callable[[dict[str, np.ndarray]], float] | None = None  # stated, or from the rounded inputs
    rtol: float = 1e-12  # float64; lower precisions use the dtype's own (see ``conformance``)
    grad: str = "finite"  # "finite", "zero" or "any"
    shape: tuple[int, ...] | None = None  # the loss's shape, when stated (an empty "none")


@dataclass(frozen=True)
class Infinite:
    grad: str = "finite"
    # inputs that multiply the infinite term (a target, a probability): their derivative is infinite
    # too, and is asserted +-inf or finite, never NaN
    infinite_slope: tuple[str, ...] = ()


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    match: str


Outcome = Finite | Infinite | Raises


@dataclass(frozen=True)
class EdgeCase:
    loss: str
    name: str
    arrays: dict[str, Any]
    expect: Outcome
    params: dict[str, Any] = field(default_factory=dict)
    reduction: str = "mean"
    dtypes: tuple[str, ...] = ("float64", "float32")


def edge(name: str, arrays: dict[str, Any], expect: Outcome, **options: Any) -> EdgeCase:
    """An edge case of the spec it is given to (``LossSpec(..., edge_cases=(edge(...), ...))``):
    ``register`` sets its loss."""
    return EdgeCase("", name, dict(arrays), expect, **options)


#: the name of every empty-batch case starts with this
EMPTY_BATCH = "empty batch"


def empty_batch(
    arrays: dict[str, Any],
    none_shape: tuple[int, ...],
    *,
    reductions: tuple[str, ...] = ("mean", "sum", "none"),
    **options: Any,
) -> tuple[EdgeCase, ...]:
    """The empty-batch policy as cases of the spec they are given to, one per reduction: ``arrays``
    a batch of zero samples; ``"mean"`` and ``"sum"`` are 0, ``"none"`` is finite (vacuously) with
    shape ``none_shape``; the gradients have the inputs' shapes and are exactly 0 (vacuously for the
    empty inputs, really for shared ones such as a scale)."""
    return tuple(
        edge(
            f"{EMPTY_BATCH}, {reduction}",
            arrays,
            Finite(None, grad="zero", shape=none_shape) if reduction == "none" else Finite(0.0, grad="zero", shape=()),
            reduction=reduction,
            **options,
        )
        for reduction in reductions
    )


class EdgeCorpus:
    """The edge cases a family's spec module states, by loss, before its registrations: ``register``
    gives each spec the cases stated under its name (:func:`corpus_cases`). Every corpus is kept, so
    a test can check that no case is left untaken."""

    ALL: ClassVar[list[EdgeCorpus]] = []

    def __init__(self) -> None:
        self.cases: list[EdgeCase] = []
        self.no_empty: dict[str, str] = {}
        EdgeCorpus.ALL.append(self)

    def case(self, loss: str, name: str, arrays: dict[str, Any], expect: Outcome, **options: Any) -> None:
        self.cases.append(EdgeCase(loss, name, dict(arrays), expect, **options))

    def empty_batch(self, loss: str, arrays: dict[str, Any], none_shape: tuple[int, ...], **options: Any) -> None:
        """:func:`empty_batch`'s cases for ``loss``."""
        self.cases.extend(replace(e, loss=loss) for e in empty_batch(arrays, none_shape, **options))

    def no_empty_batch(self, loss: str, reason: str) -> None:
        """``loss`` has no empty-batch case: ``reason`` says why (its inputs have no batch axis)."""
        self.no_empty[loss] = reason

    def of(self, loss: str) -> tuple[EdgeCase, ...]:
        return tuple(edge for edge in self.cases if edge.loss == loss)


def corpus_cases(loss: str) -> tuple[EdgeCase, ...]:
    """The cases every corpus states so far under ``loss``, in the order stated."""
    return tuple(edge for corpus in EdgeCorpus.ALL for edge in corpus.of(loss))


def f64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def i64(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --------------------------------------------------------------------------- independent scalar maths


def logsumexp(row: list[float]) -> float:
    top = max(row)
    if top == -INF:
        return -INF
    return top + math.log(math.fsum(math.exp(x - top) for x in row))


def ce(rows: Any, labels: Any) -> list[float]:
    return [logsumexp(list(r)) - r[y] for r, y in zip(np.asarray(rows, dtype=float).tolist(), labels, strict=True)]


def fmean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


# saturated logits, shared by the classification and GAN cases
SATURATED = {"+-20": 20.0, "+-100": 100.0, "+-1e4": 1e4}


def collected() -> list[EdgeCase]:
    """Every loss's edge cases, in the order of the specs' registration."""
    from polyloss.verify.specs import SPECS

    return [edge for spec in SPECS.values() for edge in spec.edge_cases]


def cases_by_loss() -> dict[str, list[EdgeCase]]:
    out: dict[str, list[EdgeCase]] = {}
    for edge in collected():
        out.setdefault(edge.loss, []).append(edge)
    return out


def no_empty_batch_reasons() -> dict[str, str]:
    """The losses without an empty-batch case, each with its stated reason."""
    return {loss: reason for corpus in EdgeCorpus.ALL for loss, reason in corpus.no_empty.items()}


def __getattr__(name: str) -> Any:
    # EDGE_CASES: collected from the specs when asked for (the spec modules import this module)
    if name == "EDGE_CASES":
        return collected()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
