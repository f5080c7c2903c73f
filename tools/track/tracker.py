"""New-paper tracking: query arXiv with the field's search terms, score relevance, report the candidates.

Configuration: ``catalog/vocab/tracking.yaml`` (search queries, arXiv categories, weighted keyword rules;
not a vocabulary). State: ``catalog/tracking-state.yaml`` (the date of the last run, written by the tracker).
Relevance = the weights of the keyword rules that match the title and abstract + ``similarity_weight`` x
the TF-IDF cosine similarity to the closest paper already in the catalog; a paper that names no multimodal
term (``required``) keeps a quarter of its score. Papers the catalog holds (same arXiv id or near-identical
title) and withdrawn papers are dropped. Every score comes with its reason.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from tools.catalog.schema import Strict
from tools.catalog.store import Catalog, CatalogError, CatalogIssue, atomic_write_text
from tools.track.arxiv import ArxivClient, ArxivEntry
from tools.track.intake import find_duplicate

STATE_FILE = "tracking-state.yaml"
_STOP = set(
    "the and for with from that this these those are was were been being have has had not but can its our their "
    "which while where when what how into onto over under such than then them they there using use used via "
    "also more most other some any each both only very well may might could would should will shall upon "
    "between across within without about among against based paper propose proposed show shows results "
    "approach method methods model models new novel study work".split()
)


class Keyword(Strict):
    """A weighted keyword rule: a regular expression over the lower-cased title + abstract."""

    pattern: str
    weight: float = 1.0
    label: str | None = Field(None, description="short name shown in the report (default: the pattern)")


class TrackConfig(Strict):
    """The contents of ``catalog/vocab/tracking.yaml``."""

    queries: list[str] = Field(min_length=1, description="arXiv API search queries")
    categories: list[str] = Field(default_factory=list, description="keep only these arXiv categories")
    keywords: list[Keyword] = Field(default_factory=list)
    required: list[str] = Field(default_factory=list, description="regexes; one must match (multimodal)")
    similarity_weight: float = 5.0
    min_score: float = 0.0
    lookback_days: int = Field(30, ge=1, description="how far back the first run looks")
    page_size: int = Field(100, ge=1, le=2000)
    max_results_per_query: int = Field(500, ge=1)


@dataclass
class Candidate:
    """A paper found by the tracker, with its relevance score and the reasons for it."""

    entry: ArxivEntry
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    category: str = ""
    facets: dict[str, dict] = field(default_factory=dict)


@dataclass
class TrackResult:
    """Everything a run found: the ranked candidates and the counts of what was dropped."""

    since: str
    today: str
    candidates: list[Candidate]
    counts: dict[str, int]
    queries: list[str]


def _issue(path: Path, message: str, hint: str | None = None) -> CatalogError:
    return CatalogError([CatalogIssue(path, None, message, hint)])


def load_config(root: Path) -> TrackConfig:
    """Read and validate ``vocab/tracking.yaml``; CatalogError (file, what, how to fix) on problems."""
    path = root / "vocab" / "tracking.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _issue(
            path, "the tracker's configuration is missing", "create it with a `queries:` list"
        ) from None
    except yaml.YAMLError as e:
        raise _issue(path, f"not valid YAML ({e})") from None
    try:
        config = TrackConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(map(str, err["loc"])) or "the file"
        raise _issue(path, f"{where}: {err['msg']}", "see the comments at the top of the file") from None
    for rx in [k.pattern for k in config.keywords] + config.required:
        try:
            re.compile(rx)
        except re.error as e:
            raise _issue(path, f"keyword pattern {rx!r} is not a valid regular expression ({e})") from None
    return config


def read_state(root: Path) -> dict:
    """The tracker's state (``last_run``), or {} before the first run."""
    path = root / STATE_FILE
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def write_state(root: Path, today: str, n_candidates: int) -> Path:
    """Remember the date of this run (atomically)."""
    path = root / STATE_FILE
    text = (
        "# Written by `mllm-safety catalog track`: the date of its last run (the next run starts there).\n"
        + yaml.safe_dump({"last_run": today, "last_candidates": n_candidates}, sort_keys=False)
    )
    atomic_write_text(path, text)
    return path


def tokens(text: str) -> list[str]:
    """Lower-case word tokens (3+ characters, no stop words) for TF-IDF."""
    return [w for w in re.findall(r"[a-z][a-z0-9\-]{2,}", text.lower()) if w not in _STOP]


class TfidfIndex:
    """TF-IDF vectors of the catalog's papers (title + abstract), for cosine similarity (pure Python)."""

    def __init__(self, docs: dict[str, str]) -> None:
        toks = {key: tokens(text) for key, text in docs.items()}
        df = Counter(w for ts in toks.values() for w in set(ts))
        self.n = len(docs)
        self.idf = {w: math.log((1 + self.n) / (1 + c)) + 1 for w, c in df.items()}
        self.vectors = {key: self._vector(ts) for key, ts in toks.items()}

    def _vector(self, toks: list[str]) -> dict[str, float]:
        tf = Counter(toks)
        default = math.log(1 + self.n) + 1
        vec = {w: (1 + math.log(c)) * self.idf.get(w, default) for w, c in tf.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {w: v / norm for w, v in vec.items()}

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The most similar document's key and its cosine similarity (None, 0 for an empty index)."""
        vec = self._vector(tokens(text))
        best: tuple[str | None, float] = (None, 0.0)
        for key, other in self.vectors.items():
            small, large = (vec, other) if len(vec) < len(other) else (other, vec)
            sim = sum(v * large.get(w, 0.0) for w, v in small.items())
            if sim > best[1]:
                best = (key, sim)
        return best


def score(entry: ArxivEntry, config: TrackConfig, index: TfidfIndex) -> tuple[float, list[str]]:
    """Relevance of one entry and the reasons (keyword hits, nearest catalog paper, penalties)."""
    text = f"{entry.title}. {entry.abstract}".lower()
    total, hits = 0.0, []
    for kw in config.keywords:
        if re.search(kw.pattern, text):
            total += kw.weight
            hits.append(f"{kw.label or kw.pattern} ({kw.weight:+g})")
    reasons = [f"keywords: {', '.join(hits)}" if hits else "no keyword rule matched"]
    nearest, sim = index.nearest(text)
    if nearest:
        total += config.similarity_weight * sim
        reasons.append(
            f"closest catalog paper {nearest} (cosine {sim:.2f}, {config.similarity_weight * sim:+.1f})"
        )
    if config.required and not any(re.search(rx, text) for rx in config.required):
        total *= 0.25
        reasons.append("names no multimodal term (score x0.25)")
    return round(total, 2), reasons


def dated_query(query: str, since: str, today: str) -> str:
    """The query restricted to submissions between ``since`` and ``today`` (arXiv's submittedDate range)."""
    lo, hi = since.replace("-", ""), today.replace("-", "")
    return f"({query}) AND submittedDate:[{lo}0000 TO {hi}2359]"


def run_track(
    client: ArxivClient, catalog: Catalog, config: TrackConfig, *, since: str, today: str | None = None
) -> TrackResult:
    """Query every search term, merge, drop known and withdrawn papers, score and rank the rest."""
    from tools.track.suggest import suggest

    today = today or dt.date.today().isoformat()
    found: dict[str, Candidate] = {}
    counts = Counter()
    for query in config.queries:
        for entry in client.search(
            dated_query(query, since, today),
            since=since,
            page_size=config.page_size,
            max_results=config.max_results_per_query,
        ):
            counts["fetched"] += 1
            cand = found.setdefault(entry.arxiv_id, Candidate(entry))
            cand.queries.append(query)
    index = TfidfIndex({pid: f"{p.title}. {p.abstract or ''}" for pid, p in catalog.papers.items()})
    kept = []
    for cand in found.values():
        entry = cand.entry
        if entry.withdrawn:
            counts["withdrawn"] += 1
            continue
        if config.categories and not set(entry.categories) & set(config.categories):
            counts["other arXiv category"] += 1
            continue
        if find_duplicate(catalog, entry.arxiv_id, entry.title):
            counts["already in the catalog"] += 1
            continue
        cand.score, cand.reasons = score(entry, config, index)
        if cand.score < config.min_score:
            counts["below min_score"] += 1
            continue
        sugg = suggest(entry.title, entry.abstract, catalog.vocab)
        cand.category, cand.facets = sugg.category, sugg.facets
        kept.append(cand)
    kept.sort(key=lambda c: (-c.score, c.entry.published, c.entry.arxiv_id))
    counts["unique"] = len(found)
    counts["candidates"] = len(kept)
    return TrackResult(since, today, kept, dict(counts), list(config.queries))


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def render_report(result: TrackResult) -> str:
    """The candidates report as Markdown: what was searched, what was dropped, the ranked table."""
    c = result.counts
    lines = [
        f"# Candidate papers, {result.today}",
        "",
        f"Submitted to arXiv from {result.since} to {result.today}; generated by `mllm-safety catalog track`.",
        f"{c.get('fetched', 0)} results, {c.get('unique', 0)} distinct papers; dropped: "
        + ", ".join(
            f"{c.get(k, 0)} {k}"
            for k in ("already in the catalog", "withdrawn", "other arXiv category", "below min_score")
        )
        + f". **{c.get('candidates', 0)} candidate{'' if c.get('candidates', 0) == 1 else 's'}**, most relevant first.",
        "",
        "Add one with `mllm-safety catalog add <arXiv id>`, then confirm its suggested facets.",
        "",
        "Queries:",
        "",
        *[f"- `{q}`" for q in result.queries],
        "",
        "| # | score | paper | first version | authors | suggested category | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, cand in enumerate(result.candidates, 1):
        e = cand.entry
        who = e.authors[0] + (" et al." if len(e.authors) > 1 else "") if e.authors else ""
        lines.append(
            f"| {i} | {cand.score:.2f} | [{_cell(e.title)}]({e.abs_url}) (arXiv:{e.arxiv_id}) | {e.published} "
            f"| {_cell(who)} | {cand.category} | {_cell('; '.join(cand.reasons))} |"
        )
    if not result.candidates:
        lines.append("| – | – | no new candidates | | | | |")
    return "\n".join(lines) + "\n"


def write_report(result: TrackResult, out: Path) -> Path:
    """Write ``<out>/candidates-<today>.md`` and the pull-request body ``<out>/pr-body.md``; returns the first."""
    path = out / f"candidates-{result.today}.md"
    atomic_write_text(path, render_report(result))
    atomic_write_text(out / PR_BODY, render_pr_body(result, []))
    return path


PR_BODY = "pr-body.md"


def _facet_text(category: str, facets: dict[str, dict]) -> str:
    """'attack (threat_model: black-box; techniques: typographic)' for a table cell."""
    parts = []
    for block, values in facets.items():
        inner = "; ".join(
            f"{k}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in values.items()
            if v not in (None, [])
        )
        parts.append(f"{block} ({inner})" if inner else block)
    return _cell(category + (" — " + "; ".join(parts) if parts else ""))


def render_pr_body(track: TrackResult | None, imports: list) -> str:
    """A reviewable pull-request body: the new candidates of a tracker run and of list imports, each with
    its sources and the suggested category and facets, and what the reviewer has to do.

    ``imports`` are :class:`tools.track.listimport.ImportResult` objects (their ``papers`` are not yet reviewed).
    """
    n_track = len(track.candidates) if track else 0
    n_import = sum(len(r.papers) for r in imports)
    lines = [
        f"## New candidate papers: {n_track + n_import}",
        "",
        "Every candidate's category and facets were **suggested by keyword rules** (`suggested: true`); "
        "nothing here is reviewed. For each paper you keep: read the abstract, correct category and facets, "
        "delete `suggested: true`, and check `verified` (arXiv id <-> title) for imported ones. "
        "Close the pull request to drop the whole batch.",
        "",
    ]
    if track:
        lines += [
            f"### arXiv search ({track.since} to {track.today}): {n_track}",
            "",
            "Source: the arXiv API, queries in `catalog/vocab/tracking.yaml`. "
            "Add one with `mllm-safety catalog add <arXiv id>`.",
            "",
            "| # | paper | first version | score | suggested category and facets | why |",
            "|---|---|---|---|---|---|",
        ]
        for i, cand in enumerate(track.candidates, 1):
            e = cand.entry
            lines.append(
                f"| {i} | [{_cell(e.title)}]({e.abs_url}) (arXiv:{e.arxiv_id}) | {e.published} | {cand.score:.2f} "
                f"| {_facet_text(cand.category, cand.facets)} | {_cell('; '.join(cand.reasons))} |"
            )
        if not track.candidates:
            lines.append("| – | no new candidates | | | | |")
        lines.append("")
    for res in imports:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(res.skipped.items())) or "none"
        lines += [
            f"### Curated list `{res.source}`: {len(res.papers)}",
            "",
            f"{res.rows} rows read; left out: {skipped}.",
            "",
            "| # | paper | id | date | sources | verified | suggested category and facets |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, p in enumerate(res.papers, 1):
            facets = {
                b: v.model_dump(exclude_defaults=True)
                for b in ("attack", "defense", "evaluation")
                if (v := getattr(p, b)) is not None
            }
            link = p.links.paper or (f"https://arxiv.org/abs/{p.arxiv}" if p.arxiv else "")
            lines.append(
                f"| {i} | [{_cell(p.title)}]({link}) | `{p.id}` | {p.date} | {_cell(', '.join(p.sources))} "
                f"| {'yes' if p.verified else 'no'} | {_facet_text(p.category, facets)} |"
            )
        if not res.papers:
            lines.append("| – | no new candidates | | | | | |")
        lines.append("")
    return "\n".join(lines)


def write_stubs(result: TrackResult, catalog: Catalog, n: int, out: Path) -> list[Path]:
    """YAML stubs (complete, valid papers with suggested facets) for the top ``n`` candidates in ``out``.

    Move a stub into ``catalog/papers/`` to add the paper; the ids do not collide with the catalog's.
    """
    from tools.catalog.store import dump_paper
    from tools.track.intake import entry_to_paper

    taken: set[str] = set()
    paths = []
    for cand in result.candidates[:n]:
        paper, _ = entry_to_paper(
            cand.entry, catalog, taken=taken, origin="mllm-safety catalog track --stubs"
        )
        taken.add(paper.id)
        path = out / f"{paper.id}.yaml"
        atomic_write_text(path, dump_paper(paper))
        paths.append(path)
    return paths
