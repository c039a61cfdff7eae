"""What ``python -m polyloss list`` and ``python -m polyloss verify`` print (with rich), and the JSON report.

rich comes with the ``verify`` extra (``pip install "polyloss[verify]"``); without it
both commands print one line saying so and exit with status 2.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from polyloss.verify.compare import Outcome
from polyloss.verify.specs import SPECS

#: the verify table's columns after the loss: (title, which outcomes it folds)
COLUMNS: tuple[tuple[str, Callable[[Outcome], bool]], ...] = (
    ("numpy", lambda o: o.backend in ("numpy", "array_api_strict") and _conformance(o)),
    ("torch", lambda o: o.backend == "torch" and _conformance(o)),
    ("jax", lambda o: o.backend == "jax" and _conformance(o)),
    ("torch~jax", lambda o: o.backend == "torch~jax"),
    ("upstream", lambda o: o.check.startswith("ref:")),
    ("edge cases", lambda o: o.check.startswith("edge[")),
)

#: the default path of the JSON report
DEFAULT_REPORT = "polyloss-verify.json"


def _conformance(outcome: Outcome) -> bool:
    """A check of the loss against itself or the reference values (not upstream, not the edge corpus)."""
    return not outcome.check.startswith(("ref:", "edge["))


#: the exit status of a command that cannot run (bad arguments, rich or numpy missing)
CANNOT_RUN = 2


def rich_missing(command: str) -> str | None:
    """The line to print when rich is not installed (None when it is)."""
    try:
        importlib.import_module("rich")
    except ImportError as error:
        return (
            f"python -m polyloss {command} prints with rich, which is not installed ({error}); "
            f'install it with pip install "polyloss[verify]"'
        )
    return None


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Fold the outcomes of one cell: fail beats pass beats n/a beats missing."""
    statuses = {o.status for o in outcomes}
    for status in ("fail", "pass", "n/a", "missing"):
        if status in statuses:
            break
    else:
        status = "n/a"
    return {
        "status": status,
        "max_abs_error": max((o.abs_error for o in outcomes), default=0.0),
        "max_error_over_tolerance": max((o.error for o in outcomes if o.error != float("inf")), default=0.0),
        "checks": len(outcomes),
        "failures": [o.detail for o in outcomes if o.status == "fail"],
        "detail": next((o.detail for o in outcomes if o.status in ("fail", "missing", "n/a") and o.detail), ""),
    }


def _cell(summary: dict[str, Any] | None, counted: bool = False) -> str:
    """``ok 3e-16`` (passed; the largest absolute difference), ``FAIL 2`` (failed checks), ``n/a``,
    ``missing`` or ``-`` (nothing ran); ``counted``: ``ok 12`` (12 runs, all passed)."""
    if summary is None:
        return "-"
    status = summary["status"]
    if status == "pass":
        if counted:
            return f"[green]ok[/] {summary['checks']}"
        err = summary["max_abs_error"]
        return f"[green]ok[/] {err:.0e}" if err else "[green]ok[/] 0"
    if status == "fail":
        return f"[bold red]FAIL {len(summary['failures'])}[/]"
    return "[dim]missing[/]" if status == "missing" else "[dim]n/a[/]"


def _console() -> Any:
    from rich.console import Console

    # Piped output (CI logs, `| tee`) would default to 80 columns; the table needs about 95.
    return Console() if sys.stdout.isatty() else Console(width=100)


def print_catalogue() -> int:
    """``python -m polyloss list``: family, loss, backends and upstream references of every loss."""
    from rich.table import Table

    from polyloss.core import CORE_LOSSES

    table = Table(title="polyloss catalogue", show_lines=False)
    for title in ("family", "loss", "backends"):
        table.add_column(title, no_wrap=True)
    table.add_column("upstream parity", overflow="fold")
    for name, spec in SPECS.items():
        backends = "numpy, torch, jax" if not CORE_LOSSES[name].needs_autodiff else "torch, jax"
        table.add_row(spec.family, name, backends, "\n".join(r.name for r in spec.references) or "-")
    _console().print(table)
    return 0


def verify(
    family: str | None,
    losses: Sequence[str] | None,
    *,
    seed: int,
    full: bool = False,
    compile: bool = False,
    json_path: str | None = None,
    workers: int | None = None,
) -> int:
    """``python -m polyloss verify``: run the checks, print the table, write the JSON report.

    ``full=False`` is the quick run (see :func:`polyloss.verify.run.run_spec`); ``compile`` adds
    ``torch.compile``. The losses run in ``workers`` processes (one per CPU core, at most 4, by
    default). Returns the exit status: 0 when every check passed, 1 when one failed, 2 when
    nothing could run or a column asked for cannot be checked.
    """
    from rich import box
    from rich.table import Table

    from polyloss.verify.environment import Environment
    from polyloss.verify.run import run_specs, selected_specs

    console = _console()
    try:
        specs = selected_specs(family, losses)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        return CANNOT_RUN
    if not specs:
        console.print(f"[red]no loss in family {family!r}[/]; families: {sorted({s.family for s in SPECS.values()})}")
        return CANNOT_RUN
    env = Environment.load()
    for name, reason in env.missing.items():
        console.print(f"[yellow]{name}: {reason}; its checks are reported as 'missing'[/]")
    if "numpy" not in env.harnesses:
        console.print("[red]numpy backend unavailable[/]")
        return CANNOT_RUN
    if "torch" not in env.harnesses and "jax" not in env.harnesses:
        console.print(
            "[red]nothing to verify: neither torch nor jax is installed[/] (every check but numpy's own "
            'values needs one of them); install them: pip install "polyloss[torch,jax,verify]"'
        )
        return CANNOT_RUN
    if compile and "torch" not in env.harnesses:
        console.print(f"[red]--compile asks for torch.compile, but {env.missing['torch']}[/]")
        return CANNOT_RUN

    started = time.perf_counter()
    workers = workers or min(os.cpu_count() or 1, 4)
    mode = "full" if full else "quick"
    console.print(
        f"polyloss verify ({mode}{', with torch.compile' if compile else ''}): {len(specs)} losses, "
        f"{sum(len(s.variants) for s in specs)} variants, seed {seed}, {workers} process(es)",
        highlight=False,
    )
    results: dict[str, list[Outcome]] = {}
    for number, (name, outcomes, seconds) in enumerate(
        run_specs(specs, seed=seed, full=full, compile=compile, workers=workers, env=env), 1
    ):
        results[name] = outcomes
        failed_here = sum(o.status == "fail" for o in outcomes)
        status = f"{failed_here} FAILED" if failed_here else "ok"
        console.print(
            f"[{number}/{len(specs)}] {name}: {len(outcomes)} checks {status} ({seconds:.1f} s)",
            highlight=False,
            markup=False,
        )
    elapsed = time.perf_counter() - started

    table = Table(title=f"polyloss verify ({mode}): {len(specs)} losses", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("loss", no_wrap=True)
    for title, _ in COLUMNS:
        table.add_column(title, no_wrap=True)
    report: dict[str, Any] = {
        "mode": mode,
        "compile": compile,
        "seed": seed,
        "missing": env.missing,
        "losses": {},
    }
    worst: dict[str, float] = {title: 0.0 for title, _ in COLUMNS}
    failed = 0
    for spec in specs:
        outcomes = results[spec.name]
        cells: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
        for o in outcomes:
            cells[(o.check, o.backend)].append(o)
        row = [spec.name]
        for title, belongs in COLUMNS:
            mine = [o for o in outcomes if belongs(o)]
            summary = summarise(mine) if mine else None
            if summary and title != "edge cases":
                worst[title] = max(worst[title], summary["max_abs_error"])
            row.append(_cell(summary, counted=title == "edge cases"))
        table.add_row(*row)
        failures = [o for o in outcomes if o.status == "fail"]
        failed += len(failures)
        refs: dict[str, list[Outcome]] = defaultdict(list)
        for o in outcomes:
            if o.check.startswith("ref:"):
                refs[o.check[4:]].append(o)
        edge_runs = [o for o in outcomes if o.check.startswith("edge[")]
        report["losses"][spec.name] = {
            "family": spec.family,
            "variants": [v.name for v in spec.variants],
            "checks": {f"{check}[{backend}]": summarise(group) for (check, backend), group in cells.items()},
            "references": {name: summarise(group) for name, group in refs.items()},
            "edge_cases": {"runs": len(edge_runs), "failed_runs": sum(o.status == "fail" for o in edge_runs)},
            "failures": [{"check": o.check, "backend": o.backend, "detail": o.detail} for o in failures],
        }
    table.add_section()
    table.add_row("[dim]worst difference[/]", *[f"{worst[t]:.0e}" if t != "edge cases" else "" for t, _ in COLUMNS])
    console.print(table)
    ran = (
        "float64 values on numpy, array-api-strict, torch and JAX; torch's gradients against finite "
        "differences; JAX's values and gradients under jax.jit against them; vmap; upstream parity; the "
        "edge corpus on numpy, array-api-strict and torch. `--full` adds float32, JAX eagerly and the "
        "edge corpus on JAX and under jax.jit"
        if not full
        else "float64 and float32 values, gradients (torch~jax, finite differences on both), jax.jit, "
        "vmap, upstream parity, the edge corpus on every backend, eager and under jax.jit"
    )
    compiled = "; torch.compile (inductor) of the first variant and the edge cases" if compile else ""
    console.print(
        f"[dim]Checked: {ran}{compiled}. A cell: ok and the largest absolute difference seen, FAIL and the "
        "number of failed checks, n/a (the check does not apply), missing (the framework is not "
        "installed); edge cases: runs passed.[/]"
    )
    for spec in specs:
        for failure in report["losses"][spec.name]["failures"]:
            console.print(f"[red]FAIL[/] {spec.name} {failure['check']} [{failure['backend']}]: {failure['detail']}")
    report["failed_checks"] = failed
    report["seconds"] = round(elapsed, 1)
    path = json_path or DEFAULT_REPORT
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2, default=str)
    verdict = "[bold red]FAILED[/]" if failed else "[bold green]all checks passed[/]"
    console.print(
        f"{verdict}: {sum(len(v) for v in results.values())} checks, {failed} failed, {elapsed:.0f} s; "
        f"report: {os.path.abspath(path)}",
        highlight=False,
    )
    return 1 if failed else 0
