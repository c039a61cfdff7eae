"""Hypothesis strategies for typical loss inputs, each drawing small NumPy arrays with documented guarantees.

The public names are re-exported by :mod:`polyloss.testing`. hypothesis is imported
when a strategy is first built, not before.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np


def _hypothesis() -> tuple[Any, Any]:
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError as error:
        raise ImportError(
            f'polyloss.testing strategies need hypothesis ({error}); install it with pip install "polyloss[test]"'
        ) from error
    return st, hnp


def _bounds(name: str, value: int | tuple[int, int], minimum: int = 1) -> tuple[int, int]:
    """A fixed size (an int) or a range (low, high), both ends included."""
    try:
        ends: tuple[Any, ...] = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    except (TypeError, ValueError):
        ends = ()
    valid = len(ends) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in ends)
    if not valid or not minimum <= int(ends[0]) <= int(ends[1]):
        raise ValueError(f"{name} must be an int or a (low, high) pair with {minimum} <= low <= high, got {value!r}")
    return int(ends[0]), int(ends[1])


def _size(st: Any, name: str, value: int | tuple[int, int], minimum: int = 1) -> Any:
    return st.integers(*_bounds(name, value, minimum))


#: Drawn floating values are 0 or at least this large in magnitude (where the range allows).
#: Smaller ones (hypothesis likes 1e-156) make squares and products subnormal, which XLA on
#: CPU flushes to zero and torch does not: the two would disagree for that reason alone.
TINY = 1e-6


def _floats(st: Any, low: float, high: float) -> Any:
    values = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if low <= 0.0 <= high:
        return values.map(lambda x: x if abs(x) >= TINY else 0.0)
    return values


def logits_and_targets(
    *,
    num_classes: int | tuple[int, int] = (2, 5),
    batch: int | tuple[int, int] = (1, 6),
    max_abs: float = 30.0,
    ignore_index: int | None = None,
) -> Any:
    """A hypothesis strategy of ``(logits, targets)`` for multi-class losses.

    Guarantees: ``logits`` is a float64 ``(N, C)`` array of finite values in
    ``[-max_abs, max_abs]``, the nonzero ones at least :data:`TINY` in magnitude
    (ties and saturated rows included: hypothesis likes repeated and extreme
    values); ``targets`` is an int64 ``(N,)`` array of class indices in
    ``[0, C)``. With ``ignore_index``, some targets may equal it (drawn as one
    more choice when it is outside ``[0, C)``), but at least one is not ignored.

    Args:
        num_classes: C, an int or an inclusive ``(low, high)`` range, >= 1
            (default 2 to 5).
        batch: N, an int or an inclusive range, >= 1 (default 1 to 6).
        max_abs: bound on the logits' magnitude (default 30).
        ignore_index: a label to mix into the targets (default none).

    Returns:
        A strategy drawing ``(logits, targets)`` tuples.

    Raises:
        ImportError: hypothesis is not installed.
        ValueError: a bad size or bound.
    """
    st, hnp = _hypothesis()
    classes_st, batch_st = _size(st, "num_classes", num_classes), _size(st, "batch", batch)
    if not max_abs > 0:
        raise ValueError(f"max_abs must be > 0, got {max_abs!r}")
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
    if ignore_index == 0 and _bounds("num_classes", num_classes)[0] < 2:
        raise ValueError("with ignore_index=0, num_classes must be >= 2 (a target that is not ignored must exist)")

    @st.composite
    def draw_case(draw: Any) -> tuple[np.ndarray, np.ndarray]:
        c, n = draw(classes_st), draw(batch_st)
        logits = draw(hnp.arrays(np.float64, (n, c), elements=_floats(st, -max_abs, max_abs)))
        if ignore_index is None or 0 <= ignore_index < c:
            choices = st.integers(0, c - 1)
        else:
            choices = st.one_of(st.integers(0, c - 1), st.just(int(ignore_index)))
        targets = np.asarray(draw(st.lists(choices, min_size=n, max_size=n)), dtype=np.int64)
        if ignore_index is not None and bool(np.all(targets == ignore_index)):
            kept = [k for k in range(c) if k != ignore_index]  # not empty: checked below
            targets[draw(st.integers(0, n - 1))] = draw(st.sampled_from(kept))
        return logits, targets

    return draw_case()


def embeddings_and_labels(
    *,
    batch: int | tuple[int, int] = (2, 6),
    dim: int | tuple[int, int] = (1, 5),
    num_classes: int | tuple[int, int] = (1, 3),
    max_abs: float = 3.0,
) -> Any:
    """A hypothesis strategy of ``(embeddings, labels)`` for metric-learning losses.

    Guarantees: ``embeddings`` is a float64 ``(N, D)`` array of finite values in
    ``[-max_abs, max_abs]``, the nonzero ones at least :data:`TINY` in magnitude
    (repeated rows included: hypothesis likes them, and
    identical embeddings are where distance-based losses have kinks);
    ``labels`` is an int64 ``(N,)`` array in ``[0, num_classes)`` in which every
    label that occurs occurs at least twice (each sample has a positive), and at
    least two labels occur when the drawn number of classes is >= 2 and N >= 4
    (each sample also has a negative).

    Args:
        batch: N, an int or an inclusive range, >= 2 (default 2 to 6).
        dim: D, an int or an inclusive range, >= 1 (default 1 to 5).
        num_classes: the number of label values, an int or an inclusive range,
            >= 1 (default 1 to 3).
        max_abs: bound on the embeddings' magnitude (default 3).

    Returns:
        A strategy drawing ``(embeddings, labels)`` tuples.

    Raises:
        ImportError: hypothesis is not installed.
        ValueError: a bad size or bound.
    """
    st, hnp = _hypothesis()
    batch_st, dim_st = _size(st, "batch", batch, minimum=2), _size(st, "dim", dim)
    classes_st = _size(st, "num_classes", num_classes)
    if not max_abs > 0:
        raise ValueError(f"max_abs must be > 0, got {max_abs!r}")

    @st.composite
    def draw_case(draw: Any) -> tuple[np.ndarray, np.ndarray]:
        n, d, c = draw(batch_st), draw(dim_st), draw(classes_st)
        used = min(c, n // 2)  # labels that occur, each at least twice
        base = [k for k in range(used) for _ in range(2)]
        extra = draw(st.lists(st.integers(0, used - 1), min_size=n - len(base), max_size=n - len(base)))
        labels = np.asarray(draw(st.permutations(base + extra)), dtype=np.int64)
        embeddings = draw(hnp.arrays(np.float64, (n, d), elements=_floats(st, -max_abs, max_abs)))
        return embeddings, labels

    return draw_case()


def boxes(
    *,
    batch: int | tuple[int, int] = (1, 6),
    max_coordinate: float = 100.0,
    min_size: float = 0.0,
) -> Any:
    """A hypothesis strategy of ``(pred, target)`` box pairs in ``(x1, y1, x2, y2)`` format.

    Guarantees: ``pred`` and ``target`` are float64 ``(N, 4)`` arrays of finite
    values with ``x1 <= x2`` and ``y1 <= y2`` in every row; corners ``x1, y1``
    lie in ``[0, max_coordinate]`` and widths and heights in
    ``[min_size, max_coordinate]``, the nonzero ones at least :data:`TINY`. Degenerate (zero-width or zero-height)
    boxes, identical pairs and disjoint pairs occur unless ``min_size > 0``
    rules out the first.

    Args:
        batch: N, an int or an inclusive range, >= 1 (default 1 to 6).
        max_coordinate: bound on the corners and the sizes (default 100).
        min_size: the smallest width and height, >= 0 (default 0).

    Returns:
        A strategy drawing ``(pred, target)`` tuples.

    Raises:
        ImportError: hypothesis is not installed.
        ValueError: a bad size or bound.
    """
    st, hnp = _hypothesis()
    batch_st = _size(st, "batch", batch)
    if not 0 <= min_size <= max_coordinate or not max_coordinate > 0:
        raise ValueError(
            f"need 0 <= min_size <= max_coordinate and max_coordinate > 0, got "
            f"min_size={min_size!r}, max_coordinate={max_coordinate!r}"
        )

    def one_set(n: int) -> Any:
        corners = hnp.arrays(np.float64, (n, 2), elements=_floats(st, 0.0, max_coordinate))
        sizes = hnp.arrays(np.float64, (n, 2), elements=_floats(st, min_size, max_coordinate))
        return st.tuples(corners, sizes).map(lambda cs: np.concatenate([cs[0], cs[0] + cs[1]], axis=1))

    return batch_st.flatmap(lambda n: st.tuples(one_set(n), one_set(n)))


def masks(
    *,
    batch: int | tuple[int, int] = (1, 3),
    height: int | tuple[int, int] = (1, 4),
    width: int | tuple[int, int] = (1, 4),
    margin: float = 0.0,
) -> Any:
    """A hypothesis strategy of ``(probs, target)`` for segmentation losses.

    Guarantees: ``probs`` is a float64 ``(N, H, W)`` array of probabilities in
    ``[margin, 1 - margin]``, the nonzero ones at least :data:`TINY`; ``target`` is a float64 binary mask of the same
    shape (only 0.0 and 1.0). Empty and full masks occur.

    Args:
        batch: N, an int or an inclusive range, >= 1 (default 1 to 3).
        height: H, likewise (default 1 to 4).
        width: W, likewise (default 1 to 4).
        margin: keeps the probabilities this far from 0 and 1, in ``[0, 0.5)``
            (default 0: exact 0 and 1 occur).

    Returns:
        A strategy drawing ``(probs, target)`` tuples.

    Raises:
        ImportError: hypothesis is not installed.
        ValueError: a bad size or margin.
    """
    st, hnp = _hypothesis()
    sizes = st.tuples(_size(st, "batch", batch), _size(st, "height", height), _size(st, "width", width))
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin!r}")

    def pair(shape: tuple[int, int, int]) -> Any:
        probs = hnp.arrays(np.float64, shape, elements=_floats(st, margin, 1.0 - margin))
        target = hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))
        return st.tuples(probs, target)

    return sizes.flatmap(pair)


def ctc_batches(
    *,
    batch: int | tuple[int, int] = (1, 3),
    frames: int | tuple[int, int] = (1, 8),
    num_classes: int | tuple[int, int] = (2, 5),
    max_target_length: int = 4,
    blank: int = 0,
    max_abs: float = 5.0,
) -> Any:
    """A hypothesis strategy of batch-first CTC inputs, every sample feasible.

    Draws ``(log_probs, targets, input_lengths, target_lengths)``, polyloss's
    ``ctc`` argument order. Guarantees: ``log_probs`` is a float64 ``(N, T, C)``
    array, the log-softmax over C of finite logits in ``[-max_abs, max_abs]``
    (blank included; the nonzero logits at least :data:`TINY` in magnitude);
    ``targets`` is an int64 ``(N, S)`` array, ``1 <= S <= max_target_length``,
    whose entries within each sample's target length are labels in ``[0, C)``
    other than ``blank`` (the entries past it, padding, are ``blank``);
    ``input_lengths`` (int64, ``(N,)``) lie in ``[1, T]`` and ``target_lengths``
    (int64, ``(N,)``) in ``[0, S]``; and every sample is feasible: its target
    length plus its number of repeated consecutive labels is at most its input
    length, so its loss is finite. Empty targets occur.

    Args:
        batch: N, an int or an inclusive range, >= 1 (default 1 to 3).
        frames: T, likewise (default 1 to 8).
        num_classes: C, blank included, likewise, > ``blank`` and >= 2
            (default 2 to 5).
        max_target_length: the largest S, >= 1 (default 4).
        blank: the blank's class index, >= 0 (default 0).
        max_abs: bound on the logits behind ``log_probs`` (default 5).

    Returns:
        A strategy drawing ``(log_probs, targets, input_lengths, target_lengths)`` tuples.

    Raises:
        ImportError: hypothesis is not installed.
        ValueError: a bad size, blank or bound.
    """
    st, hnp = _hypothesis()
    if isinstance(blank, bool) or not isinstance(blank, int) or blank < 0:
        raise ValueError(f"blank must be an int >= 0, got {blank!r}")
    batch_st, frames_st = _size(st, "batch", batch), _size(st, "frames", frames)
    classes_st = _size(st, "num_classes", num_classes, minimum=max(2, blank + 1))
    width_st = _size(st, "max_target_length", (1, max_target_length))
    if not max_abs > 0:
        raise ValueError(f"max_abs must be > 0, got {max_abs!r}")

    @st.composite
    def draw_case(draw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, t, c, s = draw(batch_st), draw(frames_st), draw(classes_st), draw(width_st)
        logits = draw(hnp.arrays(np.float64, (n, t, c), elements=_floats(st, -max_abs, max_abs)))
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        labels = [k for k in range(c) if k != blank]
        targets = np.full((n, s), blank, dtype=np.int64)
        input_lengths = np.zeros(n, dtype=np.int64)
        target_lengths = np.zeros(n, dtype=np.int64)
        for i in range(n):
            input_lengths[i] = draw(st.integers(1, t))
            sequence = draw(st.lists(st.sampled_from(labels), max_size=min(s, int(input_lengths[i]))))
            while len(sequence) + sum(a == b for a, b in itertools.pairwise(sequence)) > input_lengths[i]:
                sequence.pop()  # too many repeats for the frames: shorten until feasible
            target_lengths[i] = len(sequence)
            targets[i, : len(sequence)] = sequence
        return log_probs, targets, input_lengths, target_lengths

    return draw_case()
