"""linear_cross_entropy against the dense head and torch's chunked F.linear_cross_entropy: time and memory.

Time: forward + backward (gradients of the hidden states and of the output layer's weight), float32,
interleaved runs in one process (``_timing.compare``: A/B then B/A, medians), ratio candidate / reference.
Memory: one fresh subprocess per (framework, method, size), the transient working set of one step:

* torch on CPU: after one warm-up step, the peak resident set of a second step (``VmHWM``, reset through
  ``/proc/self/clear_refs``) minus the resident set before it, minus the returned gradients (hidden and
  weight), with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``) so that freed memory leaves the
  resident set; on CUDA ``torch.cuda.max_memory_allocated`` likewise;
* JAX: XLA's ``compiled.memory_analysis().temp_size_in_bytes`` of the jitted value-and-gradient.

Usage (from the repository root)::

    PYTHONPATH=. python benchmarks/bench_linear_cross_entropy.py --sizes 4096x1024x32768,4096x1024x131072
    PYTHONPATH=. python benchmarks/bench_linear_cross_entropy.py --sizes 1024x512x32768 --quick --memory-only
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for path in (_HERE, _ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

Size = tuple[int, int, int]  # tokens N, hidden H, vocabulary V
TORCH_METHODS = ("polyloss", "dense", "torch-chunked")
JAX_METHODS = ("polyloss", "dense")


def parse_sizes(text: str) -> list[Size]:
    sizes = []
    for item in text.split(","):
        parts = item.lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise SystemExit(f"--sizes must be NxHxV[,NxHxV...] (e.g. 4096x1024x32768), got {item!r}")
        sizes.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return sizes


# ----------------------------------------------------------------------------- the steps


def torch_step(method: str, size: Size, device: str) -> tuple[Callable[[], Any], list[Any]]:
    """A zero-argument forward + backward step of ``method`` and the tensors whose gradients it fills."""
    import torch
    import torch.nn.functional as F

    import polyloss.torch as pt

    n, h, v = size
    gen = torch.Generator(device="cpu").manual_seed(0)
    hidden = (torch.randn(n, h, generator=gen) / h**0.5).to(device).requires_grad_()
    weight = torch.randn(v, h, generator=gen).to(device).requires_grad_()
    target = torch.randint(0, v, (n,), generator=gen).to(device)

    if method == "polyloss":

        def loss() -> torch.Tensor:
            return pt.linear_cross_entropy(hidden, weight, target)
    elif method == "dense":

        def loss() -> torch.Tensor:
            return F.cross_entropy(F.linear(hidden, weight), target)
    else:
        options = torch.nn.LinearCrossEntropyOptions()

        def loss() -> torch.Tensor:
            return F.linear_cross_entropy(hidden, weight, target, options=options)

    def step() -> torch.Tensor:
        hidden.grad = weight.grad = None
        out = loss()
        out.backward()
        return out

    return step, [hidden, weight]


def jax_step(method: str, size: Size) -> tuple[Callable[[], Any], Any]:
    """A zero-argument jitted value-and-gradient step of ``method`` and its compiled executable."""
    import jax
    import optax

    import polyloss.jax as pj

    n, h, v = size
    key_h, key_w, key_t = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(key_h, (n, h)) / h**0.5
    weight = jax.random.normal(key_w, (v, h))
    target = jax.random.randint(key_t, (n,), 0, v)

    if method == "polyloss":

        def loss(hd: Any, w: Any) -> Any:
            return pj.linear_cross_entropy(hd, w, target)
    else:

        def loss(hd: Any, w: Any) -> Any:
            return optax.losses.softmax_cross_entropy_with_integer_labels(hd @ w.T, target).mean()

    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).lower(hidden, weight).compile()
    return (lambda: jax.block_until_ready(compiled(hidden, weight))), compiled


# ----------------------------------------------------------------------------- memory (child process)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_memory(framework: str, method: str, size: Size, device: str) -> dict[str, Any]:
    """Run in a fresh process: the transient working set of one step, in bytes."""
    if framework == "jax":
        _, compiled = jax_step(method, size)
        analysis = compiled.memory_analysis()
        return {"transient_bytes": int(analysis.temp_size_in_bytes), "how": "XLA temp_size_in_bytes"}
    import torch

    step, params = torch_step(method, size, device)
    grads = sum(p.numel() * p.element_size() for p in params)
    step()  # first call: allocator pools, thread workspaces, lazy initialisation
    for p in params:
        p.grad = None
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"transient_bytes": peak - before - grads, "how": "cuda max_memory_allocated"}
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # Linux: reset the peak resident set (VmHWM) to the current one
    before = _status_bytes("VmRSS")
    step()
    peak = _status_bytes("VmHWM")
    return {"transient_bytes": max(peak - before - grads, 0), "how": "VmHWM after a reset - VmRSS before - gradients"}


def memory_in_subprocess(framework: str, method: str, size: Size, device: str, timeout: float) -> dict[str, Any]:
    args = [sys.executable, os.path.abspath(__file__), "--child", framework, method, "x".join(map(str, size)), device]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")])}
    # glibc: a fixed mmap threshold, so that freed blocks leave the resident set at once (its dynamic
    # threshold keeps freed blocks of up to 32 MiB in the heap, which would count as in use)
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- time (this process)


def time_pairs(size: Size, device: str, repeats: int, warmup: int, frameworks: list[str]) -> list[dict[str, Any]]:
    from _timing import compare

    rows = []
    if "torch" in frameworks:
        import torch

        sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
        candidate, _ = torch_step("polyloss", size, device)
        for reference in ("dense", "torch-chunked"):
            ref_step, _ = torch_step(reference, size, device)
            result = compare(candidate, ref_step, sync, repeats, warmup, huge=True)
            rows.append({"framework": "torch", "reference": reference, **result})
            del ref_step
    if "jax" in frameworks:
        candidate, _ = jax_step("polyloss", size)
        ref_step, _ = jax_step("dense", size)
        result = compare(candidate, ref_step, lambda: None, repeats, warmup, huge=True)
        rows.append({"framework": "jax", "reference": "dense (x @ W.T + optax)", **result})
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        framework, method, size_text, device = sys.argv[2:6]
        print(json.dumps(measure_memory(framework, method, parse_sizes(size_text)[0], device)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4096x1024x32768,4096x1024x131072")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frameworks", default="torch,jax")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up call")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--time-only", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per memory subprocess")
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args()
    frameworks = args.frameworks.split(",")
    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "device": args.device},
        "sizes": [],
    }
    for size in parse_sizes(args.sizes):
        entry: dict[str, Any] = {"N": size[0], "H": size[1], "V": size[2], "memory": {}, "time": []}
        if not args.time_only:
            for framework in frameworks:
                for method in TORCH_METHODS if framework == "torch" else JAX_METHODS:
                    measured = memory_in_subprocess(framework, method, size, args.device, args.timeout)
                    entry["memory"][f"{framework}/{method}"] = measured
                    mib = measured.get("transient_bytes")
                    shown = f"{mib / 2**20:10.1f} MiB" if mib is not None else measured["error"]
                    print(f"{'x'.join(map(str, size)):>18}  memory  {framework:5} {method:14} {shown}", flush=True)
        if not args.memory_only:
            for row in time_pairs(size, args.device, repeats, warmup, frameworks):
                entry["time"].append(row)
                print(
                    f"{'x'.join(map(str, size)):>18}  time    {row['framework']:5} polyloss / {row['reference']}: "
                    f"{row['ratio']:.2f} ({row['candidate_s']:.3f} s / {row['reference_s']:.3f} s, "
                    f"paired p25-p75 {row['paired_ratio_p25']:.2f}-{row['paired_ratio_p75']:.2f})",
                    flush=True,
                )
        report["sizes"].append(entry)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1, default=str)


if __name__ == "__main__":
    main()
