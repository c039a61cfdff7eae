"""Test helpers for users porting models between PyTorch and JAX, or writing their own losses.

* :func:`assert_backends_agree` runs a torch callable and a JAX callable on the
  same NumPy inputs and checks that their outputs and their gradients agree,
  with per-dtype tolerances; a disagreement raises ``AssertionError`` with a
  report naming the output or gradient, the worst element, both values and the
  errors.
* :func:`assert_loss_agrees` does the same for a polyloss loss, across
  ``polyloss.numpy`` (values), ``polyloss.torch`` and ``polyloss.jax`` (values and
  gradients).
* :func:`logits_and_targets`, :func:`embeddings_and_labels`, :func:`boxes`,
  :func:`masks` and :func:`ctc_batches` are hypothesis strategies for typical loss
  inputs, each drawing small NumPy arrays with documented guarantees.

``import polyloss.testing`` imports neither torch, jax nor hypothesis, and changes no
process state: the frameworks are reached through ``polyloss.verify.harness`` when a
check first runs (JAX's float64 mode, ``jax_enable_x64``, is switched on for the
duration of each check and restored after it), and hypothesis when a strategy is
first built. They come with the ``test`` extra (``pip install "polyloss[test]"``).
See ``docs/testing.md``. The assertions live in :mod:`polyloss.verify.agreement`,
the strategies in :mod:`polyloss.verify.strategies`.
"""

from __future__ import annotations

from polyloss.verify.agreement import TOLERANCES, Agreement, assert_backends_agree, assert_loss_agrees
from polyloss.verify.strategies import TINY, boxes, ctc_batches, embeddings_and_labels, logits_and_targets, masks

__all__ = [
    "TINY",
    "TOLERANCES",
    "Agreement",
    "assert_backends_agree",
    "assert_loss_agrees",
    "boxes",
    "ctc_batches",
    "embeddings_and_labels",
    "logits_and_targets",
    "masks",
]
