"""`mllm-safety catalog check | export | schema`: validate the catalog, export it, write its JSON Schema.

Argparse only: the work is done by ``tools.catalog.issues`` (imported when a command runs, so that
``mllm-safety --help`` imports nothing heavy).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `check`, `export` and `schema` subcommands to the `catalog` subparsers."""
    root_help = "catalog directory (default: $MLLM_SAFETY_CATALOG or the repository's catalog/)"
    check = subparsers.add_parser(
        "check", help="validate every catalog file and the rules across files (exit 1 on any error)"
    )
    check.add_argument("--root", type=Path, default=None, help=root_help)
    check.add_argument(
        "--format",
        choices=["text", "github"],
        default="text",
        help="text: 'file:line: message (hint)'; github: GitHub Actions ::error annotations",
    )
    check.set_defaults(func=cmd_check)

    export = subparsers.add_parser("export", help="export the catalog as BibTeX, CSV or JSON")
    export.add_argument("--format", choices=["bibtex", "csv", "json"], required=True)
    export.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout)")
    export.add_argument("--root", type=Path, default=None, help=root_help)
    export.set_defaults(func=cmd_export)

    schema = subparsers.add_parser(
        "schema", help="write the JSON Schema of a paper file (vocabulary terms as enums), for editors"
    )
    schema.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: stdout)")
    schema.add_argument("--root", type=Path, default=None, help=root_help)
    schema.set_defaults(func=cmd_schema)


def _default_root() -> Path:
    from tools.catalog.model import default_root

    return default_root()


def _missing_root(root: Path) -> int:
    print(
        f"error: no catalog at {root} (expected papers/ and vocab/ there; pass --root DIR or set "
        "MLLM_SAFETY_CATALOG)",
        file=sys.stderr,
    )
    return 2


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from tools.catalog.issues import shown_path
    from tools.catalog.store import atomic_write_text

    atomic_write_text(output, text)
    print(f"wrote {shown_path(output)}", file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    """Print every issue, then a one-line summary; 1 if there is any error, else 0."""
    from tools.catalog.issues import check, format_issue

    root = args.root or _default_root()
    if not root.is_dir():
        return _missing_root(root)
    report = check(root)
    try:
        for issue in report.issues:
            print(format_issue(issue, args.format))
    except BrokenPipeError:  # e.g. `| head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
    print(report.summary)
    return report.exit_code


def cmd_export(args: argparse.Namespace) -> int:
    """Export every paper of a valid catalog in the chosen format."""
    from tools.catalog.issues import export_text, format_issue
    from tools.catalog.model import CatalogError

    root = args.root or _default_root()
    if not root.is_dir():
        return _missing_root(root)
    try:
        text = export_text(root, args.format)
    except CatalogError as e:
        for issue in e.issues:
            print(format_issue(issue), file=sys.stderr)
        print(
            "error: the catalog has errors; run `mllm-safety catalog check` and fix them first",
            file=sys.stderr,
        )
        return 1
    _emit(text, args.output)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of a paper file with the vocabulary terms as enums."""
    from tools.catalog.issues import schema_text

    _emit(schema_text(args.root or _default_root()), args.output)
    return 0
