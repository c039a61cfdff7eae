"""Peak memory and time of ``triplet_mined`` against the batch size, for every mining mode (issue 12:
O(N^2) memory, never the (N, N, N) cube).

Each (mode, N) runs in a fresh interpreter (peak memory is per process): it builds ``N`` embeddings of
dimension 64 in ``N / 4`` classes (float32, torch eager, CPU), runs one forward + backward, and reports
the growth of the process' peak resident memory over what it held after the imports and inputs (glibc's
mmap threshold fixed, so that freed memory leaves the resident set), and
the median time of ``--steps`` more steps (5). The ``N^2`` column is the size of one (N, N) float32 array, the
unit the pairwise distances cost; the cube's would be N times more. Measures, never asserts.

    PYTHONPATH=. python benchmarks/bench_triplet_mined.py                 # N = 64 ... 2048, every mode
    PYTHONPATH=. python benchmarks/bench_triplet_mined.py --sizes 256,4096 --modes semi_hard
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODES = ("batch_hard", "batch_all", "semi_hard")

#: run in a fresh interpreter: prints one JSON line
_ONE_RUN = r"""
import json, resource, statistics, sys, time
import torch
import polyloss.torch as pt

n, mode, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
x = torch.randn(n, 64, generator=g, requires_grad=True)
labels = torch.randint(0, max(n // 4, 2), (n,), generator=g)
pt.triplet_mined(x[:8], labels[:8], mining=mode).backward()  # warm the code paths on a tiny batch
x.grad = None
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pt.triplet_mined(x, labels, mining=mode).backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(steps):
    x.grad = None
    start = time.perf_counter()
    pt.triplet_mined(x, labels, mining=mode).backward()
    times.append(time.perf_counter() - start)
print(json.dumps({"peak_growth_mib": (peak - before) / 1024, "step_ms": 1e3 * statistics.median(times)}))
"""


def run_one(n: int, mode: str, steps: int, timeout: float) -> dict[str, float]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    # glibc's mmap threshold fixed: otherwise freed blocks of up to 32 MiB (one chunk's temporaries) stay
    # in the resident set and the peak counts every chunk's, not the largest one's
    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    result = subprocess.run(
        [sys.executable, "-c", _ONE_RUN, str(n), mode, str(steps)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"N={n} {mode}: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="64,128,256,512,1024,2048", help="batch sizes N, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (the median is shown)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run (each is a fresh process)")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    modes = args.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mining modes {unknown}; choose among {', '.join(MODES)}")
    print("| mining | N | one (N, N) float32 | peak memory growth | step (fwd+bwd) |")
    print("|---|---|---|---|---|", flush=True)
    for mode in modes:
        for n in sizes:
            r = run_one(n, mode, args.steps, args.timeout)
            square_mib = n * n * 4 / 2**20
            print(
                f"| `{mode}` | {n} | {square_mib:.2f} MiB | {r['peak_growth_mib']:.1f} MiB | {r['step_ms']:.1f} ms |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
