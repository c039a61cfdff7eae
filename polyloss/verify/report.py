"""What ``python -m polyloss list`` and ``python -m polyloss verify`` print (with rich), and the JSON report.

rich comes with the ``verify`` extra (``pip install "polyloss[verify]"``); without it
both commands print one line saying so and exit with status 2.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from polyloss.verify.compare import Outcome
from polyloss.verify.specs import SPECS

#: (column title, check name, backend) for the verify table
COLUMNS = (
    ("value strict", "value", "array_api_strict"),
    ("value torch", "value", "torch"),
    ("value jax", "value", "jax"),
    ("f32 torch", "float32", "torch"),
    ("f32 jax", "float32", "jax"),
    ("grad torch~jax", "grad", "torch~jax"),
    ("fd torch", "fd", "torch"),
    ("fd jax", "fd", "jax"),
    ("jit", "jit", "jax"),
    ("vmap jax", "vmap", "jax"),
    ("vmap torch", "vmap", "torch"),
    ("compile", "compile", "torch"),
)

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


def _cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "-"
    status = summary["status"]
    if status == "pass":
        err = summary["max_abs_error"]
        return f"[green]ok[/] {err:.0e}" if err else "[green]ok[/]"
    if status == "fail":
        return f"[bold red]FAIL[/] ({len(summary['failures'])})"
    return "[dim]missing[/]" if status == "missing" else "[dim]n/a[/]"


def _console() -> Any:
    from rich.console import Console

    # Piped output (CI logs, `| tee`) would default to 80 columns and squash the matrix.
    return Console() if sys.stdout.isatty() else Console(width=220)


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


def verify(family: str | None, losses: Sequence[str] | None, *, seed: int, compile: bool, json_path: str | None) -> int:
    """``python -m polyloss verify``: run the checks, print the matrix, write the JSON report.

    Returns the exit status: 0 when every check passed, 1 when one failed, 2 when nothing could run.
    """
    from rich.progress import Progress
    from rich.table import Table

    from polyloss.verify.environment import Environment
    from polyloss.verify.run import run_spec, selected_specs
    from polyloss.verify.specs.edges import cases_by_loss

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

    started = time.perf_counter()
    results: dict[str, list[Outcome]] = {}
    total = sum(len(s.variants) for s in specs)
    if console.is_terminal:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("verifying", total=total)
            for spec in specs:
                progress.update(task, description=f"verifying {spec.name}")
                results[spec.name] = run_spec(
                    spec, env, seed=seed, compile=compile, on_step=lambda: progress.advance(task)
                )
    else:  # piped to a log: a line per loss, as it finishes
        for number, spec in enumerate(specs, 1):
            spec_started = time.perf_counter()
            outcomes = run_spec(spec, env, seed=seed, compile=compile, on_step=lambda: None)
            results[spec.name] = outcomes
            failed_here = sum(o.status == "fail" for o in outcomes)
            console.print(
                f"[{number}/{len(specs)}] {spec.name}: {len(outcomes)} checks, {failed_here} failed, "
                f"{time.perf_counter() - spec_started:.1f} s",
                highlight=False,
                markup=False,
            )
    elapsed = time.perf_counter() - started

    table = Table(title=f"polyloss verify: {len(specs)} losses, seed {seed}", show_lines=False)
    table.add_column("loss")
    table.add_column("cases", justify="right")
    for title, _, _ in COLUMNS:
        table.add_column(title)
    table.add_column("parity")
    table.add_column("edge cases")
    report: dict[str, Any] = {"seed": seed, "missing": env.missing, "losses": {}}
    corpus = cases_by_loss()
    failed = 0
    for spec in specs:
        outcomes = results[spec.name]
        cells: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
        for o in outcomes:
            cells[(o.check, o.backend)].append(o)
        summaries = {f"{check}[{backend}]": summarise(group) for (check, backend), group in cells.items()}
        refs: dict[str, list[Outcome]] = {o.check: [] for o in outcomes if o.check.startswith("ref:")}
        for o in outcomes:
            if o.check in refs:
                refs[o.check].append(o)
        ref_summaries = {name[4:]: summarise(group) for name, group in refs.items()}
        passed_refs = sum(s["status"] == "pass" for s in ref_summaries.values())
        failed_refs = sum(s["status"] == "fail" for s in ref_summaries.values())
        parity = f"{passed_refs}/{len(ref_summaries)}" + (f" [bold red]{failed_refs} FAIL[/]" if failed_refs else "")
        row = [spec.name, str(len(spec.variants))]
        row += [_cell(summaries.get(f"{check}[{backend}]")) for _, check, backend in COLUMNS]
        edge_runs = [o for o in outcomes if o.check.startswith("edge[")]
        edge_failed = sum(o.status == "fail" for o in edge_runs)
        edge_cases = len(corpus.get(spec.name, []))
        edges = f"{edge_cases} ({len(edge_runs) - edge_failed}/{len(edge_runs)} runs ok)"
        table.add_row(*row, parity, edges if not edge_failed else f"[bold red]{edges}[/]")
        failures = [o for o in outcomes if o.status == "fail"]
        failed += len(failures)
        report["losses"][spec.name] = {
            "family": spec.family,
            "variants": [v.name for v in spec.variants],
            "checks": summaries,
            "references": ref_summaries,
            "edge_cases": {"cases": edge_cases, "runs": len(edge_runs), "failed_runs": edge_failed},
            "failures": [{"check": o.check, "backend": o.backend, "detail": o.detail} for o in failures],
        }
    console.print(table)
    console.print(
        "[dim]ok <e>: passed, <e> = largest absolute difference seen; fd = finite differences; "
        "parity = upstream references matched / listed (values and gradients); edge cases = corpus "
        "cases of each spec's edge_cases (runs: backends x dtypes, eager, plus jax.jit and "
        "torch.compile in float32)[/]"
    )
    for spec in specs:
        for failure in report["losses"][spec.name]["failures"]:
            console.print(f"[red]FAIL[/] {spec.name} {failure['check']} [{failure['backend']}]: {failure['detail']}")
    report["failed_checks"] = failed
    report["seconds"] = round(elapsed, 1)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
        console.print(f"report written to {json_path}")
    verdict = "[bold red]FAILED[/]" if failed else "[bold green]all checks passed[/]"
    console.print(f"{verdict}: {sum(len(v) for v in results.values())} checks, {failed} failed, {elapsed:.0f} s")
    return 1 if failed else 0
