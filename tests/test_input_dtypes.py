"""Class labels and other integer inputs of every integer dtype, on every backend: the same loss as
with int64 (what torch's kernels take; int32 is NumPy's and JAX's default on many platforms), never a
framework-internal error. Driven by the specs: every loss with an integer input, its first variant."""

from __future__ import annotations

import inspect
import re
from typing import Any

import numpy as np
import pytest
from helpers import BACKENDS, HARNESSES, MODULES, close, to_numpy

from polyloss.core import CORE_LOSSES
from polyloss.verify.cases import closure
from polyloss.verify.specs import SPECS

INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8")  # torch has few uint16 kernels


def _integer_case(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]]:
    case = SPECS[name].variants[0].make(np.random.default_rng(0), 4)
    arrays = {k: np.asarray(v) for k, v in case.arrays.items()}
    return arrays, dict(case.params), [k for k, v in arrays.items() if v.dtype.kind in "iu"]


INTEGER_LOSSES = [n for n in sorted(SPECS) if n in CORE_LOSSES and _integer_case(n)[2]]


def _call(backend: str, name: str, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> Any:
    harness = HARNESSES[backend]
    signature = list(inspect.signature(CORE_LOSSES[name]).parameters.values())[1:]
    positional = [p.name for p in signature if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    converted = {k: harness.asarray(v) for k, v in arrays.items()}
    args = [converted[p] for p in positional if p in converted]
    kwargs = {k: v for k, v in converted.items() if k not in positional}
    return getattr(MODULES[backend], name)(*args, **kwargs, **params)


def test_the_sweep_covers_the_label_losses():
    assert {"cross_entropy", "nll", "focal", "ctc", "linear_cross_entropy", "triplet_mined"} <= set(INTEGER_LOSSES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", INTEGER_LOSSES)
def test_every_integer_dtype_gives_the_int64_loss(backend, name):
    arrays, params, integers = _integer_case(name)
    expected = to_numpy(_call(backend, name, arrays, params))
    for dtype in INTEGER_DTYPES:
        info = np.iinfo(dtype)
        if any(arrays[k].size and (arrays[k].min() < info.min or arrays[k].max() > info.max) for k in integers):
            continue  # the case's values do not fit this dtype (a negative ignore_index in uint8)
        cast = {k: (v.astype(dtype) if k in integers else v) for k, v in arrays.items()}
        close(to_numpy(_call(backend, name, cast, params)), expected)


def _binary_case(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any], list[str]] | None:
    """The first variant of ``name`` with a floating input holding only 0s and 1s (a mask or label)."""
    for variant in SPECS[name].variants:
        case = variant.make(np.random.default_rng(0), 4)
        arrays = {k: np.asarray(v) for k, v in case.arrays.items()}
        binary = [k for k, v in arrays.items() if v.dtype.kind == "f" and v.size and set(np.unique(v)) <= {0.0, 1.0}]
        if binary:
            return arrays, dict(case.params), binary
    return None


BINARY_LOSSES = [n for n in sorted(SPECS) if n in CORE_LOSSES and _binary_case(n) is not None]


def test_the_bool_sweep_covers_the_binary_losses():
    assert {"bce", "bce_with_logits", "sigmoid_focal", "dice", "tversky", "jaccard"} <= set(BINARY_LOSSES)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", BINARY_LOSSES)
def test_bool_binary_inputs_are_read_as_0_and_1_or_refused_by_name(backend, name):
    """A 0/1 input given as bool: the loss of its 0.0/1.0 float copy, or (probability targets,
    data) a TypeError naming the input; never an error from inside the framework."""
    found = _binary_case(name)
    assert found is not None
    arrays, params, binary = found
    expected = to_numpy(_call(backend, name, arrays, params))
    as_bool = {k: (v.astype(bool) if k in binary else v) for k, v in arrays.items()}
    try:
        got = _call(backend, name, as_bool, params)
    except TypeError as error:
        assert re.match(rf"({'|'.join(binary)}) must have a real floating dtype, got (torch\.)?bool", str(error))
        assert name not in {"bce", "bce_with_logits", "sigmoid_focal", "dice", "tversky", "jaccard"}, error
        return
    close(to_numpy(got), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["cross_entropy", "poly1", "nll", "focal", "dice", "linear_cross_entropy"])
def test_float_class_indices_are_refused_with_the_cast_to_make(backend, name):
    """Class indices stored as floats (shape (N,) for (N, C) logits): a TypeError saying they must be
    integers and how to cast them, not a shape error."""
    h = HARNESSES[backend]
    scores = h.asarray(np.random.default_rng(0).uniform(size=(4, 3)))
    indices = h.asarray(np.array([0.0, 1.0, 2.0, 1.0]))
    args = (scores, h.asarray(np.ones((5, 3))), indices) if name == "linear_cross_entropy" else (scores, indices)
    with pytest.raises(TypeError, match=r"class indices.*(cast them: target\.long\(\) in torch, .*jnp\.int32)"):
        getattr(MODULES[backend], name)(*args)


def _floating_inputs(name: str) -> list[str]:
    case = SPECS[name].variants[0].make(np.random.default_rng(0), 4)
    return [k for k, v in case.arrays.items() if np.asarray(v).dtype.kind == "f" and np.asarray(v).ndim > 0]


FLOATING_INPUTS = [(n, k) for n in sorted(SPECS) if n in CORE_LOSSES for k in _floating_inputs(n)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,input_name", FLOATING_INPUTS)
def test_an_integer_floating_input_is_read_as_its_values_or_refused_by_name(backend, name, input_name):
    """Every floating input of every loss, given as int64 (its values rounded): the loss of the same
    values as floats (integer targets, masks and pixel boxes, as torch promotes them) or a TypeError
    naming the input; never a framework-internal error or a silently truncated result. Which inputs
    accept integers is stated in each family's conventions (docs/losses/<family>.md)."""
    spec, harness = SPECS[name], HARNESSES[backend]
    case = spec.variants[0].make(np.random.default_rng(0), 4)
    rounded = dict(case.arrays, **{input_name: np.round(case.arrays[input_name])})
    as_integers = dict(rounded, **{input_name: rounded[input_name].astype(np.int64)})

    def loss(arrays: dict[str, np.ndarray]) -> Any:
        f = closure(spec, harness, list(arrays), case.params, "mean")
        return f(*(harness.asarray(v) for v in arrays.values()))

    try:
        got = loss(as_integers)
    except TypeError as error:
        assert re.match(rf"{input_name}\b", str(error)), error
        return
    close(to_numpy(got), to_numpy(loss(rounded)), rtol=1e-6, atol=1e-6)
