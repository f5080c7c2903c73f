"""The tracker's three jobs as functions: add a paper from arXiv, track new papers, check the links.

``tools.cli.track`` parses the arguments, calls one of these and prints what it returns. A problem a person
can fix raises :class:`JobError` with the message to show and the exit code (2 for a bad argument or
catalog, 1 for a failure such as a duplicate or an unreachable arXiv).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog.model import Catalog, CatalogError, CatalogIssue
from tools.track.arxiv import ArxivClient, ArxivError, parse_arxiv_id


class JobError(Exception):
    """A job failed for a reason a person can act on; ``issues`` are located problems to print first."""

    def __init__(self, message: str, code: int = 1, issues: list[CatalogIssue] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.issues = issues or []


def catalog_root(root: Path | None) -> Path:
    """``root`` or the default catalog; JobError (exit 2) when it has no papers/ folder."""
    from tools.catalog.model import default_root

    root = root or default_root()
    if not (root / "papers").is_dir():
        raise JobError(
            f"no catalog at {root} (expected papers/ there; pass --root DIR or set MLLM_SAFETY_CATALOG)", 2
        )
    return root


def _catalog(root: Path) -> Catalog:
    from tools.catalog.store import load_catalog

    return load_catalog(root, check=False)


@dataclass
class Added:
    """A paper written by :func:`add_from_arxiv`: its file and the entry (with suggested facets)."""

    path: Path
    paper: Any


def add_from_arxiv(root: Path, ref: str, client: ArxivClient | None = None) -> Added:
    """Fetch one paper from arXiv, write ``papers/<id>.yaml`` and check it (nothing stays if it fails)."""
    from tools.catalog.store import check_catalog, write_paper
    from tools.track.intake import entry_to_paper, find_duplicate

    try:
        arxiv_id = parse_arxiv_id(ref)
    except ValueError as e:
        raise JobError(str(e), 2) from None
    catalog = _catalog(root)
    known = find_duplicate(catalog, arxiv_id)  # before asking arXiv: the id alone
    if known:
        raise JobError(f"arXiv:{arxiv_id} is already in the catalog: {known.path} ({known.reason})")
    try:
        entry = (client or ArxivClient()).get(arxiv_id)
    except ArxivError as e:
        raise JobError(str(e)) from None
    if entry.withdrawn:
        why = entry.comment or entry.abstract[:80]
        raise JobError(f"arXiv:{arxiv_id} has been withdrawn by its authors ({why})")
    dup = find_duplicate(catalog, entry.arxiv_id, entry.title)
    if dup:
        raise JobError(f"{entry.title!r} is already in the catalog: {dup.path} ({dup.reason})")
    try:
        paper, _ = entry_to_paper(entry, catalog)
        path = write_paper(paper, root)
    except (CatalogError, ValueError) as e:
        raise JobError(f"could not build a valid entry for arXiv:{arxiv_id}: {e}") from None
    problems = [
        i
        for i in check_catalog(root, registry_names=set())
        if i.severity == "error" and Path(i.path).resolve() == path.resolve()
    ]
    if problems:
        path.unlink(missing_ok=True)
        raise JobError(
            f"the entry for arXiv:{arxiv_id} did not pass the catalog check; nothing was written", 1, problems
        )
    return Added(path, paper)


def _parse_date(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


@dataclass
class Tracked:
    """What :func:`track_new_papers` did: the start date, the counts and the files it wrote."""

    since: str
    counts: dict[str, int]
    report: Path
    stubs: list[Path] = field(default_factory=list)


def track_new_papers(
    root: Path,
    *,
    since: str | None = None,
    stubs: int = 0,
    out: Path | None = None,
    client: ArxivClient | None = None,
    today: dt.date | None = None,
) -> Tracked:
    """Query arXiv since ``since`` (default: the last run, else the configured look-back), write the dated
    candidates report (and YAML stubs for the top ``stubs``) and remember the date of the run."""
    from tools.track.tracker import load_config, read_state, run_track, write_report, write_state, write_stubs

    if stubs < 0:
        raise JobError("--stubs must be 0 or more", 2)
    today = today or dt.date.today()
    try:
        config = load_config(root)
    except CatalogError as e:
        raise JobError(str(e), 2) from None
    if since:
        start = _parse_date(since)
        if start is None:
            raise JobError(f"--since {since!r} is not a date; write YYYY-MM-DD", 2)
    else:
        start = (
            _parse_date(str(read_state(root).get("last_run", "")))
            or (today - dt.timedelta(days=config.lookback_days)).isoformat()
        )
    catalog = _catalog(root)
    out = out or root.parent / "tracking"
    try:
        result = run_track(client or ArxivClient(), catalog, config, since=start, today=today.isoformat())
    except ArxivError as e:
        raise JobError(f"{e}; the report was not written and the last-run date is unchanged") from None
    report = write_report(result, out)
    written = write_stubs(result, catalog, stubs, out / "stubs") if stubs else []
    write_state(root, today.isoformat(), len(result.candidates))
    return Tracked(start, dict(result.counts), report, written)


@dataclass
class LinkReport:
    """Dead links (errors) and permanent redirects (warnings), located, with the counts."""

    issues: list[CatalogIssue]
    distinct: int
    places: int

    @property
    def dead(self) -> int:
        """How many places hold a dead link."""
        return sum(1 for i in self.issues if i.severity == "error")


def check_links(
    root: Path,
    *,
    concurrency: int = 8,
    timeout_s: float = 10.0,
    retries: int = 2,
    allow_hosts: tuple[str, ...] = (),
) -> LinkReport:
    """Check every URL of the catalog at ``root`` (each distinct URL once); non-public addresses are refused
    except ``allow_hosts`` (a local mirror)."""
    from tools.track.links import LinkChecker, catalog_links, link_issues

    if concurrency < 1 or timeout_s <= 0 or retries < 0:
        raise JobError("--concurrency must be >= 1, --timeout > 0 and --retries >= 0", 2)
    uses = catalog_links(_catalog(root))
    checker = LinkChecker(timeout_s=timeout_s, retries=retries, allow_hosts=allow_hosts)
    results = checker.check_all([u.url for u in uses], concurrency=concurrency)
    return LinkReport(link_issues(uses, results), len(results), len(uses))
