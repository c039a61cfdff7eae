"""``python -m polyloss {list,verify,docs}``: the catalogue and its proof on this install."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def cmd_list(args: argparse.Namespace) -> int:
    from polyloss.verify import report

    missing = report.rich_missing("list")
    if missing:
        print(missing)
        return report.CANNOT_RUN
    return report.print_catalogue()


def cmd_verify(args: argparse.Namespace) -> int:
    from polyloss.verify import report

    missing = report.rich_missing("verify")
    if missing:
        print(missing)
        return report.CANNOT_RUN
    return report.verify(
        args.family,
        args.loss,
        seed=args.seed,
        full=args.full,
        compile=(args.full or args.compile) and not args.no_compile,
        json_path=args.json,
        workers=args.workers,
    )


def cmd_docs(args: argparse.Namespace) -> int:
    from polyloss.verify.docs import write_family_pages, write_index
    from polyloss.verify.stubs import write_stubs

    for path in write_family_pages(args.out):
        print(f"wrote {path}")
    print(f"wrote the loss list of {write_index(args.index)}")
    for path in write_stubs():
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polyloss", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue: family, loss, upstream parity")
    verify = sub.add_parser("verify", help="run the conformance matrix on this install")
    verify.add_argument("--family", help="only this family (see `python -m polyloss list`)")
    verify.add_argument("--loss", action="append", help="only this loss (repeatable)")
    verify.add_argument(
        "--full",
        action="store_true",
        help="the whole matrix: float32, JAX eagerly, the edge corpus on JAX and under jax.jit, and "
        "torch.compile (about 16 minutes on 2 cores; the default quick run takes about a minute)",
    )
    verify.add_argument("--compile", action="store_true", help="add torch.compile (inductor) to the quick run")
    verify.add_argument("--no-compile", action="store_true", help="leave torch.compile out of --full")
    verify.add_argument("--json", metavar="PATH", help="where the JSON report goes (default ./polyloss-verify.json)")
    verify.add_argument("--seed", type=int, default=0, help="seed of the generated cases (default 0)")
    verify.add_argument(
        "--workers", type=int, default=None, help="processes to run the losses in (default: one per core, at most 4)"
    )
    docs = sub.add_parser(
        "docs",
        help="regenerate docs/losses/<family>.md, the loss list of docs/index.md and the type stubs of the "
        "namespaces (polyloss/{torch,jax,numpy}.pyi) from the code",
    )
    docs.add_argument("--out", default="docs/losses", help="where the family pages go (default docs/losses)")
    docs.add_argument(
        "--index", default="docs/index.md", help="the index whose marked loss list is rewritten (default docs/index.md)"
    )
    args = parser.parse_args(argv)
    return {"list": cmd_list, "verify": cmd_verify, "docs": cmd_docs}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
