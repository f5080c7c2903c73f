"""`mllm-safety catalog check | export | schema`: validate the catalog, export it, write its JSON Schema."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools.catalog.store import CatalogError, CatalogIssue, default_root


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


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it (what editors and CI expect)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_issue(issue: CatalogIssue, fmt: str = "text") -> str:
    """One issue as a line of text or as a GitHub Actions annotation."""
    if fmt != "github":
        where = f"{_shown(issue.path)}:{issue.line}" if issue.line else _shown(issue.path)
        label = "" if issue.severity == "error" else f"{issue.severity}: "
        return f"{where}: {label}{issue.message}" + (f" ({issue.hint})" if issue.hint else "")

    def esc(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    props = f"file={esc(_shown(issue.path), True)}" + (f",line={issue.line}" if issue.line else "")
    text = issue.message + (f" ({issue.hint})" if issue.hint else "")
    return f"::{issue.severity} {props}::{esc(text)}"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _missing_root(root: Path) -> int:
    print(
        f"error: no catalog at {root} (expected papers/ and vocab/ there; pass --root DIR or set "
        "MLLM_SAFETY_CATALOG)",
        file=sys.stderr,
    )
    return 2


def cmd_check(args: argparse.Namespace) -> int:
    """Print every issue, then a one-line summary; 1 if there is any error, else 0."""
    from tools.catalog import checks

    root = args.root or default_root()
    if not root.is_dir():
        return _missing_root(root)
    scan = checks.scan(root, full=True)
    try:
        for issue in scan.issues:
            print(format_issue(issue, args.format))
    except BrokenPipeError:  # e.g. `| head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
    errors = sum(1 for i in scan.issues if i.severity == "error")
    warnings = len(scan.issues) - errors
    counts = scan.counts
    summary = ", ".join(
        [
            _plural(counts.get("papers", 0), "paper"),
            _plural(counts.get("vocabularies", 0), "vocabulary", "vocabularies"),
            _plural(counts.get("results", 0), "result"),
        ]
    )
    status = _plural(errors, "error") if errors else "OK"
    if warnings:
        status += f" ({_plural(warnings, 'warning')})"
    print(f"{summary}: {status}")
    return 1 if errors else 0


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    from tools.catalog.store import atomic_write_text

    atomic_write_text(output, text)
    print(f"wrote {_shown(output)}", file=sys.stderr)


def _load(root: Path):
    """The catalog, valid apart from baseline names (an export does not depend on the registry)."""
    from tools.catalog import checks

    scan = checks.scan(root, full=True, check_registry=False)
    errors = [i for i in scan.issues if i.severity == "error"]
    if errors:
        raise CatalogError(errors)
    return scan.catalog


def _report(error: CatalogError) -> int:
    for issue in error.issues:
        print(format_issue(issue), file=sys.stderr)
    print(
        "error: the catalog has errors; run `mllm-safety catalog check` and fix them first", file=sys.stderr
    )
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    """Export every paper of a valid catalog in the chosen format."""
    from tools.catalog import export

    root = args.root or default_root()
    if not root.is_dir():
        return _missing_root(root)
    try:
        catalog = _load(root)
    except CatalogError as e:
        return _report(e)
    papers = list(catalog.papers.values())
    writer = {"bibtex": export.to_bibtex, "csv": export.to_csv, "json": export.to_json}[args.format]
    _emit(writer(papers), args.output)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema of a paper file with the vocabulary terms as enums."""
    import json

    from tools.catalog import export

    root = args.root or default_root()
    vocab = {}
    if root.is_dir():
        from tools.catalog.store import load_catalog

        vocab = load_catalog(root, check=False).vocab
    _emit(json.dumps(export.paper_json_schema(vocab), indent=2, ensure_ascii=False) + "\n", args.output)
    return 0
