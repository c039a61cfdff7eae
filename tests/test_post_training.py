"""The post-training family beyond its specs: ``sequence_log_probs`` and ``implicit_rewards`` (helpers,
which have no spec) against float64 loops and each other, gradients that vanish where the maths says,
the numerical robustness the docstrings promise over TRL's own formulas, and the examples of
``docs/post-training.md``, executed as a user would run them.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import AUTODIFF, TORCH, close, namespace, to_numpy

import polyloss.jax as pj
import polyloss.torch as pt

PAGE = (Path(__file__).parents[1] / "docs" / "post-training.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE, flags=re.S)


def _token_loop(logits: np.ndarray, labels: np.ndarray, ignore_index: int | None, average: bool) -> np.ndarray:
    """One token at a time: log softmax(logits)[label], summed (or averaged) over the kept tokens."""
    out = []
    for row_logits, row_labels in zip(logits, labels, strict=True):
        terms = []
        for scores, label in zip(row_logits, row_labels, strict=True):
            if ignore_index is not None and label == ignore_index:
                continue
            top = max(scores)
            log_z = top + math.log(math.fsum(math.exp(s - top) for s in scores))
            terms.append(scores[label] - log_z)
        total = math.fsum(terms)
        out.append(total / max(len(terms), 1) if average else total)
    return np.array(out)


def _tokens(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(3, 5, 7))
    labels = rng.integers(0, 7, size=(3, 5))
    labels[0, :2] = -100
    labels[2, :] = -100  # a sequence with no kept token: 0
    return logits, labels


@pytest.mark.parametrize("average", [False, True])
def test_sequence_log_probs_is_the_token_loop(backend, average):
    logits, labels = _tokens()
    m = namespace(backend)
    out = m.sequence_log_probs(backend.asarray(logits), backend.asarray(labels), ignore_index=-100, average=average)
    expected = _token_loop(logits, labels, -100, average)
    assert expected[2] == 0.0
    close(out, expected, rtol=1e-12, atol=1e-12)
    kept = np.where(labels == -100, 0, labels)
    close(
        m.sequence_log_probs(backend.asarray(logits), backend.asarray(kept), average=average),
        _token_loop(logits, kept, None, average),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_sequence_log_probs_gradient_is_one_hot_minus_softmax_on_kept_tokens(backend):
    """d sum_i log pi(y_i) / d logits = onehot(y) - softmax(logits) on kept tokens, 0 on ignored ones."""
    logits, labels = _tokens(1)
    fn = lambda x: namespace(backend).sequence_log_probs(x, backend.asarray(labels), ignore_index=-100)  # noqa: E731
    _, (grad,) = backend.value_and_grad(lambda x: fn(x), [backend.asarray(logits)], (0,))
    softmax = np.exp(logits - logits.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    one_hot = np.eye(7)[np.where(labels == -100, 0, labels)]
    expected = np.where((labels != -100)[..., None], one_hot - softmax, 0.0)
    close(grad, expected, rtol=1e-12, atol=1e-12)


def test_sequence_log_probs_gradients_match_finite_differences_in_torch():
    logits, labels = _tokens(2)
    x = torch.tensor(logits, requires_grad=True)
    y = torch.tensor(labels)
    assert torch.autograd.gradcheck(lambda x: pt.sequence_log_probs(x, y, ignore_index=-100, average=True), (x,))
    assert torch.autograd.gradgradcheck(lambda x: pt.sequence_log_probs(x, y, ignore_index=-100), (x,))


def test_sequence_log_probs_refuses_bad_labels_by_name():
    logits, labels = _tokens()
    with pytest.raises(ValueError, match=r"logits must be \(N, T, V\), got shape \(3, 7\)"):
        pt.sequence_log_probs(torch.tensor(logits[:, 0]), torch.tensor(labels[:, 0]))
    with pytest.raises(TypeError, match="labels must hold integer class indices"):
        pt.sequence_log_probs(torch.tensor(logits), torch.tensor(labels, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"contains class index -100, outside \[0, 7\)"):
        pt.sequence_log_probs(torch.tensor(logits), torch.tensor(labels))


def test_implicit_rewards_are_trls_detached_rewards(backend):
    policy, reference = np.array([-10.0, -12.5, -3.0]), np.array([-11.0, -12.0, -3.0])
    m = namespace(backend)
    close(
        m.implicit_rewards(backend.asarray(policy), reference_logps=backend.asarray(reference), beta=0.2),
        0.2 * (policy - reference),
    )
    close(m.implicit_rewards(backend.asarray(policy)), 0.1 * policy)


def test_implicit_rewards_carry_no_gradient():
    policy = torch.tensor([-10.0, -12.0], dtype=torch.float64, requires_grad=True)
    assert not pt.implicit_rewards(policy).requires_grad
    assert float(jax.grad(lambda x: pj.implicit_rewards(x).sum())(jnp.array([-10.0, -12.0]))[0]) == 0.0


@pytest.mark.parametrize("name", ["generalized_jsd", "forward_kl", "reverse_kl"])
@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_a_student_equal_to_its_teacher_has_zero_gradient_up_to_rounding(backend, name):
    """The divergences have a minimum, with zero gradient in both logits, where the distributions agree."""
    logits = np.random.default_rng(3).normal(scale=3.0, size=(2, 4, 9))
    fn = getattr(namespace(backend), name)
    value, grads = backend.value_and_grad(fn, [backend.asarray(logits), backend.asarray(logits.copy())], (0, 1))
    assert abs(float(to_numpy(value))) < 1e-15
    for grad in grads:
        assert np.max(np.abs(to_numpy(grad))) < 1e-15


def test_generalized_jsd_moves_from_forward_to_reverse_kl_and_stays_below_them():
    """JSD(beta) is 0 at beta -> 0 and 1 (TRL's endpoints are the KLs, not limits); in between it is
    at most log 2-bounded and below both KLs."""
    rng = np.random.default_rng(4)
    s, t = torch.tensor(rng.normal(size=(6, 8)) * 2), torch.tensor(rng.normal(size=(6, 8)) * 2)
    forward, reverse = float(pt.forward_kl(s, t)), float(pt.reverse_kl(s, t))
    assert float(pt.generalized_jsd(s, t, beta=0.0)) == pytest.approx(forward, rel=1e-12)
    assert float(pt.generalized_jsd(s, t, beta=1.0)) == pytest.approx(reverse, rel=1e-12)
    for beta in (1e-6, 0.3, 0.5, 0.7, 1 - 1e-6):
        value = float(pt.generalized_jsd(s, t, beta=beta))
        assert 0.0 <= value <= min(forward, reverse) and value <= math.log(2.0)
    assert float(pt.generalized_jsd(s, t, beta=1e-6)) < 1e-5 and float(pt.generalized_jsd(s, t, beta=1 - 1e-6)) < 1e-5


def _trl_clipped_objective(logps, old_logps, advantages):
    """TRL 1.16's GRPO per-token objective, as its trainer writes it."""
    coef_1 = torch.exp(logps - old_logps)
    coef_2 = torch.clamp(coef_1, 1 - 0.2, 1 + 0.2)
    return -torch.min(coef_1 * advantages.unsqueeze(1), coef_2 * advantages.unsqueeze(1))


def test_grpo_stays_finite_where_trls_ratio_overflows():
    """A ratio of e^800 with a positive advantage: the clipped objective is bounded (1.2 A) and its
    gradient 0; TRL's ``exp`` overflows and its gradient is NaN. polyloss gives the bounded value
    and the zero gradient."""
    logps = torch.tensor([[0.0, -1.0]], dtype=torch.float64, requires_grad=True)
    old_logps = torch.tensor([[-800.0, -1.0]], dtype=torch.float64)
    advantages = torch.tensor([2.0], dtype=torch.float64)
    trl = _trl_clipped_objective(logps, old_logps, advantages).mean()
    (trl_grad,) = torch.autograd.grad(trl, logps)
    assert torch.isnan(trl_grad).any()  # the defect the docstring names
    mask = torch.ones(1, 2, dtype=torch.int64)
    loss = pt.grpo(logps, old_logps, advantages, mask)
    (grad,) = torch.autograd.grad(loss, logps)
    close(loss.detach(), (-1.2 * 2.0 - 1.0 * 2.0) / 2.0)
    close(grad, np.array([[0.0, -1.0]]))  # the clipped token contributes nothing; the other -A / 2


def test_grpo_on_policy_gradient_is_the_advantage_weighted_score():
    """On policy (old = logps held constant) every ratio is 1 and d loss / d logps = -A m / sum(m) (DAPO)."""
    rng = np.random.default_rng(5)
    logps = torch.tensor(-rng.uniform(0.1, 3.0, size=(3, 4)), requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    advantages = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    loss = pt.grpo(logps, logps.detach(), advantages, mask)
    (grad,) = torch.autograd.grad(loss, logps)
    close(grad, -(advantages[:, None] * mask).numpy() / 7.0)
    # and with zero advantages the gradient in the advantages is -ratio m / sum(m) (on policy: -m / 7)
    adv = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    (g_adv,) = torch.autograd.grad(pt.grpo(logps.detach(), logps.detach(), adv, mask), adv)
    close(g_adv, -mask.sum(1).numpy() / 7.0)


def test_orpo_at_probability_one_has_finite_gradients_where_trls_are_nan():
    chosen = torch.tensor([0.0, -0.3], dtype=torch.float64, requires_grad=True)
    rejected = torch.tensor([-1.0, -1.0], dtype=torch.float64, requires_grad=True)
    loss = pt.orpo(chosen, rejected, reduction="sum")
    grads = torch.autograd.grad(loss, (chosen, rejected))
    assert all(torch.isfinite(g).all() for g in grads)
    assert float(pt.orpo(chosen[:1], rejected[:1]).detach()) == pytest.approx(0.0, abs=1e-300)


def test_dpo_label_smoothing_is_conservative_dpo():
    """cDPO: the expected DPO loss when each label is flipped with probability eps."""
    rng = np.random.default_rng(6)
    pc, pr, rc, rr = (torch.tensor(-rng.uniform(5, 50, 4)) for _ in range(4))
    eps = 0.2
    flipped = pt.dpo(pr, pc, rr, rc, reduction="none")
    clean = pt.dpo(pc, pr, rc, rr, reduction="none")
    close(pt.dpo(pc, pr, rc, rr, label_smoothing=eps, reduction="none"), ((1 - eps) * clean + eps * flipped).numpy())


# --------------------------------------------------------------------------- the docs page, executed


def test_the_page_has_a_torch_and_a_jax_example():
    assert len(BLOCKS) == 2 and "import polyloss.torch" in BLOCKS[0] and "import polyloss.jax" in BLOCKS[1]


def test_the_torch_dpo_example_runs_and_its_gradient_reaches_the_logits(capsys):
    scope: dict = {}
    exec(compile(BLOCKS[0], "docs/post-training.md", "exec"), scope)
    assert re.fullmatch(r"loss \d\.\d{4}, reward margin -?\d\.\d{4}, accuracy \d\.\d{2}\n", capsys.readouterr().out)
    grad = scope["policy_logits"].grad
    assert grad is not None and torch.isfinite(grad).all()
    assert float(grad[:, :5].abs().max()) == 0.0  # prompt tokens are not scored
    assert float(scope["loss"].detach()) == pytest.approx(math.log(2.0), abs=0.05)  # a reference near the policy


def test_the_jitted_grpo_example_runs_compiles_once_and_lowers_the_loss(capsys):
    scope: dict = {}
    exec(compile(BLOCKS[1], "docs/post-training.md", "exec"), scope)
    assert capsys.readouterr().out.startswith("GRPO loss ")
    assert float(scope["loss_after"]) < float(scope["loss"])
    # compiled once: a third step of the same shapes neither traces nor compiles, while a new function
    # of the same name does (JAX logs both; its C++ dispatch cache size is not a stable signal)
    args = (scope["params"], scope["old_logps"], scope["advantages"], scope["mask"])
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    collect = Collect(logging.WARNING)
    jax_logger = logging.getLogger("jax")  # JAX's loggers do not propagate to pytest's handler
    jax_logger.addHandler(collect)
    try:
        with jax.log_compiles(True):
            scope["step"](*args)
            again = [m for m in messages if "jit(step)" in m]
            jax.jit(functools.wraps(scope["step"].__wrapped__)(lambda *a: scope["step"].__wrapped__(*a)))(*args)
            fresh = [m for m in messages if "jit(step)" in m]
    finally:
        jax_logger.removeHandler(collect)
    assert again == [] and any(m.startswith("Compiling jit(step)") for m in fresh), (again, fresh)


def test_torch_tensors_of_another_framework_are_refused():
    with pytest.raises(TypeError):
        pt.dpo(*(np.zeros(2) for _ in range(4)))
    assert TORCH.name == "torch"
