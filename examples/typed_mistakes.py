"""Mistakes a type checker must catch with polyloss's stubs (``tests/test_typing.py`` runs
``mypy --strict`` on this file): each marked line must be reported with the error code it names,
and no other line."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

import polyloss.jax as pj
import polyloss.numpy as pn
import polyloss.torch as pt
import polyloss.torch.nn as pnn

logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])

pt.focal(logits, labels, gama=2.0)  # error: call-arg
pt.cross_entropy(logits, labels, reduction="avg")  # error: arg-type
pt.focall(logits, labels)  # error: attr-defined
pt.mse(np.zeros(3), np.zeros(3))  # error: arg-type
pj.cross_entropy(jnp.zeros((4, 3)), jnp.zeros(4, dtype=jnp.int32), group=None, axis=1)  # error: call-arg
pt.infonce(logits, logits, 0.1)  # error: call-arg
penalty = pn.gradient_penalty  # error: attr-defined
not_a_tensor: int = pt.mae(logits, logits)  # error: assignment
criterion = pnn.FocalLoss(gama=2.0)  # error: call-arg
ranked = pnn.CrossEntropyLoss(reduction="avg")  # error: arg-type
pnn.FocalLoss()(logits)  # error: call-arg
not_a_float: float = pnn.MSELoss()(logits, logits)  # error: assignment
