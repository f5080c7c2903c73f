"""What every page renderer needs: the catalog, indexes over it, page paths, settings (no I/O here)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tools.catalog.schema import VOCAB_FIELDS, Paper, Result
from tools.site.util import slug

# (label, facet group on Paper or None, field name, vocabulary name), in display order.
FACETS: tuple[tuple[str, str | None, str, str], ...] = tuple(
    (label, group, fname, VOCAB_FIELDS[f"{group}.{fname}" if group else fname])
    for label, group, fname in (
        ("Threat model", "attack", "threat_model"),
        ("Attack surface", "attack", "surface"),
        ("Techniques", "attack", "techniques"),
        ("Defense stage", "defense", "stage"),
        ("Defense kind", "defense", "kind"),
        ("Measures", "evaluation", "measures"),
        ("Harm categories", "evaluation", "harm_categories"),
        ("Modalities", "evaluation", "modalities"),
        ("Models", None, "models"),
        ("Evaluated on", None, "evaluated_on"),
        ("Implemented in", None, "implemented_in"),
    )
)


@dataclass
class BaselineInfo:
    """A registered component as the site shows it (collected from the registry by the hook)."""

    kind: str
    name: str
    paper_id: str | None
    summary: str
    params: list[dict[str, Any]] = field(default_factory=list)  # baselines.base.describe_params output
    needs_white_box: bool = False
    deviations: list[dict[str, Any]] = field(
        default_factory=list
    )  # declared ledger: what, official, ours, why


@dataclass
class Ctx:
    """Catalog plus derived indexes and settings shared by the page renderers."""

    papers: dict[str, Paper]
    vocab: dict[str, Any]
    results: list[Result]
    baselines: list[BaselineInfo]
    repo_url: str
    bibtex: Callable[[Paper], str] | None = None
    result_files: dict[str, str] = field(default_factory=dict)  # run_id -> repo-relative path
    judge_validations: list[Any] = field(default_factory=list)  # catalog/judges/ (JudgeValidation)
    # paper id -> ISO date the paper's file was first committed (from git, computed by the hook); papers
    # missing here have no known "added" date, and ``added_note`` says why (shown on the feed and downloads)
    added: dict[str, str] = field(default_factory=dict)
    added_note: str = ""
    # the catalog's commit and last-change date (from git), or the build date when git gives none
    build: dict[str, str] = field(default_factory=dict)
    terms: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_baseline: dict[str, list[Result]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.terms = {name: {t.id: t for t in v.terms} for name, v in self.vocab.items()}
        grouped: dict[str, list[Result]] = defaultdict(list)
        for r in self.results:
            grouped[r.baseline].append(r)
        self.by_baseline = dict(sorted(grouped.items()))

    def term_name(self, vocab: str, term: str) -> str:
        """Display name of a vocabulary term (its id when the vocabulary does not define it)."""
        t = self.terms.get(vocab, {}).get(term)
        return t.name if t is not None else term

    def facet_values(self, paper: Paper) -> Iterator[tuple[str, str, list[str]]]:
        """(label, vocabulary, terms) for each non-empty facet of a paper."""
        for label, group, fname, vocab in FACETS:
            holder = getattr(paper, group) if group else paper
            values = list(getattr(holder, fname, []) or []) if holder is not None else []
            if values:
                yield label, vocab, values

    def paper_results(self, paper: Paper) -> list[Result]:
        """Reproduced results of a paper: results naming it, or produced by one of its baselines."""
        return [r for r in self.results if r.paper_id == paper.id or r.baseline in paper.baseline]

    def baseline_anchor(self, name: str) -> str:
        """The baselines-page anchor of a registered component ('' when no component has that name)."""
        for b in self.baselines:
            if b.name == name:
                return component_anchor(b.kind, name)
        return ""

    def edit_url(self, rel_path: str) -> str:
        """GitHub edit link of a repository file."""
        return f"{self.repo_url.rstrip('/')}/edit/main/{rel_path}"


def component_anchor(kind: str, name: str) -> str:
    """The id of a component's heading on the baselines page; every link to it uses this same function."""
    return f"{kind}-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x")


def paper_page(paper_id: str) -> str:
    """Docs path of a paper page."""
    return f"papers/{slug(paper_id)}.md"


def category_page(category: str) -> str:
    """Docs path of a category page."""
    return f"papers/{category}.md"


def tag_page(vocab: str, term: str) -> str:
    """Docs path of a tag page."""
    return f"tags/{slug(vocab)}/{slug(term)}.md"


def results_page(baseline: str) -> str:
    """Docs path of a baseline's results page."""
    return f"results/{slug(baseline)}.md"


BASELINES_PAGE = "baselines.md"
TIMELINE_PAGE = "timeline.md"
GLOSSARY_PAGE = "glossary.md"
TAGS_INDEX = "tags/index.md"
RESULTS_INDEX = "results/index.md"
EXPLORER_PAGE = "papers/index.md"
JUDGES_PAGE = "judges.md"
DOWNLOADS_PAGE = "downloads.md"
FEED_PATH = "feed.xml"
