"""The upstream behaviours the family pages name where polyloss chooses differently on purpose
(``polyloss/core/<family>.py``'s "Conventions"), checked against the installed torch so that the
pages stay true, each beside polyloss's own answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import MODULES

pt = MODULES["torch"]


def test_empty_batch_means_are_nan_in_torch_and_0_in_polyloss():
    empty, labels = torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
    assert math.isnan(float(F.mse_loss(empty, empty))) and float(pt.mse(empty, empty)) == 0.0
    assert math.isnan(float(F.cross_entropy(empty, labels))) and float(pt.cross_entropy(empty, labels)) == 0.0
    assert math.isnan(float(F.triplet_margin_loss(empty, empty, empty)))
    assert float(pt.triplet(empty, empty, empty)) == 0.0


def test_kl_div_of_a_zero_probability_against_minus_inf_is_nan_in_torch_and_0_in_polyloss():
    log_q, p = torch.tensor([[0.0, -math.inf]]), torch.tensor([[1.0, 0.0]])
    assert math.isnan(float(F.kl_div(log_q, p, reduction="batchmean")))
    assert float(pt.kl_div(log_q, p)) == 0.0


def test_torch_broadcasts_predictions_and_polyloss_refuses():
    column, flat = torch.zeros(4, 1), torch.ones(4)
    with pytest.warns(UserWarning, match="different to the input size"):
        assert float(F.mse_loss(column, flat)) == 1.0  # a (4, 4) matrix of differences
    try:
        pt.mse(column, flat)
    except ValueError as error:
        assert "never broadcasts" in str(error)
    else:
        raise AssertionError("polyloss.torch.mse broadcast (4, 1) against (4,)")


def test_torch_refuses_integer_binary_targets_and_polyloss_reads_them_as_0_and_1():
    logits, target = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1, 0, 1])
    try:
        F.binary_cross_entropy_with_logits(logits, target)
    except RuntimeError:
        pass
    else:
        raise AssertionError("torch now takes integer targets: update the classification page")
    expected = F.binary_cross_entropy_with_logits(logits, target.float())
    assert float(pt.bce_with_logits(logits, target)) == pytest.approx(float(expected), rel=1e-6)


def test_cosine_embedding_zero_vector_slope_is_huge_in_torch_and_0_in_polyloss():
    for loss in (F.cosine_embedding_loss, pt.cosine_embedding):
        x = torch.zeros(1, 3, requires_grad=True)
        loss(x, torch.ones(1, 3), torch.tensor([1.0])).backward()
        assert x.grad is not None
        slope = float(x.grad.abs().max())
        assert slope > 1e5 if loss is F.cosine_embedding_loss else slope == 0.0


def test_an_integer_mask_is_a_mask_in_the_dice_family():
    pred = torch.tensor([[0.9, 0.2], [0.1, 0.7]])
    mask = np.array([[1, 0], [0, 1]])
    as_float = pt.dice(pred, torch.as_tensor(mask, dtype=torch.float32))
    for dtype in (torch.int64, torch.uint8, torch.bool):
        assert float(pt.dice(pred, torch.as_tensor(mask).to(dtype))) == float(as_float)


def test_nchw_logits_without_axis_1_get_the_fix_in_the_message():
    with pytest.raises(ValueError, match=r"torch's \(N, C, \.\.\.\) layout, classes on axis 1: pass axis=1"):
        pt.cross_entropy(torch.randn(2, 3, 4, 5), torch.zeros(2, 4, 5, dtype=torch.long))
    # with axis=1 it is torch's loss
    logits, target = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    assert float(pt.cross_entropy(logits, target, axis=1)) == pytest.approx(float(F.cross_entropy(logits, target)))


def test_time_first_ctc_inputs_get_the_fix_in_the_message():
    log_probs = torch.randn(10, 2, 5).log_softmax(-1)  # torch's (T, N, C)
    targets, lengths = torch.tensor([[1, 2], [3, 1]]), torch.tensor([10, 10])
    with pytest.raises(ValueError, match=r"time-first, torch's \(T, N, C\) layout; polyloss.ctc takes \(N, T, C\)"):
        pt.ctc(log_probs, targets, lengths, torch.tensor([2, 2]))
    expected = F.ctc_loss(log_probs, targets, lengths, torch.tensor([2, 2]), reduction="sum")
    got = pt.ctc(log_probs.transpose(0, 1), targets, lengths, torch.tensor([2, 2]), reduction="sum")
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
