"""NumPy input generators shared by the spec files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return rng.normal(scale=scale, size=shape)


def away_from_kinks(
    rng: np.random.Generator, shape: tuple[int, ...], kinks: tuple[float, ...], gap: float = 0.05, high: float = 3.0
) -> np.ndarray:
    """Signed values whose magnitude stays ``gap`` away from each kink (and from 0),
    so finite differences never straddle a non-differentiable point."""
    magnitude = rng.uniform(gap, high, size=shape)
    for kink in kinks:
        near = np.abs(magnitude - kink) < gap
        magnitude = np.where(near, kink + 2 * gap, magnitude)
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


def labels(rng: np.random.Generator, shape: tuple[int, ...], num_classes: int) -> np.ndarray:
    return rng.integers(0, num_classes, size=shape).astype(np.int64)


def probabilities(rng: np.random.Generator, shape: tuple[int, ...], axis: int = -1) -> np.ndarray:
    raw = rng.gamma(1.0, size=shape)
    return raw / raw.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def binary(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2, size=shape).astype(np.float64)


def set_to(name: str, index: Any, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    """An edit of a case's arrays: ``arrays[name][index] = value``."""

    def edit(arrays: dict[str, np.ndarray]) -> None:
        arrays[name][index] = value

    return edit


def copy_of(source: str, *targets: str) -> Callable[[dict[str, np.ndarray]], None]:
    """An edit of a case's arrays: every target becomes a copy of ``source``."""

    def edit(arrays: dict[str, np.ndarray]) -> None:
        for target in targets:
            arrays[target] = arrays[source].copy()

    return edit
