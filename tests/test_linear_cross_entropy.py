"""linear_cross_entropy beyond the conformance matrix: memory that does not grow with N x V,
the chunking left invisible, second derivatives, autocast, shard_map and bad inputs.

Its values and gradients against torch's ``F.linear_cross_entropy``, optax and a per-token
loop run with every loss in ``test_conformance.py`` (the spec: ``polyloss/verify/specs/classification.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import BACKENDS, MODULES, close, to_numpy

import polyloss.jax as pj
import polyloss.torch as pt

ROOT = Path(__file__).resolve().parents[1]


def problem(n: int = 6, hidden: int = 4, classes: int = 9, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "hidden": rng.normal(size=(n, hidden)),
        "weight": rng.normal(size=(classes, hidden)),
        "bias": rng.normal(size=(classes,)),
        "target": rng.integers(0, classes, size=(n,)),
    }


def dense_torch(p: dict[str, np.ndarray], reduction: str = "mean", **options) -> torch.Tensor:
    """torch's own dense path: the logits of nn.Linear, then F.cross_entropy."""
    logits = torch.nn.functional.linear(torch.tensor(p["hidden"]), torch.tensor(p["weight"]), torch.tensor(p["bias"]))
    return torch.nn.functional.cross_entropy(logits, torch.tensor(p["target"]), reduction=reduction, **options)


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_every_chunk_size_gives_the_dense_value(backend, reduction):
    p = problem(n=7)
    expected = dense_torch(p, reduction, label_smoothing=0.1).numpy()
    loss = MODULES[backend.name].linear_cross_entropy
    args = [backend.asarray(p[k]) for k in ("hidden", "weight", "target")]
    for chunk_size in (1, 2, 3, 7, 100, None):
        got = loss(
            *args, bias=backend.asarray(p["bias"]), label_smoothing=0.1, chunk_size=chunk_size, reduction=reduction
        )
        close(got, expected, rtol=1e-12, atol=1e-13)


def test_torch_autograd_keeps_no_array_of_n_by_v():
    """Every tensor the autograd graph saves, for both gradient paths, is at most the output layer's
    weight (V x H): never the (N, V) logits, nor their gradient; the gradients equal the dense ones."""
    n, features, classes, chunk = 64, 5, 256, 8
    p = problem(n=n, hidden=features, classes=classes)
    target = torch.tensor(p["target"])
    for reduction in ("mean", "none"):
        sizes: list[int] = []

        def pack(x: torch.Tensor, sizes: list[int] = sizes) -> torch.Tensor:
            sizes.append(x.numel())
            return x

        hidden = torch.tensor(p["hidden"], requires_grad=True)
        weight = torch.tensor(p["weight"], requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            out = pt.linear_cross_entropy(hidden, weight, target, chunk_size=chunk, reduction=reduction)
        if reduction == "none":  # the recomputing path saves its inputs (the fused one its gradients)
            assert sizes, "nothing saved: the custom gradient was not used"
        assert max(sizes, default=0) <= classes * features < n * classes, (reduction, sizes)
        out.sum().backward()
        expected = torch.tensor(p["hidden"], requires_grad=True)
        logits = expected @ torch.tensor(p["weight"]).T
        torch.nn.functional.cross_entropy(logits, target, reduction=reduction).sum().backward()
        close(hidden.grad, expected.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_jax_compiled_working_memory_is_one_chunk_not_n_by_v():
    """XLA's own memory analysis: the compiled value-and-gradient keeps temporaries a fraction of the
    (N, V) logits the dense path needs (float32: 4 bytes each)."""
    n, hidden, classes, chunk = 512, 16, 4096, 16
    p = problem(n=n, hidden=hidden, classes=classes)
    args = (jnp.asarray(p["hidden"], jnp.float32), jnp.asarray(p["weight"], jnp.float32), jnp.asarray(p["target"]))

    def chunked(h, w, t):
        return pj.linear_cross_entropy(h, w, t, chunk_size=chunk)

    def dense(h, w, t):
        return pj.cross_entropy(h @ w.T, t)

    def temp_bytes(f) -> int:
        analysis = jax.jit(jax.value_and_grad(f, argnums=(0, 1))).lower(*args).compile().memory_analysis()
        assert analysis is not None, "this XLA backend gives no memory analysis"
        return analysis.temp_size_in_bytes

    logits_bytes, chunk_bytes = n * classes * 4, chunk * classes * 4
    assert temp_bytes(dense) >= logits_bytes  # the dense path holds the logits (the check can fail)
    assert temp_bytes(chunked) <= 4 * chunk_bytes  # a few chunks' logits, probabilities and gradient


# --------------------------------------------------------------------------- derivatives


def test_torch_second_derivative_raises_rather_than_being_wrong():
    """The fused path stores the gradient computed in the forward pass: once differentiable."""
    p = problem()
    hidden = torch.tensor(p["hidden"], requires_grad=True)
    out = pt.linear_cross_entropy(hidden, torch.tensor(p["weight"]), torch.tensor(p["target"]))
    (grad,) = torch.autograd.grad(out, hidden, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|does not require grad"):
        torch.autograd.grad(grad.sum(), hidden)


def test_torch_fused_gradient_taken_twice_raises_rather_than_being_wrong():
    """The fused path hands its stored gradients over (no copy): a second backward pass through the
    same graph (retain_graph=True) raises instead of returning them scaled twice."""
    p = problem()
    hidden = torch.tensor(p["hidden"], requires_grad=True)
    out = pt.linear_cross_entropy(hidden, torch.tensor(p["weight"]), torch.tensor(p["target"]))
    out.backward(retain_graph=True)
    expected = dense_torch({**p, "bias": np.zeros(9)})
    with pytest.raises(RuntimeError, match="once per forward pass"):
        out.backward()
    assert hidden.grad is not None
    close(out, expected.numpy(), rtol=1e-12)


def test_jax_hessian_vector_product_equals_the_dense_one():
    jax.config.update("jax_enable_x64", True)
    p = problem(n=4, hidden=3, classes=5)
    w, t = jnp.asarray(p["weight"]), jnp.asarray(p["target"])
    v = jnp.asarray(np.random.default_rng(1).normal(size=p["hidden"].shape))
    for reduction in ("mean", "none"):

        def chunked(h, reduction=reduction):
            return jnp.sum(pj.linear_cross_entropy(h, w, t, chunk_size=3, z_loss=0.1, reduction=reduction))

        def dense(h, reduction=reduction):
            return jnp.sum(pj.cross_entropy(h @ w.T, t, z_loss=0.1, reduction=reduction))

        def hvp(f):
            return jax.jvp(jax.grad(f), (jnp.asarray(p["hidden"]),), (v,))[1]

        close(hvp(chunked), to_numpy(hvp(dense)), rtol=1e-10, atol=1e-12)


def test_torch_autocast_bfloat16_stays_close_to_float32():
    p = problem(n=16, hidden=8, classes=32)
    hidden = torch.tensor(p["hidden"], dtype=torch.float32, requires_grad=True)
    weight = torch.tensor(p["weight"], dtype=torch.float32, requires_grad=True)
    target = torch.tensor(p["target"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = pt.linear_cross_entropy(hidden, weight, target)
    out.backward()
    expected = dense_torch({**p, "bias": np.zeros(32)})
    assert hidden.grad is not None and hidden.grad.dtype == torch.float32
    close(out.float(), expected.numpy(), rtol=2e-2, atol=2e-2)


def test_jax_shard_map_with_tokens_sharded_equals_the_dense_loss():
    """Two host devices, hidden states and targets sharded on the token axis, the output layer
    replicated: the summed losses and the weight's gradient (a psum) equal the dense path's."""
    script = textwrap.dedent(
        """
        import numpy as np, jax, jax.numpy as jnp
        from jax.sharding import Mesh, PartitionSpec as P
        import polyloss.jax as pj
        jax.config.update("jax_enable_x64", True)
        shard_map = getattr(jax, "shard_map", None)
        if shard_map is None:
            from jax.experimental.shard_map import shard_map
        rng = np.random.default_rng(0)
        h, w = jnp.asarray(rng.normal(size=(8, 4))), jnp.asarray(rng.normal(size=(9, 4)))
        t = jnp.asarray(rng.integers(0, 9, size=8))
        mesh = Mesh(np.array(jax.devices()), ("tokens",))
        def local(h, w, t):
            return jax.lax.psum(pj.linear_cross_entropy(h, w, t, chunk_size=3, reduction="sum"), "tokens")
        sharded = jax.jit(shard_map(local, mesh=mesh, in_specs=(P("tokens"), P(), P("tokens")), out_specs=P()))
        def dense(h, w, t):
            return pj.cross_entropy(h @ w.T, t, reduction="sum")
        assert len(jax.devices()) == 2
        np.testing.assert_allclose(sharded(h, w, t), dense(h, w, t), rtol=1e-12)
        for i in (0, 1):
            np.testing.assert_allclose(
                jax.grad(sharded, argnums=i)(h, w, t), jax.grad(dense, argnums=i)(h, w, t), rtol=1e-10, atol=1e-12
            )
        print("ok")
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    "change,error,message",
    [
        ({"weight": np.ones((9, 5))}, ValueError, r"weight must have shape \(V, H\) with H = 4.*got shape \(9, 5\)"),
        ({"bias": np.ones(8)}, ValueError, r"bias must have shape \(9,\)"),
        ({"target": np.zeros(6)}, TypeError, r"target must hold integer class indices"),
        ({"softcap": 0.0}, ValueError, r"softcap must be a finite number > 0, got 0.0"),
        ({"chunk_size": 0}, ValueError, r"chunk_size must be >= 1, got 0"),
        ({"chunk_size": 2.0}, TypeError, r"chunk_size must be an int or None, got 2.0"),
        ({"class_weight": np.ones(8)}, ValueError, r"class_weight must have shape \(9,\)"),
        ({"sample_weight": np.ones(5)}, ValueError, r"sample_weight must have shape \(6,\)"),
        ({"target": np.full(6, 9)}, ValueError, r"target"),
    ],
)
def test_bad_input_names_the_parameter_and_the_value(backend, change, error, message):
    p = {**problem(), **{k: v for k, v in change.items() if isinstance(v, np.ndarray)}}
    options = {k: v for k, v in change.items() if not isinstance(v, np.ndarray)}
    arrays = {k: backend.asarray(v) for k, v in p.items()}
    for key in ("class_weight", "sample_weight"):
        if key in p:
            options[key] = arrays.pop(key)
    with pytest.raises(error, match=message):
        MODULES[backend.name].linear_cross_entropy(
            arrays["hidden"], arrays["weight"], arrays["target"], bias=arrays["bias"], **options
        )


def test_torch_second_derivatives_of_the_chunked_values_are_right():
    """The recomputing backward (``reduction="none"``, and ``clip``/``infonce`` with ``chunk_size``) is
    differentiated again correctly: its per-row log-sum-exp, saved without a graph by the forward pass,
    is recomputed under a double backward (``gradgradcheck`` against finite differences)."""
    torch.manual_seed(0)
    h = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 7, (6,))
    assert torch.autograd.gradgradcheck(
        lambda h, w: pt.linear_cross_entropy(h, w, y, chunk_size=4, reduction="none"), (h, w)
    )
    a, b = torch.randn(5, 4, dtype=torch.float64, requires_grad=True), torch.randn(5, 4, dtype=torch.float64)
    b.requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda a, b: pt.clip(a, b, logit_scale=3.0, chunk_size=2), (a, b))
