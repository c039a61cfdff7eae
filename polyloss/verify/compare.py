"""Comparisons and outcomes: named results, folded into one :class:`Outcome` per check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from polyloss.verify.specs import NotApplicable


@dataclass(frozen=True)
class Comparison:
    """One compared quantity.

    Attributes:
        ok: whether it agrees (or the condition holds).
        error: the largest ``|actual - expected| / (atol + rtol |expected|)``; agreement is <= 1.
        detail: where and how it disagrees (empty when it agrees).
        abs_error: the largest ``|actual - expected|``.
    """

    ok: bool
    error: float
    detail: str = ""
    abs_error: float = 0.0

    def labelled(self, label: str) -> Comparison:
        """The same comparison with ``label`` before its detail (``"d/dlogits (mean) ..."``)."""
        return replace(self, detail=f"{label} {self.detail}")


@dataclass
class Outcome:
    """One check's result: ``status`` is ``pass``, ``fail``, ``n/a`` or ``missing``."""

    check: str
    backend: str
    status: str
    error: float = 0.0  # largest |actual - expected| / (atol + rtol |expected|); <= 1 passes
    detail: str = ""
    abs_error: float = 0.0  # largest |actual - expected|

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "n/a", "missing")


def compare(actual: Any, expected: Any, rtol: float, atol: float) -> Comparison:
    """Elementwise closeness; NaN matches NaN and inf matches the same inf."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Comparison(False, float("inf"), f"shape {a.shape} != expected {e.shape}", float("inf"))
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
    with np.errstate(invalid="ignore"):
        ratio = np.abs(a - e) / (atol + rtol * np.abs(e))
        difference = np.where(same_special, 0.0, np.abs(a - e))
    ratio = np.where(same_special, 0.0, ratio)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = float(ratio.max()) if ratio.size else 0.0
    worst_abs = float(np.nan_to_num(difference, nan=np.inf).max()) if ratio.size else 0.0
    if worst <= 1.0:
        return Comparison(True, worst, "", worst_abs)
    idx = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.ndim else ()
    detail = f"at index {tuple(int(i) for i in idx)}: got {a[idx]!r}, expected {e[idx]!r} (rtol={rtol}, atol={atol})"
    return Comparison(False, worst, detail, worst_abs)


def fold(check: str, backend: str, results: Sequence[Comparison]) -> Outcome:
    """One outcome of many comparisons: fails with the first failure's detail, errors are the worst."""
    worst = max((r.error for r in results), default=0.0)
    worst_abs = max((r.abs_error for r in results), default=0.0)
    failures = [r.detail for r in results if not r.ok]
    if failures:
        return Outcome(check, backend, "fail", worst, failures[0], worst_abs)
    return Outcome(check, backend, "pass", worst, "", worst_abs)


def guard(check: str, backend: str, body: Callable[[], Outcome]) -> Outcome:
    """``body()``; :class:`NotApplicable` is n/a, any other exception a failure with its message."""
    try:
        return body()
    except NotApplicable as reason:
        return Outcome(check, backend, "n/a", detail=str(reason))
    except Exception as error:  # a crash is a failure with its message, never a silent pass
        return Outcome(check, backend, "fail", float("inf"), f"{type(error).__name__}: {error}")
