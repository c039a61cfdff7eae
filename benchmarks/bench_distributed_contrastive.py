"""Distributed CLIP and SigLIP against "gather everything, compute the full matrix": memory and time
per device, at local batch n and world size W.

Methods (each a forward + backward step on every device, float32, embeddings ``(n, D)``):

* ``clip-local``: ``polyloss clip(..., group=/axis_name=)``: each device's ``n x W n`` blocks;
* ``siglip-ring``: ``polyloss siglip(..., exchange="ring")``: the text shards passed around the ring;
* ``siglip-gather``: ``polyloss siglip(..., exchange="all_gather")``;
* ``clip-naive`` / ``siglip-naive``: every embedding all-gathered (with gradient), then the
  single-device loss of the whole ``W n x W n`` matrix on every device (the reference).

Memory per device:

* JAX (``shard_map`` over ``W`` host devices, one process): XLA's
  ``compiled.memory_analysis().temp_size_in_bytes`` of the jitted value-and-gradient;
* torch (``W`` gloo processes on 127.0.0.1, one process group per W): the bytes autograd keeps for
  the backward pass on rank 0 (``torch.autograd.graph.saved_tensors_hooks``, each storage counted
  once), the working set between forward and backward that grows with W.

Time per device: interleaved repeats in one process (torch: a fixed number of repeats on every rank,
the collectives need them equal; rank 0's medians), ratio method / naive of the same loss. The
host "devices" share this machine's cores: quote the ratios, not the seconds.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_distributed_contrastive.py --local 256,1024 --worlds 2,4,8
    PYTHONPATH=. python benchmarks/bench_distributed_contrastive.py --local 64 --worlds 2 --repeats 3  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

DIM = 256
METHODS = ("clip-local", "clip-naive", "siglip-ring", "siglip-gather", "siglip-naive")
NAIVE = {"clip-local": "clip-naive", "siglip-ring": "siglip-naive", "siglip-gather": "siglip-naive"}
SCALE, BIAS = 10.0, -10.0


def _median_times(steps: dict[str, Callable[[], Any]], repeats: int, barrier: Callable[[], None]) -> dict[str, float]:
    """Interleaved repeats (the order rotates every repeat), seconds per step, medians."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for name in names:  # warm-up: compile, caches, allocator
        steps[name]()
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            barrier()
            start = time.perf_counter()
            steps[name]()
            barrier()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# ----------------------------------------------------------------------------- JAX


def run_jax(local_sizes: list[int], worlds: list[int], repeats: int) -> list[dict[str, Any]]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    import polyloss.jax as pl

    def loss_of(method: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
        def local(images: jax.Array, texts: jax.Array) -> jax.Array:
            if method.endswith("naive"):
                images = jax.lax.all_gather(images, "batch", axis=0, tiled=True)
                texts = jax.lax.all_gather(texts, "batch", axis=0, tiled=True)
                if method == "clip-naive":
                    return pl.clip(images, texts, logit_scale=SCALE)
                return pl.siglip(images, texts, logit_scale=SCALE, logit_bias=BIAS)
            if method == "clip-local":
                return pl.clip(images, texts, logit_scale=SCALE, axis_name="batch")
            exchange = "ring" if method == "siglip-ring" else "all_gather"
            return pl.siglip(images, texts, logit_scale=SCALE, logit_bias=BIAS, axis_name="batch", exchange=exchange)

        return local

    rows = []
    for world in worlds:
        mesh = Mesh(np.array(jax.devices()[:world]), ("batch",))
        for n in local_sizes:
            rng = np.random.default_rng(0)
            images = jnp.asarray(rng.normal(size=(world * n, DIM)), jnp.float32)
            texts = jnp.asarray(rng.normal(size=(world * n, DIM)), jnp.float32)
            steps, memory = {}, {}
            for method in METHODS:
                sharded = jax.shard_map(
                    loss_of(method), mesh=mesh, in_specs=(P("batch"), P("batch")), out_specs=P(), check_vma=False
                )
                step = jax.jit(jax.value_and_grad(sharded, argnums=(0, 1)))
                compiled = step.lower(images, texts).compile()
                memory[method] = compiled.memory_analysis().temp_size_in_bytes

                def run(step: Any = step, images: jax.Array = images, texts: jax.Array = texts) -> Any:
                    return jax.block_until_ready(step(images, texts))

                steps[method] = run
            times = _median_times(steps, repeats, lambda: None)
            rows += [_row("jax", method, n, world, memory[method], times) for method in METHODS]
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------- torch


def _torch_rank(rank: int, world: int, port: int, local_sizes: list[int], repeats: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    import polyloss.torch as pl
    from polyloss.backends.torch import BACKEND

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=600)
    )
    torch.set_num_threads(1)
    group = dist.group.WORLD
    devices = BACKEND.devices(group, None)  # the collectives the distributed losses use
    assert devices is not None

    def step_of(method: str, images: torch.Tensor, texts: torch.Tensor) -> Callable[[], Any]:
        def step() -> Any:
            if method.endswith("naive"):
                all_images, all_texts = devices.all_gather(images), devices.all_gather(texts)
                if method == "clip-naive":
                    loss = pl.clip(all_images, all_texts, logit_scale=SCALE)
                else:
                    loss = pl.siglip(all_images, all_texts, logit_scale=SCALE, logit_bias=BIAS)
            elif method == "clip-local":
                loss = pl.clip(images, texts, logit_scale=SCALE, group=group)
            else:
                exchange = "ring" if method == "siglip-ring" else "all_gather"
                loss = pl.siglip(images, texts, logit_scale=SCALE, logit_bias=BIAS, group=group, exchange=exchange)
            loss.backward()
            return loss

        return step

    def saved_bytes(step: Callable[[], Any]) -> int:
        storages: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step()
        return sum(storages.values())

    rows = []
    for n in local_sizes:
        generator = torch.Generator().manual_seed(rank)
        images = torch.randn(n, DIM, generator=generator, requires_grad=True)
        texts = torch.randn(n, DIM, generator=generator, requires_grad=True)
        steps = {method: step_of(method, images, texts) for method in METHODS}
        memory = {method: saved_bytes(step) for method, step in steps.items()}
        times = _median_times(steps, repeats, dist.barrier)
        rows += [_row("torch", method, n, world, memory[method], times) for method in METHODS]
    if rank == 0:
        with open(out, "w") as f:
            json.dump(rows, f)
    dist.barrier()  # every rank done before the group goes away
    dist.destroy_process_group()


def run_torch(local_sizes: list[int], worlds: list[int], repeats: int, tmp: str) -> list[dict[str, Any]]:
    import torch.multiprocessing as mp

    rows = []
    for world in worlds:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        out = os.path.join(tmp, f"torch-{world}.json")
        mp.spawn(_torch_rank, args=(world, port, local_sizes, repeats, out), nprocs=world, join=True)
        with open(out) as f:
            rows += json.load(f)
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------- report


def _row(framework: str, method: str, n: int, world: int, memory: int, times: dict[str, float]) -> dict[str, Any]:
    naive = NAIVE.get(method)
    return {
        "framework": framework,
        "method": method,
        "local": n,
        "world": world,
        "memory_mib": memory / 2**20,
        "time_ms": times[method] * 1e3,
        "time_vs_naive": times[method] / times[naive] if naive else 1.0,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| framework | n | W | " + " | ".join(METHODS) + " |",
        "|---|---|---|" + "---|" * len(METHODS),
    ]
    keys = sorted({(r["framework"], r["local"], r["world"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    for key in keys:
        framework, n, world = key
        cells = []
        for method in METHODS:
            (row,) = [r for r in rows if (r["framework"], r["local"], r["world"], r["method"]) == (*key, method)]
            ratio = "" if method.endswith("naive") else f", {row['time_vs_naive']:.2f}x time"
            cells.append(f"{row['memory_mib']:.1f} MiB{ratio}")
        lines.append(f"| {framework} | {n} | {world} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--local", default="256,1024", help="local batch sizes n, comma-separated")
    parser.add_argument("--worlds", default="2,4,8", help="world sizes W, comma-separated")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frameworks", default="jax,torch")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    local_sizes = [int(v) for v in args.local.split(",")]
    worlds = [int(v) for v in args.worlds.split(",")]
    rows: list[dict[str, Any]] = []
    if "jax" in args.frameworks:
        # JAX's host devices must be declared before it starts: run it in a child process
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={max(worlds)}"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_distributed_contrastive as b; "
            "print(json.dumps(b.run_jax(*json.loads(sys.argv[2]))))"
        )
        spec = json.dumps([local_sizes, worlds, args.repeats])
        result = subprocess.run(
            [sys.executable, "-c", code, _HERE, spec], env=env, capture_output=True, text=True, timeout=3600
        )
        if result.returncode != 0:
            raise SystemExit(result.stderr[-4000:])
        rows += json.loads(result.stdout.strip().splitlines()[-1])
    if "torch" in args.frameworks:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            rows += run_torch(local_sizes, worlds, args.repeats, tmp)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(table(rows))


if __name__ == "__main__":
    main()
