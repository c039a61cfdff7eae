"""polyloss losses for PyTorch tensors (autograd, torch.compile, torch.func.vmap).

Every loss of the catalogue, bound once to the torch backend. See
``python -m polyloss list`` and ``docs/`` for the catalogue.
"""

from polyloss._binding import export
from polyloss.backends.torch import BACKEND

__all__ = export(globals(), BACKEND)

# the same losses as torch.nn.Module classes (polyloss.torch.nn.FocalLoss), as torch.nn beside torch
from polyloss.torch import nn as nn
