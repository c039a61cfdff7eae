"""A user's script, as a type checker sees it: every family in torch, JAX and NumPy.

``mypy --strict examples/typed_usage.py`` reports nothing (``tests/test_typing.py`` runs it): the
namespaces' stubs (``polyloss/{torch,jax,numpy}.pyi``) give every loss its signature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

import polyloss.jax as pj
import polyloss.numpy as pn
import polyloss.torch as pt
import polyloss.torch.nn as pnn


def torch_losses() -> list[torch.Tensor]:
    logits, labels = torch.randn(8, 5), torch.randint(0, 5, (8,))
    pred, target = torch.randn(8, 3), torch.randn(8, 3)
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    embeddings = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)
    temperature = torch.nn.Parameter(torch.tensor(0.07))
    log_probs = torch.randn(2, 10, 5).log_softmax(-1)
    return [
        pt.mse(pred, target),
        pt.huber(pred, target, delta=0.5, reduction="sum"),
        pt.cross_entropy(logits, labels, label_smoothing=0.1, ignore_index=-100),
        pt.focal(logits, labels, gamma=2.0),
        pt.bce_with_logits(pred, (target > 0).float(), pos_weight=torch.tensor([2.0])),
        pt.kl_div(logits.log_softmax(-1), logits.softmax(-1)),
        pt.triplet(embeddings, embeddings.roll(1, 0), embeddings.roll(2, 0), margin=0.2),
        pt.infonce(embeddings, embeddings, temperature=temperature),
        pt.clip(embeddings, embeddings, logit_scale=torch.tensor(14.3)),
        pt.dice(pred.sigmoid(), (target > 0).float(), reduction="none"),
        pt.box_giou(boxes, boxes),
        pt.ctc(log_probs, torch.tensor([[1, 2], [3, 0]]), torch.tensor([10, 8]), torch.tensor([2, 1])),
        pt.gan_discriminator(pred[:, 0], target[:, 0]),
        pt.curriculum(pred[:, 0].abs(), torch.rand(8), progress=0.5),
        pt.dpo(-pred[:, 0].abs(), -pred[:, 1].abs(), -target[:, 0].abs(), -target[:, 1].abs(), loss_type="ipo"),
        pt.sequence_log_probs(pred[None], labels[None].clamp(max=2), ignore_index=-100),
        pnn.FocalLoss(gamma=2.0, reduction="sum")(logits, labels),
        pnn.CLIPLoss()(embeddings, embeddings),
        pnn.UncertaintyWeightingLoss(2)(torch.stack([pt.mse(pred, target), pt.mae(pred, target)])),
    ]


def jax_losses() -> list[jax.Array]:
    key = jax.random.key(0)
    logits = jax.random.normal(key, (8, 5))
    labels = jnp.arange(8) % 5
    step: jax.Array = jax.jit(lambda t: pj.infonce(logits, logits, temperature=t))(jnp.asarray(0.1))
    return [
        pj.cross_entropy(logits, labels),
        pj.sigmoid_focal(logits, (logits > 0).astype(jnp.float32), alpha=None),
        pj.nt_xent(logits, logits),
        pj.tversky(jax.nn.sigmoid(logits), (logits > 0).astype(jnp.float32), alpha=0.7, beta=0.3),
        pj.grpo(-jnp.abs(logits), -jnp.abs(logits), jnp.ones(8), logits > 0, loss_type="dr_grpo"),
        step,
    ]


def numpy_losses() -> list[np.ndarray]:
    pred, target = np.zeros((4, 3)), np.ones((4, 3))
    return [pn.mae(pred, target), pn.quantile(pred, target, q=0.9), pn.box_iou(np.ones((1, 4)), np.ones((1, 4)))]
