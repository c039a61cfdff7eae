"""The edge-case corpus (each spec's ``edge_cases``, collected by polyloss/verify/specs/edges.py) on every
backend and dtype it lists."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from polyloss.core import CORE_LOSSES
from polyloss.verify import edge_cases
from polyloss.verify.specs import SPECS
from polyloss.verify.specs.edges import EDGE_CASES, EMPTY_BATCH, EdgeCorpus, Finite, Infinite, Raises, cases_by_loss


def _runs(edge) -> list[tuple[str, str, str]]:
    """The corpus case's runs, but JAX's float32 eager one where the case also runs under jax.jit in
    float32: JAX eagerly compiles each operation per shape (about a third of a second a case, a
    quarter of this module's time), and the jitted run checks the same outcome in the same dtype.
    float64 stays eager on JAX; ``python -m polyloss verify --full`` runs every run."""
    runs = edge_cases.edge_runs(edge)
    if ("jax", "float32", "jit") in runs and ("jax", "float32", "eager") in runs:
        runs.remove(("jax", "float32", "eager"))
    return runs


RUNS = [(i, *run) for i, edge in enumerate(EDGE_CASES) for run in _runs(edge)]


@pytest.mark.parametrize(
    "index,backend,dtype,transform", RUNS, ids=[f"{EDGE_CASES[i].loss}-{i}-{b}-{d}-{t}" for i, b, d, t in RUNS]
)
def test_edge_case(env, index, backend, dtype, transform):
    """torch.compile runs with the aot_eager backend here: the same dynamo and AOTAutograd graphs
    (fullgraph, decomposed backward) as inductor, without its codegen, which costs 5-7 s a case
    with a cold cache (123 cases). ``python -m polyloss verify`` runs them with inductor, and
    test_conformance compiles every loss with inductor."""
    edge = EDGE_CASES[index]
    outcome = edge_cases.check_edge_case(edge, env, backend, dtype, transform, compiler="aot_eager")
    assert outcome.status == "pass", f"{edge.loss}: {edge.name} [{backend}, {dtype}, {transform}]: {outcome.detail}"


def test_every_value_case_runs_jitted_and_compiled():
    transformed = {(i, b, t) for i, b, d, t in RUNS if t != "eager"}
    for i, edge in enumerate(EDGE_CASES):
        if not isinstance(edge.expect, Raises) and "float32" in edge.dtypes:
            assert {(i, "jax", "jit"), (i, "torch", "compile")} <= transformed, edge.name


def test_every_loss_has_edge_cases():
    covered = cases_by_loss()
    assert set(covered) == set(CORE_LOSSES), set(CORE_LOSSES) - set(covered)


def test_every_stated_edge_case_is_on_its_spec():
    """A case added to a spec module's corpus but not taken by the loss's registration would never run."""
    for corpus in EdgeCorpus.ALL:
        for edge in corpus.cases:
            assert edge.loss in SPECS, edge.loss
            taken = any(edge is e for e in SPECS[edge.loss].edge_cases)
            assert taken, f"{edge.loss}: {edge.name} is not in its spec's edge_cases"


def test_the_corpus_covers_the_required_regions():
    names = " | ".join(f"{e.loss}: {e.name}" for e in EDGE_CASES)
    required = [
        "cross_entropy: all rows ignored, -inf",
        "cross_entropy: one row ignored with -inf",
        "+-20",
        "+-100",
        "+-1e4",
        "large shared offset",
        "label smoothing with a -inf",
        "gamma=0.5, saturated",
        "coincident",
        "zero embeddings",
        "single-member classes",
        "all-same labels",
        "temperature 0.01",
        "empty prediction",
        "full prediction",
        "inverted mask",
        "zero-area",
        "zero-height",
        "identical boxes",
        "longer than the input",
        "repeated label",
        "blank inside the target",
        "logvar at +90",
        "logvar at -90",
        "zero target probabilities",
        "box_iou: empty batch, mean",
    ]
    missing = [r for r in required if r not in names]
    assert not missing, missing
    dtypes = {d for e in EDGE_CASES if "offset" in e.name for d in e.dtypes}
    assert {"float32", "float16", "bfloat16"} <= dtypes
    kinds = {type(e.expect) for e in EDGE_CASES}
    assert kinds == {Finite, Infinite, Raises}


@pytest.mark.parametrize("wrong", ["value", "inf", "raises", "zero-grad", "shape"])
def test_a_wrong_stated_outcome_fails(env, wrong):
    """The runner can fail: the same inputs with a wrong expectation are reported as failures."""
    if wrong == "value":
        edge = next(e for e in EDGE_CASES if isinstance(e.expect, Finite) and e.expect.value == 0.0)
        edge = dataclasses.replace(edge, expect=Finite(1e-3))
    elif wrong == "inf":
        edge = next(e for e in EDGE_CASES if isinstance(e.expect, Finite) and e.expect.value is not None)
        edge = dataclasses.replace(edge, expect=Infinite())
    elif wrong == "raises":
        edge = next(e for e in EDGE_CASES if isinstance(e.expect, Finite))
        edge = dataclasses.replace(edge, expect=Raises(ValueError, "anything"))
    elif wrong == "zero-grad":
        edge = next(e for e in EDGE_CASES if e.loss == "cross_entropy" and "one row ignored" in e.name)
        edge = dataclasses.replace(edge, expect=Finite(grad="zero"))
    else:  # an empty "none" stated with a shape it does not have
        edge = next(e for e in EDGE_CASES if e.loss == "box_iou" and e.name == f"{EMPTY_BATCH}, none")
        edge = dataclasses.replace(edge, expect=Finite(grad="zero", shape=(0, 4)))
    outcome = edge_cases.check_edge_case(edge, env, "torch", "float64")
    assert outcome.status == "fail", (edge.name, outcome)


def test_stated_values_come_from_the_rounded_inputs():
    """A bfloat16 case is judged against the value of the inputs bfloat16 can hold."""
    rounded = edge_cases.rounded(np.array([1e4 + 0.5]), "bfloat16")
    assert rounded[0] == 9984.0 + 0.0 or rounded[0] == 10048.0
