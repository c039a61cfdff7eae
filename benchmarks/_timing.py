"""Interleaved timing shared by the benchmarks: A/B then B/A repeats in one process, medians.

Imported by ``bench_*.py`` (run as scripts, so this folder is on ``sys.path``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

TARGET_REPEAT_S = 0.030  # aim: one repeat (k calls) lasts ~20-50 ms


def _time_loop(fn: Callable[[], Any], k: int, sync: Callable[[], None]) -> float:
    """Seconds per call of ``fn`` over a loop of ``k`` calls."""
    sync()
    start = time.perf_counter()
    for _ in range(k):
        fn()
    sync()
    return (time.perf_counter() - start) / k


def _per_call(fn: Callable[[], Any], sync: Callable[[], None]) -> float:
    """Per-call time from loops of doubling length, stopping once a loop lasts >= 10 ms."""
    k = 1
    while True:
        per_call = _time_loop(fn, k, sync)
        if per_call * k >= 0.010 or k >= 65536:
            return per_call
        k *= 2


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def compare(
    candidate: Callable[[], Any],
    reference: Callable[[], Any],
    sync: Callable[[], None],
    repeats: int,
    warmup: int,
    huge: bool,
) -> dict[str, Any]:
    """Interleaved timing of two zero-argument steps; returns medians and ratios."""
    for _ in range(warmup):  # compile / autotune / caches / allocator
        candidate()
        reference()
    sync()
    # Calibrate k on the slower of the two so a repeat lasts ~TARGET_REPEAT_S.
    if huge:
        k = 1
    else:
        probe = max(_per_call(candidate, sync), _per_call(reference, sync))
        k = max(1, min(100_000, round(TARGET_REPEAT_S / max(probe, 1e-9))))
    cand_times: list[float] = []
    ref_times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            if r % 2 == 0:
                cand_times.append(_time_loop(candidate, k, sync))
                ref_times.append(_time_loop(reference, k, sync))
            else:
                ref_times.append(_time_loop(reference, k, sync))
                cand_times.append(_time_loop(candidate, k, sync))
    finally:
        if gc_was_enabled:
            gc.enable()
    paired = [a / b for a, b in zip(cand_times, ref_times, strict=True)]
    cand_median = statistics.median(cand_times)
    ref_median = statistics.median(ref_times)
    return {
        "candidate_s": cand_median,
        "reference_s": ref_median,
        "ratio": cand_median / ref_median,
        "paired_ratio_p25": _percentile(paired, 0.25),
        "paired_ratio_p75": _percentile(paired, 0.75),
        "k": k,
        "repeats": repeats,
        "candidate_all_s": cand_times,
        "reference_all_s": ref_times,
    }
