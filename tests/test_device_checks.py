"""No hidden device synchronisation: on an accelerator, value checks give way to the documented NaN
unless ``polyloss.checks(values=True)`` asks for them.

This machine has no accelerator, so the torch backend is told that CPU tensors are not on the host
(``polyloss.backends.torch._on_host``), and every way a tensor's values reach Python (``bool``,
``float``, ``int``, ``item``, ``tolist``) is made to fail: every loss of the catalogue then runs its
spec's first case without reading a value, and an invalid label gives NaN rather than a
``ValueError``; inside ``polyloss.checks(values=True)`` the same label raises again.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from helpers import MODULES

import polyloss
import polyloss.backends.torch as torch_backend
from polyloss.core import CORE_LOSSES
from polyloss.core._checks import accelerator_values_checked
from polyloss.verify.specs import SPECS

pt = MODULES["torch"]
_HOST_READS = ("__bool__", "__float__", "__int__", "item", "tolist")


@pytest.fixture
def on_an_accelerator(monkeypatch):
    """CPU tensors treated as device tensors, and reading their values on the host an error."""
    monkeypatch.setattr(torch_backend, "_on_host", lambda x: False)
    yield


def _args(loss: str) -> tuple[list[object], dict[str, object]]:
    case = SPECS[loss].variants[0].make(np.random.default_rng(0), 3)
    positional = [
        p.name
        for p in list(inspect.signature(CORE_LOSSES[loss]).parameters.values())[1:]
        if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    values = {k: torch.as_tensor(v) for k, v in case.arrays.items()} | case.params
    args = [values[p] for p in positional if p in values]
    return args, {k: v for k, v in values.items() if k not in positional}


@pytest.mark.parametrize("loss", list(CORE_LOSSES))
def test_no_loss_reads_device_values_by_default(on_an_accelerator, loss):
    args, kwargs = _args(loss)
    with pytest.MonkeyPatch.context() as patch:
        for name in _HOST_READS:
            patch.setattr(torch.Tensor, name, _refuse)
        out = getattr(pt, loss)(*args, **kwargs, reduction="none" if "none" in CORE_LOSSES[loss].reductions else "sum")
    assert isinstance(out, torch.Tensor)


def _refuse(self, *args, **kwargs):
    raise AssertionError("a tensor's values were read on the host (a device synchronisation on an accelerator)")


def test_an_invalid_label_on_a_device_is_nan_unless_checks_are_asked_for(on_an_accelerator):
    logits, labels = torch.randn(3, 4), torch.tensor([0, 7, 2])
    per_sample = pt.cross_entropy(logits, labels, reduction="none")
    assert math.isnan(per_sample[1].tolist()) and not math.isnan(per_sample[0].tolist())
    with polyloss.checks(values=True):
        assert accelerator_values_checked()
        with pytest.raises(ValueError, match=r"class index 7, outside \[0, 4\)"):
            pt.cross_entropy(logits, labels)
    assert not accelerator_values_checked()  # restored on leaving the block


def test_host_arrays_are_always_checked():
    with pytest.raises(ValueError, match=r"class index 7"):
        pt.cross_entropy(torch.randn(3, 4), torch.tensor([0, 7, 2]))


def test_an_invalid_hyperparameter_tensor_on_a_device_is_nan(on_an_accelerator):
    x = torch.randn(4, 3)
    assert math.isnan(pt.infonce(x, x, temperature=torch.tensor(-1.0)).tolist())
    with polyloss.checks(values=True), pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        pt.infonce(x, x, temperature=torch.tensor(-1.0))
