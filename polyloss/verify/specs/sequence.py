"""Specs of the sequence losses (see ``polyloss/core/sequence.py``).

CTC's inputs are log-probabilities: the variants feed genuine ``log_softmax``
outputs, because both upstream references fold a softmax into their gradient.
``torch.nn.functional.ctc_loss`` returns ``exp(log_probs) - gamma`` as the
gradient with respect to ``log_probs`` (the gradient with respect to the
logits behind a ``log_softmax``, ``gamma`` the occupation posteriors), and
``optax.losses.ctc_loss`` applies ``log_softmax`` to its ``logits`` itself; the
true gradient with respect to ``log_probs`` (polyloss's) is ``-gamma``. Both
references therefore subtract a term that is zero in value and whose gradient
is ``exp(log_probs)`` on each sample's frames, weighted as the reduction weights
the sample (see :func:`_softmax_term`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polyloss.verify.specs import register
from polyloss.verify.specs._gen import log_softmax, normal
from polyloss.verify.specs.edges import EdgeCorpus, Finite, Infinite, Raises, i64
from polyloss.verify.specs.record import Case, Evaluate, HalfPrecision, Layout, LossSpec, Mean, Plot, Variant
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the plotted sample: frames, classes (the blank is 0) and its one-label target
_PLOT_FRAMES, _PLOT_CLASSES, _PLOT_LABEL = 4, 3, 1


def _ctc_plot_inputs(x: float) -> dict[str, np.ndarray]:
    """One sample of four frames whose target is the single label 1: in every frame the label's logit is
    ``x``, the blank's and the other class's 0 (``log_probs`` their log-softmax)."""
    logits = np.zeros((1, _PLOT_FRAMES, _PLOT_CLASSES))
    logits[:, :, _PLOT_LABEL] = x
    return {
        "log_probs": log_softmax(logits),
        "targets": i64([[_PLOT_LABEL]]),
        "input_lengths": i64([_PLOT_FRAMES]),
        "target_lengths": i64([1]),
    }


def _ctc_plot() -> Plot:
    return Plot("logit of the target label in each frame (others at 0)", _ctc_plot_inputs, span=(-4.0, 6.0))


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    LP = np.log(np.full((1, 2, 3), 1.0 / 3.0))
    edges.case(
        "ctc",
        "target longer than the input allows: inf",
        {"log_probs": LP, "targets": i64([[1, 2, 1]]), "input_lengths": i64([2]), "target_lengths": i64([3])},
        Infinite(),
        reduction="sum",
    )
    edges.case(
        "ctc",
        "impossible, zero_infinity: 0",
        {"log_probs": LP, "targets": i64([[1, 2, 1]]), "input_lengths": i64([2]), "target_lengths": i64([3])},
        Finite(0.0, grad="zero"),
        params={"zero_infinity": True},
        reduction="sum",
    )
    edges.case(
        "ctc",
        "repeated label needs a blank between: 3 frames needed, 2 given",
        {"log_probs": LP, "targets": i64([[1, 1]]), "input_lengths": i64([2]), "target_lengths": i64([2])},
        Infinite(),
        reduction="sum",
    )
    edges.case(
        "ctc",
        "repeated label, exactly enough frames: one path",
        {
            "log_probs": np.log(np.full((1, 3, 3), 1.0 / 3.0)),
            "targets": i64([[1, 1]]),
            "input_lengths": i64([3]),
            "target_lengths": i64([2]),
        },
        Finite(3 * math.log(3.0)),
        reduction="sum",
    )
    edges.case(
        "ctc",
        "blank inside the target",
        {"log_probs": LP, "targets": i64([[1, 0]]), "input_lengths": i64([2]), "target_lengths": i64([2])},
        Raises(ValueError, r"targets\[0, 1\] is the blank"),
    )
    edges.case(
        "ctc",
        "empty target: every frame blank",
        {"log_probs": LP, "targets": i64([[1]]), "input_lengths": i64([2]), "target_lengths": i64([0])},
        Finite(2 * math.log(3.0)),
        reduction="sum",
    )
    edges.empty_batch(
        "ctc",
        {
            "log_probs": np.zeros((0, 2, 3)),
            "targets": np.zeros((0, 3), dtype=np.int64),
            "input_lengths": np.zeros(0, dtype=np.int64),
            "target_lengths": np.zeros(0, dtype=np.int64),
        },
        (0,),
    )
    return edges


EDGES = _edge_cases()


def _ctc_mean(case: Case, values: dict[str, np.ndarray], evaluate: Evaluate) -> float:
    lengths = np.maximum(case.arrays["target_lengths"], 1)
    return float(np.mean(values["none"] / lengths))


BRUTE_FORCE_PATHS = 200_000  # the numpy reference enumerates C**T_n alignments per sample, up to this many


def _frames_needed(target: np.ndarray) -> int:
    """The fewest frames that can emit ``target``: one per label, plus a blank between equal neighbours."""
    return len(target) + int(np.sum(target[1:] == target[:-1])) if len(target) else 0


def _ctc_case(
    rng: np.random.Generator,
    n: int,
    *,
    frames: int,
    classes: int,
    width: int,
    blank: int = 0,
    repeats: bool = False,
    empty: bool = False,
    impossible: bool = False,
    **params: object,
) -> Case:
    """Log-softmax inputs, padded targets of random lengths (non-blank labels) and feasible input lengths.

    ``repeats``: every target starts with a repeated label (a blank must separate them, one more frame);
    ``empty``: sample 0 has an empty target; ``impossible``: sample 0's target needs more frames than its input.
    Padding past ``target_lengths`` holds random classes, the blank included (ignored by every implementation).
    """
    labels = np.array([c for c in range(classes) if c != blank], dtype=np.int64)
    log_probs = log_softmax(normal(rng, (n, frames, classes), 1.5))
    targets = rng.integers(0, classes, size=(n, width)).astype(np.int64)  # padding: any class
    target_lengths = rng.integers(1, width + 1, size=n).astype(np.int64)
    if repeats:
        target_lengths[:] = width
    if impossible:
        target_lengths[0] = width
    if empty:
        target_lengths[0] = 0
    input_lengths = np.zeros(n, dtype=np.int64)
    for i in range(n):
        length = int(target_lengths[i])
        targets[i, :length] = rng.choice(labels, size=length)
        if repeats or (impossible and i == 0):
            targets[i, 1] = targets[i, 0]
        needed = max(_frames_needed(targets[i, :length]), 1)
        if impossible and i == 0:
            input_lengths[i] = rng.integers(1, needed)  # fewer frames than the target needs
        else:
            input_lengths[i] = rng.integers(needed, frames + 1)
    arrays = {
        "log_probs": log_probs,
        "targets": targets,
        "input_lengths": input_lengths,
        "target_lengths": target_lengths,
    }
    if blank:
        params = {"blank": blank, **params}
    return Case(arrays, dict(params))


def _variant(name: str, **kwargs: Any) -> Variant:
    return Variant(name, lambda rng, n: _ctc_case(rng, n, **kwargs))


def _sample_weights(xp, target_lengths, reduction: str, live):
    """How the reduction weights each sample's loss: ``live`` (a float 0/1 per sample), divided by
    max(S_n, 1) * N for "mean"."""
    if reduction == "mean":
        return live / xp.clip(target_lengths, 1, None) / target_lengths.shape[0]
    return live


def _softmax_term(xp, stop_gradient, log_probs, input_lengths, weight):
    """Per sample ``weight_n * sum_{t < T_n, c} (exp(lp) - stop_gradient(exp(lp)))``.

    Zero in value. Its gradient with respect to ``log_probs`` is ``weight_n * exp(lp)`` on the
    sample's frames: the term torch's CTC backward (and optax's own ``log_softmax``) adds to the
    true gradient ``-weight_n * gamma`` (for log-softmax inputs: the posteriors ``gamma`` of a
    frame sum to 1, so the log-softmax Jacobian maps ``-gamma`` to ``exp(lp) - gamma``).
    Subtracting it from the loss leaves the true gradient with respect to ``log_probs``.
    """
    frames = log_probs.shape[1]
    on_frame = xp.arange(frames)[None, :] < input_lengths[:, None]
    p = xp.exp(log_probs)
    zero = xp.sum(xp.where(on_frame[:, :, None], p - stop_gradient(p), 0.0), axis=(1, 2))
    return zero * weight


# -- ctc ------------------------------------------------------------------------


def _torch_ctc(m, a, p, r):
    """``F.ctc_loss`` (time first), minus its softmax term (see :func:`_softmax_term`) so that its
    gradient is the true one with respect to ``log_probs``.

    torch's gradient with respect to ``log_probs`` is ``exp(lp) - gamma``: it assumes a
    ``log_softmax`` comes before (the two agree with respect to the logits behind one). Verified
    numerically: ``torch_grad - exp(lp)`` (on frames t < T_n) equals central finite differences of
    torch's own value to 2e-9, and d/dlogits of ``F.ctc_loss(log_softmax(logits))`` equals polyloss's
    to 1e-15 on every reduction.
    """
    torch, F = m.torch, m.F
    lp, targets, il, tl = a["log_probs"], a["targets"], a["input_lengths"], a["target_lengths"]
    blank, zero_infinity = p.get("blank", 0), p.get("zero_infinity", False)
    with torch.no_grad():
        impossible = torch.isinf(F.ctc_loss(lp.transpose(0, 1), targets, il, tl, blank=blank, reduction="none"))
    if bool(impossible.any()) and not zero_infinity:
        raise NotApplicable("torch's gradient is NaN for an impossible alignment (the loss is inf on both sides)")
    loss = F.ctc_loss(lp.transpose(0, 1), targets, il, tl, blank=blank, reduction=r, zero_infinity=zero_infinity)
    # zero_infinity zeroes torch's whole gradient of an impossible sample, softmax term included
    weight = _sample_weights(torch, tl, r, (~impossible).to(lp.dtype))
    term = _softmax_term(torch, torch.Tensor.detach, lp, il, weight)
    return loss - (term if r == "none" else term.sum())


def _optax_ctc(m, a, p, r):
    """``optax.losses.ctc_loss`` with paddings ``t >= T_n`` and ``s >= S_n`` (per sample; "mean" as torch's),
    minus the softmax term of its internal ``log_softmax`` (see :func:`_softmax_term`)."""
    np_, jnp = m.np, m.jnp
    lp, targets, il, tl = a["log_probs"], a["targets"], a["input_lengths"], a["target_lengths"]
    lengths, rows = np_.asarray(tl), np_.asarray(targets)
    if any(_frames_needed(rows[i, : lengths[i]]) > int(np_.asarray(il)[i]) for i in range(len(lengths))):
        raise NotApplicable(
            "optax scores an impossible alignment with log_epsilon (loss ~1e5), not inf; it has no zero_infinity"
        )
    frames, width = lp.shape[1], targets.shape[1]
    logit_paddings = (jnp.arange(frames)[None, :] >= il[:, None]).astype(lp.dtype)
    label_paddings = (jnp.arange(width)[None, :] >= tl[:, None]).astype(lp.dtype)
    per_sample = m.optax.losses.ctc_loss(lp, logit_paddings, targets, label_paddings, blank_id=p.get("blank", 0))
    weight = _sample_weights(jnp, tl, "none", jnp.ones(tl.shape, lp.dtype))
    per_sample = per_sample - _softmax_term(jnp, m.jax.lax.stop_gradient, lp, il, weight)
    if r == "mean":
        return jnp.mean(per_sample / jnp.clip(tl, 1, None))
    return reduce_reference(jnp, per_sample, r)


def _brute_force_ctc(m, a, p, r):
    """Every path of T_n frames over C classes: collapse repeats, drop blanks, add the probabilities
    of the paths that spell the target (value only; C**T_n paths per sample)."""
    np_ = m.np
    lp, targets = np_.asarray(a["log_probs"]), np_.asarray(a["targets"])
    il, tl = np_.asarray(a["input_lengths"]), np_.asarray(a["target_lengths"])
    blank, classes = p.get("blank", 0), lp.shape[2]
    if any(classes ** int(t) > BRUTE_FORCE_PATHS for t in il):
        raise NotApplicable(f"more than {BRUTE_FORCE_PATHS} alignments to enumerate")
    out = np_.zeros(len(il))
    for i in range(len(il)):
        frames, target = int(il[i]), targets[i, : tl[i]]
        paths = np_.stack(np_.unravel_index(np_.arange(classes**frames), (classes,) * frames), axis=1)  # (P, T_n)
        keep = np_.ones_like(paths, dtype=bool)
        keep[:, 1:] = paths[:, 1:] != paths[:, :-1]  # collapse repeats
        keep &= paths != blank  # then remove blanks
        # the collapsed path spells the target: as many kept symbols, the k-th kept one is target[k]
        rank = np_.cumsum(keep, axis=1) - 1
        wanted = np_.concatenate([target, np_.full(frames, -1)])[np_.clip(rank, 0, None)]
        spells = (keep.sum(axis=1) == len(target)) & np_.where(keep, paths == wanted, True).all(axis=1)
        log_p = lp[i, np_.arange(frames)[None, :], paths].sum(axis=1)
        total = np_.exp(log_p[spells]).sum()
        out[i] = -np_.log(total) if total > 0 else np_.inf
    if p.get("zero_infinity", False):
        out = np_.where(np_.isinf(out), 0.0, out)
    if r == "mean":
        return np_.mean(out / np_.maximum(tl, 1))
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="ctc",
        variants=(
            _variant("random lengths", frames=6, classes=5, width=3),
            _variant("repeated labels", frames=7, classes=4, width=3, repeats=True),
            _variant("target_lengths 0 for a sample", frames=5, classes=5, width=3, empty=True),
            _variant("blank=C-1", frames=6, classes=4, width=3, blank=3),
            _variant(
                "zero_infinity,impossible sample", frames=6, classes=4, width=3, impossible=True, zero_infinity=True
            ),
            _variant("T=8,C=5", frames=8, classes=5, width=3),
        ),
        references=(
            Reference("torch.nn.functional.ctc_loss (softmax term removed)", "torch", _torch_ctc),
            Reference("optax.losses.ctc_loss (softmax term removed)", "jax", _optax_ctc),
            Reference("brute force over alignments", "numpy", _brute_force_ctc, grads=False),
        ),
        notes=(
            "gradients are the true gradients with respect to log_probs: torch's CTC backward returns "
            "exp(log_probs) - gamma (it assumes a log_softmax before; the two agree with respect to the logits "
            "behind one) and optax applies log_softmax itself, so both references subtract a zero-valued term "
            "whose gradient is exp(log_probs) on each sample's frames, weighted as the reduction weights the "
            "sample. Impossible alignments: inf with zero gradient (torch: inf with NaN gradient, so its "
            "reference is n/a there; optax: ~1e5 from log_epsilon, n/a); zero_infinity=True gives 0 and zero "
            "gradient, as torch."
        ),
        layout=Layout(("log_probs", "targets", "input_lengths", "target_lengths")),  # lengths are per sample
        mean=Mean(
            "each sample's loss divided by its target length (at least 1), then the batch mean", expected=_ctc_mean
        ),
        half_precision=HalfPrecision(variants=("zero_infinity,impossible sample",)),
        plot=_ctc_plot(),
    )
)
