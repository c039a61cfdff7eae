"""Loss weights broadcast as torch broadcasts them; predictions and targets never do.

``bce``/``bce_with_logits``: ``weight`` broadcasts to the input, ``pos_weight`` along the class axis
(``()``, ``(1,)``, ``(C,)``), compared with ``torch.nn.functional``'s own functions on every backend.
Per-element regression weights broadcast to the prediction; ``"mean"`` divides by the broadcast
weight's sum (a direct NumPy computation). A weight that does not broadcast is a ``ValueError``
naming it and both shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import BACKENDS, HARNESSES, MODULES, close, to_numpy

N, C = 4, 3
RNG = np.random.default_rng(7)
LOGITS = RNG.normal(size=(N, C))
PROBS = 1.0 / (1.0 + np.exp(-LOGITS))
TARGET = (RNG.uniform(size=(N, C)) > 0.5).astype(np.float64)
WEIGHTS = {
    "()": np.array(1.7),
    "(C,)": RNG.uniform(0.5, 2.0, size=C),
    "(N, 1)": RNG.uniform(0.5, 2.0, size=(N, 1)),
    "(1, C)": RNG.uniform(0.5, 2.0, size=(1, C)),
}
POS_WEIGHTS = {"()": np.array(3.0), "(1,)": np.array([3.0]), "(C,)": RNG.uniform(0.5, 4.0, size=C)}
REDUCTIONS = ("mean", "sum", "none")


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


#: (loss, its input, keyword, shape of the keyword's array): ``pos_weight`` as in
#: ``BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))``, one of the commonest lines in torch code
BCE_WEIGHTS = [
    *[(loss, "weight", shape) for loss in ("bce", "bce_with_logits") for shape in WEIGHTS],
    *[("bce_with_logits", "pos_weight", shape) for shape in POS_WEIGHTS],
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("loss", "keyword", "shape"), BCE_WEIGHTS)
def test_bce_weights_broadcast_as_torch(backend, loss, keyword, shape):
    h, pl = HARNESSES[backend], MODULES[backend]
    w = (WEIGHTS if keyword == "weight" else POS_WEIGHTS)[shape]
    x = PROBS if loss == "bce" else LOGITS
    torch_fn = F.binary_cross_entropy if loss == "bce" else F.binary_cross_entropy_with_logits
    for reduction in REDUCTIONS:
        expected = torch_fn(_t(x), _t(TARGET), reduction=reduction, **{keyword: _t(w)})
        got = getattr(pl, loss)(h.asarray(x), h.asarray(TARGET), reduction=reduction, **{keyword: h.asarray(w)})
        close(to_numpy(got), expected.numpy())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", list(WEIGHTS))
def test_regression_weights_broadcast_to_the_prediction(backend, shape):
    h, pl = HARNESSES[backend], MODULES[backend]
    pred, target, w = LOGITS, PROBS, WEIGHTS[shape]
    full = np.broadcast_to(w, pred.shape)
    squared = (pred - target) ** 2
    expected = {"mean": np.sum(full * squared) / np.sum(full), "sum": np.sum(full * squared), "none": full * squared}
    for reduction in REDUCTIONS:
        got = pl.mse(h.asarray(pred), h.asarray(target), weight=h.asarray(w), reduction=reduction)
        close(to_numpy(got), expected[reduction])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_weight_that_does_not_broadcast_names_itself_and_both_shapes(backend):
    h, pl = HARNESSES[backend], MODULES[backend]
    wrong = h.asarray(np.ones(C + 1))
    message = r"{} of shape \(4,\) does not broadcast to {}'s shape \(4, 3\)"
    with pytest.raises(ValueError, match=message.format("weight", "probs")):
        pl.bce(h.asarray(PROBS), h.asarray(TARGET), weight=wrong)
    with pytest.raises(ValueError, match=message.format("pos_weight", "logits")):
        pl.bce_with_logits(h.asarray(LOGITS), h.asarray(TARGET), pos_weight=wrong)
    with pytest.raises(ValueError, match=message.format("weight", "pred")):
        pl.mse(h.asarray(LOGITS), h.asarray(PROBS), weight=wrong)
    # predictions and targets still never broadcast
    with pytest.raises(ValueError, match="target"):
        pl.bce_with_logits(h.asarray(LOGITS), h.asarray(TARGET[:1]))
