"""Core maths: every loss written once against the array API standard.

Nothing in this package imports a framework. Each function takes a backend
``b`` first (its ``b.xp`` namespace and primitive set), bound once by
``polyloss.<framework>``.
"""

from polyloss.core import (
    box,
    classification,
    contrastive,
    distribution,
    generative,
    metric,
    multitask,
    post_training,
    ranking,
    regression,
    segmentation,
    sequence,
)
from polyloss.core._registry import CORE_HELPERS, CORE_LOSSES

FAMILIES = (
    "regression",
    "classification",
    "distribution",
    "metric",
    "contrastive",
    "segmentation",
    "box",
    "sequence",
    "generative",
    "multitask",
    "post_training",
    "ranking",
)

__all__ = [
    "CORE_HELPERS",
    "CORE_LOSSES",
    "FAMILIES",
    "box",
    "classification",
    "contrastive",
    "distribution",
    "generative",
    "metric",
    "multitask",
    "post_training",
    "ranking",
    "regression",
    "segmentation",
    "sequence",
]
