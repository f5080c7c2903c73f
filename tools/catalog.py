"""Load, check and write the catalog -- the only code that reads or writes ``catalog/``.

Layout: ``papers/<id>.yaml`` (one :class:`~tools.schema.Paper` each), ``vocab/<name>.yaml`` (one
:class:`~tools.schema.Vocabulary` each; ``tracking.yaml`` is the tracker's configuration, not a vocabulary)
and ``results/<baseline>/<model>__<dataset>__<defense>.yaml`` (one :class:`~tools.schema.Result` each,
written only by :func:`write_result`). Every problem is a :class:`CatalogIssue` that names file and line.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.schema import Paper, Result, Vocabulary

NOT_VOCABULARIES = frozenset({"tracking"})
_REPO_CATALOG = Path(__file__).resolve().parent.parent / "catalog"


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

    def paper_path(self, paper_id: str) -> Path:
        """Where the paper with this id lives (whether or not the file exists)."""
        return self.root / "papers" / f"{paper_id}.yaml"


def default_root() -> Path:
    """The catalog directory: ``$MLLM_SAFETY_CATALOG`` if set, else the repository's ``catalog/``."""
    env = os.environ.get("MLLM_SAFETY_CATALOG")
    return Path(env) if env else _REPO_CATALOG


def _root(root: Path | str | None) -> Path:
    return Path(root) if root is not None else default_root()


def load_catalog(root: Path | str | None = None, *, check: bool = True) -> Catalog:
    """Load every paper, vocabulary and result under ``root``.

    With ``check=True`` all checks of :func:`check_catalog` run and any error raises :class:`CatalogError`.
    With ``check=False`` files that do not parse or validate are skipped silently (fast path for tools
    that only read a catalog that CI has already checked).
    """
    from tools import checks

    result = checks.scan(_root(root), full=check)
    errors = [i for i in result.issues if i.severity == "error"]
    if check and errors:
        raise CatalogError(errors)
    return result.catalog


def check_catalog(
    root: Path | str | None = None, *, registry_names: set[str] | None = None
) -> list[CatalogIssue]:
    """Every problem in the catalog (errors and warnings), in file order.

    ``registry_names`` are the valid ``baseline`` names; by default they come from the baseline registry
    (attacks, defenses, judges), and the check is skipped while nothing is registered.
    """
    from tools import checks

    return checks.scan(_root(root), full=True, registry_names_=registry_names).issues


# --------------------------------------------------------------------------------------------------------
# Writing


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    Either the complete new file is in place afterwards or the old one (if any) is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)


def dump_paper(paper: Paper) -> str:
    """The YAML text of a paper: fields in schema order, empty and default-valued fields left out."""
    return _dump_yaml(paper.model_dump(mode="json", exclude_defaults=True))


def write_paper(paper: Paper, root: Path | str | None = None, *, overwrite: bool = False) -> Path:
    """Validate ``paper`` and write it atomically to ``papers/<id>.yaml``; returns the path.

    Raises :class:`CatalogError` if the file exists and ``overwrite`` is false, or if the paper is invalid.
    """
    path = _root(root) / "papers" / f"{paper.id}.yaml"
    from pydantic import ValidationError

    try:
        paper = Paper.model_validate(paper.model_dump())
    except ValidationError as e:
        raise CatalogError(
            [CatalogIssue(path, None, f"invalid paper: {err}") for err in e.errors()]
        ) from None
    if path.exists() and not overwrite:
        raise CatalogError(
            [CatalogIssue(path, None, "the paper file already exists", "edit it, or pass overwrite=True")]
        )
    atomic_write_text(path, dump_paper(paper))
    return path


def _slug(value: Any) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", str(value).lower()).strip("-.")
    return slug or "unknown"


def result_path(result: Result, root: Path | str | None = None) -> Path:
    """``results/<baseline>/<model-slug>__<dataset>__<defense or none>.yaml`` for this result."""
    model = result.model.get("id") or result.model.get("name") or result.model.get("backend") or "model"
    dataset = result.dataset.get("name") or "dataset"
    name = f"{_slug(model)}__{_slug(dataset)}__{_slug(result.defense or 'none')}.yaml"
    return _root(root) / "results" / _slug(result.baseline) / name


def write_result(result: Result | dict, root: Path | str | None = None) -> Path:
    """Validate a reproduced result and write it atomically under ``results/``; returns the path.

    Cross-checks that ``baseline`` is a registered attack/defense/judge (when the registry can be
    imported and is not empty) and that ``paper_id``, if given, is a paper of the catalog.
    Raises :class:`CatalogError` (nothing is written) on any problem.
    """
    from pydantic import ValidationError

    from tools import checks

    base = _root(root)
    where = base / "results"
    try:
        res = Result.model_validate(result.model_dump() if isinstance(result, Result) else result)
    except ValidationError as e:
        issues = [
            CatalogIssue(where, None, f"invalid result: {'.'.join(map(str, err['loc']))}: {err['msg']}")
            for err in e.errors()
        ]
        raise CatalogError(issues) from None
    path = result_path(res, base)
    issues: list[CatalogIssue] = []
    names, _warning = checks.registry_names()
    if names and res.baseline not in names:
        issues.append(
            CatalogIssue(
                path,
                None,
                f"baseline {res.baseline!r} is not a registered attack, defense or judge",
                checks.suggest(res.baseline, names),
            )
        )
    if res.paper_id is not None and not (base / "papers" / f"{res.paper_id}.yaml").is_file():
        issues.append(
            CatalogIssue(
                path,
                None,
                f"paper_id {res.paper_id!r} is not in the catalog",
                f"add {base / 'papers' / res.paper_id}.yaml or set paper_id to None",
            )
        )
    if issues:
        raise CatalogError(issues)
    atomic_write_text(path, _dump_yaml(res.model_dump(mode="json")))
    return path
