"""Bad inputs, table-driven over every public loss and every backend.

Each loss gets its spec's first variant (``SPECS[name].variants[0]``) as a valid
call, then one thing is broken at a time: arrays of another framework, an
unknown reduction, inconsistent shapes, hyper-parameters outside their domain,
values outside the documented range. Each must raise the documented exception
with a message naming the culprit, before any maths runs (no RuntimeWarning).
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from contextlib import contextmanager
from typing import Any

import jax
import numpy as np
import pytest
import torch
from helpers import BACKENDS, HARNESSES, MODULES

from polyloss.core import CORE_LOSSES
from polyloss.verify.specs import SPECS

NAMES = list(CORE_LOSSES)
CASES = {name: SPECS[name].variants[0].make(np.random.default_rng(0), 3) for name in NAMES}
# How each backend names the framework it expects in a TypeError.
EXPECTED_FRAMEWORK = {"numpy": r"numpy\.ndarray", "torch": r"torch\.Tensor", "jax": r"jax"}


def positional(name: str) -> tuple[str, ...]:
    """The positional array inputs (a callable such as gradient_penalty's critic excluded)."""
    params = list(inspect.signature(CORE_LOSSES[name]).parameters.values())[1:]
    return tuple(
        p.name
        for p in params
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and not str(p.annotation).startswith("Callable")
    )


def leading_callables(name: str) -> tuple[str, ...]:
    params = list(inspect.signature(CORE_LOSSES[name]).parameters.values())[1:]
    return tuple(
        p.name
        for p in params
        if str(p.annotation).startswith("Callable") and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )


def pairs(names) -> list[tuple[str, str]]:
    """(backend, loss) for every backend that has the loss (gradient_penalty needs autodiff: not numpy)."""
    return [(backend, name) for name in names for backend in BACKENDS if hasattr(MODULES[backend], name)]


def second_is_shared(name: str) -> bool:
    """The second positional input is common to every sample in the spec's layout (a margin-softmax
    head's class weights, linear_cross_entropy's output layer): it has no samples to cut short."""
    return positional(name)[1] in SPECS[name].layout_of(CASES[name]).shared


# Losses with two array inputs of the same samples (the second can be cut short or given an extra axis).
# Not: single-input losses (GAN generators); discriminator losses, whose real and fake batches may differ
# in size (test_two_sided_none_needs_equal_shapes); losses whose second input is shared by the samples
# (test_class_weights_of_wrong_width_raise, and each loss's own shape tests).
INDEPENDENT_SIDES = {"gan_discriminator", "wgan_critic", "hinge_discriminator"}
SAME_SAMPLES = [n for n in NAMES if len(positional(n)) >= 2 and n not in INDEPENDENT_SIDES and not second_is_shared(n)]
TWO_INPUTS = [n for n in NAMES if len(positional(n)) >= 2]


def arr(backend: str, value: np.ndarray) -> Any:
    """``value`` as ``backend``'s array (its harness's ``asarray``), or as a Python list for ``"list"``."""
    return np.asarray(value).tolist() if backend == "list" else HARNESSES[backend].asarray(value)


def call(backend: str, name: str, arrays: dict | None = None, convert: dict | None = None, **overrides):
    """Call ``polyloss.<backend>.<name>`` on the spec case; ``arrays`` replaces some inputs
    (NumPy values), ``convert`` maps an input name to the framework its array is made in."""
    case = CASES[name]
    values = {**case.arrays, **(arrays or {})}
    convert = convert or {}
    framework_arrays = {k: arr(convert.get(k, backend), v) for k, v in values.items()}
    names = positional(name)
    params = {**case.params, **overrides}
    args = [params.pop(p) for p in leading_callables(name)] + [
        framework_arrays[p] for p in names if p in framework_arrays
    ]
    kwargs = {k: v for k, v in framework_arrays.items() if k not in names and k not in overrides}
    return getattr(MODULES[backend], name)(*args, **kwargs, **params)


@contextmanager
def raises(exc: type[Exception], match: str):
    """pytest.raises, with RuntimeWarnings (maths on bad values) turned into failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(exc, match=match) as info:
            yield info


def test_every_public_loss_is_covered():
    for backend in BACKENDS:
        public = {n for n in dir(MODULES[backend]) if n in CORE_LOSSES}
        assert public == {n for b, n in pairs(NAMES) if b == backend}, backend
    assert {n for _, n in pairs(NAMES)} == set(NAMES) == set(CASES)


@pytest.mark.parametrize("backend,name", pairs(NAMES))
def test_spec_case_is_accepted(backend, name):
    """The unbroken call works, so every refusal below comes from the one broken thing."""
    out = call(backend, name)
    assert np.isfinite(float(np.asarray(out.detach() if isinstance(out, torch.Tensor) else out)))


# --------------------------------------------------------------------------- foreign arrays

# polyloss.jax takes NumPy arrays, as jax.numpy does (test_jax_takes_numpy_arrays_as_jax_numpy_does)
ACCEPTED = {("jax", "numpy")}
FOREIGN = [(b, s) for b in BACKENDS for s in BACKENDS if s != b and (b, s) not in ACCEPTED]


def foreign(names) -> list[tuple[str, str, str]]:
    return [(b, s, n) for b, n in pairs(names) for s in BACKENDS if s != b and (b, s) not in ACCEPTED]


@pytest.mark.parametrize("name", [n for b, n in pairs(NAMES) if b == "jax"])
def test_jax_takes_numpy_arrays_as_jax_numpy_does(name):
    """Every input of the spec case as a NumPy array (positional and keyword arrays alike): the
    same loss as with jax arrays."""
    from_numpy = call("jax", name, convert=dict.fromkeys(CASES[name].arrays, "numpy"))
    assert isinstance(from_numpy, jax.Array)
    np.testing.assert_allclose(np.asarray(from_numpy), np.asarray(call("jax", name)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend,source,name", foreign(NAMES), ids=[f"{n}-{s}-to-{b}" for b, s, n in foreign(NAMES)])
def test_all_arrays_of_another_framework_raise_type_error(backend, source, name):
    first = positional(name)[0]
    convert = dict.fromkeys(CASES[name].arrays, source)
    pattern = (
        rf"polyloss\.{backend}\.{name}: {first} must be a .*{EXPECTED_FRAMEWORK[backend]}.*\(the {backend} backend\)"
    )
    with raises(TypeError, match=pattern) as info:
        call(backend, name, convert=convert)
    assert f"use polyloss.{source} for these arrays" in str(info.value)


@pytest.mark.parametrize(
    "backend,source,name", foreign(TWO_INPUTS), ids=[f"{n}-{s}-to-{b}" for b, s, n in foreign(TWO_INPUTS)]
)
def test_one_array_of_another_framework_raises_type_error(backend, source, name):
    """Only the second positional input is foreign: the message names it, not the first."""
    second = positional(name)[1]
    pattern = (
        rf"polyloss\.{backend}\.{name}: {second} must be a .*{EXPECTED_FRAMEWORK[backend]}.*\(the {backend} backend\)"
    )
    with raises(TypeError, match=pattern):
        call(backend, name, convert={second: source})


KEYWORD_ARRAYS = {
    # loss -> (keyword, a valid NumPy value for the spec case)
    "cross_entropy": ("weight", np.ones(5)),
    "nll": ("weight", np.ones(5)),
    "focal": ("alpha", np.ones(5)),
    "bce": ("weight", np.ones((3, 3))),
    "bce_with_logits": ("pos_weight", np.ones(3)),
    "mse": ("weight", np.ones((3, 3))),
    "mae": ("weight", np.ones((3, 3))),
    "huber": ("weight", np.ones((3, 3))),
    "smooth_l1": ("weight", np.ones((3, 3))),
    "log_cosh": ("weight", np.ones((3, 3))),
    "quantile": ("weight", np.ones((3, 3))),
}


@pytest.mark.parametrize("backend,source", FOREIGN, ids=[f"{s}-to-{b}" for b, s in FOREIGN])
@pytest.mark.parametrize("name", list(KEYWORD_ARRAYS))
def test_keyword_array_of_another_framework_raises_type_error(backend, source, name):
    key, value = KEYWORD_ARRAYS[name]
    call(backend, name, arrays={key: value})  # accepted from the right framework
    pattern = (
        rf"polyloss\.{backend}\.{name}: {key} must be a .*{EXPECTED_FRAMEWORK[backend]}.*\(the {backend} backend\)"
    )
    with raises(TypeError, match=pattern):
        call(backend, name, arrays={key: value}, convert={key: source})


@pytest.mark.parametrize("backend,name", pairs(NAMES))
def test_python_list_input_raises_type_error(backend, name):
    first = positional(name)[0]
    with raises(TypeError, match=rf"{first} must be a .*\(the {backend} backend\).*got builtins\.list"):
        call(backend, name, convert={first: "list"})


# --------------------------------------------------------------------------- reduction


@pytest.mark.parametrize("backend,name", pairs(NAMES))
@pytest.mark.parametrize("reduction", ["avg", "Mean", "elementwise_mean"])
def test_unknown_reduction_raises_value_error(backend, name, reduction):
    with raises(ValueError, match=rf"reduction must be 'mean', 'sum' or 'none', got '{reduction}'"):
        call(backend, name, reduction=reduction)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("backend,name", pairs(SAME_SAMPLES))
def test_second_input_missing_a_sample_raises_value_error(backend, name):
    second = positional(name)[1]
    short = CASES[name].arrays[second][:-1]
    with raises(ValueError, match=rf"{second} must have (the same )?shape.*{re.escape(str(tuple(short.shape)))}"):
        call(backend, name, arrays={second: short})


@pytest.mark.parametrize("backend,name", pairs(SAME_SAMPLES))
def test_second_input_with_an_extra_trailing_axis_raises_value_error(backend, name):
    """The (N, 1) against (N,) family: an added axis of size 1 is never broadcast away."""
    second = positional(name)[1]
    longer = CASES[name].arrays[second][..., None]
    with raises(ValueError, match=rf"{second} must have (the same )?shape.*{re.escape(str(tuple(longer.shape)))}"):
        call(backend, name, arrays={second: longer})


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaussian_nll_var_of_wrong_shape_raises_value_error(backend):
    with raises(ValueError, match=r"var must have shape .*got \(2, 3\)"):
        call(backend, "gaussian_nll", arrays={"var": np.ones((2, 3))})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,key", [("cross_entropy", "weight"), ("nll", "weight"), ("focal", "alpha")])
def test_class_vector_of_wrong_length_raises_value_error(backend, name, key):
    with raises(ValueError, match=rf"{key} must have shape \(5,\), got \(4,\)"):
        call(backend, name, arrays={key: np.ones(4)})


# --------------------------------------------------------------------------- hyper-parameters

HYPER = [
    ("focal", "gamma", -1),
    ("focal", "gamma", -0.5),
    ("focal", "gamma", math.nan),
    ("focal", "alpha", -1.0),
    ("sigmoid_focal", "gamma", -1),
    ("sigmoid_focal", "gamma", math.inf),
    ("sigmoid_focal", "alpha", 1.5),
    ("sigmoid_focal", "alpha", -0.25),
    ("cross_entropy", "label_smoothing", 1.5),
    ("cross_entropy", "label_smoothing", -0.1),
    ("cross_entropy", "z_loss", -1),
    ("cross_entropy", "z_loss", math.inf),
    ("bce_with_logits", "label_smoothing", 1.5),
    ("bce_with_logits", "label_smoothing", -0.1),
    ("huber", "delta", 0),
    ("huber", "delta", -1),
    ("huber", "delta", math.inf),
    ("smooth_l1", "beta", -1),
    ("quantile", "q", 1.5),
    ("quantile", "q", -0.1),
    ("poisson_nll", "eps", 0),
    ("poisson_nll", "eps", -1e-8),
    ("gaussian_nll", "eps", 0),
    ("gaussian_nll", "eps", -1e-6),
    ("poly1", "epsilon", -2),
    ("poly1", "epsilon", math.inf),
    ("asymmetric_mse", "over_penalty", -1.0),
    ("distillation", "temperature", 0),
    ("distillation", "temperature", -2.0),
    ("distillation", "alpha", 1.5),
    ("contrastive", "margin", -1.0),
    ("contrastive", "eps", -1e-6),
    ("triplet", "margin", -0.5),
    ("triplet", "p", 0),
    ("triplet", "p", -1.0),
    ("triplet", "eps", math.nan),
    ("triplet_mined", "margin", -1.0),
    ("triplet_mined", "mining", "hardest"),
    ("cosine_embedding", "margin", 1.5),
    ("margin_ranking", "margin", math.inf),
    ("arcface", "scale", 0),
    ("arcface", "margin", -0.1),
    ("arcface", "margin", 4.0),
    ("cosface", "scale", -1.0),
    ("cosface", "margin", -0.1),
    ("infonce", "temperature", 0),
    ("infonce", "temperature", -0.1),
    ("nt_xent", "temperature", 0.0),
    ("dice", "smooth", -1.0),
    ("tversky", "alpha", -0.5),
    ("tversky", "beta", math.inf),
    ("focal_tversky", "gamma", 0),
    ("jaccard", "smooth", math.nan),
    ("generalized_dice", "smooth", -1e-5),
    ("dice_ce", "ce_weight", -1.0),
    ("box_iou", "eps", -1e-7),
    ("box_ciou", "eps", math.inf),
    ("ctc", "blank", 99),
    ("ctc", "blank", -1),
    ("vae", "beta", -1.0),
    ("vae", "recon_loss", "l1"),
    ("gradient_penalty", "weight", -10.0),
    ("curriculum", "progress", 1.5),
]


@pytest.mark.parametrize(
    "backend,name,param,value",
    [(b, n, p, v) for n, p, v in HYPER for b, m in pairs([n])],
    ids=[f"{b}-{n}-{p}={v}" for n, p, v in HYPER for b, m in pairs([n])],
)
def test_out_of_domain_hyper_parameter_raises_value_error(backend, name, param, value):
    with raises(ValueError, match=rf"^{param} must .*got {re.escape(repr(value))}$"):
        call(backend, name, **{param: value})


def float_hyper_parameters() -> list[tuple[str, str]]:
    """(loss, parameter) for every keyword-only hyper-parameter typed float (or float | array)."""
    return [
        (name, p.name)
        for name, fn in CORE_LOSSES.items()
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and re.search(r"\bfloat\b", str(p.annotation))
        and not str(p.annotation).startswith("Sequence")
    ]


NON_FINITE = [
    (b, n, p, v) for n, p in float_hyper_parameters() for b, _ in pairs([n]) for v in (math.nan, math.inf, -math.inf)
]


def test_every_float_hyper_parameter_is_probed():
    """The sweep below is not vacuous: it sees the hyper-parameters the hand-written table lists."""
    swept = set(float_hyper_parameters())
    assert len(swept) >= 50
    assert {(n, p) for n, p, v in HYPER if isinstance(v, float)} <= swept


@pytest.mark.parametrize("backend,name,param,value", NON_FINITE, ids=[f"{b}-{n}-{p}={v}" for b, n, p, v in NON_FINITE])
def test_non_finite_float_hyper_parameter_raises_value_error(backend, name, param, value):
    """NaN and +-inf in every float hyper-parameter of every loss: a ValueError naming it, never a NaN loss."""
    with raises(ValueError, match=rf"^{param} must .*got {re.escape(repr(value))}$"):
        call(backend, name, **{param: value})


@pytest.mark.parametrize("backend", [b for b, _ in pairs(["perceptual"])])
def test_perceptual_layer_weights_must_be_a_sequence(backend):
    with raises(TypeError, match=r"^layer_weights must be a sequence of floats, one per feature map, got 0\.5$"):
        call(backend, "perceptual", layer_weights=0.5)
    with raises(ValueError, match=r"^layer_weights\[1\] must .*got nan$"):
        call(backend, "perceptual", layer_weights=[0.5, math.nan])


AXES = [("cross_entropy", 5), ("cross_entropy", 2), ("cross_entropy", -3), ("nll", 5), ("focal", 5), ("poly1", -3)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,axis", AXES)
def test_axis_out_of_range_raises_value_error(backend, name, axis):
    first = positional(name)[0]
    with raises(ValueError, match=rf"^axis must be in \[-2, 2\) for {first} of shape \(3, 5\), got {axis}$"):
        call(backend, name, axis=axis)


TYPED = [
    ("focal", "gamma", "2"),
    ("huber", "delta", True),
    ("poisson_nll", "log_input", 1),
    ("gaussian_nll", "full", 0),
    ("cross_entropy", "ignore_index", 1.0),
    ("cross_entropy", "axis", 1.0),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,param,value", TYPED, ids=[f"{n}-{p}={v!r}" for n, p, v in TYPED])
def test_hyper_parameter_of_wrong_type_raises_type_error(backend, name, param, value):
    with raises(TypeError, match=rf"^{param} must be .*{re.escape(repr(value))}"):
        call(backend, name, **{param: value})


# --------------------------------------------------------------------------- values outside the domain


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [1.5, -0.2, math.nan])
def test_bce_probabilities_outside_unit_interval_raise(backend, bad):
    probs = CASES["bce"].arrays["probs"].copy()
    probs[1, 2] = bad
    with raises(
        ValueError, match=rf"^probs must contain probabilities in \[0, 1\], got a value of {re.escape(repr(bad))}$"
    ):
        call(backend, "bce", arrays={"probs": probs})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("var_shape", ["same", "per-sample"])
def test_gaussian_nll_negative_var_raises(backend, var_shape):
    var = np.ones((3, 3)) if var_shape == "same" else np.ones(3)
    var[1] = -1.0
    with raises(ValueError, match=r"^var must be non-negative, got a value of -1\.0$"):
        call(backend, "gaussian_nll", arrays={"var": var})


@pytest.mark.parametrize("backend", BACKENDS)
def test_cross_entropy_probability_targets_with_ignore_index_raise(backend):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=3)
    call(backend, "cross_entropy", arrays={"target": probs})  # probability targets alone are fine
    with raises(ValueError, match=r"ignore_index applies to integer class targets only, got ignore_index=-100"):
        call(backend, "cross_entropy", arrays={"target": probs}, ignore_index=-100)
