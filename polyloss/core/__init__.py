"""Core maths: every loss written once against the array API standard.

Nothing in this package imports a framework. Each function takes a backend
``b`` first (its ``b.xp`` namespace and primitive set), bound once by
``polyloss.<framework>``.
"""

from polyloss.core import classification, contrastive, distribution, metric, regression
from polyloss.core._registry import CORE_LOSSES

FAMILIES = ("regression", "classification", "distribution", "metric", "contrastive")

__all__ = ["CORE_LOSSES", "FAMILIES", "classification", "contrastive", "distribution", "metric", "regression"]
