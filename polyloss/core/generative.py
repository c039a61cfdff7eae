"""Generative models: GAN objectives, WGAN-GP's gradient penalty, the VAE ELBO, perceptual loss.

Discriminator losses take the critic's outputs on a real and a fake batch;
the two may differ in size for ``"mean"`` and ``"sum"`` (each side is
reduced on its own and the two are added), and must have the same shape for
``"none"`` (the per-sample sum of both sides). Logit-based forms go through
``softplus`` (``-log sigmoid(x) = softplus(-x)``), exact at saturation.

Conventions (tested by the edge-case corpus, ``tests/test_bad_inputs.py`` and
``tests/test_input_dtypes.py``): an empty batch gives ``"sum"`` and ``"mean"`` 0 and an empty
``"none"``; scores and samples must be floating (``TypeError`` naming them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from polyloss.core._checks import (
    boolean,
    check_axis,
    check_floating,
    check_nonnegative,
    check_same_shape,
    check_shape,
    check_unit_interval,
    nonnegative_number,
    one_of,
)
from polyloss.core._reduce import clamped_bce, reduce, safe_norm
from polyloss.core._registry import loss
from polyloss.core._typing import Array, Backend

_RECON_LOSSES = ("bce", "mse")


def _check_scores(xp: Any, **arrays: Array) -> None:
    for name, x in arrays.items():
        check_floating(xp, name, x)


def _two_sided(xp: Any, real_terms: Array, fake_terms: Array, reduction: str) -> Array:
    """E_real[a] + E_fake[b], each side reduced on its own (the batches may differ in size)."""
    if reduction == "none":
        if tuple(real_terms.shape) != tuple(fake_terms.shape):
            raise ValueError(
                "reduction='none' adds the real and fake losses sample by sample and needs equal shapes, got "
                f"real {tuple(real_terms.shape)} and fake {tuple(fake_terms.shape)}"
            )
        return real_terms + fake_terms
    return reduce(xp, real_terms, reduction) + reduce(xp, fake_terms, reduction)


@loss("generative")
def gan_discriminator(b: Backend, real_logits: Array, fake_logits: Array, *, reduction: str = "mean") -> Array:
    r"""The original GAN discriminator loss (Goodfellow et al., 2014), from logits.

    .. math:: \ell = -\mathbb{E}[\log \sigma(D(x))] - \mathbb{E}[\log(1 - \sigma(D(G(z))))]
              = \mathbb{E}[\operatorname{softplus}(-d_{real})] + \mathbb{E}[\operatorname{softplus}(d_{fake})]

    Args:
        real_logits: discriminator logits on real samples.
        fake_logits: discriminator logits on generated samples.
        reduction: ``"mean"`` (each side's mean, added), ``"sum"`` or ``"none"``
            (per sample, equal shapes).

    Returns:
        The loss.

    Study-hub's ``gan_loss_discriminator`` (eunsu-park/study-hub, lesson 24 "Loss Functions") (two
    ``binary_cross_entropy_with_logits`` means).
    """
    xp = b.xp
    _check_scores(xp, real_logits=real_logits, fake_logits=fake_logits)
    return _two_sided(xp, b.softplus(-real_logits), b.softplus(fake_logits), reduction)


@loss("generative", settings={"non_saturating": boolean()})
def gan_generator(b: Backend, fake_logits: Array, *, non_saturating: bool = True, reduction: str = "mean") -> Array:
    r"""The GAN generator loss, non-saturating or minimax, from logits.

    .. math:: \ell_{ns} = -\log \sigma(d) = \operatorname{softplus}(-d), \qquad
              \ell_{mm} = \log(1 - \sigma(d)) = -\operatorname{softplus}(d)

    The minimax form saturates (vanishing gradient when the discriminator
    rejects the fakes confidently); it is computed stably, never as
    ``log(1 - sigmoid(d))``.

    Args:
        fake_logits: discriminator logits on generated samples.
        non_saturating: the non-saturating form (default) or the minimax one.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss (negative for the minimax form).

    The non-saturating form is study-hub's ``gan_loss_generator``
    (eunsu-park/study-hub, lesson 24 "Loss Functions"); Goodfellow et al., 2014.
    """
    xp = b.xp
    _check_scores(xp, fake_logits=fake_logits)
    if non_saturating:
        return reduce(xp, b.softplus(-fake_logits), reduction)
    return reduce(xp, -b.softplus(fake_logits), reduction)


@loss("generative")
def wgan_critic(b: Backend, real_scores: Array, fake_scores: Array, *, reduction: str = "mean") -> Array:
    r"""The Wasserstein GAN critic loss (Arjovsky et al., 2017).

    .. math:: \ell = \mathbb{E}[D(G(z))] - \mathbb{E}[D(x)]

    Args:
        real_scores: critic scores on real samples.
        fake_scores: critic scores on generated samples.
        reduction: ``"mean"`` (each side's mean), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss; add :func:`gradient_penalty` for WGAN-GP.

    Study-hub's ``wgan_loss_discriminator`` (eunsu-park/study-hub, lesson 24 "Loss Functions").
    """
    xp = b.xp
    _check_scores(xp, real_scores=real_scores, fake_scores=fake_scores)
    return _two_sided(xp, -real_scores, fake_scores, reduction)


@loss("generative")
def wgan_generator(b: Backend, fake_scores: Array, *, reduction: str = "mean") -> Array:
    r"""The Wasserstein GAN generator loss.

    .. math:: \ell = -\mathbb{E}[D(G(z))]

    Args:
        fake_scores: critic scores on generated samples.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss.

    Study-hub's ``wgan_loss_generator`` (eunsu-park/study-hub, lesson 24 "Loss Functions");
    Arjovsky et al., *Wasserstein GAN*, 2017.
    """
    xp = b.xp
    _check_scores(xp, fake_scores=fake_scores)
    return reduce(xp, -fake_scores, reduction)


@loss("generative")
def hinge_discriminator(b: Backend, real_logits: Array, fake_logits: Array, *, reduction: str = "mean") -> Array:
    r"""The hinge discriminator loss (Lim & Ye, 2017; SAGAN, BigGAN).

    .. math:: \ell = \mathbb{E}[\max(0, 1 - D(x))] + \mathbb{E}[\max(0, 1 + D(G(z)))]

    Args:
        real_logits: discriminator outputs on real samples.
        fake_logits: discriminator outputs on generated samples.
        reduction: ``"mean"`` (each side's mean), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss.
    """
    xp = b.xp
    _check_scores(xp, real_logits=real_logits, fake_logits=fake_logits)
    return _two_sided(xp, b.relu(1.0 - real_logits), b.relu(1.0 + fake_logits), reduction)


@loss("generative")
def hinge_generator(b: Backend, fake_logits: Array, *, reduction: str = "mean") -> Array:
    r"""The hinge generator loss: the negated discriminator output.

    .. math:: \ell = -\mathbb{E}[D(G(z))]

    Args:
        fake_logits: discriminator outputs on generated samples.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss.
    """
    xp = b.xp
    _check_scores(xp, fake_logits=fake_logits)
    return reduce(xp, -fake_logits, reduction)


def _flat(xp: Any, x: Array) -> Array:
    """``x`` as (batch, features): the feature size is stated, since -1 is ambiguous in an empty batch."""
    return xp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


def _per_sample_sum(xp: Any, x: Array) -> Array:
    """Sum over every axis but the first (the batch)."""
    return xp.sum(_flat(xp, x), axis=1)


def _per_sample_mean(xp: Any, x: Array) -> Array:
    return xp.mean(_flat(xp, x), axis=1)


@loss("generative", needs_autodiff=True, settings={"weight": nonnegative_number(arrays=True)})
def gradient_penalty(
    b: Backend,
    critic: Callable[[Array], Array],
    real: Array,
    fake: Array,
    *,
    weight: float | Array = 10.0,
    key_or_generator: Any = None,
    interpolation: Array | None = None,
    reduction: str = "mean",
) -> Array:
    r"""WGAN-GP's gradient penalty (Gulrajani et al., 2017).

    .. math:: \ell_i = \lambda \left(\lVert \nabla_{\hat x} D(\hat x_i) \rVert_2 - 1\right)^2,
              \qquad \hat x_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde x_i,
              \quad \epsilon_i \sim U[0, 1]

    The gradient is taken by the framework (``torch.func.grad``, which also
    works under ``torch.func.vmap`` and ``torch.compile(fullgraph=True)``;
    ``jax.grad``), so the penalty itself can be differentiated with respect to
    the critic's parameters; the interpolation, the norm (over every axis but
    the batch) and the penalty are the shared maths. Not in ``polyloss.numpy``
    (no autodiff).

    Args:
        critic: the critic, a function from a batch like ``real`` to scores
            (a ``torch.nn.Module`` or a JAX function closing over its parameters).
        real: a batch of real samples ``(N, ...)``.
        fake: a batch of generated samples, same shape.
        weight: :math:`\lambda \ge 0` (default 10).
        key_or_generator: where :math:`\epsilon` comes from: a ``jax.random``
            key (required in JAX unless ``interpolation`` is given), or a
            ``torch.Generator`` (``None``: torch's global generator).
        interpolation: optional :math:`\epsilon`, shape ``(N,)``, values in
            [0, 1], instead of drawing it (reproducible across frameworks).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The penalty.
    """
    xp = b.xp
    if not callable(critic):
        raise TypeError(f"critic must be a callable (a module or function), got {critic!r}")
    check_floating(xp, "real", real)
    check_floating(xp, "fake", fake)
    check_same_shape("real", real, "fake", fake)
    if real.ndim == 0:
        raise ValueError("real must have a batch axis 0, got a 0-d array")
    broadcast = (real.shape[0],) + (1,) * (real.ndim - 1)
    if interpolation is None:
        epsilon = b.uniform(key_or_generator, broadcast, real)
    else:
        check_floating(xp, "interpolation", interpolation)
        check_shape("interpolation", interpolation, real.shape[:1])
        check_unit_interval(b, "interpolation", interpolation)
        epsilon = xp.reshape(interpolation, broadcast)
    mixed = epsilon * real + (1.0 - epsilon) * fake
    gradient = b.grad_of_sum(critic, mixed)
    norm = safe_norm(xp, _flat(xp, gradient), axis=1)
    return reduce(xp, weight * (norm - 1.0) ** 2, reduction)


def _gaussian_kl(xp: Any, mu: Array, logvar: Array, axis: int) -> Array:
    """KL(N(mu, exp(logvar)) || N(0, I)) of each sample, summed over the latent ``axis``."""
    terms = 1.0 + logvar - mu * mu - xp.exp(logvar)
    return -0.5 * xp.sum(terms, axis=axis)


@loss("generative")
def vae_kl(b: Backend, mu: Array, logvar: Array, *, axis: int = -1, reduction: str = "mean") -> Array:
    r"""KL divergence of a diagonal Gaussian posterior from the standard normal prior.

    .. math:: \ell_i = -\tfrac12 \sum_j \left(1 + \log\sigma_{ij}^2 - \mu_{ij}^2 - \sigma_{ij}^2\right)

    Args:
        mu: posterior means, latent dimensions on ``axis``.
        logvar: posterior log-variances :math:`\log\sigma^2`, same shape.
        axis: the latent axis, summed over (default -1).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The divergence (>= 0). Very large ``logvar`` overflows ``exp`` to
        ``inf`` (float32 above about 88.7): the divergence is that large.

    The KL term of study-hub's ``vae_loss`` (eunsu-park/study-hub, lesson 24 "Loss Functions"),
    which sums it.
    Kingma & Welling, *Auto-Encoding Variational Bayes*, 2014.
    """
    xp = b.xp
    _check_scores(xp, mu=mu, logvar=logvar)
    check_same_shape("mu", mu, "logvar", logvar)
    axis = check_axis("mu", mu, axis)
    return reduce(xp, _gaussian_kl(xp, mu, logvar, axis), reduction)


@loss("generative", settings={"recon_loss": one_of(*_RECON_LOSSES), "beta": nonnegative_number(arrays=True)})
def vae(
    b: Backend,
    recon: Array,
    x: Array,
    mu: Array,
    logvar: Array,
    *,
    beta: float | Array = 1.0,
    recon_loss: str = "bce",
    reduction: str = "sum",
) -> Array:
    r"""The (beta-)VAE loss: reconstruction plus beta times the KL of the posterior.

    .. math::
        \ell_i = \sum_k r(\hat x_{ik}, x_{ik})
                 + \beta\, \mathrm{KL}\big(\mathcal N(\mu_i, \sigma_i^2) \,\|\, \mathcal N(0, I)\big)

    with :math:`r` the binary cross-entropy on probabilities (logs clamped at
    -100, as torch) or the squared error, summed over every axis but the batch.

    Args:
        recon: reconstructions ``(N, ...)``: probabilities for ``"bce"``.
        x: the inputs, same shape (in [0, 1] for ``"bce"``).
        mu: posterior means ``(N, L)``.
        logvar: posterior log-variances ``(N, L)``.
        beta: weight of the KL term, >= 0 (default 1; Higgins et al. 2017 for > 1).
        recon_loss: ``"bce"`` or ``"mse"``.
        reduction: ``"sum"`` (the default here, as study-hub's ``vae_loss`` and the VAE paper
            sum over the batch: the one exception to ``"mean"``), ``"mean"``
            (over samples) or ``"none"`` (per sample).

    Returns:
        The loss.

    Study-hub's ``vae_loss`` (eunsu-park/study-hub, lesson 24 "Loss Functions") with
    ``recon_loss="bce"``. Kingma & Welling, *Auto-Encoding Variational Bayes*, 2014.
    """
    xp = b.xp
    _check_scores(xp, recon=recon, x=x, mu=mu, logvar=logvar)
    check_same_shape("recon", recon, "x", x)
    check_same_shape("mu", mu, "logvar", logvar)
    if recon.ndim == 0 or mu.ndim != 2 or mu.shape[0] != recon.shape[0]:
        raise ValueError(
            f"mu must have shape (N, L) with N = recon.shape[0] = {recon.shape[0] if recon.ndim else None}, "
            f"got {tuple(mu.shape)}"
        )
    if recon_loss == "bce":
        check_unit_interval(b, "recon", recon)
        check_unit_interval(b, "x", x)
        elementwise = clamped_bce(xp, recon, x)
    else:
        error = recon - x
        elementwise = error * error
    kl = _gaussian_kl(xp, mu, logvar, 1)
    return reduce(xp, _per_sample_sum(xp, elementwise) + beta * kl, reduction)


@loss("generative")
def perceptual(
    b: Backend,
    pred: Array,
    target: Array,
    *,
    features: Callable[[Array], Sequence[Array]],
    layer_weights: Sequence[float] | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Perceptual (feature-space) loss: weighted MSE between feature maps (Johnson et al., 2016).

    .. math:: \ell_i = \sum_l w_l \operatorname{mean}\big((F_l(\hat y)_i - F_l(y)_i)^2\big),
              \qquad w_l = 1/L \text{ by default}

    Args:
        pred: generated images (or any batch) ``(N, ...)``.
        target: reference batch, same shape.
        features: a callable returning a list of feature maps ``(N, ...)`` for
            a batch: a torch module (e.g. slices of a torchvision VGG the user
            loaded) or a JAX function. polyloss downloads no weights.
        layer_weights: one float >= 0 per feature map (default: 1/L each).
        reduction: ``"mean"`` (over samples), ``"sum"`` or ``"none"`` (per sample).

    Returns:
        The loss. With the default weights and ``"mean"`` it is the
        ``PerceptualLoss`` of study-hub (eunsu-park/study-hub, lesson 24 "Loss Functions"): the average over layers of
        ``F.mse_loss(F_l(pred), F_l(target))``.
    """
    xp = b.xp
    _check_scores(xp, pred=pred, target=target)
    check_same_shape("pred", pred, "target", target)
    if not callable(features):
        raise TypeError(f"features must be a callable returning a list of feature maps, got {features!r}")
    pred_maps, target_maps = list(features(pred)), list(features(target))
    if not pred_maps:
        raise ValueError("features returned no feature maps")
    if layer_weights is None:
        layer_weights = [1.0 / len(pred_maps)] * len(pred_maps)
    if isinstance(layer_weights, (str, bytes)) or not hasattr(layer_weights, "__iter__"):
        raise TypeError(f"layer_weights must be a sequence of floats, one per feature map, got {layer_weights!r}")
    layer_weights = [check_nonnegative(f"layer_weights[{i}]", w) for i, w in enumerate(layer_weights)]
    if len(layer_weights) != len(pred_maps):
        raise ValueError(
            f"layer_weights must have one weight per feature map ({len(pred_maps)}), got {len(layer_weights)}"
        )
    per_sample = 0.0
    for w, p, t in zip(layer_weights, pred_maps, target_maps, strict=False):
        error = p - t
        per_sample = per_sample + w * _per_sample_mean(xp, error * error)
    return reduce(xp, per_sample, reduction)
