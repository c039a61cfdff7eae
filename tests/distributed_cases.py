"""The distributed contrastive cases, shared by the torch and JAX workers and the tests that read
their results (``tests/test_distributed_contrastive.py``).

Every case is a loss call on a global batch of ``world * LOCAL`` pairs; a device holds rows
``rank * LOCAL ... (rank + 1) * LOCAL - 1`` of each input. A worker writes, per world size, case and
rank, the loss it returned and the gradients of (the sum of) that output with respect to its local
inputs and to the hyper-parameters given as arrays; the test compares them with the single-device
loss of the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOCAL = 3  # rows per device
DIM = 5
TORCH_WORLDS = (2, 4)
JAX_WORLDS = (2, 4, 8)
REDUCTIONS = ("mean", "sum", "none")
CONTENTS = ("random", "uneven")


@dataclass(frozen=True)
class Case:
    """One loss call: its keyword hyper-parameters, and those given as learnable 0-d arrays."""

    loss: str
    inputs: tuple[str, str]
    params: dict[str, Any] = field(default_factory=dict)
    learnable: dict[str, float] = field(default_factory=dict)
    label: str = ""
    labelled: bool = False  # also pass ``labels``: global_labels(world), sharded as the rows

    @property
    def name(self) -> str:
        return self.label or self.loss


CASES = (
    Case("clip", ("image_emb", "text_emb"), learnable={"logit_scale": 2.5}),
    Case("clip", ("image_emb", "text_emb"), {"logit_scale": 1.7, "normalize": False}, label="clip-unnormalized"),
    Case("siglip", ("image_emb", "text_emb"), learnable={"logit_scale": 3.0, "logit_bias": -1.0}, label="siglip-ring"),
    Case(
        "siglip",
        ("image_emb", "text_emb"),
        {"exchange": "all_gather"},
        learnable={"logit_scale": 3.0, "logit_bias": -1.0},
        label="siglip-all_gather",
    ),
    Case("clip", ("image_emb", "text_emb"), {"chunk_size": 2}, learnable={"logit_scale": 2.5}, label="clip-chunked"),
    Case("infonce", ("query", "key"), {"temperature": 0.3}),
    Case("infonce", ("query", "key"), {"temperature": 0.3, "chunk_size": 2}, label="infonce-chunked"),
    Case("nt_xent", ("z1", "z2"), {"temperature": 0.5}),
    Case("nt_xent", ("z1", "z2"), {"temperature": 0.5}, label="nt_xent-labels", labelled=True),
)


def global_labels(world: int) -> np.ndarray:
    """``(world * LOCAL,)`` labels cycling through 3 values: each sample's positives sit on other devices too."""
    return np.arange(world * LOCAL, dtype=np.int64) % 3


def global_batch(world: int, content: str) -> tuple[np.ndarray, np.ndarray]:
    """The two ``(world * LOCAL, DIM)`` float64 inputs. ``"uneven"``: a zero row on the last device,
    and the first row duplicated on the last device (an exact tie between two negatives)."""
    rng = np.random.default_rng(world * 10 + CONTENTS.index(content))
    a, b = rng.normal(size=(2, world * LOCAL, DIM))
    if content == "uneven":
        a[-1] = 0.0
        b[-2] = b[0]
        a[-2] = a[0]
    return a, b


def shard(x: np.ndarray, rank: int) -> np.ndarray:
    return x[rank * LOCAL : (rank + 1) * LOCAL]


def key(world: int, case: Case, content: str, reduction: str) -> str:
    return f"{world}/{case.name}/{content}/{reduction}"
