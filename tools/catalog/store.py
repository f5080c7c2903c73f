"""Load, check and write the catalog -- the only code that reads or writes ``catalog/``.

Layout: ``papers/<id>.yaml`` (one :class:`~tools.catalog.schema.Paper` each), ``vocab/<name>.yaml`` (one
:class:`~tools.catalog.schema.Vocabulary` each; ``tracking.yaml`` is the tracker's configuration, not a vocabulary)
and ``results/<baseline>/<model>__<dataset>__<defense>.yaml`` (one :class:`~tools.catalog.schema.Result` each,
written only by :func:`write_result`). Every problem is a :class:`CatalogIssue` that names file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tools.catalog import checks
from tools.catalog.model import (  # noqa: F401  (re-exported: the catalog's public API)
    NOT_VOCABULARIES,
    Catalog,
    CatalogError,
    CatalogIssue,
    default_root,
)
from tools.catalog.schema import Paper, Result


def _root(root: Path | str | None) -> Path:
    return Path(root) if root is not None else default_root()


def load_catalog(root: Path | str | None = None, *, check: bool = True) -> Catalog:
    """Load every paper, vocabulary and result under ``root``.

    With ``check=True`` all checks of :func:`check_catalog` run and any error raises :class:`CatalogError`.
    With ``check=False`` files that do not parse or validate are skipped silently (fast path for tools
    that only read a catalog that CI has already checked).
    """
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
    return checks.scan(_root(root), full=True, registry_names_=registry_names).issues


# --------------------------------------------------------------------------------------------------------
# Writing


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    Either the complete new file is in place afterwards or the old one (if any) is untouched; the file gets
    the umask's usual mode (0644 under umask 022), and temp files left by killed writers are swept
    (:func:`baselines.runstore.atomic_write_bytes`, the one atomic writer).
    """
    from baselines.runstore import atomic_write_bytes

    atomic_write_bytes(Path(path), text.encode("utf-8"))


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
    """``results/<baseline>/<model-slug>__<dataset>__<defense or none>[__<variant>].yaml`` for this result:
    a partial or non-default run is named by its ``variant`` and never replaces the default, complete one."""
    model = result.model.get("id") or result.model.get("name") or result.model.get("backend") or "model"
    dataset = result.dataset.get("name") or "dataset"
    variant = f"__{_slug(result.variant)}" if result.variant else ""
    name = f"{_slug(model)}__{_slug(dataset)}__{_slug(result.defense or 'none')}{variant}.yaml"
    return _root(root) / "results" / _slug(result.baseline) / name


def superseded_partial(path: Path, variant: str | None) -> Path:
    """The partial result that a complete result at ``path`` (of this ``variant``) replaces: the same run
    cut short by failed or missing records (variant ``partial`` or ``partial-<variant>``). Partial results of
    a ``--limit`` run are other runs (``partial-limit<N>...``) and are never superseded."""
    stem = path.name[: -len(f"__{_slug(variant)}.yaml")] if variant else path.name[: -len(".yaml")]
    return path.with_name(f"{stem}__{_slug('partial-' + variant if variant else 'partial')}.yaml")


def write_result(result: Result | dict, root: Path | str | None = None) -> Path:
    """Validate a reproduced result and write it atomically under ``results/``; returns the path.

    Cross-checks that ``baseline`` is a registered attack/defense/judge (when the registry can be
    imported and is not empty) and that ``paper_id``, if given, is a paper of the catalog.
    Raises :class:`CatalogError` (nothing is written) on any problem. A complete result removes the partial
    result of the same run it supersedes (:func:`superseded_partial`), so no stale partial stays published.
    """
    from pydantic import ValidationError

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
    if res.partial and not (res.variant or "").startswith("partial"):
        issues.append(
            CatalogIssue(
                path,
                None,
                f"a partial result ({'; '.join(res.partial)}) must be named as one",
                "set its variant to 'partial...' (the harness does)",
            )
        )
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
    try:
        atomic_write_text(path, _dump_yaml(res.model_dump(mode="json", exclude_defaults=False)))
    except OSError as e:
        raise CatalogError(
            [
                CatalogIssue(
                    path,
                    None,
                    f"cannot write the result ({e.strerror or type(e).__name__})",
                    "make catalog/results writable, or run with --no-write-back",
                )
            ]
        ) from None
    if not res.partial:
        stale = superseded_partial(path, res.variant)
        if stale != path:
            stale.unlink(missing_ok=True)
    return path
