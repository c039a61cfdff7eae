"""polyloss losses as ``torch.nn.Module`` classes: ``criterion = FocalLoss(gamma=2.0)``, then
``criterion(logits, target)``.

One class per loss of :mod:`polyloss.torch`, generated from the same registry (the names follow
``torch.nn``: ``cross_entropy`` -> ``CrossEntropyLoss``, ``bce_with_logits`` -> ``BCEWithLogitsLoss``,
``box_giou`` -> ``BoxGIoULoss``). The constructor takes the loss's keyword-only parameters (its
hyper-parameters and ``reduction``); ``forward`` takes its arrays, and keyword arguments that
override the constructor's for one call (a per-batch ``weight``, a scheduled ``progress``).

* Names are checked at construction (an unknown keyword is a ``TypeError`` there, as for
  ``nn.CrossEntropyLoss``), and so are ``reduction`` and every hyper-parameter whose check the
  loss declares (``gamma >= 0``, ``temperature > 0``, a label smoothing in [0, 1]: the
  ``settings`` of its ``@loss`` registration), with the function's messages. Checks that need
  the arrays (a class-weight vector's length against the logits') run on each call.
* Tensors given to the constructor are registered: ``nn.Parameter`` s as parameters (learnable),
  other tensors (class weights, ``pos_weight``) as buffers, so they follow ``.to(device)`` and
  ``state_dict``.
* The losses that learn a parameter hold it with its paper's initialisation: ``CLIPLoss`` a
  ``logit_scale`` (stored as its log, ``log(1 / 0.07)``, and exponentiated, as open_clip does),
  ``SigLIPLoss`` a ``logit_scale`` (log, ``log(10)``) and a ``logit_bias`` (``-10``), Zhai et al. 2023;
  ``UncertaintyWeightingLoss(num_tasks)`` the tasks' log-variances (zeros), Kendall et al. 2018.
  Passing a number instead fixes it.

JAX users keep the functions of :mod:`polyloss.jax` (optax's convention: losses are pure functions).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

import polyloss.torch as functions
from polyloss.backends.torch import BACKEND
from polyloss.core import CORE_LOSSES
from polyloss.core._checks import check_reduction

#: parts of a loss's name written as torch writes them in its class names
_ACRONYMS = {
    "arcface": "ArcFace",
    "bce": "BCE",
    "ce": "CE",
    "ciou": "CIoU",
    "clip": "CLIP",
    "cosface": "CosFace",
    "ctc": "CTC",
    "cpo": "CPO",
    "diou": "DIoU",
    "dpo": "DPO",
    "gan": "GAN",
    "giou": "GIoU",
    "grpo": "GRPO",
    "infonce": "InfoNCE",
    "iou": "IoU",
    "js": "JS",
    "jsd": "JSD",
    "kl": "KL",
    "kto": "KTO",
    "l1": "L1",
    "listmle": "ListMLE",
    "mae": "MAE",
    "mape": "MAPE",
    "mse": "MSE",
    "msle": "MSLE",
    "multilabel": "MultiLabel",
    "nll": "NLL",
    "nt": "NT",
    "orpo": "ORPO",
    "siglip": "SigLIP",
    "simpo": "SimPO",
    "supcon": "SupCon",
    "vae": "VAE",
    "wgan": "WGAN",
}

#: learnable parameters of a loss: name -> (initial value, stored as a log and exponentiated)
_LEARNED: dict[str, dict[str, tuple[float, bool]]] = {
    "clip": {"logit_scale": (math.log(1 / 0.07), True)},
    "siglip": {"logit_scale": (math.log(10.0), True), "logit_bias": (-10.0, False)},
}


def class_name(loss: str) -> str:
    """``focal`` -> ``FocalLoss``, ``bce_with_logits`` -> ``BCEWithLogitsLoss``."""
    return "".join(_ACRONYMS.get(part, part.capitalize()) for part in loss.split("_")) + "Loss"


class PolylossLoss(torch.nn.Module):
    """The base of every class here: configuration in the constructor, arrays in ``forward``."""

    loss_name = ""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        fn = getattr(functions, self.loss_name)
        keywords = [p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
        unknown = sorted(set(config) - set(keywords))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"it takes {', '.join(keywords)}"
            )
        core = CORE_LOSSES[self.loss_name]
        if "reduction" in config:
            check_reduction(config["reduction"], core.reductions)
        core.check_settings(config, BACKEND)  # a bad value fails here, not at the first call
        self._fn: Callable[..., torch.Tensor] = fn
        self._settings: dict[str, Any] = {}  # the keyword arguments that are not tensors
        self._exponentiated: set[str] = set()
        for name, (initial, as_log) in _LEARNED.get(self.loss_name, {}).items():
            if name not in config:
                config[name] = torch.nn.Parameter(torch.tensor(initial))
                if as_log:
                    self._exponentiated.add(name)
        for name, value in config.items():
            if isinstance(value, torch.nn.Parameter):
                self.register_parameter(name, value)
            elif isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
            else:
                self._settings[name] = value

    def _keywords(self) -> dict[str, Any]:
        tensors = dict(self.named_parameters(recurse=False)) | dict(self.named_buffers(recurse=False))
        learned = {name: (value.exp() if name in self._exponentiated else value) for name, value in tensors.items()}
        return self._settings | learned

    def forward(self, *arrays: torch.Tensor, **overrides: Any) -> torch.Tensor:
        return self._fn(*arrays, **(self._keywords() | overrides))

    def extra_repr(self) -> str:
        """Every keyword-only parameter with its value (``FocalLoss(gamma=2.0, alpha=0.25,
        reduction='mean')``), tensors by their role and shape."""
        tensors = dict(self.named_parameters(recurse=False)) | dict(self.named_buffers(recurse=False))
        shown = []
        for param in inspect.signature(self._fn).parameters.values():
            if param.kind is not param.KEYWORD_ONLY:
                continue
            if param.name in tensors:
                value = tensors[param.name]
                role = "learnable" if value.requires_grad else "buffer"
                role = f"{role} log" if param.name in self._exponentiated else role
                shown.append(f"{param.name}=<{role} {tuple(value.shape)}>")
            elif param.name in self._settings or param.default is not param.empty:
                shown.append(f"{param.name}={self._settings.get(param.name, param.default)!r}")
        return ", ".join(shown)


class UncertaintyWeightingLoss(PolylossLoss):
    """Kendall et al. 2018's weighting of ``num_tasks`` task losses, with their learnable
    log-variances (zeros at the start): ``forward(losses)`` with ``losses`` of shape ``(num_tasks,)``."""

    loss_name = "uncertainty_weighting"

    def __init__(self, num_tasks: int, **config: Any) -> None:
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be an int >= 1, got {num_tasks!r}")
        super().__init__(**config)
        self.log_vars = torch.nn.Parameter(torch.zeros(num_tasks))

    def forward(self, *arrays: torch.Tensor, **overrides: Any) -> torch.Tensor:
        (losses,) = arrays
        return self._fn(losses, self.log_vars, **(self._settings | overrides))

    def extra_repr(self) -> str:
        return ", ".join([f"num_tasks={self.log_vars.shape[0]}", *(f"{k}={v!r}" for k, v in self._settings.items())])


def _loss_class(loss: str) -> type[PolylossLoss]:
    fn = getattr(functions, loss)
    summary = (inspect.getdoc(fn) or "").split("\n", 1)[0]
    doc = f"{summary}\n\n``forward`` calls :func:`polyloss.torch.{loss}`; see its documentation."
    return type(class_name(loss), (PolylossLoss,), {"loss_name": loss, "__doc__": doc, "__module__": __name__})


def _export() -> list[str]:
    names = []
    for loss in CORE_LOSSES:
        name = class_name(loss)
        if name not in globals():
            globals()[name] = _loss_class(loss)
        names.append(name)
    return names


__all__ = ["PolylossLoss", "class_name", *_export()]
