"""Specs of the generative losses (see ``polyloss/core/generative.py``).

The torch references re-type study-hub's (eunsu-park/study-hub, lesson 24) GAN functions, ``vae_loss``
and ``PerceptualLoss`` (section 6), the hinge losses of SAGAN/BigGAN from
their formula, and the WGAN-GP ``compute_gradient_penalty`` of PyTorch-GAN
(``torch.autograd.grad(create_graph=True)``); the JAX references hand the
logits to ``optax.losses.sigmoid_binary_cross_entropy`` or take the gradient
one sample at a time with ``jax.grad``.

Discriminator cases keep the real and fake batches the same shape (the
``"none"`` reduction needs it); different batch sizes are tested in
``tests/test_generative.py``. Callables (the critic, the feature maps) travel
in ``Case.params`` and are written with operators only, so one function
serves torch tensors and JAX arrays alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from polyloss.verify.specs import ENDPOINTS_OF_0_1, register
from polyloss.verify.specs._gen import away_from_kinks, binary, normal, set_to
from polyloss.verify.specs.edges import (
    SATURATED,
    EdgeCorpus,
    Finite,
    Infinite,
    Raises,
    empty_batch,
    f64,
    softplus,
)
from polyloss.verify.specs.record import Case, HalfPrecision, Layout, LossSpec, Plot, Variant, ZeroCase
from polyloss.verify.specs.references import NotApplicable, Reference, reduce_reference

# --------------------------------------------------------------------------- plots

#: the discriminator (critic) losses' axis: one real and one fake sample, the fake's output at minus the real's
DISCRIMINATOR_AXIS = "output on a real sample (the fake's at minus it)"
#: the generator losses' axis
GENERATOR_AXIS = "output on a fake sample"


def _discriminator_plot(real: str, fake: str, span: tuple[float, float] = (-4.0, 4.0)) -> Plot:
    """The loss of one real sample whose output is x and one fake whose output is -x (``real``, ``fake``:
    the inputs' names): the discriminator separating them better as x grows."""
    return Plot(DISCRIMINATOR_AXIS, lambda x: {real: f64([x]), fake: f64([-x])}, span=span)


def _generator_plot(
    fake: str, sweep: tuple[str, tuple[Any, ...]] | None = None, span: tuple[float, float] = (-4.0, 4.0)
) -> Plot:
    """The loss of one fake sample whose discriminator output (``fake``) is x."""
    return Plot(GENERATOR_AXIS, lambda x: {fake: f64([x])}, span=span, sweep=sweep)


def _square_features(z: Any) -> list[Any]:
    """Two feature maps, the pixels and their squares: a pred of -1 matches a target of 1 in the second."""
    return [z, z * z]


def _bowl_critic(z: Any) -> Any:
    """The critic 0.5 |z|^2 (operators and methods only: numpy, torch, JAX): its gradient at z is z."""
    return (z * z).sum(-1) * 0.5


# --------------------------------------------------------------------------- edge cases


def _edge_cases() -> EdgeCorpus:
    edges = EdgeCorpus()
    for label, big in SATURATED.items():
        edges.case(
            "gan_discriminator",
            f"logits at {label}",
            {"real_logits": f64([big]), "fake_logits": f64([-big])},
            Finite(2 * softplus(-big)),
        )
        edges.case(
            "gan_generator",
            f"minimax at {label}",
            {"fake_logits": f64([-big])},
            Finite(-softplus(-big)),
            params={"non_saturating": False},
        )
    edges.case(
        "gan_generator",
        "non-saturating, rejected fakes (-1e4)",
        {"fake_logits": f64([-1e4])},
        Finite(1e4),
        dtypes=("float64", "float32"),
    )
    edges.case(
        "wgan_critic",
        "large scores",
        {"real_scores": f64([1e4]), "fake_scores": f64([-1e4])},
        Finite(-2e4),
        dtypes=("float64", "float32"),
    )
    edges.case(
        "wgan_generator", "large scores", {"fake_scores": f64([1e4])}, Finite(-1e4), dtypes=("float64", "float32")
    )
    edges.case(
        "hinge_discriminator",
        "beyond both margins",
        {"real_logits": f64([5.0]), "fake_logits": f64([-5.0])},
        Finite(0.0, grad="zero"),
    )
    edges.case(
        "hinge_generator", "large scores", {"fake_logits": f64([1e4])}, Finite(-1e4), dtypes=("float64", "float32")
    )
    for logvar in (90.0, -90.0):
        edges.case(
            "vae_kl",
            f"logvar at {logvar:+g}",
            {"mu": f64([[0.0]]), "logvar": f64([[logvar]])},
            Finite(-0.5 * (1.0 + logvar - math.exp(logvar)), rtol=1e-12),
            dtypes=("float64",),
        )
    edges.case(
        "vae_kl",
        "logvar at +90 overflows float32: the KL is that large",
        {"mu": f64([[0.0]]), "logvar": f64([[90.0]])},
        Infinite(grad="any"),
        dtypes=("float32",),
    )
    edges.case(
        "vae",
        "reconstruction exactly 0 and 1 (log clamped at -100)",
        {"recon": f64([[0.0, 1.0]]), "x": f64([[1.0, 1.0]]), "mu": f64([[0.0]]), "logvar": f64([[0.0]])},
        Finite(100.0),
        reduction="sum",
    )
    edges.case(
        "perceptual",
        "identical inputs",
        {"pred": f64([[1.0, 2.0]]), "target": f64([[1.0, 2.0]])},
        Finite(0.0, grad="zero"),
        params={"features": lambda x: [x, 2.0 * x]},
    )
    edges.case(
        "gradient_penalty",
        "critic with unit gradient everywhere: 0",
        {
            "real": f64([[1.0, 0.0], [0.0, 2.0]]),
            "fake": f64([[0.0, 0.0], [3.0, 1.0]]),
            "interpolation": f64([0.0, 1.0]),
        },
        # the 0 * x**2 term keeps the penalty on the autograd graph (a constant has no gradient to take)
        Finite(0.0),
        params={"critic": lambda x: x[..., 0] * 0.6 + x[..., 1] * 0.8 + 0.0 * x[..., 0] ** 2},
    )
    edges.case(
        "gradient_penalty",
        "interpolation outside [0, 1]",
        {"real": f64([[1.0, 0.0]]), "fake": f64([[0.0, 0.0]]), "interpolation": f64([1.5])},
        Raises(ValueError, r"interpolation must contain probabilities in \[0, 1\]"),
        params={"critic": lambda x: x[..., 0]},
    )
    NO_SCORES = np.zeros((0, 1))
    for loss, inputs in (
        ("gan_discriminator", ("real_logits", "fake_logits")),
        ("gan_generator", ("fake_logits",)),
        ("wgan_critic", ("real_scores", "fake_scores")),
        ("wgan_generator", ("fake_scores",)),
        ("hinge_discriminator", ("real_logits", "fake_logits")),
        ("hinge_generator", ("fake_logits",)),
    ):
        edges.empty_batch(loss, dict.fromkeys(inputs, NO_SCORES), (0, 1))
    edges.empty_batch("vae_kl", {"mu": np.zeros((0, 3)), "logvar": np.zeros((0, 3))}, (0,))
    edges.empty_batch(
        "vae",
        {"recon": np.zeros((0, 4)), "x": np.zeros((0, 4)), "mu": np.zeros((0, 3)), "logvar": np.zeros((0, 3))},
        (0,),
    )
    return edges


EDGES = _edge_cases()


def _vae_kl_layout(case: Case) -> Layout:
    # axis is the latent axis; with axis=0 the inputs are (L, N): the samples are on axis 1
    axis = case.params.get("axis", -1)
    ndim = case.arrays["mu"].ndim
    sample_axis = 1 if axis in (0, -ndim) else 0
    return Layout(("mu", "logvar"), axes={"mu": sample_axis, "logvar": sample_axis})


L = 3  # latent width
P = 4  # pixels per sample


def _variant(name: str, make_arrays, **params: object) -> Variant:
    return Variant(name, lambda rng, n: Case(make_arrays(rng, n), dict(params)))


def _score_shapes(make_arrays) -> tuple[Variant, Variant]:
    """Variants "(N,1)" and "(N,)" of ``make_arrays(rng, shape)``: a critic's scores as a column or flat."""
    return (
        _variant("(N,1)", lambda rng, n: make_arrays(rng, (n, 1))),
        _variant("(N,)", lambda rng, n: make_arrays(rng, (n,))),
    )


def _torch_reduce(m, out, r):
    return reduce_reference(m.torch, out, r)


def _two_sided(m, real_terms, fake_terms, r, xp=None):
    """E_real[a] + E_fake[b] of a reference: each side reduced, or per sample for "none"."""
    xp = xp or m.torch
    return reduce_reference(xp, real_terms, r) + reduce_reference(xp, fake_terms, r)


def _saturated(rng, shape, magnitude=30.0):
    """Logits of magnitude about ``magnitude``, random signs (sigmoid saturated in float64 too)."""
    return rng.choice([-1.0, 1.0], size=shape) * (magnitude + rng.uniform(0.0, 1.0, size=shape))


# -- GAN (Goodfellow et al.) ------------------------------------------------------


def _gan_pair(rng, n, *, shape=None, saturated=False):
    shape = shape or (n, 1)
    make = _saturated if saturated else (lambda g, s: normal(g, s, 2.0))
    return {"real_logits": make(rng, shape), "fake_logits": make(rng, shape)}


_GAN_PAIR_VARIANTS = (
    _variant("(N,1)", _gan_pair),
    _variant("(N,)", lambda rng, n: _gan_pair(rng, n, shape=(n,))),
    _variant("(N,2,2)", lambda rng, n: _gan_pair(rng, n, shape=(n, 2, 2))),
    _variant("saturated |logit|~30", lambda rng, n: _gan_pair(rng, n, saturated=True)),
)


def _study_hub_gan_discriminator(m, a, p, r):
    """study-hub's gan_loss_discriminator; its two BCE means become sums or per-sample terms for the other
    reductions."""
    real_output, fake_output = a["real_logits"], a["fake_logits"]
    real_loss = m.F.binary_cross_entropy_with_logits(real_output, m.torch.ones_like(real_output), reduction=r)
    fake_loss = m.F.binary_cross_entropy_with_logits(fake_output, m.torch.zeros_like(fake_output), reduction=r)
    return real_loss + fake_loss


def _optax_gan_discriminator(m, a, p, r):
    sbce = m.optax.losses.sigmoid_binary_cross_entropy
    real, fake = a["real_logits"], a["fake_logits"]
    return _two_sided(m, sbce(real, m.jnp.ones_like(real)), sbce(fake, m.jnp.zeros_like(fake)), r, m.jnp)


register(
    LossSpec(
        name="gan_discriminator",
        variants=_GAN_PAIR_VARIANTS,
        references=(
            Reference("study-hub gan_loss_discriminator (re-typed)", "torch", _study_hub_gan_discriminator),
            Reference("optax.losses.sigmoid_binary_cross_entropy (ones / zeros)", "jax", _optax_gan_discriminator),
        ),
        notes="study-hub's function returns two BCE means added; 'sum' adds the two sums, 'none' the per-sample terms.",
        layout=Layout(("real_logits", "fake_logits")),
        half_precision=HalfPrecision(variants=("saturated |logit|~30",)),
        plot=_discriminator_plot("real_logits", "fake_logits"),
    )
)


def _gan_fake(rng, n, *, shape=None, saturated=False):
    shape = shape or (n, 1)
    return {"fake_logits": _saturated(rng, shape) if saturated else normal(rng, shape, 2.0)}


def _study_hub_gan_generator(m, a, p, r):
    """study-hub's gan_loss_generator (non-saturating; it has no minimax form)."""
    if not p.get("non_saturating", True):
        raise NotApplicable("study-hub's gan_loss_generator is the non-saturating form")
    fake_output = a["fake_logits"]
    return m.F.binary_cross_entropy_with_logits(fake_output, m.torch.ones_like(fake_output), reduction=r)


def _torch_minimax_generator(m, a, p, r):
    """log(1 - sigmoid(d)) = logsigmoid(-d), computed stably."""
    if p.get("non_saturating", True):
        raise NotApplicable("the minimax form only")
    return _torch_reduce(m, m.F.logsigmoid(-a["fake_logits"]), r)


def _optax_gan_generator(m, a, p, r):
    d = a["fake_logits"]
    sbce = m.optax.losses.sigmoid_binary_cross_entropy
    if p.get("non_saturating", True):
        out = sbce(d, m.jnp.ones_like(d))  # -log sigmoid(d)
    else:
        out = -sbce(d, m.jnp.zeros_like(d))  # log(1 - sigmoid(d))
    return reduce_reference(m.jnp, out, r)


register(
    LossSpec(
        name="gan_generator",
        variants=(
            _variant("non_saturating", _gan_fake),
            _variant("non_saturating,(N,)", lambda rng, n: _gan_fake(rng, n, shape=(n,))),
            _variant("minimax", _gan_fake, non_saturating=False),
            _variant("non_saturating,saturated |logit|~30", lambda rng, n: _gan_fake(rng, n, saturated=True)),
            _variant(
                "minimax,saturated |logit|~30", lambda rng, n: _gan_fake(rng, n, saturated=True), non_saturating=False
            ),
        ),
        references=(
            Reference("study-hub gan_loss_generator (re-typed)", "torch", _study_hub_gan_generator),
            Reference("log(1 - sigmoid(d)) as F.logsigmoid(-d)", "torch", _torch_minimax_generator),
            Reference("optax.losses.sigmoid_binary_cross_entropy", "jax", _optax_gan_generator),
        ),
        layout=Layout(("fake_logits",)),
        half_precision=HalfPrecision(variants=("minimax,saturated |logit|~30",)),
        plot=_generator_plot("fake_logits", ("non_saturating", (True, False)), span=(-5.0, 5.0)),
    )
)


# -- WGAN (Arjovsky et al.) -------------------------------------------------------


def _wgan_pair(rng, shape):
    return {"real_scores": normal(rng, shape, 3.0), "fake_scores": normal(rng, shape, 3.0)}


def _study_hub_wgan_critic(m, a, p, r):
    """study-hub's wgan_loss_discriminator, -(mean(real) - mean(fake)); torch.mean becomes sum / identity."""
    real_output, fake_output = a["real_scores"], a["fake_scores"]
    if r == "none":
        return -(real_output - fake_output)
    if r == "sum":
        return -(m.torch.sum(real_output) - m.torch.sum(fake_output))
    return -(m.torch.mean(real_output) - m.torch.mean(fake_output))


register(
    LossSpec(
        name="wgan_critic",
        variants=_score_shapes(_wgan_pair),
        references=(Reference("study-hub wgan_loss_discriminator (re-typed)", "torch", _study_hub_wgan_critic),),
        second_order=False,  # linear
        layout=Layout(("real_scores", "fake_scores")),
        plot=_discriminator_plot("real_scores", "fake_scores"),
    )
)


def _study_hub_wgan_generator(m, a, p, r):
    """study-hub's wgan_loss_generator, -mean(fake); torch.mean becomes sum / identity."""
    return -_torch_reduce(m, a["fake_scores"], r)


register(
    LossSpec(
        name="wgan_generator",
        variants=_score_shapes(lambda rng, shape: {"fake_scores": normal(rng, shape, 3.0)}),
        references=(Reference("study-hub wgan_loss_generator (re-typed)", "torch", _study_hub_wgan_generator),),
        second_order=False,  # linear
        layout=Layout(("fake_scores",)),
        plot=_generator_plot("fake_scores"),
    )
)


# -- hinge (Lim & Ye; SAGAN, BigGAN) ----------------------------------------------


def _hinge_logits(rng, shape):
    """Outputs whose magnitude stays 0.05 away from 1: the kinks are at real = 1 and fake = -1."""
    return away_from_kinks(rng, shape, (1.0,))


def _torch_hinge_discriminator(m, a, p, r):
    """mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))), as BigGAN-PyTorch's loss_hinge_dis."""
    return _two_sided(m, m.F.relu(1.0 - a["real_logits"]), m.F.relu(1.0 + a["fake_logits"]), r)


register(
    LossSpec(
        name="hinge_discriminator",
        variants=_score_shapes(
            lambda rng, shape: {"real_logits": _hinge_logits(rng, shape), "fake_logits": _hinge_logits(rng, shape)}
        ),
        references=(
            Reference("hinge formula with F.relu (BigGAN loss_hinge_dis)", "torch", _torch_hinge_discriminator),
        ),
        second_order=False,  # piecewise linear
        layout=Layout(("real_logits", "fake_logits")),
        plot=_discriminator_plot("real_logits", "fake_logits"),
    )
)


def _torch_hinge_generator(m, a, p, r):
    """-mean(D(G(z))), as BigGAN-PyTorch's loss_hinge_gen."""
    return -_torch_reduce(m, a["fake_logits"], r)


register(
    LossSpec(
        name="hinge_generator",
        variants=_score_shapes(lambda rng, shape: {"fake_logits": normal(rng, shape, 2.0)}),
        references=(Reference("hinge formula (BigGAN loss_hinge_gen)", "torch", _torch_hinge_generator),),
        second_order=False,  # linear
        layout=Layout(("fake_logits",)),
        plot=_generator_plot("fake_logits"),
    )
)


# -- gradient penalty (WGAN-GP, Gulrajani et al.) ---------------------------------


def _smooth_critic(x):
    """A framework-agnostic critic (operators and .sum(-1) only); its input gradient has norm >= 1
    for 3 or more features (the linear term), far from the norm's kink at 0."""
    return (x**3 * 0.5 + x).sum(-1) + (x[..., 0] * x[..., 1]) ** 2


def _quadratic_critic(x):
    """A critic whose gradient norm crosses 1 over the batch (the penalty's minimum)."""
    return (x * x * 0.4 + x * 0.3).sum(-1)


def _gp_arrays(rng, n, *, shape=(3,)):
    return {
        "real": normal(rng, (n, *shape)),
        "fake": normal(rng, (n, *shape)),
        "interpolation": rng.uniform(0.05, 0.95, size=(n,)),
    }


def _torch_compute_gradient_penalty(m, a, p, r):
    """PyTorch-GAN's WGAN-GP compute_gradient_penalty with the case's alpha instead of a random draw,
    times lambda; per-sample (none) and summed for the other reductions."""
    torch = m.torch
    D, real_samples, fake_samples = p["critic"], a["real"], a["fake"]
    alpha = a["interpolation"].reshape((real_samples.size(0),) + (1,) * (real_samples.dim() - 1))
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = torch.ones(d_interpolates.size(), dtype=d_interpolates.dtype, requires_grad=False)
    gradients = torch.autograd.grad(
        outputs=d_interpolates,
        inputs=interpolates,
        grad_outputs=fake,
        create_graph=True,
        retain_graph=True,
        only_inputs=True,
    )[0]
    gradients = gradients.view(gradients.size(0), -1)
    per_sample = p.get("weight", 10.0) * (gradients.norm(2, dim=1) - 1) ** 2
    return _torch_reduce(m, per_sample, r)


def _jax_per_sample_penalty(m, a, p, r):
    """The gradient of the critic one sample at a time (jax.vmap of jax.grad), then the penalty."""
    jax, jnp = m.jax, m.jnp
    critic = p["critic"]
    eps = a["interpolation"].reshape((-1,) + (1,) * (a["real"].ndim - 1))
    mixed = eps * a["real"] + (1.0 - eps) * a["fake"]
    grads = jax.vmap(jax.grad(lambda x: jnp.sum(critic(x[None]))))(mixed)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))
    return reduce_reference(jnp, p.get("weight", 10.0) * (norms - 1.0) ** 2, r)


register(
    LossSpec(
        name="gradient_penalty",
        variants=(
            _variant("(N,3),weight=10", _gp_arrays, critic=_smooth_critic),
            _variant(
                "(N,2,3),weight=1", lambda rng, n: _gp_arrays(rng, n, shape=(2, 3)), critic=_smooth_critic, weight=1.0
            ),
            _variant(
                "(N,4),quadratic critic,weight=2.5",
                lambda rng, n: _gp_arrays(rng, n, shape=(4,)),
                critic=_quadratic_critic,
                weight=2.5,
            ),
        ),
        references=(
            Reference(
                "PyTorch-GAN compute_gradient_penalty (re-typed, autograd.grad create_graph)",
                "torch",
                _torch_compute_gradient_penalty,
            ),
            Reference("per-sample jax.vmap(jax.grad(critic))", "jax", _jax_per_sample_penalty),
        ),
        notes="needs autodiff (absent from polyloss.numpy): values are compared with JAX; the critic is a "
        "framework-agnostic function in the params and the interpolation weights are given, so both "
        "frameworks interpolate identically. Gradients w.r.t. real/fake are double backward.",
        layout=Layout(("real", "fake", "interpolation")),  # the critic acts per sample (in params)
        weight_is_not_a_weight="weight is the penalty's scalar coefficient lambda (default 10), "
        "not a per-sample or per-class weight",
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase(
                    "gradient_penalty zero critic gradient",
                    "(N,4),quadratic critic,weight=2.5",
                    (set_to("real", slice(None), -0.375), set_to("fake", slice(None), -0.375)),  # 0.8 x + 0.3 == 0
                ),
            ),
        ),
        edge_cases=(
            # the critic is defined below the corpus, so its empty batch is stated here
            *empty_batch(
                {"real": np.zeros((0, 3)), "fake": np.zeros((0, 3)), "interpolation": np.zeros(0)},
                (0,),
                params={"critic": _smooth_critic},
            ),
        ),
        plot=Plot(
            "gradient norm of the critic at the interpolate (critic 0.5 |z|^2 at z = x)",
            lambda g: {"real": f64([[g]]), "fake": f64([[g]]), "interpolation": f64([0.5])},
            span=(0.05, 3.0),
            params={"critic": _bowl_critic},
        ),
    )
)


# -- VAE (Kingma & Welling) ------------------------------------------------------


def _latent(rng, shape):
    return {"mu": normal(rng, shape), "logvar": rng.uniform(-2.5, 2.5, size=shape)}


def _study_hub_kl(m, mu, logvar, dim):
    """study-hub's KL term, -0.5 * sum(1 + logvar - mu^2 - exp(logvar)), summed over ``dim``."""
    return -0.5 * m.torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=dim)


def _study_hub_vae_kl(m, a, p, r):
    """study-hub's vae_loss KL term: its full sum for "sum"; per sample (over the latent axis) otherwise."""
    mu, logvar = a["mu"], a["logvar"]
    if r == "sum":
        return -0.5 * m.torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return _torch_reduce(m, _study_hub_kl(m, mu, logvar, p.get("axis", -1)), r)


def _numpy_kl_loop(m, a, p, r):
    """KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per coordinate, summed over the latent axis."""
    np_ = m.np
    mu = np_.moveaxis(np_.asarray(a["mu"]), p.get("axis", -1), -1)
    logvar = np_.moveaxis(np_.asarray(a["logvar"]), p.get("axis", -1), -1)
    out = np_.zeros(mu.shape[:-1])
    for idx in np_.ndindex(out.shape):
        out[idx] = sum(
            0.5 * (float(u) ** 2 + np_.exp(float(v)) - 1.0 - float(v))
            for u, v in zip(mu[idx], logvar[idx], strict=True)
        )
    return reduce_reference(np_, out, r)


register(
    LossSpec(
        name="vae_kl",
        variants=(
            _variant("(N,L)", lambda rng, n: _latent(rng, (n, L))),
            _variant("axis=0,(L,N)", lambda rng, n: _latent(rng, (L, n)), axis=0),
            _variant("(N,2,L)", lambda rng, n: _latent(rng, (n, 2, L))),
        ),
        references=(
            Reference("study-hub vae_loss KL term (re-typed)", "torch", _study_hub_vae_kl),
            Reference("closed-form KL loop", "numpy", _numpy_kl_loop, grads=False),
        ),
        layout=_vae_kl_layout,
        plot=Plot(
            "log-variance of one latent (mean 0)",
            lambda v: {"mu": f64([[0.0]]), "logvar": f64([[v]])},
            span=(-4.0, 3.0),
        ),
    )
)


def _vae_arrays(rng, n, *, target="soft", recon="probs", shape=(P,)):
    shape = (n, *shape)
    x = {
        "soft": lambda: rng.uniform(0.0, 1.0, size=shape),
        "binary": lambda: binary(rng, shape),
        "real": lambda: normal(rng, shape),
    }[target]()
    recon_values = rng.uniform(0.02, 0.98, size=shape) if recon == "probs" else normal(rng, shape)
    return {"recon": recon_values, "x": x, **_latent(rng, (n, L))}


def _study_hub_vae(m, a, p, r):
    """study-hub's vae_loss: binary_cross_entropy(reduction='sum') + beta * KL; its comment's MSE for
    recon_loss='mse'. Per sample (summed over each sample's elements) for "none" and "mean"."""
    F, torch = m.F, m.torch
    recon_x, x, mu, logvar, beta = a["recon"], a["x"], a["mu"], a["logvar"], p.get("beta", 1.0)
    recon_fn = F.mse_loss if p.get("recon_loss", "bce") == "mse" else F.binary_cross_entropy
    if r == "sum":
        recon_loss = recon_fn(recon_x, x, reduction="sum")
        kl_div = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return recon_loss + beta * kl_div
    per_sample = recon_fn(recon_x, x, reduction="none").flatten(1).sum(1) + beta * _study_hub_kl(m, mu, logvar, 1)
    return _torch_reduce(m, per_sample, r)


register(
    LossSpec(
        name="vae",
        variants=(
            _variant("bce,soft x", _vae_arrays),
            _variant("bce,binary x", lambda rng, n: _vae_arrays(rng, n, target="binary")).excluding(x=ENDPOINTS_OF_0_1),
            _variant("bce,(N,2,2) images,beta=4", lambda rng, n: _vae_arrays(rng, n, shape=(2, 2)), beta=4.0),
            _variant("mse", lambda rng, n: _vae_arrays(rng, n, target="real", recon="real"), recon_loss="mse"),
            _variant(
                "mse,beta=0.5",
                lambda rng, n: _vae_arrays(rng, n, target="real", recon="real"),
                recon_loss="mse",
                beta=0.5,
            ),
        ),
        references=(Reference("study-hub vae_loss (re-typed)", "torch", _study_hub_vae),),
        notes="default reduction 'sum', as study-hub's; 'mean' and 'none' are per sample.",
        layout=Layout(("recon", "x", "mu", "logvar")),
        half_precision=HalfPrecision(
            zero_cases=(
                ZeroCase("vae bce recon 0 and 1", "bce,binary x", (set_to("recon", 0, 0.0), set_to("recon", 1, 1.0))),
            ),
        ),
        plot=Plot(
            "reconstruction of a pixel whose input is 1 (posterior at the prior: KL 0)",
            lambda p: {"recon": f64([[p]]), "x": f64([[1.0]]), "mu": f64([[0.0]]), "logvar": f64([[0.0]])},
            span=(0.05, 0.98),
            sweep=("recon_loss", ("bce", "mse")),
        ),
    )
)


# -- perceptual (Johnson et al.) --------------------------------------------------


def _two_layers(x):
    return [x * 2.0, x[:, :2, ...] ** 2]  # the ellipsis: array-api-strict indexes every axis


def _three_layers(x):
    return [x, x * x * 0.5 + x, x[:, :1, ...] * x[:, 1:2, ...] - x[:, 2:3, ...]]


def _identity_features(x):
    return [x]


def _images(rng, n, shape=(3, 2)):
    target = normal(rng, (n, *shape))
    return {"pred": target + normal(rng, (n, *shape), 0.5), "target": target}


def _study_hub_perceptual(m, a, p, r):
    """study-hub's PerceptualLoss.forward with the case's feature maps: the mean over layers of
    F.mse_loss (layer_weights replace 1/L); per-sample means for "none" and "sum"."""
    F = m.F
    features = p["features"]
    pred_maps, target_maps = features(a["pred"]), features(a["target"])
    weights = p.get("layer_weights") or [1.0 / len(pred_maps)] * len(pred_maps)
    loss = 0
    for w, pred_features, target_features in zip(weights, pred_maps, target_maps, strict=True):
        if r == "mean":
            loss += w * F.mse_loss(pred_features, target_features)
        else:
            loss += w * F.mse_loss(pred_features, target_features, reduction="none").flatten(1).mean(1)
    return loss if r != "sum" else loss.sum()


register(
    LossSpec(
        name="perceptual",
        variants=(
            _variant("two layers", _images, features=_two_layers),
            _variant("three layers,layer_weights", _images, features=_three_layers, layer_weights=(0.3, 1.5, 0.7)),
            _variant(
                "identity features,(N,3,2,2)", lambda rng, n: _images(rng, n, (3, 2, 2)), features=_identity_features
            ),
        ),
        references=(
            Reference("study-hub PerceptualLoss (re-typed, the case's features)", "torch", _study_hub_perceptual),
        ),
        layout=Layout(("pred", "target")),  # the feature maps act per sample (in params),
        edge_cases=(
            *empty_batch(
                {"pred": np.zeros((0, 3, 2)), "target": np.zeros((0, 3, 2))}, (0,), params={"features": _two_layers}
            ),
        ),
        plot=Plot(
            "error of one pixel (pred - target, target 1), features [z, z^2]",
            lambda e: {"pred": f64([[1.0 + e]]), "target": f64([[1.0]])},
            span=(-3.0, 1.0),
            sweep=("layer_weights", ((1.0, 0.0), (0.5, 0.5), (0.0, 1.0))),
            params={"features": _square_features},
        ),
    )
)
