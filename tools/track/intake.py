"""From an arXiv entry to a catalog paper: id, links, venue, suggested facets; and duplicate detection.

Used by ``mllm-safety catalog add`` (one paper) and ``catalog track --stubs N`` (candidate stubs).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from tools.catalog.checks import normalize_title
from tools.catalog.schema import Paper
from tools.catalog.store import Catalog
from tools.track.arxiv import ArxivEntry
from tools.track.import_literature import make_id, unique_id
from tools.track.suggest import Suggestion, suggest

NEAR_TITLE_RATIO = 0.92
VENUES = (
    r"AAAI|IJCAI|ACL|EMNLP|NAACL|COLING|EACL|COLM|ICLR|ICML|NeurIPS|NIPS|CVPR|ICCV|ECCV|WACV|BMVC|ACM ?MM|"
    r"ACM Multimedia|KDD|WWW|The Web Conference|USENIX Security|CCS|NDSS|IEEE S&P|S&P|SaTML|IJCNN|ICASSP|ICME|"
    r"TPAMI|TIFS|TDSC|TMLR|TACL|IJCV|AISTATS|UAI|SIGIR|CIKM|WSDM|ICRA|IROS|CoRL|RSS|ACM CCS|AsiaCCS|ESORICS"
)
_VENUE_RX = re.compile(
    rf"(?:(?:accepted|to appear|published|presented|appears?|camera.ready)\b[^.;]{{0,25}}?\b(?:at|in|by|to|for)\s+"
    rf"(?:the\s+)?)?(?P<findings>Findings of (?:the )?)?(?P<venue>{VENUES})(?:\W{{0,3}}(?P<year>(?:19|20)\d{{2}}|'\d{{2}}))?"
    rf"(?P<workshop>[^.;,]{{0,40}}?\bworkshop)?",
    re.I,
)
_ACCEPT_RX = re.compile(
    r"accepted|to appear|published|presented|camera.ready|proceedings|conference|oral|spotlight|poster", re.I
)
_URL_RX = re.compile(r"https?://[^\s<>\"'{}|\\^`]+", re.I)


@dataclass
class Duplicate:
    """A paper of the catalog that the new one duplicates, and why."""

    paper_id: str
    path: Path
    reason: str


def venue_of(entry: ArxivEntry) -> str | None:
    """The venue stated by the journal reference, else by the comment (``Accepted to ECCV 2024``)."""
    if entry.journal_ref:
        return entry.journal_ref
    comment = entry.comment or ""
    for m in _VENUE_RX.finditer(comment):
        year = m.group("year")
        if not year and not _ACCEPT_RX.search(comment):
            continue  # a bare acronym ("compared with CVPR baselines") is not a venue statement
        venue = m.group("venue")
        venue = {"nips": "NeurIPS", "acm mm": "ACM MM", "acmmm": "ACM MM"}.get(venue.lower(), venue)
        if year and year.startswith("'"):
            year = "20" + year[1:]
        text = " ".join(p for p in (venue, year) if p)
        if m.group("findings"):
            text += " Findings"
        if m.group("workshop"):
            text += " Workshop"
        return text
    return None


def _clean_url(url: str) -> str:
    url = url.rstrip(".,;:)]}>'\"")
    return url


def links_of(entry: ArxivEntry) -> dict[str, str]:
    """The paper link (abs page) plus code / project / dataset links named in the comment or abstract."""
    links = {"paper": entry.abs_url}
    for text in (entry.comment or "", entry.abstract):
        for m_url in _URL_RX.finditer(text):
            url = _clean_url(m_url.group(0))
            before = text[max(0, m_url.start() - 40) : m_url.start()].lower()
            gh = re.match(r"https?://(?:www\.)?github\.com/([\w.\-]+)/([\w.\-]+)", url, re.I)
            if gh:
                links.setdefault(
                    "code", f"https://github.com/{gh.group(1)}/{gh.group(2).removesuffix('.git')}"
                )
            elif re.match(r"https?://huggingface\.co/datasets/", url, re.I):
                links.setdefault("dataset", url)
            elif re.match(r"https?://huggingface\.co/", url, re.I):
                links.setdefault("huggingface", url)
            elif re.match(r"https?://[\w\-]+\.github\.io(/|$)", url, re.I) or re.search(
                r"project page|homepage|website", before
            ):
                links.setdefault("project", url)
    return links


def find_duplicate(catalog: Catalog, arxiv_id: str | None, title: str | None = None) -> Duplicate | None:
    """The catalog paper with the same arXiv id, or a near-identical title (normalized, ratio >= 0.92)."""
    for paper in catalog.papers.values():
        if arxiv_id and paper.arxiv == arxiv_id:
            return Duplicate(paper.id, catalog.paper_path(paper.id), f"same arXiv id {arxiv_id}")
    if not title:
        return None
    key = normalize_title(title)
    best: tuple[float, Paper] | None = None
    for paper in catalog.papers.values():
        other = normalize_title(paper.title)
        if other == key:
            return Duplicate(paper.id, catalog.paper_path(paper.id), "same title")
        if abs(len(other) - len(key)) <= 0.2 * max(len(key), 1):
            matcher = difflib.SequenceMatcher(None, key, other)
            if matcher.quick_ratio() < NEAR_TITLE_RATIO:
                continue
            ratio = matcher.ratio()
            if ratio >= NEAR_TITLE_RATIO and (best is None or ratio > best[0]):
                best = (ratio, paper)
    if best:
        return Duplicate(
            best[1].id, catalog.paper_path(best[1].id), f"near-identical title (similarity {best[0]:.2f})"
        )
    return None


#: Longest paper id (and file stem) made from arXiv metadata; each dash-separated part at most MAX_ID_PART.
MAX_ID = 80
MAX_ID_PART = 30


def capped_id(paper_id: str) -> str:
    """``paper_id`` with each part cut to MAX_ID_PART characters and the whole to MAX_ID at a dash: arXiv
    metadata is untrusted (a 3,000-character author name must not become a file name the OS refuses)."""
    parts = [part[:MAX_ID_PART] for part in paper_id.split("-") if part]
    out = parts[0]
    for part in parts[1:]:
        if len(out) + 1 + len(part) > MAX_ID:
            break
        out += "-" + part
    return out


def entry_to_paper(
    entry: ArxivEntry,
    catalog: Catalog,
    *,
    taken: set[str] | None = None,
    origin: str = "mllm-safety catalog add",
) -> tuple[Paper, Suggestion]:
    """A complete, valid Paper for ``entry`` (suggested category and facets, ``suggested: true``).

    The id follows the catalog's rule (``<year>-<first author surname>-<short name>``), lengthened with
    further title words when the catalog (or ``taken``) already uses it.
    """
    year = int(entry.published[:4])
    ids = set(catalog.papers) | (taken or set())
    base = capped_id(make_id(year, entry.authors, entry.title))
    paper_id = unique_id({"id": base, "title": entry.title, "arxiv": entry.arxiv_id}, dict.fromkeys(ids))
    links = links_of(entry)
    sugg = suggest(entry.title, entry.abstract, catalog.vocab, has_code="code" in links)
    notes = (
        f"Added with `{origin}` from the arXiv API. Category and facets were suggested by keyword "
        "rules (" + "; ".join(sugg.reasons) + "): check them, then delete `suggested: true`."
    )
    data = {
        "id": paper_id,
        "title": entry.title,
        "authors": entry.authors,
        "date": entry.published,
        "venue": venue_of(entry),
        "arxiv": entry.arxiv_id,
        "abstract": entry.abstract or None,
        "links": links,
        **sugg.paper_fields(),
        "notes": notes,
    }
    given = {"title": True, "authors": entry.authors, "abstract": entry.abstract, "date": True}
    data["field_sources"] = {k: "arxiv-api" for k, v in (given | {"venue": data["venue"]}).items() if v}
    if not entry.authors:
        data["authors_status"] = "unknown"
    return Paper.model_validate(data), sugg
