"""Identities and edge behaviour of the generative losses, on numpy, torch and jax.

Each test compares polyloss with an independent computation: a NumPy formula
written here, another loss of the catalogue the identity relates it to
(``bce_with_logits``, ``bce``, ``mse``), or a re-typed upstream function
(PyTorch-GAN's WGAN-GP ``compute_gradient_penalty``). Gradients come from
torch autograd and ``jax.grad``. Discriminator batches of different sizes
live here (the spec cases keep real and fake the same shape for ``"none"``).
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import AUTODIFF, close, namespace, to_numpy

import polyloss.jax as pj
import polyloss.numpy as pn
import polyloss.torch as pt
from polyloss.verify.specs.generative import _torch_compute_gradient_penalty

REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- helpers


def reduce(values: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return values
    return np.asarray(np.mean(values) if reduction == "mean" else np.sum(values))


def np_softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# --------------------------------------------------------------------------- GAN losses


def test_gan_losses_equal_bce_with_logits(backend):
    """Non-saturating generator = BCE(d, 1); discriminator = BCE(real, 1) mean + BCE(fake, 0) mean."""
    rng = np.random.default_rng(0)
    real, fake = rng.normal(scale=3.0, size=(5, 1)), rng.normal(scale=3.0, size=(5, 1))
    m = namespace(backend)
    ones, zeros = backend.asarray(np.ones((5, 1))), backend.asarray(np.zeros((5, 1)))
    for reduction in REDUCTIONS:
        close(
            m.gan_generator(backend.asarray(fake), reduction=reduction),
            to_numpy(m.bce_with_logits(backend.asarray(fake), ones, reduction=reduction)),
        )
        expected = to_numpy(m.bce_with_logits(backend.asarray(real), ones, reduction=reduction)) + to_numpy(
            m.bce_with_logits(backend.asarray(fake), zeros, reduction=reduction)
        )
        close(m.gan_discriminator(backend.asarray(real), backend.asarray(fake), reduction=reduction), expected)
        close(
            m.gan_discriminator(backend.asarray(real), backend.asarray(fake), reduction=reduction),
            reduce(np_softplus(-real), reduction) + reduce(np_softplus(fake), reduction),
        )


def test_minimax_generator_is_log_one_minus_sigmoid(backend):
    d = np.linspace(-6.0, 6.0, 7)
    m = namespace(backend)
    out = m.gan_generator(backend.asarray(d), non_saturating=False, reduction="none")
    close(out, np.log1p(-1.0 / (1.0 + np.exp(-d))), rtol=1e-12)
    assert np.all(to_numpy(out) < 0.0)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("magnitude", [100.0, 1e4])
def test_saturated_logits_give_exact_finite_values_and_gradients(backend, dtype, magnitude):
    """|logit| = 100 or 1e4: softplus is exact (no log(0) = -inf, no inf - inf), gradients are the sigmoids."""
    real = np.array([-magnitude, magnitude, 1.0])
    fake = np.array([magnitude, -magnitude, -1.0])
    m = namespace(backend)
    tol = 1e-12 if dtype == "float64" else 2e-6
    x_real, x_fake = backend.asarray(real, dtype), backend.asarray(fake, dtype)

    value, (g_real, g_fake) = backend.value_and_grad(
        lambda r, f: m.gan_discriminator(r, f, reduction="none"), [x_real, x_fake], (0, 1)
    )
    close(value, np_softplus(-real) + np_softplus(fake), rtol=tol, atol=tol)
    close(g_real, -np_sigmoid(-real), rtol=tol, atol=tol)
    close(g_fake, np_sigmoid(fake), rtol=tol, atol=tol)

    value, (g,) = backend.value_and_grad(lambda f: m.gan_generator(f, reduction="none"), [x_fake], (0,))
    close(value, np_softplus(-fake), rtol=tol, atol=tol)
    close(g, -np_sigmoid(-fake), rtol=tol, atol=tol)  # the non-saturating gradient stays -1 at -magnitude

    value, (g,) = backend.value_and_grad(
        lambda f: m.gan_generator(f, non_saturating=False, reduction="none"), [x_fake], (0,)
    )
    close(value, -np_softplus(fake), rtol=tol, atol=tol)
    close(g, -np_sigmoid(fake), rtol=tol, atol=tol)  # the minimax gradient vanishes at -magnitude
    for out in (value, g):
        assert np.all(np.isfinite(to_numpy(out)))


@pytest.mark.parametrize(
    "loss,real_term,fake_term",
    [
        ("gan_discriminator", lambda r: np_softplus(-r), np_softplus),
        ("wgan_critic", lambda r: -r, lambda f: f),
        ("hinge_discriminator", lambda r: np.maximum(0.0, 1.0 - r), lambda f: np.maximum(0.0, 1.0 + f)),
    ],
)
def test_discriminators_take_batches_of_different_sizes(backend, loss, real_term, fake_term):
    """Each side is reduced on its own: E_real + E_fake; "none" needs equal shapes."""
    rng = np.random.default_rng(1)
    real, fake = rng.normal(scale=2.0, size=(5, 1)), rng.normal(scale=2.0, size=(3, 1))
    fn = getattr(namespace(backend), loss)
    close(fn(backend.asarray(real), backend.asarray(fake)), real_term(real).mean() + fake_term(fake).mean())
    close(
        fn(backend.asarray(real), backend.asarray(fake), reduction="sum"), real_term(real).sum() + fake_term(fake).sum()
    )
    with pytest.raises(ValueError, match="equal shapes"):
        fn(backend.asarray(real), backend.asarray(fake), reduction="none")


def test_wgan_critic_of_equal_scores_is_zero(backend):
    scores = np.random.default_rng(2).normal(scale=5.0, size=(4, 1))
    m = namespace(backend)
    for reduction in REDUCTIONS:
        close(
            m.wgan_critic(backend.asarray(scores), backend.asarray(scores), reduction=reduction),
            reduce(np.zeros((4, 1)), reduction),
            atol=0.0,
        )
    close(m.wgan_critic(backend.asarray(scores + 1.5), backend.asarray(scores)), -1.5)
    close(m.wgan_generator(backend.asarray(scores)), -scores.mean())


def test_hinge_losses(backend):
    """Confident outputs (real > 1, fake < -1) cost nothing; the generator loss is -E[D(G(z))]."""
    m = namespace(backend)
    close(m.hinge_discriminator(backend.asarray([1.5, 4.0]), backend.asarray([-1.2, -3.0])), 0.0, atol=0.0)
    close(
        m.hinge_discriminator(backend.asarray([0.5, -1.0]), backend.asarray([0.0, 2.0]), reduction="none"), [1.5, 5.0]
    )
    close(m.hinge_generator(backend.asarray([0.5, -1.0, 3.5])), -1.0)


# --------------------------------------------------------------------------- gradient penalty


def _critic(x):
    """Framework-agnostic (operators only)."""
    return (x**3 * 0.5 + x).sum(-1) + (x[..., 0] * x[..., 1]) ** 2


def _gp_inputs(n=4, shape=(3,), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)), rng.normal(size=(n, *shape)), rng.uniform(0.05, 0.95, size=(n,))


@pytest.mark.parametrize("critic_kind", ["linear", "mlp"])
def test_gradient_penalty_trains_the_critic_parameters(critic_kind):
    """Gradients reach a torch.nn critic's parameters, equal to the re-typed PyTorch-GAN ones."""
    real, fake, eps = (torch.as_tensor(v) for v in _gp_inputs())
    torch.manual_seed(0)
    if critic_kind == "linear":
        critic = torch.nn.Linear(3, 1).double()
    else:
        critic = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()
    params = list(critic.parameters())

    ours = pt.gradient_penalty(critic, real, fake, interpolation=eps)
    ours_grads = torch.autograd.grad(ours, params, allow_unused=True, materialize_grads=True)
    # the spec's re-typing of PyTorch-GAN's compute_gradient_penalty, per-sample terms averaged
    modules = SimpleNamespace(torch=torch)
    expected = _torch_compute_gradient_penalty(
        modules, {"real": real, "fake": fake, "interpolation": eps}, {"critic": critic}, "mean"
    )
    expected_grads = torch.autograd.grad(expected, params, allow_unused=True, materialize_grads=True)
    close(ours, expected.item())
    for g, e in zip(ours_grads, expected_grads, strict=True):
        close(g, e.numpy())
    assert torch.count_nonzero(ours_grads[0]) > 0  # the first weight matrix gets a gradient
    if critic_kind == "linear":  # the input gradient is the weight row: lambda (||w|| - 1)^2 in closed form
        w = critic.weight.detach().numpy()
        close(ours, 10.0 * (np.linalg.norm(w) - 1.0) ** 2)


def test_gradient_penalty_jax_parameter_gradients_equal_torch():
    """The same MLP critic in JAX (closing over its parameters) and in torch: equal parameter gradients."""
    real, fake, eps = _gp_inputs(seed=1)
    torch.manual_seed(1)
    linear1, linear2 = torch.nn.Linear(3, 5).double(), torch.nn.Linear(5, 1).double()
    critic = torch.nn.Sequential(linear1, torch.nn.Tanh(), linear2)
    value = pt.gradient_penalty(
        critic, torch.as_tensor(real), torch.as_tensor(fake), interpolation=torch.as_tensor(eps), weight=2.0
    )
    torch_grads = torch.autograd.grad(value, list(critic.parameters()), allow_unused=True, materialize_grads=True)

    params = [jnp.asarray(p.detach().numpy()) for p in critic.parameters()]

    def penalty(params):
        w1, b1, w2, b2 = params
        jax_critic = lambda x: jnp.tanh(x @ w1.T + b1) @ w2.T + b2  # noqa: E731
        return pj.gradient_penalty(
            jax_critic, jnp.asarray(real), jnp.asarray(fake), interpolation=jnp.asarray(eps), weight=2.0
        )

    jax_value, jax_grads = jax.value_and_grad(penalty)(params)
    close(jax_value, value.item())
    for g, e in zip(jax_grads, torch_grads, strict=True):
        close(g, e.numpy())


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_gradient_penalty_reductions_and_weight(backend):
    real, fake, eps = _gp_inputs(n=3, shape=(2, 3))
    m = namespace(backend)
    per_sample = to_numpy(
        m.gradient_penalty(
            _critic,
            backend.asarray(real),
            backend.asarray(fake),
            interpolation=backend.asarray(eps),
            weight=1.0,
            reduction="none",
        )
    )
    assert per_sample.shape == (3,)
    mixed = eps[:, None, None] * real + (1 - eps[:, None, None]) * fake
    grad = 1.5 * mixed**2 + 1.0  # d/dx of the critic, the mixed term added on the first two features
    grad[..., 0] += 2 * mixed[..., 0] * mixed[..., 1] ** 2
    grad[..., 1] += 2 * mixed[..., 1] * mixed[..., 0] ** 2
    close(per_sample, (np.linalg.norm(grad.reshape(3, -1), axis=1) - 1.0) ** 2)
    for reduction, weight in (("mean", 10.0), ("sum", 0.5)):
        close(
            m.gradient_penalty(
                _critic,
                backend.asarray(real),
                backend.asarray(fake),
                interpolation=backend.asarray(eps),
                weight=weight,
                reduction=reduction,
            ),
            weight * reduce(per_sample, reduction),
        )


def test_gradient_penalty_draws_from_a_torch_generator():
    real, fake, _ = (torch.as_tensor(v) for v in _gp_inputs())

    def draw(seed):
        return pt.gradient_penalty(_critic, real, fake, key_or_generator=torch.Generator().manual_seed(seed))

    assert draw(3).item() == draw(3).item()
    assert draw(3).item() != draw(4).item()
    eps = torch.rand(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    close(draw(3), pt.gradient_penalty(_critic, real, fake, interpolation=eps).item())


def test_gradient_penalty_jax_jit_with_a_key():
    real, fake, _ = (jnp.asarray(v) for v in _gp_inputs())
    key = jax.random.key(0)
    eager = pj.gradient_penalty(_critic, real, fake, key_or_generator=key)
    jitted = jax.jit(lambda r, f, k: pj.gradient_penalty(_critic, r, f, key_or_generator=k))
    close(jitted(real, fake, key), float(eager), rtol=1e-13)
    eps = jax.random.uniform(key, (4,), dtype=jnp.float64)
    close(eager, float(pj.gradient_penalty(_critic, real, fake, interpolation=eps)))
    assert float(jitted(real, fake, jax.random.key(1))) != float(eager)
    # gradients through the jitted penalty (double backward under jit)
    g = jax.jit(jax.grad(lambda r: pj.gradient_penalty(_critic, r, fake, key_or_generator=key)))(real)
    close(
        g, np.asarray(jax.grad(lambda r: pj.gradient_penalty(_critic, r, fake, key_or_generator=key))(real)), rtol=1e-12
    )


def test_gradient_penalty_jax_needs_a_key_or_an_interpolation():
    real, fake, _ = (jnp.asarray(v) for v in _gp_inputs())
    with pytest.raises(ValueError, match="key"):
        pj.gradient_penalty(_critic, real, fake)
    with pytest.raises(ValueError, match="key"):
        pj.gradient_penalty(_critic, real, fake, key_or_generator=0)


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_gradient_penalty_rejects_bad_interpolation(backend):
    real, fake, eps = _gp_inputs()
    m = namespace(backend)
    with pytest.raises(ValueError):
        m.gradient_penalty(
            _critic, backend.asarray(real), backend.asarray(fake), interpolation=backend.asarray(eps + 1.0)
        )
    with pytest.raises(ValueError):
        m.gradient_penalty(
            _critic, backend.asarray(real), backend.asarray(fake), interpolation=backend.asarray(eps[:2])
        )
    with pytest.raises(TypeError):
        m.gradient_penalty(
            "not a critic", backend.asarray(real), backend.asarray(fake), interpolation=backend.asarray(eps)
        )


def test_numpy_has_no_gradient_penalty():
    """polyloss.numpy has no autodiff: the penalty is absent rather than wrong."""
    assert not hasattr(pn, "gradient_penalty")
    assert hasattr(pt, "gradient_penalty") and hasattr(pj, "gradient_penalty")


# --------------------------------------------------------------------------- VAE


def np_kl_rows(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    return 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar, axis=-1)


def test_vae_kl_is_zero_at_the_prior_and_positive_elsewhere(backend):
    m = namespace(backend)
    zeros = np.zeros((3, 4))
    for reduction in REDUCTIONS:
        close(
            m.vae_kl(backend.asarray(zeros), backend.asarray(zeros), reduction=reduction),
            reduce(np.zeros(3), reduction),
            atol=0.0,
        )
    rng = np.random.default_rng(4)
    mu, logvar = rng.normal(size=(3, 4)), rng.uniform(-2.0, 2.0, size=(3, 4))
    out = to_numpy(m.vae_kl(backend.asarray(mu), backend.asarray(logvar), reduction="none"))
    assert np.all(out > 0.0)
    close(out, np_kl_rows(mu, logvar))


def test_vae_with_beta_zero_is_the_reconstruction_loss(backend):
    rng = np.random.default_rng(5)
    recon, x = rng.uniform(0.02, 0.98, size=(3, 2, 2)), rng.uniform(0.0, 1.0, size=(3, 2, 2))
    mu, logvar = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    m = namespace(backend)
    a = [backend.asarray(v) for v in (recon, x, mu, logvar)]
    close(m.vae(*a, beta=0.0), to_numpy(m.bce(a[0], a[1], reduction="sum")))  # default reduction "sum"
    close(m.vae(*a, beta=0.0, recon_loss="mse"), to_numpy(m.mse(a[0], a[1], reduction="sum")))
    close(m.vae(*a, beta=0.0, reduction="mean"), to_numpy(m.bce(a[0], a[1], reduction="sum")) / 3)
    # and with beta: the reconstruction plus beta times vae_kl, per sample
    bce_rows = -(x * np.log(recon) + (1 - x) * np.log(1 - recon)).reshape(3, -1).sum(1)
    close(m.vae(*a, beta=4.0, reduction="none"), bce_rows + 4.0 * np_kl_rows(mu, logvar))
    close(
        m.vae(*a, beta=4.0),
        to_numpy(m.bce(a[0], a[1], reduction="sum")) + 4.0 * to_numpy(m.vae_kl(a[2], a[3], reduction="sum")),
    )


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_vae_kl_huge_logvar_float64_is_finite(backend):
    mu, logvar = np.array([[0.5, -1.0]]), np.array([[90.0, -90.0]])
    value, (g_mu, g_logvar) = backend.value_and_grad(
        lambda u, v: namespace(backend).vae_kl(u, v), [backend.asarray(mu), backend.asarray(logvar)], (0, 1)
    )
    close(value, 0.5 * (np.exp(90.0) - 1.0 - 90.0) + 0.5 * (0.25 + 1.0 + np.exp(-90.0) - 1.0 + 90.0))
    close(g_mu, mu)
    close(g_logvar, 0.5 * (np.exp(logvar) - 1.0))
    assert np.isfinite(to_numpy(value)) and np.all(np.isfinite(g_logvar))


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_vae_kl_huge_logvar_float32_overflows_to_inf(backend):
    """exp(90) overflows float32 (max about 3.4e38 = exp(88.7)): the divergence is +inf and so is its
    logvar-gradient there, never NaN; logvar = -90 (exp underflows to a denormal) stays finite."""
    mu, logvar = np.array([[0.5, -1.0], [0.5, -1.0]]), np.array([[90.0, 0.0], [-90.0, 0.0]])
    value, (g_mu, g_logvar) = backend.value_and_grad(
        lambda u, v: namespace(backend).vae_kl(u, v, reduction="none"),
        [backend.asarray(mu, "float32"), backend.asarray(logvar, "float32")],
        (0, 1),
    )
    value = to_numpy(value)
    assert value[0] == np.inf
    close(value[1], 0.5 * (0.25 - 1.0 + 90.0) + 0.5 * (1.0 - 1.0 + 1.0), rtol=1e-6)
    assert not np.any(np.isnan(g_mu)) and not np.any(np.isnan(g_logvar))
    close(g_mu, mu, rtol=1e-6)
    assert g_logvar[0, 0] == np.inf
    close(g_logvar[1, 0], -0.5, rtol=1e-6)
    with np.errstate(over="ignore"):
        assert pn.vae_kl(mu.astype(np.float32), logvar.astype(np.float32), reduction="none")[0] == np.inf


# --------------------------------------------------------------------------- perceptual


def test_perceptual_with_identity_features_is_mse(backend):
    rng = np.random.default_rng(6)
    pred, target = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4))
    m = namespace(backend)
    p, t = backend.asarray(pred), backend.asarray(target)
    identity = lambda x: [x]  # noqa: E731
    close(m.perceptual(p, t, features=identity), to_numpy(m.mse(p, t)))
    close(m.perceptual(p, t, features=identity, reduction="none"), ((pred - target) ** 2).reshape(3, -1).mean(1))
    close(m.perceptual(p, t, features=identity, reduction="sum"), ((pred - target) ** 2).reshape(3, -1).mean(1).sum())


def test_perceptual_layer_weights(backend):
    rng = np.random.default_rng(7)
    pred, target = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    m = namespace(backend)
    p, t = backend.asarray(pred), backend.asarray(target)
    layers = lambda x: [x, x * 3.0]  # noqa: E731  (the second layer's MSE is 9 times the first)
    base = ((pred - target) ** 2).mean()
    close(m.perceptual(p, t, features=layers), (base + 9 * base) / 2)  # default: the mean over layers
    close(m.perceptual(p, t, features=layers, layer_weights=[1.0, 0.0]), base)
    close(m.perceptual(p, t, features=layers, layer_weights=[0.5, 2.0]), 0.5 * base + 18 * base)
    with pytest.raises(ValueError, match="one weight per feature map"):
        m.perceptual(p, t, features=layers, layer_weights=[1.0])
    with pytest.raises(ValueError, match="no feature maps"):
        m.perceptual(p, t, features=lambda x: [])


@pytest.mark.parametrize("backend", AUTODIFF, indirect=True)
def test_perceptual_gradient_reaches_pred_only_through_features(backend):
    """d/dpred of mean((2 pred - 2 target)^2) = 8 (pred - target) / size."""
    rng = np.random.default_rng(8)
    pred, target = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    _, (g,) = backend.value_and_grad(
        lambda p, t: namespace(backend).perceptual(p, t, features=lambda x: [2.0 * x]),
        [backend.asarray(pred), backend.asarray(target)],
        (0,),
    )
    close(g, 8.0 * (pred - target) / pred.size)
