"""The recipes of docs/recipes.md, executed and compared with the classes they replace.

The original classes (the SFT guide sft_loss_function.md, eunsu-park/study-hub lesson 24,
the "Loss Functions" interview-prep overview) are re-typed here (torch), so each recipe is checked against
independent code, values and gradients, in torch and (translated by swapping
the import) in JAX.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import HARNESSES, TORCH, close

from polyloss.verify.harness.base import Harness

RECIPES = (Path(__file__).parents[1] / "docs" / "recipes.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", RECIPES, flags=re.S)


def _recipe(name: str, framework: str):
    """The function ``name`` defined by a docs block, with ``polyloss.<framework>`` as ``pl``."""
    block = next(b for b in BLOCKS if f"def {name}(" in b)
    block = re.sub(r"import polyloss\.\w+ as pl", f"import polyloss.{framework} as pl", block)
    scope: dict = {}
    exec(compile(block, "docs/recipes.md", "exec"), scope)
    return scope[name]


# -- the original classes, re-typed --------------------------------------------------------


class SftGuideFocalLoss(nn.Module):  # the SFT guide (sft_loss_function.md)
    def __init__(self, alpha=1, gamma=2, reduction="mean"):
        super().__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction

    def forward(self, inputs, targets):
        BCE_loss = F.cross_entropy(inputs, targets, reduction="none")
        pt = torch.exp(-BCE_loss)
        F_loss = self.alpha * (1 - pt) ** self.gamma * BCE_loss
        return F_loss.mean()


class SftGuideCompositeLoss(nn.Module):  # the SFT guide (sft_loss_function.md)
    def __init__(self, alpha=1, gamma=2, cls_weight=1.0, bbox_weight=1.0):
        super().__init__()
        self.focal_loss = SftGuideFocalLoss(alpha, gamma, reduction="mean")
        self.cls_weight, self.bbox_weight = cls_weight, bbox_weight

    def forward(self, cls_preds, cls_targets, bbox_preds, bbox_targets):
        cls_loss = self.focal_loss(cls_preds, cls_targets)
        bbox_loss = F.smooth_l1_loss(bbox_preds, bbox_targets, reduction="mean")
        return self.cls_weight * cls_loss + self.bbox_weight * bbox_loss


class SftGuideMultiTaskLoss(nn.Module):  # the SFT guide (sft_loss_function.md)
    def __init__(self, cls_weight=1.0, reg_weight=1.0, aux_weight=1.0):
        super().__init__()
        self.cls_weight, self.reg_weight, self.aux_weight = cls_weight, reg_weight, aux_weight

    def forward(self, cls_preds, cls_targets, reg_preds, reg_targets, aux_preds, aux_targets):
        cls_loss = F.cross_entropy(cls_preds, cls_targets)
        reg_loss = F.mse_loss(reg_preds, reg_targets)
        aux_loss = F.mse_loss(aux_preds, aux_targets)
        return self.cls_weight * cls_loss + self.reg_weight * reg_loss + self.aux_weight * aux_loss


class StudyHubMultiTaskLoss(nn.Module):  # study-hub (eunsu-park/study-hub), lesson 24, section 7.1
    def __init__(self, num_tasks):
        super().__init__()
        self.log_vars = nn.Parameter(torch.zeros(num_tasks, dtype=torch.float64))

    def forward(self, losses):
        total_loss = 0
        for i, loss in enumerate(losses):
            precision = torch.exp(-self.log_vars[i])
            total_loss += precision * loss + self.log_vars[i]
        return total_loss


class InterviewPrepCustomLoss(nn.Module):  # the "Loss Functions" interview-prep overview
    def __init__(self, weight=1.0):
        super().__init__()
        self.weight = weight

    def forward(self, pred, target):
        mse_loss = torch.mean((pred - target) ** 2)
        l1_loss = torch.mean(torch.abs(pred - target))
        return mse_loss + self.weight * l1_loss


# -- helpers ------------------------------------------------------------------------------


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    return {
        "cls_preds": rng.normal(size=(6, 4)) * 2,
        "cls_targets": rng.integers(0, 4, size=6),
        "bbox_preds": rng.normal(size=(6, 4)),
        "bbox_targets": rng.normal(size=(6, 4)),
        "reg_preds": rng.normal(size=(6, 1)),
        "reg_targets": rng.normal(size=(6, 1)),
        "aux_preds": rng.normal(size=(6, 3)),
        "aux_targets": rng.normal(size=(6, 3)),
    }


def _value_and_grad(
    harness: Harness, fn: Callable[..., Any], arrays: dict[str, np.ndarray], wrt: str
) -> tuple[np.ndarray, np.ndarray]:
    """``fn(**arrays)`` and its gradient with respect to ``arrays[wrt]``, by the harness's autodiff."""
    names = list(arrays)
    value, (grad,) = harness.value_and_grad(
        lambda *xs: fn(**dict(zip(names, xs, strict=True))),
        [harness.asarray(arrays[k]) for k in names],
        (names.index(wrt),),
    )
    return value, grad


def _close(a: Any, b: Any) -> None:
    close(a, b, rtol=1e-10, atol=1e-12)


def test_every_block_is_exercised():
    names = [re.search(r"def (\w+)\(", b).group(1) for b in BLOCKS]
    assert names == ["composite_loss", "multi_task_loss", "learned_multi_task_loss", "mse_plus_l1"]


# -- the recipes against the originals ---------------------------------------------------------------


@pytest.mark.parametrize("framework", ["torch", "jax"])
@pytest.mark.parametrize("seed", [0, 1])
def test_composite_loss_equals_sft_guide(env, framework, seed):
    arrays = {k: _inputs(seed)[k] for k in ("cls_preds", "cls_targets", "bbox_preds", "bbox_targets")}
    params = {"alpha": 0.5, "gamma": 2.0, "cls_weight": 1.5, "bbox_weight": 0.7}
    original = SftGuideCompositeLoss(**params)
    recipe = _recipe("composite_loss", framework)
    for wrt in ("cls_preds", "bbox_preds"):
        expected = _value_and_grad(TORCH, original, arrays, wrt)
        got = _value_and_grad(HARNESSES[framework], lambda **a: recipe(**a, **params), arrays, wrt)
        _close(got[0], expected[0])
        _close(got[1], expected[1])


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_multi_task_loss_equals_sft_guide(env, framework):
    arrays = _inputs(2)
    arrays.pop("bbox_preds"), arrays.pop("bbox_targets")
    params = {"cls_weight": 1.0, "reg_weight": 0.3, "aux_weight": 2.0}
    original = SftGuideMultiTaskLoss(**params)
    recipe = _recipe("multi_task_loss", framework)
    for wrt in ("cls_preds", "reg_preds", "aux_preds"):
        expected = _value_and_grad(TORCH, original, arrays, wrt)
        got = _value_and_grad(HARNESSES[framework], lambda **a: recipe(**a, **params), arrays, wrt)
        _close(got[0], expected[0])
        _close(got[1], expected[1])


def test_learned_multi_task_loss_equals_study_hub(env):
    arrays = _inputs(3)
    log_vars = np.array([0.3, -0.2])
    original = StudyHubMultiTaskLoss(2)
    with torch.no_grad():
        original.log_vars.copy_(torch.tensor(log_vars))
    losses = [
        F.cross_entropy(torch.tensor(arrays["cls_preds"]), torch.tensor(arrays["cls_targets"])),
        F.mse_loss(torch.tensor(arrays["reg_preds"]), torch.tensor(arrays["reg_targets"])),
    ]
    expected = original(losses)
    expected.backward()
    recipe = _recipe("learned_multi_task_loss", "jax")
    args = [jnp.asarray(arrays[k]) for k in ("cls_preds", "cls_targets", "reg_preds", "reg_targets")]
    value, grad = jax.value_and_grad(recipe)(jnp.asarray(log_vars), *args)
    _close(float(value), expected.item())
    _close(np.asarray(grad), original.log_vars.grad.numpy())


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_mse_plus_l1_equals_interview_prep(env, framework):
    rng = np.random.default_rng(4)
    arrays = {"pred": rng.normal(size=(5, 3)), "target": rng.normal(size=(5, 3))}
    expected = _value_and_grad(TORCH, InterviewPrepCustomLoss(weight=0.4), arrays, "pred")
    recipe = _recipe("mse_plus_l1", framework)
    got = _value_and_grad(HARNESSES[framework], lambda **a: recipe(**a, weight=0.4), arrays, "pred")
    _close(got[0], expected[0])
    _close(got[1], expected[1])
