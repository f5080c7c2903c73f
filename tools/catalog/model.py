"""The catalog's data types: a loaded :class:`Catalog`, a located :class:`CatalogIssue` and the
:class:`CatalogError` that carries them, and where the catalog lives.

This module imports nothing else of ``tools.catalog`` (beyond the schema), so that both the checks
(:mod:`tools.catalog.checks`) and the reader/writer (:mod:`tools.catalog.store`) can build on it without
importing each other in a circle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog.schema import Paper, Result, Vocabulary

NOT_VOCABULARIES = frozenset({"tracking"})
_REPO_CATALOG = Path(__file__).resolve().parents[2] / "catalog"


@dataclass(frozen=True)
class CatalogIssue:
    """One problem in one file: ``str()`` gives ``path:line: message (hint)``.

    ``severity`` is ``"error"`` (makes ``catalog check`` fail) or ``"warning"`` (printed only).
    """

    path: Path
    line: int | None
    message: str
    hint: str | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.message}" + (f" ({self.hint})" if self.hint else "")


class CatalogError(Exception):
    """Raised when the catalog (or something to be written into it) has problems; see ``.issues``."""

    def __init__(self, issues: list[CatalogIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "catalog error")


@dataclass
class Catalog:
    """The loaded catalog. ``papers`` is sorted by id; ``vocab`` is keyed by file stem;
    ``result_paths`` maps each result's ``run_id`` to the file it was read from."""

    root: Path
    papers: dict[str, Paper] = field(default_factory=dict)
    vocab: dict[str, Vocabulary] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    result_paths: dict[str, Path] = field(default_factory=dict)
    judge_validations: list[Any] = field(default_factory=list)  # tools.catalog.judges_schema.JudgeValidation

    def paper_path(self, paper_id: str) -> Path:
        """Where the paper with this id lives (whether or not the file exists)."""
        return self.root / "papers" / f"{paper_id}.yaml"


def default_root() -> Path:
    """The catalog directory: ``$MLLM_SAFETY_CATALOG`` if set, else the repository's ``catalog/``."""
    env = os.environ.get("MLLM_SAFETY_CATALOG")
    return Path(env) if env else _REPO_CATALOG
