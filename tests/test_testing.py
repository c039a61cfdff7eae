"""polyloss.testing: the doc's blocks executed, the checks' reports, the strategies' guarantees,
and polyloss losses checked with it (so the module is exercised on every run).

JAX compiles each operation once per new shape in eager mode (about a second a shape on
the CI machine), so the hypothesis-driven checks below use fixed shapes. ctc_batches is
checked against polyloss.numpy.ctc only: JAX's eager ctc gradient costs about 6 s a shape.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_python_succeeds, run_python
from hypothesis import given
from hypothesis import strategies as st

import polyloss.jax
import polyloss.numpy
from polyloss import testing
from polyloss.testing import (
    assert_backends_agree,
    assert_loss_agrees,
    boxes,
    ctc_batches,
    embeddings_and_labels,
    logits_and_targets,
    masks,
)

DOC = (Path(__file__).parents[1] / "docs" / "testing.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.S)


@pytest.fixture(scope="module")
def doc(env) -> dict:
    """Every python block of docs/testing.md, executed in order in one namespace."""
    scope: dict = {"__name__": "docs_testing"}
    for block in BLOCKS:
        exec(compile(block, "docs/testing.md", "exec"), scope)
    return scope


# -- the doc ------------------------------------------------------------------------------


def test_every_doc_block_is_exercised(doc):
    assert len(BLOCKS) == 6
    for name in ("FocalLoss", "focal_loss", "test_focal_port_agrees", "focal_loss_naive", "report", "result"):
        assert name in doc, name


def test_doc_property_test_passes(doc):
    doc["test_focal_port_agrees"]()  # hypothesis-driven: the port agrees in value and gradient


def test_doc_report_is_the_real_one(doc):
    shown = DOC.split("prints\n\n```text\n", 1)[1].split("```", 1)[0]
    assert shown.rstrip("\n") == doc["report"]


def test_doc_tolerance_table_is_the_code():
    rows = re.findall(r"^\| `(\w+)` +\| ([\d.e-]+) +\| ([\d.e-]+) +\|", DOC, flags=re.M)
    assert {dtype: (float(rtol), float(atol)) for dtype, rtol, atol in rows} == testing.TOLERANCES


def test_import_loads_no_framework_and_no_hypothesis():
    code = (
        "import sys, polyloss.testing; bad = [m for m in ('torch', 'jax', 'optax', 'hypothesis') "
        "if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    assert_python_succeeds(code)


def test_strategies_without_hypothesis_name_the_extra():
    code = (
        "import sys; sys.modules['hypothesis'] = None; import polyloss.testing as t\n"
        "try:\n    t.boxes()\nexcept ImportError as e:\n    print(e); sys.exit(0)\nsys.exit(1)"
    )
    result = run_python(code)
    assert result.returncode == 0 and 'pip install "polyloss[test]"' in result.stdout, result.stdout + result.stderr


# -- assert_backends_agree -----------------------------------------------------------------

X = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
K = np.array([2, 0])


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16"])
def test_equal_functions_agree_with_the_right_gradients(env, dtype):
    seen = {}

    def torch_fn(x, k):
        seen["torch"] = (x.dtype, k.dtype)
        return x[torch.arange(2), k] ** 2 + x.sum(-1)

    def jax_fn(x, k):
        seen["jax"] = (x.dtype, k.dtype)
        return jnp.take_along_axis(x, k[:, None], axis=1)[:, 0] ** 2 + x.sum(-1)

    result = assert_backends_agree(torch_fn, jax_fn, X, K, dtype=dtype, names=["x", "k"])
    assert seen["torch"] == (getattr(torch, dtype), torch.int64)
    assert seen["jax"] == (jnp.dtype(dtype), jnp.int64)
    # gradient of sum(w * out) with the fixed weights w = (0.5, 1.5): w_i (1 + 2 x_ik [j == k_i])
    weights = np.array([0.5, 1.5])[:, None]
    expected = weights * (1.0 + 2.0 * X * (np.arange(3) == K[:, None]))
    tolerance = {"float64": 1e-15, "float32": 1e-6, "bfloat16": 0.1}[dtype]
    for side in ("torch", "jax"):
        np.testing.assert_allclose(result.grads[side]["x"], expected, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(result.values[side], [9.0 + 2.0, 0.25 + 3.5], rtol=tolerance)
    assert result.dtype == dtype and (result.rtol, result.atol) == testing.TOLERANCES[dtype]
    assert 0.0 <= result.max_ratio <= 1.0
    assert set(result.abs_errors) == {"value (jax vs torch)", "gradient w.r.t. x (input 0) (jax vs torch)"}


def test_a_wrong_gradient_is_reported_with_its_input_index_and_values(env):
    def torch_fn(x):
        return (x * x).sum()

    def jax_port(x):  # the bug: half the gradient
        return jnp.sum(x * jax.lax.stop_gradient(x))

    with pytest.raises(AssertionError) as failure:
        assert_backends_agree(torch_fn, jax_port, X, names=["x"])
    report = str(failure.value)
    assert "1 of 2 compared quantities disagree (dtype float64, rtol=1e-10, atol=1e-12" in report
    assert "value (jax vs torch): agrees (max abs error 0)" in report
    assert "gradient w.r.t. x (input 0) (jax vs torch): DISAGREES" in report
    # torch's gradient is 2x, the port's x: worst relative to tolerance where |x| is largest, x[1, 1] = 4
    assert "6 of 6 elements disagree; worst at index (1, 1): torch 8.0, jax 4.0" in report
    assert "abs error 4, rel error 0.5, allowed abs error there 8.01e-10" in report
    assert "also at (0, 2), (0, 1), (0, 0), (1, 2), (1, 0)" in report


def test_a_one_element_value_error_is_located(env):
    def jax_port(x):
        return jnp.sqrt(x).at[1, 0].add(1e-7)

    positive = np.abs(X)
    with pytest.raises(AssertionError) as failure:
        assert_backends_agree(torch.sqrt, jax_port, positive, names=["x"])
    report = str(failure.value)
    # The numbers are each library's own sqrt(0.5), whose last bit depends on the CPU (torch's
    # vectorised float64 sqrt on AVX-512 rounds the other way): read them back with a tolerance.
    located = re.search(
        r"value \(jax vs torch\): DISAGREES\n  1 of 6 elements disagrees; worst at index \(1, 0\): "
        r"torch (\S+), jax (\S+)\n",
        report,
    )
    assert located, report
    torch_value, jax_value = (float(number) for number in located.groups())
    assert torch_value == pytest.approx(np.sqrt(0.5), rel=1e-15, abs=0)
    assert jax_value == pytest.approx(np.sqrt(0.5) + 1e-7, rel=1e-15, abs=0)
    assert "gradient w.r.t. x (input 0) (jax vs torch): agrees" in report
    assert "sum(w * output), w fixed weights from 0.5 to 1.5 over the output's 6 elements" in report
    assert "also at" not in report


def test_rtol_and_atol_override_the_defaults(env):
    def jax_port(x):
        return jnp.sqrt(x) * (1 + 1e-7)

    positive = np.abs(X)
    with pytest.raises(AssertionError):
        assert_backends_agree(torch.sqrt, jax_port, positive)
    result = assert_backends_agree(torch.sqrt, jax_port, positive, rtol=2e-7)
    assert (result.rtol, result.atol) == (2e-7, 1e-12) and 0.4 < result.max_ratio <= 0.5


def test_an_output_dtype_difference_is_reported(env):
    exact = np.array([1.0, 2.0])  # squares exact in float32: only the dtype differs
    with pytest.raises(AssertionError) as failure:
        assert_backends_agree(lambda x: x * x, lambda x: (x * x).astype(jnp.float32), exact, argnums=())
    report = str(failure.value)
    assert "value (jax vs torch): agrees" in report
    assert "output dtype (jax vs torch): DISAGREES\n  torch returned float64, jax float32" in report


def test_a_shape_difference_is_reported_and_gradients_skipped(env):
    with pytest.raises(AssertionError) as failure:
        assert_backends_agree(lambda x: x.sum(1), lambda x: x.sum(0), X)
    report = str(failure.value)
    assert "shapes differ: torch (2,), jax (3,)" in report
    assert "Gradients were not compared: the outputs' shapes differ." in report


def test_nan_matches_nan_and_inf_the_same_inf(env):
    special = np.array([np.nan, np.inf, -np.inf, 1.0])
    result = assert_backends_agree(lambda x: x * 2, lambda x: x * 2, special, argnums=())
    assert result.max_abs_error == 0.0
    with pytest.raises(AssertionError, match=r"worst at index \(2,\): torch -inf, jax inf"):
        assert_backends_agree(lambda x: x * 2, lambda x: jnp.abs(x) * 2, special, argnums=())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: assert_backends_agree(abs, abs, X, K, argnums=[1]), ValueError, "only floating inputs"),
        (lambda: assert_backends_agree(abs, abs, X, argnums=[3]), ValueError, "argnums must index"),
        (lambda: assert_backends_agree(abs, abs, X, K, names=["x"]), ValueError, "names must be 2 distinct names"),
        (lambda: assert_backends_agree(abs, abs, X, K, names=["x", "x"]), ValueError, "names must be 2 distinct"),
        (lambda: assert_backends_agree(abs, abs, X, dtype="int8"), ValueError, "dtype must be one of"),
        (lambda: assert_backends_agree(abs, abs, X, rtol=-1.0), ValueError, "rtol and atol must be >= 0"),
        (lambda: assert_backends_agree(abs, abs, "x"), TypeError, "numeric NumPy array"),
        (lambda: assert_backends_agree(lambda x: (x, x), abs, X), TypeError, "torch callable must return one torch"),
        (
            lambda: assert_backends_agree(abs, lambda x: np.abs(X), X),
            TypeError,
            "jax callable must return one jax array, got numpy.ndarray",
        ),
        (lambda: assert_backends_agree(abs, abs, X, cotangent=np.ones(3)), ValueError, "cotangent has shape"),
        (lambda: assert_backends_agree(abs, abs, X, cotangent="mean"), ValueError, "cotangent must be"),
        (lambda: assert_loss_agrees("no_such_loss", X), ValueError, "unknown loss"),
    ],
)
def test_bad_arguments_raise(env, call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- assert_loss_agrees on polyloss's own losses, inputs from the strategies ---------------------


@given(logits_and_targets(num_classes=4, batch=5))
def test_focal_agrees(env, case):
    logits, targets = case
    result = assert_loss_agrees("focal", logits, targets, gamma=2.0, alpha=0.25, reduction="none")
    assert set(result.values) == {"numpy", "torch", "jax"} and set(result.grads["jax"]) == {"logits"}


@given(logits_and_targets(num_classes=4, batch=5, ignore_index=-100))
def test_cross_entropy_with_ignored_targets_agrees(env, case):
    assert_loss_agrees("cross_entropy", *case, ignore_index=-100, label_smoothing=0.1)


@given(embeddings_and_labels(batch=6, dim=3, num_classes=2))
def test_triplet_agrees(env, case):
    embeddings, _ = case
    anchor, positive, negative = embeddings[:2], embeddings[2:4], embeddings[4:]
    result = assert_loss_agrees("triplet", anchor, positive, negative, margin=0.5, reduction="none")
    assert set(result.grads["torch"]) == {"anchor", "positive", "negative"}


@given(boxes(batch=4, min_size=1.0))
def test_giou_agrees(env, case):
    assert_loss_agrees("box_giou", *case, reduction="none")


def test_half_precision_skips_numpy_only_for_bfloat16(env):
    logits, targets = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), np.array([2, 1])
    half = assert_loss_agrees("cross_entropy", logits, targets, dtype="float16")
    assert set(half.values) == {"numpy", "torch", "jax"} and (half.rtol, half.atol) == (1e-2, 1e-4)
    brain = assert_loss_agrees("cross_entropy", logits, targets, dtype="bfloat16")
    assert set(brain.values) == {"torch", "jax"}


def test_a_broken_backend_is_named(env, monkeypatch):
    focal = polyloss.jax.focal
    monkeypatch.setattr(polyloss.jax, "focal", lambda *a, **k: focal(*a, **k) * 1.001)
    logits, targets = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), np.array([2, 1])
    with pytest.raises(AssertionError) as failure:
        assert_loss_agrees("focal", logits, targets)
    report = str(failure.value)
    assert report.startswith("polyloss focal disagrees across backends: 3 of 4 compared quantities disagree")
    assert "value (torch vs numpy): agrees" in report
    assert "value (jax vs numpy): DISAGREES" in report and "value (jax vs torch): DISAGREES" in report
    assert "gradient w.r.t. logits (input 0) (jax vs torch): DISAGREES" in report


# -- the strategies' guarantees (no framework involved) --------------------------------------------


@given(logits_and_targets(num_classes=(1, 4), batch=(1, 5), max_abs=7.0))
def test_logits_and_targets_guarantees(case):
    logits, targets = case
    assert logits.dtype == np.float64 and targets.dtype == np.int64
    n, c = logits.shape
    assert 1 <= n <= 5 and 1 <= c <= 4 and targets.shape == (n,)
    assert np.isfinite(logits).all() and np.abs(logits).max() <= 7.0
    assert ((logits == 0) | (np.abs(logits) >= testing.TINY)).all()  # no subnormal squares
    assert ((0 <= targets) & (targets < c)).all()


@pytest.mark.parametrize("ignore_index", [-100, 0, 2])
@given(data=st.data())
def test_ignore_index_keeps_one_target(ignore_index, data):
    logits, targets = data.draw(logits_and_targets(num_classes=(2, 3), batch=(1, 4), ignore_index=ignore_index))
    c = logits.shape[1]
    kept = targets[targets != ignore_index]
    assert kept.size >= 1 and ((0 <= kept) & (kept < c)).all()
    assert set(targets.tolist()) <= set(range(c)) | {ignore_index}


@given(embeddings_and_labels(batch=(2, 7), dim=(1, 4), num_classes=3, max_abs=2.0))
def test_embeddings_and_labels_guarantees(case):
    embeddings, labels = case
    n, d = embeddings.shape
    assert embeddings.dtype == np.float64 and labels.dtype == np.int64 and labels.shape == (n,)
    assert 2 <= n <= 7 and 1 <= d <= 4 and np.abs(embeddings).max() <= 2.0
    assert ((embeddings == 0) | (np.abs(embeddings) >= testing.TINY)).all()
    counts = np.bincount(labels, minlength=3)
    assert ((counts == 0) | (counts >= 2)).all() and counts.size == 3  # every label present has a positive
    if n >= 4:
        assert (counts > 0).sum() >= 2  # ... and a negative


@given(boxes(batch=(1, 5), max_coordinate=10.0, min_size=0.5))
def test_boxes_guarantees(case):
    pred, target = case
    assert pred.shape == target.shape and pred.shape[1] == 4 and 1 <= pred.shape[0] <= 5
    for b in (pred, target):
        assert b.dtype == np.float64 and np.isfinite(b).all()
        assert (b[:, 2] - b[:, 0] >= 0.5 - 1e-12).all() and (b[:, 3] - b[:, 1] >= 0.5 - 1e-12).all()
        assert (b[:, :2] >= 0).all() and (b[:, :2] <= 10.0).all()


@given(masks(batch=(1, 2), height=(1, 3), width=2, margin=0.01))
def test_masks_guarantees(case):
    probs, target = case
    assert probs.shape == target.shape and probs.shape[2] == 2 and probs.ndim == 3
    assert probs.dtype == target.dtype == np.float64
    assert ((0.01 <= probs) & (probs <= 0.99)).all()
    assert set(np.unique(target).tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("blank", [0, 2])
@given(data=st.data())
def test_ctc_batches_guarantees(blank, data):
    log_probs, targets, input_lengths, target_lengths = data.draw(
        ctc_batches(batch=(1, 3), frames=(1, 5), num_classes=(3, 5), max_target_length=4, blank=blank)
    )
    n, t, c = log_probs.shape
    assert targets.dtype == input_lengths.dtype == target_lengths.dtype == np.int64
    assert targets.shape[0] == n and 1 <= targets.shape[1] <= 4
    np.testing.assert_allclose(np.log(np.exp(log_probs).sum(-1)), 0.0, atol=1e-12)
    assert ((1 <= input_lengths) & (input_lengths <= t)).all()
    assert ((0 <= target_lengths) & (target_lengths <= targets.shape[1])).all()
    for i in range(n):
        labels = targets[i, : target_lengths[i]]
        assert ((0 <= labels) & (labels < c) & (labels != blank)).all()
        assert (targets[i, target_lengths[i] :] == blank).all()
        repeats = int((labels[1:] == labels[:-1]).sum())
        assert target_lengths[i] + repeats <= input_lengths[i]
    # feasible means a finite loss for every sample
    loss = polyloss.numpy.ctc(log_probs, targets, input_lengths, target_lengths, blank=blank, reduction="none")
    assert np.isfinite(loss).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: logits_and_targets(batch=0), "batch must be"),
        (lambda: logits_and_targets(num_classes=(3, 2)), "num_classes must be"),
        (lambda: logits_and_targets(num_classes=(1, 3), ignore_index=0), "num_classes must be >= 2"),
        (lambda: embeddings_and_labels(batch=1), "batch must be"),
        (lambda: boxes(min_size=-1.0), "min_size"),
        (lambda: masks(margin=0.5), "margin"),
        (lambda: ctc_batches(blank=3, num_classes=(2, 5)), "num_classes must be"),
    ],
)
def test_strategy_arguments_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("dtype, max_abs", [("float64", 1000.0), ("float32", 100.0)])
def test_hypothesis_finds_the_naive_port(doc, dtype, max_abs):
    """The doc's claim: saturated logits, which the strategy draws, expose the naive port."""
    from hypothesis import Phase, settings

    @settings(max_examples=40, phases=[Phase.generate], database=None)  # stops at the first failure
    @given(logits_and_targets(num_classes=3, batch=2, max_abs=max_abs))
    def check(case):
        assert_backends_agree(doc["FocalLoss"](), doc["focal_loss_naive"], *case, dtype=dtype)

    with pytest.raises(AssertionError, match=r"jax (inf|nan)"):
        check()
