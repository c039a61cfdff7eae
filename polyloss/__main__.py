"""``python -m polyloss {list,verify,docs}``: the catalogue and its proof on this install."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any, Sequence

from polyloss.verify.specs import SPECS

# (column title, check name, backend) for the verify table
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


def _summarise(outcomes: Sequence[Any]) -> dict[str, Any]:
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


def cmd_list(args: argparse.Namespace) -> int:
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


def cmd_verify(args: argparse.Namespace) -> int:
    from rich.progress import Progress
    from rich.table import Table

    from polyloss.verify import conformance

    console = _console()
    try:
        specs = conformance.selected_specs(args.family, args.loss)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        return 2
    if not specs:
        console.print(
            f"[red]no loss in family {args.family!r}[/]; families: {sorted({s.family for s in SPECS.values()})}"
        )
        return 2
    env = conformance.Environment.load()
    for name, reason in env.missing.items():
        console.print(f"[yellow]{name}: {reason}; its checks are reported as 'missing'[/]")
    if "numpy" not in env.backends:
        console.print("[red]numpy backend unavailable[/]")
        return 2

    started = time.perf_counter()
    results: dict[str, list[Any]] = {}
    total = sum(len(s.variants) for s in specs)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("verifying", total=total)
        for spec in specs:
            progress.update(task, description=f"verifying {spec.name}")
            results[spec.name] = conformance.run_spec(
                spec, env, seed=args.seed, compile=not args.no_compile, on_step=lambda: progress.advance(task)
            )
    elapsed = time.perf_counter() - started

    table = Table(title=f"polyloss verify: {len(specs)} losses, seed {args.seed}", show_lines=False)
    table.add_column("loss")
    table.add_column("cases", justify="right")
    for title, _, _ in COLUMNS:
        table.add_column(title)
    table.add_column("parity")
    table.add_column("edge cases")
    report: dict[str, Any] = {"seed": args.seed, "missing": env.missing, "losses": {}}
    from polyloss.verify.specs.edges import cases_by_loss

    corpus = cases_by_loss()
    failed = 0
    for spec in specs:
        outcomes = results[spec.name]
        cells: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for o in outcomes:
            cells[(o.check, o.backend)].append(o)
        summaries = {f"{check}[{backend}]": _summarise(group) for (check, backend), group in cells.items()}
        refs = {o.check: [] for o in outcomes if o.check.startswith("ref:")}
        for o in outcomes:
            if o.check in refs:
                refs[o.check].append(o)
        ref_summaries = {name[4:]: _summarise(group) for name, group in refs.items()}
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
        "cases of polyloss/verify/specs/edges.py (runs: backends x dtypes, eager, plus jax.jit and torch.compile in float32)[/]"
    )
    for spec in specs:
        for failure in report["losses"][spec.name]["failures"]:
            console.print(f"[red]FAIL[/] {spec.name} {failure['check']} [{failure['backend']}]: {failure['detail']}")
    report["failed_checks"] = failed
    report["seconds"] = round(elapsed, 1)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
        console.print(f"report written to {args.json}")
    verdict = "[bold red]FAILED[/]" if failed else "[bold green]all checks passed[/]"
    console.print(f"{verdict}: {sum(len(v) for v in results.values())} checks, {failed} failed, {elapsed:.0f} s")
    return 1 if failed else 0


def cmd_docs(args: argparse.Namespace) -> int:
    from polyloss.verify.docs import write_family_pages

    for path in write_family_pages(args.out):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyloss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue: family, loss, upstream parity")
    verify = sub.add_parser("verify", help="run the conformance matrix on this install")
    verify.add_argument("--family", help="only this family (see `python -m polyloss list`)")
    verify.add_argument("--loss", action="append", help="only this loss (repeatable)")
    verify.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    verify.add_argument("--seed", type=int, default=0, help="seed of the generated cases (default 0)")
    verify.add_argument("--no-compile", action="store_true", help="skip the torch.compile column (slow to compile)")
    docs = sub.add_parser("docs", help="regenerate docs/losses/<family>.md from the docstrings and specs")
    docs.add_argument("--out", default="docs/losses")
    args = parser.parse_args(argv)
    return {"list": cmd_list, "verify": cmd_verify, "docs": cmd_docs}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
