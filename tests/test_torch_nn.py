"""``polyloss.torch.nn``: one ``nn.Module`` class per loss, generated from the registry.

Every class, on its spec's first case: ``forward`` equals the function with the same keyword
arguments (given to the constructor); configuration errors fail at construction; tensors are
registered (buffers follow ``state_dict``, parameters learn); the learnable losses start from their
papers' values; the modules compile with ``fullgraph=True``.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from helpers import MODULES, close

import polyloss.torch.nn as nn
from polyloss.core import CORE_LOSSES
from polyloss.core._checks import (
    Setting,
    check_bool,
    check_choice,
    check_finite,
    check_interval,
    check_nonnegative,
    check_positive,
)
from polyloss.verify.specs import SPECS

pt = MODULES["torch"]


def _case(loss: str) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], dict[str, object]]:
    """The spec's first case: positional arrays, keyword arrays, other parameters."""
    case = SPECS[loss].variants[0].make(np.random.default_rng(0), 3)
    positional = [
        p.name
        for p in list(inspect.signature(CORE_LOSSES[loss]).parameters.values())[1:]
        if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    tensors = {k: torch.as_tensor(v) for k, v in case.arrays.items()}
    args = [tensors[p] if p in tensors else case.params[p] for p in positional if p in tensors or p in case.params]
    keyword_arrays = {k: v for k, v in tensors.items() if k not in positional}
    params = {k: v for k, v in case.params.items() if k not in positional}
    return args, keyword_arrays, params


def test_every_loss_has_a_class():
    assert {nn.class_name(loss) for loss in CORE_LOSSES} <= set(nn.__all__)
    assert nn.class_name("bce_with_logits") == "BCEWithLogitsLoss" and nn.class_name("box_giou") == "BoxGIoULoss"
    assert nn.class_name("cross_entropy") == "CrossEntropyLoss" and nn.class_name("nt_xent") == "NTXentLoss"


@pytest.mark.parametrize("loss", [name for name in CORE_LOSSES if name != "uncertainty_weighting"])
def test_forward_equals_the_function(loss):
    args, keyword_arrays, params = _case(loss)
    keywords = {k: v for k, v in params.items() if k != "critic"} | keyword_arrays
    criterion = getattr(nn, nn.class_name(loss))(**keywords)
    if loss in ("clip", "siglip"):  # learnable by default: pass the function the same values
        fixed = {
            name: float(p.exp()) if name == "logit_scale" else float(p) for name, p in criterion.named_parameters()
        }
        expected = getattr(pt, loss)(*args, **keywords, **fixed)
    else:
        expected = getattr(pt, loss)(*args, **keywords)
    close(criterion(*args).detach(), expected.detach().numpy(), rtol=1e-6, atol=1e-9)


def test_configuration_errors_fail_at_construction():
    with pytest.raises(TypeError, match=r"FocalLoss got unexpected keyword argument\(s\) gama; it takes gamma"):
        nn.FocalLoss(gama=2.0)
    with pytest.raises(ValueError, match=r"reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"num_tasks must be an int >= 1, got 0"):
        nn.UncertaintyWeightingLoss(0)


def _invalid(setting: Setting) -> object:
    """A value the declared check refuses, by its kind."""
    check, args, kwargs = setting.check, setting.args, dict(setting.kwargs)
    if check is check_positive:
        return 0.0
    if check is check_nonnegative:
        return -1.0
    if check is check_interval:
        return args[1] + 1.0
    if check is check_finite:
        return math.nan if kwargs.get("minimum", -math.inf) == -math.inf else kwargs["minimum"] - 1.0
    if check is check_bool:
        return "yes"
    if check is check_choice:
        return "bogus"
    raise AssertionError(f"no invalid value known for {check.__name__}")


DECLARED = [(loss, name) for loss, core in CORE_LOSSES.items() for name in core.settings]


def test_every_number_and_flag_setting_is_declared():
    """Every keyword-only hyper-parameter whose default is a number or a flag has its check declared
    (so nn validates it at construction); those that need the arrays (a class-weight vector) have
    other defaults."""
    undeclared = [
        (loss, p.name)
        for loss, core in CORE_LOSSES.items()
        for p in inspect.signature(core).parameters.values()
        if p.kind is p.KEYWORD_ONLY
        and p.name != "reduction"
        and (isinstance(p.default, (bool, float, str)))
        and p.name not in core.settings
    ]
    assert not undeclared


@pytest.mark.parametrize("loss,name", DECLARED, ids=[f"{loss}.{name}" for loss, name in DECLARED])
def test_a_bad_setting_fails_at_construction_with_the_functions_message(loss, name):
    bad = _invalid(CORE_LOSSES[loss].settings[name])
    cls = getattr(nn, nn.class_name(loss))
    with pytest.raises((ValueError, TypeError), match=rf"^{name} must") as at_construction:
        cls(**{name: bad}) if loss != "uncertainty_weighting" else cls(2, **{name: bad})
    args, keyword_arrays, params = _case(loss)
    with pytest.raises(type(at_construction.value)) as at_call:  # the function says the same
        getattr(pt, loss)(*args, **(keyword_arrays | params | {name: bad}))
    assert str(at_call.value) == str(at_construction.value)


def test_a_bad_array_setting_fails_at_construction_too():
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got -1.0 \(a 0-d array\)"):
        nn.InfoNCELoss(temperature=torch.nn.Parameter(torch.tensor(-1.0)))


def test_repr_shows_the_configuration():
    assert repr(nn.FocalLoss(gamma=2.0, alpha=0.25)) == (
        "FocalLoss(gamma=2.0, alpha=0.25, axis=-1, ignore_index=None, label_smoothing=0.0, reduction='mean')"
    )
    assert "weight=<buffer (3,)>" in repr(nn.CrossEntropyLoss(weight=torch.ones(3)))


def test_tensors_are_buffers_or_parameters_and_round_trip_through_state_dict():
    weights = torch.tensor([1.0, 2.0, 3.0])
    criterion = nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    assert list(dict(criterion.named_buffers())) == ["weight"] and not list(criterion.parameters())
    restored = nn.CrossEntropyLoss(weight=torch.zeros(3), label_smoothing=0.1)
    restored.load_state_dict(criterion.state_dict())
    logits, target = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    close(restored(logits, target), criterion(logits, target).numpy())
    temperature = torch.nn.Parameter(torch.tensor(0.2))
    infonce = nn.InfoNCELoss(temperature=temperature)
    assert list(infonce.parameters()) == [temperature]
    infonce(torch.randn(4, 3), torch.randn(4, 3)).backward()
    assert temperature.grad is not None and temperature.grad.item() != 0.0


def test_learnable_losses_start_from_their_papers_values():
    clip = nn.CLIPLoss()
    assert clip.logit_scale.item() == pytest.approx(math.log(1 / 0.07))  # open_clip: exp() in forward
    siglip = nn.SigLIPLoss()
    assert siglip.logit_scale.item() == pytest.approx(math.log(10.0)) and siglip.logit_bias.item() == -10.0
    images, texts = torch.randn(4, 3), torch.randn(4, 3)
    clip(images, texts).backward()
    assert clip.logit_scale.grad is not None
    assert not list(nn.CLIPLoss(logit_scale=14.3).parameters())  # a number fixes it
    weighting = nn.UncertaintyWeightingLoss(3)
    losses = torch.tensor([1.0, 2.0, 3.0])
    close(weighting(losses), pt.uncertainty_weighting(losses, torch.zeros(3)).detach().numpy())
    weighting(losses).backward()
    close(weighting.log_vars.grad, 1.0 - losses.numpy())  # d/ds (e^-s L + s) at s = 0


def test_forward_keywords_override_the_constructor_for_one_call():
    criterion = nn.CurriculumLoss(progress=0.5)
    losses, difficulty = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.1, 0.6, 0.9])
    close(criterion(losses, difficulty, progress=1.0), pt.curriculum(losses, difficulty, progress=1.0).numpy())
    close(criterion(losses, difficulty), pt.curriculum(losses, difficulty, progress=0.5).numpy())


@pytest.mark.parametrize("cls", ["FocalLoss", "CLIPLoss", "HuberLoss"])
def test_modules_compile_with_fullgraph(cls):
    criterion = getattr(nn, cls)()
    compiled = torch.compile(criterion, fullgraph=True)
    if cls == "FocalLoss":
        args = (torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    else:
        args = (torch.randn(4, 3), torch.randn(4, 3))
    close(compiled(*args).detach(), criterion(*args).detach().numpy(), rtol=1e-5, atol=1e-6)
