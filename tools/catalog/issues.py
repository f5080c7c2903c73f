"""What the catalog commands compute: issue lines (text or GitHub annotations), the check's summary,
the export and the JSON Schema of a paper file. ``tools.cli.catalog`` only parses, calls and prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tools.catalog.model import CatalogError, CatalogIssue

FORMATS = ("bibtex", "csv", "json")


def shown_path(path: Path) -> str:
    """A path relative to the working directory when it is below it (what editors and CI expect)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def format_issue(issue: CatalogIssue, fmt: str = "text") -> str:
    """One issue as ``file:line: message (hint)`` or as a GitHub Actions ``::error``/``::warning`` annotation."""
    if fmt != "github":
        where = f"{shown_path(issue.path)}:{issue.line}" if issue.line else shown_path(issue.path)
        label = "" if issue.severity == "error" else f"{issue.severity}: "
        return f"{where}: {label}{issue.message}" + (f" ({issue.hint})" if issue.hint else "")

    def esc(text: str, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    props = f"file={esc(shown_path(issue.path), True)}" + (f",line={issue.line}" if issue.line else "")
    text = issue.message + (f" ({issue.hint})" if issue.hint else "")
    return f"::{issue.severity} {props}::{esc(text)}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 paper``, ``2 papers`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


@dataclass
class CheckReport:
    """The outcome of ``catalog check``: every issue, the one-line summary and the exit code."""

    issues: list[CatalogIssue]
    summary: str
    exit_code: int


def check(root: Path) -> CheckReport:
    """Validate every file of the catalog at ``root`` and the rules across files (registry names too)."""
    from tools.catalog import checks

    scan = checks.scan(root, full=True)
    errors = sum(1 for i in scan.issues if i.severity == "error")
    warnings = len(scan.issues) - errors
    counts = scan.counts
    what = ", ".join(
        [
            plural(counts.get("papers", 0), "paper"),
            plural(counts.get("vocabularies", 0), "vocabulary", "vocabularies"),
            plural(counts.get("results", 0), "result"),
        ]
    )
    status = plural(errors, "error") if errors else "OK"
    if warnings:
        status += f" ({plural(warnings, 'warning')})"
    return CheckReport(list(scan.issues), f"{what}: {status}", 1 if errors else 0)


def load_valid(root: Path):
    """The catalog, valid apart from baseline names (an export does not depend on the registry).

    Raises :class:`CatalogError` with every error when it is not valid.
    """
    from tools.catalog import checks

    scan = checks.scan(root, full=True, check_registry=False)
    errors = [i for i in scan.issues if i.severity == "error"]
    if errors:
        raise CatalogError(errors)
    return scan.catalog


def export_text(root: Path, fmt: str) -> str:
    """Every paper of the valid catalog at ``root`` as BibTeX, CSV or JSON text."""
    from tools.catalog import export

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    papers = list(load_valid(root).papers.values())
    writer = {"bibtex": export.to_bibtex, "csv": export.to_csv, "json": export.to_json}[fmt]
    return writer(papers)


def schema_text(root: Path) -> str:
    """The JSON Schema of a paper file, with the vocabulary terms of the catalog at ``root`` as enums."""
    from tools.catalog import export
    from tools.catalog.store import load_catalog

    vocab = load_catalog(root, check=False).vocab if root.is_dir() else {}
    return json.dumps(export.paper_json_schema(vocab), indent=2, ensure_ascii=False) + "\n"
