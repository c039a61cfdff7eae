"""Declarative specs: one per loss, from which every conformance check derives.

A :class:`LossSpec` names the core loss, its input generators (variants), which
floating inputs are not differentiable (and why; every other one is), its upstream references and its tolerances. The
checks in :mod:`polyloss.verify.conformance` (run by the test-suite and by
``python -m polyloss verify``) read nothing else. Specs import no framework:
reference callables receive the framework modules as their first argument.
"""

from __future__ import annotations

import importlib
from dataclasses import replace

from polyloss.core import FAMILIES
from polyloss.verify.specs.edges import corpus_cases
from polyloss.verify.specs.record import (
    DEFAULT_ROUNDING_FACTOR,
    DEFAULT_TOLERANCES,
    ELEMENT_MEAN,
    Case,
    Edit,
    Evaluate,
    HalfPrecision,
    Layout,
    LayoutRule,
    LossSpec,
    Mean,
    Plot,
    Variant,
    ZeroCase,
)
from polyloss.verify.specs.references import Arrays, NotApplicable, Reference, reduce_reference

#: the reason a {0, 1}-valued floating input (a binary mask or pair label) is not differentiated
ENDPOINTS_OF_0_1 = (
    "a binary input, every entry exactly 0 or 1: the ends of the [0, 1] range the loss accepts, where only "
    "one-sided derivatives exist (the soft variants check it)"
)
#: the reason a {-1, 1} label is not differentiated
SIGN_LABEL = (
    "a label in {-1, 1}: the loss is defined at those two values only (any other value is rejected), so it "
    "has no derivative in it"
)


SPECS: dict[str, LossSpec] = {}


def register(spec: LossSpec) -> LossSpec:
    """Registers ``spec`` with its edge cases: those its family's corpora state under its name
    (:class:`~polyloss.verify.specs.edges.EdgeCorpus`), then those it is given."""
    if spec.name in SPECS:
        raise RuntimeError(f"spec {spec.name!r} registered twice")
    wrong = [edge.name for edge in spec.edge_cases if edge.loss not in ("", spec.name)]
    if wrong:
        raise RuntimeError(f"spec {spec.name!r} given edge cases of another loss: {wrong}")
    given = tuple(replace(edge, loss=spec.name) for edge in spec.edge_cases)  # edges.edge() leaves loss ""
    SPECS[spec.name] = spec = replace(spec, edge_cases=(*corpus_cases(spec.name), *given))
    return spec


# registers the specs: one module per core family, named as the family
for _family in FAMILIES:
    importlib.import_module(f"polyloss.verify.specs.{_family}")

__all__ = [
    "DEFAULT_ROUNDING_FACTOR",
    "DEFAULT_TOLERANCES",
    "ELEMENT_MEAN",
    "ENDPOINTS_OF_0_1",
    "SIGN_LABEL",
    "SPECS",
    "Arrays",
    "Case",
    "Edit",
    "Evaluate",
    "HalfPrecision",
    "Layout",
    "LayoutRule",
    "LossSpec",
    "Mean",
    "NotApplicable",
    "Plot",
    "Reference",
    "Variant",
    "ZeroCase",
    "reduce_reference",
    "register",
]
