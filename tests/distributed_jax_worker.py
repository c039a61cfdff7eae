"""Runs every case of ``distributed_cases`` under ``jax.shard_map`` over meshes of host devices
(:data:`JAX_WORLDS`; the parent sets ``XLA_FLAGS=--xla_force_host_platform_device_count=8``) and saves
the outputs to ``OUT/jax-W-R.npz`` in the torch worker's layout.

Two gradients per case: ``jax.grad`` of the global, sharded function (the SPMD way), and the
per-device gradient taken inside ``shard_map`` (the ``pmap`` way); both must be the
single-device gradient's slices.

Usage: ``python tests/distributed_jax_worker.py OUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

sys.path.insert(0, str(Path(__file__).parent))
from distributed_cases import CASES, CONTENTS, JAX_WORLDS, LOCAL, REDUCTIONS, global_batch, global_labels, key

import polyloss.jax as pj

jax.config.update("jax_enable_x64", True)
AXIS = "batch"
PMAP_WORLD = 4


def _local_labels(case: Any, world: int) -> dict[str, jax.Array]:
    """``labels`` for a labelled case: this device's slice of the global labels (inside a mapped function)."""
    if not case.labelled:
        return {}
    start = jax.lax.axis_index(AXIS) * LOCAL
    return {"labels": jax.lax.dynamic_slice_in_dim(jnp.asarray(global_labels(world)), start, LOCAL)}


def _functions(mesh: Mesh, case: Any, reduction: str) -> tuple[Any, Any, Any]:
    loss = getattr(pj, case.loss)
    world = mesh.devices.size

    def local(x: jax.Array, y: jax.Array, hyper: dict[str, jax.Array]) -> jax.Array:
        return loss(x, y, **_local_labels(case, world), **case.params, **hyper, axis_name=AXIS, reduction=reduction)

    def local_grads(x: jax.Array, y: jax.Array, hyper: dict[str, jax.Array]) -> Any:
        return jax.grad(lambda *args: jnp.sum(local(*args)), argnums=(0, 1, 2))(x, y, hyper)

    sharded = P(AXIS)
    out = sharded if reduction == "none" else P()
    value = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(sharded, sharded, P()), out_specs=out))
    outside = jax.jit(jax.grad(lambda *args: jnp.sum(value(*args)), argnums=(0, 1, 2)))
    inside = jax.jit(
        jax.shard_map(local_grads, mesh=mesh, in_specs=(sharded, sharded, P()), out_specs=(sharded, sharded, P()))
    )
    return value, outside, inside


def main(out: Path) -> None:
    assert len(jax.devices()) >= max(JAX_WORLDS), jax.devices()
    for world in JAX_WORLDS:
        mesh = Mesh(np.array(jax.devices()[:world]), (AXIS,))
        per_rank: list[dict[str, Any]] = [{} for _ in range(world)]
        for case in CASES:
            for reduction in REDUCTIONS:
                value_fn, outside_fn, inside_fn = _functions(mesh, case, reduction)
                for content in CONTENTS:
                    a, b = global_batch(world, content)
                    hyper = {name: jnp.float64(v) for name, v in case.learnable.items()}
                    value = np.asarray(value_fn(a, b, hyper))
                    k = key(world, case, content, reduction)
                    for how, fn in (("", outside_fn), ("inside/", inside_fn)):
                        g0, g1, g_hyper = (jax.tree.map(np.asarray, g) for g in fn(a, b, hyper))
                        for rank, saved in enumerate(per_rank):
                            rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
                            saved[f"{k}/{how}grad/0"] = g0[rows]
                            saved[f"{k}/{how}grad/1"] = g1[rows]
                            # a replicated parameter's gradient is already the sum over the devices:
                            # rank 0 holds it, the others 0 (the torch layout: per-rank parts)
                            for name, g in g_hyper.items():
                                saved[f"{k}/{how}grad/{name}"] = g if rank == 0 else np.zeros_like(g)
                    for rank, saved in enumerate(per_rank):
                        local_values = len(value) // world if reduction == "none" else None
                        saved[f"{k}/value"] = (
                            value[rank * local_values : (rank + 1) * local_values] if local_values else value
                        )
        if world == PMAP_WORLD:
            _pmap_gradients(world, per_rank)
        for rank, saved in enumerate(per_rank):
            np.savez(out / f"jax-{world}-{rank}.npz", **saved)


def _pmap_gradients(world: int, per_rank: list[dict[str, Any]]) -> None:
    """Under ``pmap`` (no varying-value types), ``psum`` transposes to a ``psum``: each device's
    gradient of the loss is ``world`` times its slice, as with DDP, and the usual ``lax.pmean`` of a
    pmap step's gradients gives the single-device gradient. Saved divided by ``world``, as
    ``pmap/grad``, for ``reduction="mean"`` and random content."""
    for case in CASES:
        loss = getattr(pj, case.loss)

        def local(x: jax.Array, y: jax.Array, hyper: dict[str, jax.Array], loss: Any = loss, case: Any = case) -> Any:
            return loss(x, y, **_local_labels(case, world), **case.params, **hyper, axis_name=AXIS, reduction="mean")

        grads = jax.pmap(jax.grad(local, argnums=(0, 1, 2)), axis_name=AXIS, in_axes=(0, 0, None))
        a, b = global_batch(world, "random")
        hyper = {name: jnp.float64(v) for name, v in case.learnable.items()}
        g0, g1, g_hyper = grads(a.reshape(world, LOCAL, -1), b.reshape(world, LOCAL, -1), hyper)
        k = key(world, case, "random", "mean")
        for rank, saved in enumerate(per_rank):
            saved[f"{k}/pmap/grad/0"] = np.asarray(g0[rank]) / world
            saved[f"{k}/pmap/grad/1"] = np.asarray(g1[rank]) / world
            for name, g in g_hyper.items():
                saved[f"{k}/pmap/grad/{name}"] = np.asarray(g[rank]) / world


if __name__ == "__main__":
    main(Path(sys.argv[1]))
