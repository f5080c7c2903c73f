"""Curated-list importer: new candidate papers from the README/markdown tables of public "awesome" lists, and
from the reviewed candidate file ``papers-extension.json``.

Two inputs, one result (:class:`ImportResult`: new papers as valid :class:`~tools.catalog.schema.Paper` objects,
plus what was skipped and why):

* a **markdown file** with tables (the layout of ``ydyjya/Awesome-LLM-Safety`` ``subtopic/*.md``:
  ``| Date | Institute | Publication | Paper | Keywords |``, and of ``xiaoyaoyou9/Awesome-VLM-Adversarial-Robustness``
  ``README.md``: ``| Year | Method | Title | Venue | Paper | Code |``). Columns are recognised by their header
  (title/paper, date/year, venue/publication, code, keywords, method, institute), the arXiv id by an
  ``arxiv.org/abs|pdf|html`` link anywhere in the row, the section by the nearest heading. A row is a candidate when
  it has an arXiv id, is not in the catalog (same arXiv id or near-identical title) and passes the tracker's
  relevance rules (``catalog/vocab/tracking.yaml``) on its title, keywords and section;
* a **reviewed candidate list** (JSON: objects with ``arxiv``, ``title``, ``scope`` in/out, ``scope_flag``,
  ``scope_reason``, ``category``, ``verified``, ``verified_by``, ``lists``, ``sources``, optional ``authors`` with
  ``authors_source``/``authors_complete`` and ``venue`` with ``venue_source``): rows with ``scope: in`` and an arXiv
  id are taken as judged; a row whose reason calls its id doubtful is never added.

Every new paper gets ``suggested: true`` (category and facets from the keyword suggester), ``verified`` (false
unless the input says it was checked), ``authors_status: unknown`` unless a named source gives authors, and its
list in ``sources``. Nothing is written here; :func:`write_papers` writes files in the house format.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.catalog.checks import normalize_title
from tools.catalog.schema import Paper
from tools.catalog.store import Catalog
from tools.track.import_literature import dump, facets, make_id, unique_id, write_atomic
from tools.track.intake import find_duplicate
from tools.track.suggest import suggest

ARXIV_LINK = re.compile(r"arxiv\.org/(?:abs|pdf|html)/(\d{4}\.\d{4,5})", re.I)
CODE_LINK = re.compile(r"https?://(?:github\.com|gitlab\.com|huggingface\.co)/[\w.\-]+/[\w.\-]+", re.I)
MD_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
COLUMNS = {
    "title": ("title", "paper", "paper title", "name"),
    "date": ("date", "year", "time", "month"),
    "venue": ("venue", "publication", "conference", "published"),
    "code": ("code", "github", "repo"),
    "keywords": ("keywords", "keyword", "tags"),
    "method": ("method", "short name", "abbr"),
    "institute": ("institute", "institution", "affiliation"),
}
NOT_VENUES = {"", "arxiv", "preprint", "-", "–", "n/a", "tbd", "openreview"}


@dataclass
class ListRow:
    """One paper row of a list table."""

    title: str
    arxiv: str | None
    line: int
    section: str
    date: str | None = None  # YYYY-MM when the row states a month, YYYY for a year
    venue: str | None = None
    code: str | None = None
    keywords: str = ""
    method: str | None = None


@dataclass
class ImportResult:
    """New papers found in one input, and the rows left out with the reason."""

    source: str
    papers: list[Paper] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: int = 0

    def skip(self, why: str) -> None:
        """Count a row left out for ``why``."""
        self.skipped[why] = self.skipped.get(why, 0) + 1


def _plain(cell: str) -> str:
    """Cell text without markdown links/emphasis/HTML tags, whitespace collapsed."""
    text = MD_LINK.sub(lambda m: m.group(1), cell)
    text = re.sub(r"<br\s*/?>.*", "", text, flags=re.I)  # a subtitle after <br/> is not part of the title
    text = re.sub(r"<[^>]+>", " ", text)
    text = html.unescape(text).replace("**", "").replace("__", "")
    return re.sub(r"\s+", " ", text).strip(" *_")


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [c.strip() for c in re.split(r"(?<!\\)\|", body)]


def _column_map(header: list[str]) -> dict[str, int]:
    names = [_plain(h).lower() for h in header]
    found: dict[str, int] = {}
    for key, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases and i not in found.values():
                found[key] = i
                break
    return found


def _date(text: str) -> str | None:
    """YYYY-MM from '24.09', '2024.09', '2024-09'; YYYY from '2024'."""
    text = text.strip()
    if m := re.fullmatch(r"(\d{2})\.(\d{1,2})", text):
        return f"20{m.group(1)}-{int(m.group(2)):02d}"
    if m := re.fullmatch(r"((?:19|20)\d{2})[.\-/](\d{1,2})(?:[.\-/]\d{1,2})?", text):
        return f"{m.group(1)}-{int(m.group(2)):02d}"
    if m := re.fullmatch(r"((?:19|20)\d{2})", text):
        return m.group(1)
    return None


def _venue(text: str) -> str | None:
    """The venue as stated, with the short year form normalised ('ICML'24' -> 'ICML 2024'); None for arXiv."""
    venue = _plain(text)
    if venue.lower() in NOT_VENUES or venue.lower().startswith("arxiv"):
        return None
    return re.sub(r"\s*['’](\d{2})\b", lambda m: f" 20{m.group(1)}", venue)


def parse_markdown_tables(text: str) -> list[ListRow]:
    """Every row of every table with a title/paper column, with its heading and 1-based line."""
    rows: list[ListRow] = []
    section: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := HEADING.match(line):
            level = len(m.group(1))
            section = [*section[: level - 1], _plain(m.group(2))]
            section += [""] * 0
        is_table = (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and re.fullmatch(r"\s*\|?[\s:\-|]+\|?\s*", lines[i + 1])
        )
        if not is_table:
            i += 1
            continue
        cols = _column_map(_cells(line))
        i += 2
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            cells = _cells(lines[i])
            row = _row(cells, cols, lines[i], i + 1, " / ".join(s for s in section if s))
            if row:
                rows.append(row)
            i += 1
    return rows


def _row(cells: list[str], cols: dict[str, int], raw: str, line: int, section: str) -> ListRow | None:
    def cell(key: str) -> str:
        idx = cols.get(key)
        return cells[idx] if idx is not None and idx < len(cells) else ""

    title = _plain(cell("title"))
    if not title or title in {"📄", "Paper", "Link"}:
        return None
    arxiv = ARXIV_LINK.search(raw)
    code = CODE_LINK.search(cell("code")) if "code" in cols else None
    return ListRow(
        title=title,
        arxiv=arxiv.group(1) if arxiv else None,
        line=line,
        section=section,
        date=_date(_plain(cell("date"))),
        venue=_venue(cell("venue")) if "venue" in cols else None,
        code=code.group(0) if code else None,
        keywords=_plain(cell("keywords")).replace("&", ", "),
        method=_plain(cell("method")) or None,
    )


def _relevant(text: str, root: Path) -> tuple[bool, float]:
    """The tracker's keyword rules on a row's text: (passes min_score and the required terms, score)."""
    from tools.track.tracker import load_config

    config = load_config(root)
    low = text.lower()
    total = sum(k.weight for k in config.keywords if re.search(k.pattern, low))
    if config.required and not any(re.search(rx, low) for rx in config.required):
        total /= 4
    return total >= config.min_score, total


def _new_paper(data: dict[str, Any], catalog: Catalog, taken: dict[str, Any], abstract: str = "") -> Paper:
    """The paper with a unique id, suggested category (unless judged) and facets, validated."""
    has_code = bool(data.get("links", {}).get("code"))
    sugg = suggest(data["title"], abstract, catalog.vocab, has_code=has_code)
    fields = sugg.paper_fields()
    if data.get("category") and data["category"] != sugg.category:  # a judged category wins
        judged = {"category": data["category"], "also": [c for c in sugg.also if c != data["category"]]}
        text = f"{data['title']} {abstract} {data.get('notes', '')}".lower()
        fields = {**judged, **facets({**judged, "code": has_code}, text), "suggested": True}
        if sugg.models:
            fields["models"] = sugg.models
    merged = {**data, **fields}
    merged["id"] = make_id(int(merged["date"][:4]), merged.get("authors") or [], merged["title"])
    merged["id"] = unique_id(merged, {**dict.fromkeys(catalog.papers), **taken})
    merged = {k: v for k, v in merged.items() if v not in (None, "", [], {})}
    return Paper.model_validate(merged)


def _arxiv_month(arxiv: str) -> str:
    return f"20{arxiv[:2]}-{arxiv[2:4]}"


def import_markdown(path: Path, catalog: Catalog, list_name: str, commit: str | None = None) -> ImportResult:
    """New relevant papers of one markdown list file (see the module docstring)."""
    where = f"{list_name}/{path.name}" + (f"@{commit}" if commit else "")
    result = ImportResult(where)
    taken: dict[str, Any] = {}
    seen: set[str] = set()
    for row in parse_markdown_tables(path.read_text(encoding="utf-8")):
        result.rows += 1
        if not row.arxiv:
            result.skip("no arXiv link")
            continue
        if row.arxiv in seen:
            result.skip("repeated in the file")
            continue
        seen.add(row.arxiv)
        if find_duplicate(catalog, row.arxiv, row.title):
            result.skip("already in the catalog")
            continue
        ok, _score = _relevant(f"{row.title} {row.keywords} {row.method or ''} {row.section}", catalog.root)
        if not ok:
            result.skip("not about multimodal safety (tracker rules)")
            continue
        date = row.date if row.date and len(row.date) == 7 else _arxiv_month(row.arxiv)
        labels = "; ".join(x for x in (row.section, row.keywords) if x)
        data: dict[str, Any] = {
            "title": row.title,
            "authors_status": "unknown",
            "date": date,
            "venue": row.venue,
            "arxiv": row.arxiv,
            "field_sources": {
                "title": f"list:{list_name}",
                **({"venue": f"list:{list_name}"} if row.venue else {}),
            },
            "verified": False,
            "links": {"paper": f"https://arxiv.org/abs/{row.arxiv}", "code": row.code},
            "sources": [list_name],
            "notes": f"Imported from {where} line {row.line}"
            + (f" (list labels: {labels})." if labels else "."),
        }
        # the list's keywords stand in for the abstract the suggester would read
        paper = _new_paper(data, catalog, taken, abstract=row.keywords)
        taken[paper.id] = paper
        result.papers.append(paper)
    return result


def _source_label(text: str | None) -> str | None:
    """A field_sources value for a free-text source description of the candidate file."""
    if not text:
        return None
    if "wonderNefelibata/Awesome-LRM-Safety" in text and "article.json" in text:
        return "arxiv-api-mirror:wonderNefelibata/Awesome-LRM-Safety/articles/article.json@93f0584"
    if m := re.match(r"([\w.\-]+/[\w.\-]+)", text):
        kind = "arxiv-api-mirror" if "arxiv-api" in text.lower() else "list"
        return f"{kind}:{m.group(1)}"
    return "manual"


def import_candidates(path: Path, catalog: Catalog) -> ImportResult:
    """New in-scope papers of a reviewed candidate list (``papers-extension.json`` layout)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    result = ImportResult(path.name)
    taken: dict[str, Any] = {}
    for row in rows:
        result.rows += 1
        if row.get("scope") != "in":
            result.skip("judged out of scope")
            continue
        if "doubtful" in (row.get("scope_reason") or "").lower():
            result.skip("doubtful arXiv id")
            continue
        if not row.get("arxiv"):
            result.skip("no arXiv id")
            continue
        if find_duplicate(catalog, row["arxiv"], row["title"]) or any(
            p.arxiv == row["arxiv"] or normalize_title(p.title) == normalize_title(row["title"])
            for p in taken.values()
        ):
            result.skip("already in the catalog")
            continue
        result.papers.append(paper := _candidate_paper(row, catalog, taken))
        taken[paper.id] = paper
    return result


def _candidate_paper(row: dict[str, Any], catalog: Catalog, taken: dict[str, Any]) -> Paper:
    lists = list(dict.fromkeys(row.get("lists") or [s["list"] for s in row.get("sources", [])]))
    fs: dict[str, str] = {}
    first = lists[0] if lists else None
    if first:
        fs["title"] = f"list:{first}"
    authors = row.get("authors") or []
    if authors and (src := _source_label(row.get("authors_source"))):
        fs["authors"] = src
    venue = row.get("venue")
    if venue:
        fs["venue"] = _source_label(row.get("venue_source")) or (f"list:{first}" if first else "manual")
    flag = row.get("scope_flag") or ""
    places = "; ".join(
        f"{s['list']} {s['file']}:{s['line']} ({s['section']})" for s in row.get("sources", [])
    )
    notes = [f"Imported from the reviewed candidate list ({places})."]
    notes.append(f"Scope: {row.get('scope_reason')} (confidence {row.get('scope_confidence')}).")
    notes += [n for n in row.get("notes") or [] if isinstance(n, str)]
    data: dict[str, Any] = {
        "title": row["title"],
        "authors": authors,
        "authors_status": "unknown"
        if not authors
        else ("complete" if row.get("authors_complete") else "partial"),
        "date": row.get("date") or _arxiv_month(row["arxiv"]),
        "venue": venue,
        "arxiv": row["arxiv"],
        "field_sources": fs,
        "verified": bool(row.get("verified")),
        "verified_by": list(row.get("verified_by") or []) if row.get("verified") else [],
        "links": {"paper": f"https://arxiv.org/abs/{row['arxiv']}", "code": row.get("code")},
        "category": row.get("category"),
        "scope": "borderline" if flag.startswith("borderline") else "core",
        "scope_reason": f"{flag.split(':', 1)[1].strip()}: {row.get('scope_reason')}"
        if flag.startswith("borderline")
        else None,
        "sources": lists,
        "notes": " ".join(notes),
    }
    return _new_paper(data, catalog, taken)


def import_path(
    path: Path, catalog: Catalog, list_name: str | None = None, commit: str | None = None
) -> ImportResult:
    """Dispatch on the file type: ``.json`` = reviewed candidate list, ``.md`` = a list's markdown tables."""
    if path.suffix == ".json":
        return import_candidates(path, catalog)
    if path.suffix in (".md", ".markdown"):
        if not list_name or not re.fullmatch(r"[\w.\-]+/[\w.\-]+", list_name):
            raise ValueError("name the list the file comes from with --list <owner>/<repo>")
        return import_markdown(path, catalog, list_name, commit)
    raise ValueError(f"{path}: expected a .md list file or a .json candidate list")


def write_papers(papers: list[Paper], root: Path) -> list[Path]:
    """Write each paper to ``<root>/papers/<id>.yaml`` in the house format (never over an existing file)."""
    out = []
    for paper in papers:
        path = root / "papers" / f"{paper.id}.yaml"
        if path.exists():
            raise FileExistsError(f"{path} exists; the importer never overwrites a paper")
        write_atomic(path, dump(paper))
        out.append(path)
    return out
