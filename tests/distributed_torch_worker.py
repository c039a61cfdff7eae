"""Runs every case of ``distributed_cases`` on torch.distributed: gloo processes on 127.0.0.1, one
spawn per world size in :data:`TORCH_WORLDS`; each rank saves its outputs to ``OUT/torch-W-R.npz``.

Usage: ``python tests/distributed_torch_worker.py OUT`` (``tests/test_distributed_contrastive.py``
runs it once, with a timeout).
"""

from __future__ import annotations

import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
from distributed_cases import (
    CASES,
    CONTENTS,
    DIM,
    LOCAL,
    REDUCTIONS,
    TORCH_WORLDS,
    global_batch,
    global_labels,
    key,
    shard,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(seconds=60)
    )
    import polyloss.torch as pt

    results: dict[str, Any] = {}  # Any: np.savez's keyword arrays
    for case in CASES:
        for content in CONTENTS:
            a, b = global_batch(world, content)
            for reduction in REDUCTIONS:
                x = torch.tensor(shard(a, rank), requires_grad=True)
                y = torch.tensor(shard(b, rank), requires_grad=True)
                hyper = {
                    name: torch.tensor(value, dtype=torch.float64, requires_grad=True)
                    for name, value in case.learnable.items()
                }
                loss = getattr(pt, case.loss)
                labels = {"labels": torch.tensor(shard(global_labels(world), rank))} if case.labelled else {}
                value = loss(x, y, **labels, **case.params, **hyper, group=dist.group.WORLD, reduction=reduction)
                value.sum().backward()
                k = key(world, case, content, reduction)
                results[f"{k}/value"] = value.detach().numpy()
                for name, param in {"0": x, "1": y, **hyper}.items():
                    assert param.grad is not None, (k, name)
                    results[f"{k}/grad/{name}"] = param.grad.numpy()
    # local batches of different sizes: every rank gets the same clear error, none hangs or aborts
    uneven = torch.zeros(LOCAL + (rank == 1), DIM, dtype=torch.float64)
    try:
        vars(pt)["clip"](uneven, uneven, logit_scale=1.0, group=dist.group.WORLD)
        results["uneven/error"] = np.array("")
    except ValueError as error:
        results["uneven/error"] = np.array(str(error))
    np.savez(Path(out) / f"torch-{world}-{rank}.npz", **results)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    for world in TORCH_WORLDS:
        mp.spawn(_run, args=(world, _free_port(), sys.argv[1]), nprocs=world, join=True)
