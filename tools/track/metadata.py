"""Fill missing paper metadata (authors, abstract, first-version date, current title, arXiv class) from local
copies of public arXiv-API-derived records, recording each field's source in the paper file.

Two input formats are read, matched to papers by arXiv id:

* **arXiv API records** (``.json`` list or ``.jsonl``): objects with ``title``, ``authors`` (names or
  ``{"name": ...}``), ``summary``/``abstract``, ``published`` (the first version's date, as the API gives it),
  an id in ``arxiv_id``/``id``/``url`` (``2504.07956v1``, ``http://arxiv.org/abs/2504.07956v1``) and
  optionally ``primary_category``; an optional ``source`` key overrides the file's source label.
* **daily arXiv digests** (``.md``) in the layout ``## **N. Title**`` / primary category / optional comment /
  ``**SubmitDate**: <date> [abs](http://arxiv.org/abs/<id>v<n>)`` / ``**Authors**: a, b`` / ``**Abstract**: ...``,
  written from arXiv API results; the date there is that version's date, so it is used as the first-version
  date only for ``v1``.

Nothing is overwritten that a person or a better source gave: venue is never touched; authors are filled when
missing, partial or typed by hand; an abstract only when missing. Everything here is offline and re-runnable:
a second run over the same records changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog.checks import normalize_title
from tools.catalog.schema import SOURCE_RE, Paper

ID_IN_TEXT = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v(\d+))?(?![\d])")
DIGEST_ENTRY = re.compile(r"^## \*\*\d+\.\s*(?P<title>.+?)\*\*\s*$", re.MULTILINE)
DIGEST_DATE = re.compile(r"\*\*SubmitDate\*\*:\s*(?:\*\*NEW\*\*\s*)?(\d{4}-\d{2}-\d{2})\s+\[abs\]\(([^)]+)\)")
DIGEST_AUTHORS = re.compile(r"^\*\*Authors\*\*:\s*(.+)$", re.MULTILINE)
DIGEST_ABSTRACT = re.compile(r"^\*\*Abstract\*\*:\s*(.+)$", re.MULTILINE)
CATEGORY = re.compile(r"([a-z\-]+\.[A-Za-z\-]+|[a-z\-]+)\s*$")


@dataclass(frozen=True)
class ArxivRecord:
    """One arXiv API record (of one version of a paper) and where it was read."""

    arxiv: str
    version: int | None
    title: str
    authors: tuple[str, ...]
    abstract: str | None
    first_date: str | None  # YYYY-MM-DD of version 1, when the record gives it
    primary_category: str | None
    source: str


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _arxiv_id(*values: Any) -> tuple[str, int | None] | None:
    for value in values:
        m = ID_IN_TEXT.search(str(value or ""))
        if m:
            return m.group(1), int(m.group(2)) if m.group(2) else None
    return None


def api_record(obj: dict[str, Any], source: str) -> ArxivRecord | None:
    """An :class:`ArxivRecord` from one arXiv-API-shaped object, or None if it has no arXiv id or title."""
    found = _arxiv_id(obj.get("arxiv_id"), obj.get("id"), obj.get("entry_id"), obj.get("url"))
    title = _clean(str(obj.get("title") or ""))
    if not found or not title:
        return None
    authors = [a.get("name", "") if isinstance(a, dict) else str(a) for a in obj.get("authors") or []]
    abstract = obj.get("summary") or obj.get("abstract")
    published = str(obj.get("published") or "")[:10]
    category = obj.get("primary_category")
    if isinstance(category, dict):
        category = category.get("term")
    return ArxivRecord(
        arxiv=found[0],
        version=found[1],
        title=title,
        authors=tuple(_clean(a) for a in authors if _clean(a)),
        abstract=_clean(abstract) if abstract else None,
        first_date=published if re.fullmatch(r"\d{4}-\d{2}-\d{2}", published) else None,
        primary_category=str(category) if category else None,
        source=str(obj.get("source") or source),
    )


def digest_records(text: str, source: str) -> Iterator[ArxivRecord]:
    """Every entry of a daily-digest markdown file (see the module docstring for the layout)."""
    starts = list(DIGEST_ENTRY.finditer(text))
    for i, m in enumerate(starts):
        block = text[m.end() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        date = DIGEST_DATE.search(block)
        authors = DIGEST_AUTHORS.search(block)
        found = _arxiv_id(date.group(2)) if date else None
        if not found:
            continue
        abstract = DIGEST_ABSTRACT.search(block)
        head = block[: date.start()].strip().splitlines()
        category = CATEGORY.search(head[0]) if head else None
        yield ArxivRecord(
            arxiv=found[0],
            version=found[1],
            title=_clean(m.group("title")),
            authors=tuple(_clean(a) for a in authors.group(1).split(",") if _clean(a)) if authors else (),
            abstract=_clean(abstract.group(1)) if abstract else None,
            first_date=date.group(1) if found[1] == 1 else None,
            primary_category=category.group(1) if category else None,
            source=source,
        )


FEED_ROW = re.compile(
    r"^\|\s*(?P<date>\d{4}-\d{2}-\d{2})\s*\|\s*\[(?P<title>.+?)\]\((?P<url>https?://arxiv\.org/abs/[^)\s]+)\)\s*\|"
    r"(?P<authors>[^|]*)\|(?P<abstract>.*)\|\s*$",
    re.MULTILINE,
)


def feed_records(text: str, source: str) -> Iterator[ArxivRecord]:
    """Rows of an auto-generated arXiv feed table ``| published | [title](abs url) | authors | abstract |``.

    The date column is the API's ``published`` (first version); authors cut to two with 'et al.' are kept
    as given and flagged by :func:`partial_authors`.
    """
    for m in FEED_ROW.finditer(text):
        found = _arxiv_id(m.group("url"))
        if not found:
            continue
        abstract = _clean(m.group("abstract"))
        yield ArxivRecord(
            arxiv=found[0],
            version=found[1],
            title=_clean(m.group("title")),
            authors=tuple(_clean(a) for a in m.group("authors").split(",") if _clean(a)),
            abstract=abstract or None,
            first_date=m.group("date"),
            primary_category=None,
            source=source,
        )


def partial_authors(authors: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """Authors without a trailing 'et al.' and whether it was there (the list is then partial)."""
    if authors and re.search(r"\s+et al\.?$", authors[-1]):
        last = re.sub(r"\s+et al\.?$", "", authors[-1]).strip()
        return (*authors[:-1], *([last] if last else [])), True
    return authors, False


def read_records(path: Path, source: str | None = None) -> list[ArxivRecord]:
    """Records of one local file (``.json``, ``.jsonl`` or ``.md``); ``source`` labels them (``{file}`` = name).

    Raises ValueError when the file cannot be read as any of the formats or the label is missing/invalid.
    """
    label = (source or "").replace("{file}", path.name)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        _check_label(label, path)
        return [*digest_records(text, label), *feed_records(text, label)]
    if path.suffix == ".jsonl":
        objs = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        data = json.loads(text)
        objs = data if isinstance(data, list) else data.get("entries") or data.get("papers") or []
    if not all(isinstance(o, dict) for o in objs):
        raise ValueError(f"{path}: expected a list of objects (arXiv API records)")
    if not all(o.get("source") for o in objs):
        _check_label(label, path)
    return [r for o in objs if (r := api_record(o, label)) is not None]


def _check_label(label: str, path: Path) -> None:
    if not re.match(SOURCE_RE, label or "") or label in ("", "manual"):
        raise ValueError(
            f"{path}: name the source of these records with --source, e.g. "
            "'arxiv-api-mirror:<owner>/<repo>/<path>@<commit>' (kinds are listed in docs/schema.md)"
        )


@dataclass
class Merged:
    """What all records say about one arXiv id: the latest version's text, the first version's date."""

    latest: ArxivRecord
    titles: set[str] = field(default_factory=set)  # every title a record gave (papers get retitled)
    first_date: tuple[str, str] | None = None  # (date, source)
    category: tuple[str, str] | None = None


def _better(new: ArxivRecord, old: ArxivRecord) -> bool:
    """Of two records of the same version: the one with an abstract, then the one with all authors."""
    if bool(new.abstract) != bool(old.abstract):
        return bool(new.abstract)
    return partial_authors(old.authors)[1] and not partial_authors(new.authors)[1]


def merge(records: Iterable[ArxivRecord]) -> dict[str, Merged]:
    """Records grouped by arXiv id; the record with the highest version wins for title/authors/abstract."""
    out: dict[str, Merged] = {}
    for rec in records:
        cur = out.get(rec.arxiv)
        if cur is None:
            cur = out[rec.arxiv] = Merged(rec)
        elif (rec.version or 0) > (cur.latest.version or 0) or (
            (rec.version or 0) == (cur.latest.version or 0) and _better(rec, cur.latest)
        ):
            cur.latest = rec
        cur.titles.add(rec.title)
        if rec.first_date and cur.first_date is None:
            cur.first_date = (rec.first_date, rec.source)
        if rec.primary_category and cur.category is None:
            cur.category = (rec.primary_category, rec.source)
    return out


@dataclass
class FillReport:
    """What a fill changed, by field, and the papers whose records disagree with them."""

    changed: dict[str, list[str]] = field(default_factory=dict)
    matched: int = 0
    conflicts: list[str] = field(default_factory=list)

    def add(self, what: str, paper_id: str) -> None:
        """Note that ``what`` was filled in paper ``paper_id``."""
        self.changed.setdefault(what, []).append(paper_id)


def _title_close(a: str, b: str) -> bool:
    import difflib

    na, nb = normalize_title(a), normalize_title(b)
    return na == nb or difflib.SequenceMatcher(None, na, nb).ratio() >= 0.85


def fill_paper(paper: Paper, merged: Merged, report: FillReport) -> Paper:
    """The paper with missing fields filled from ``merged`` (a new Paper; the input is not modified)."""
    rec = merged.latest
    data = paper.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    fs = data.setdefault("field_sources", {})
    if not any(_title_close(paper.title, t) for t in merged.titles | {rec.title}):
        report.conflicts.append(f"{paper.id}: title {paper.title!r} vs {rec.title!r} ({rec.source})")
        return paper
    if rec.title != paper.title and (rec.version or 0) >= 1:
        data["title"], fs["title"] = rec.title, rec.source
        report.add("title", paper.id)
    authors, partial = partial_authors(rec.authors)
    replace_authors = not paper.authors or (
        not partial and (paper.authors_status != "complete" or fs.get("authors") == "manual")
    )
    if authors and replace_authors and list(authors) != paper.authors:
        data["authors"], fs["authors"] = list(authors), rec.source
        data.pop("authors_status", None)
        if partial:
            data["authors_status"] = "partial"
        report.add("authors", paper.id)
    if rec.abstract and not paper.abstract:
        data["abstract"], fs["abstract"] = rec.abstract, rec.source
        report.add("abstract", paper.id)
    if merged.first_date and not str(fs.get("date", "")).startswith("arxiv"):
        date, source = merged.first_date
        if date[:4] != paper.id[:4]:  # the id carries the year; a person renames the file, not this tool
            report.conflicts.append(
                f"{paper.id}: first version {date} ({source}) is in another year than the id"
            )
        elif date != paper.date:
            data["date"] = date
            report.add("date", paper.id)
        if date[:4] == paper.id[:4]:
            fs["date"] = source
    if merged.category and not paper.arxiv_class:
        data["arxiv_class"], fs["arxiv_class"] = merged.category
        report.add("arxiv_class", paper.id)
    if paper.verified is False:
        data["verified"] = True
        data["verified_by"] = [
            *paper.verified_by,
            f"same id and title in the arXiv API record of {rec.source}",
        ]
        report.add("verified", paper.id)
    return Paper.model_validate({"id": paper.id, **data})


def fill_catalog(
    papers: Iterable[Paper], records: Iterable[ArxivRecord]
) -> tuple[dict[str, Paper], FillReport]:
    """Filled copies of the papers that changed (by id) and a report of what changed."""
    merged = merge(records)
    report = FillReport()
    changed: dict[str, Paper] = {}
    for paper in papers:
        if not paper.arxiv or paper.arxiv not in merged:
            continue
        report.matched += 1
        new = fill_paper(paper, merged[paper.arxiv], report)
        if new != paper:
            changed[paper.id] = new
    return changed, report


def fill_files(
    paths: list[Path], root: Path, *, source: str | None = None, dry_run: bool = False
) -> tuple[FillReport, list[Path]]:
    """Read the record files, fill the catalog's papers under ``root`` and write the changed files.

    Returns the report and the written paths (none with ``dry_run``). Raises ValueError on unreadable input.
    """
    from tools.catalog.store import load_catalog
    from tools.track.import_literature import dump, write_atomic

    records: list[ArxivRecord] = []
    for path in paths:
        try:
            records += read_records(path, source)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: cannot read records ({e})") from None
    catalog = load_catalog(root, check=False)
    changed, report = fill_catalog(catalog.papers.values(), records)
    written = []
    if not dry_run:
        for paper_id, paper in changed.items():
            path = catalog.paper_path(paper_id)
            if write_atomic(path, dump(paper)):
                written.append(path)
    return report, written


def summary(report: FillReport, n_written: int) -> str:
    """One line per filled field, for the command's output."""
    lines = [f"{report.matched} papers matched a record; {n_written} files changed"]
    for what, ids in sorted(report.changed.items()):
        lines.append(f"  {what}: {len(ids)}")
    for conflict in report.conflicts:
        lines.append(f"  not filled (title differs): {conflict}")
    return "\n".join(lines)
