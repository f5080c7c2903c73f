"""The papers explorer: one table of every paper with facet filters (papers/index.md).

Without JavaScript the page is a plain table of every paper, newest first, and the facet panel stays hidden
(its ``hidden`` attribute is removed by ``docs/assets/explorer.js``). With JavaScript, ticking facet values
filters the rows (OR within a facet, AND across facets), the counts beside each value follow the other
filters, and the filter state lives in the query string (``?category=attack&model=llava-1.5-7b&q=typo``) so a
URL can be shared. Each row carries its facet values in ``data-f`` (a JSON object, HTML-escaped); the script
reads it with ``JSON.parse`` and writes only text nodes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tools.catalog.schema import Paper
from tools.site.ctx import BASELINES_PAGE, EXPLORER_PAGE, Ctx, paper_page
from tools.site.util import CATEGORY_TITLES, SUGGESTED_BADGE, esc, ext_link, front_matter, href, safe_url


@dataclass(frozen=True)
class Facet:
    """One filter of the explorer: its query-string key, its label, how to read a paper's values, and
    how to name a value."""

    key: str
    label: str
    values: Callable[[Paper, Ctx], list[str]]
    name: Callable[[str, Ctx], str]
    open: bool = False


def _sub(p: Paper, group: str, fname: str) -> list[str]:
    holder = getattr(p, group, None)
    return list(getattr(holder, fname, []) or []) if holder is not None else []


def venue_series(venue: str | None) -> str:
    """A venue without its year (``NeurIPS 2025`` -> ``NeurIPS``), or ``unknown`` when none is recorded."""
    if not venue:
        return "unknown"
    return re.sub(r"[\s'’]*(19|20)\d{2}$", "", venue.strip()) or venue.strip()


def _vocab_name(*vocabs: str) -> Callable[[str, Ctx], str]:
    def name(value: str, ctx: Ctx) -> str:
        for v in vocabs:
            if value in ctx.terms.get(v, {}):
                return ctx.term_name(v, value)
        return value

    return name


def _yes_no(value: str, ctx: Ctx) -> str:
    return "yes" if value == "yes" else "no"


FACETS: tuple[Facet, ...] = (
    Facet("category", "Category", lambda p, c: list(dict.fromkeys([p.category, *p.also])),
          lambda v, c: CATEGORY_TITLES.get(v, v), open=True),
    Facet("year", "Year", lambda p, c: [p.date[:4]], lambda v, c: v, open=True),
    Facet("threat", "Threat model", lambda p, c: _sub(p, "attack", "threat_model"), _vocab_name("threat_models")),
    Facet("modality", "Modality", lambda p, c: list(dict.fromkeys(
        _sub(p, "evaluation", "modalities") + _sub(p, "attack", "surface"))),
        _vocab_name("modalities", "attack_surfaces")),
    Facet("technique", "Attack technique", lambda p, c: _sub(p, "attack", "techniques"),
          _vocab_name("attack_techniques")),
    Facet("defense", "Defense kind", lambda p, c: _sub(p, "defense", "kind"), _vocab_name("defense_kinds")),
    Facet("venue", "Venue", lambda p, c: [venue_series(p.venue)],
          lambda v, c: "unknown (not recorded)" if v == "unknown" else v),
    Facet("model", "Models", lambda p, c: list(p.models), _vocab_name("models")),
    Facet("code", "Has code", lambda p, c: ["yes" if safe_url(p.links.code) else "no"], _yes_no),
    Facet("baseline", "Has a baseline here", lambda p, c: ["yes" if p.baseline else "no"], _yes_no),
    Facet("impl", "Implemented in", lambda p, c: list(p.implemented_in),
          _vocab_name("toolkits")),
    Facet("dataset", "Evaluated on", lambda p, c: list(p.evaluated_on),
          _vocab_name("datasets")),
)  # fmt: skip


def paper_facets(p: Paper, ctx: Ctx) -> dict[str, list[str]]:
    """The explorer's facet values of one paper (facets without a value are left out)."""
    out = {}
    for f in FACETS:
        vals = [str(v) for v in f.values(p, ctx)]
        if vals:
            out[f.key] = vals
    return out


def _authors(p: Paper) -> str:
    if not p.authors:
        return "authors unknown" if p.authors_status == "unknown" else "authors not recorded"
    names = p.authors[:3]
    more = len(p.authors) > 3 or p.authors_status == "partial"
    return ", ".join(names) + (" et al." if more else "")


def _sorted_values(counts: Counter, key: str) -> list[str]:
    if key == "year":
        return sorted(counts, reverse=True)
    if key in ("code", "baseline"):
        return [v for v in ("yes", "no") if v in counts]
    return sorted(counts, key=lambda v: (v == "unknown", -counts[v], v.lower()))


def render_explorer(ctx: Ctx) -> str:
    """papers/index.md: every paper in one table, facet filters with counts, a text filter, share/clear."""
    page = EXPLORER_PAGE
    papers = sorted(ctx.papers.values(), key=lambda p: (p.date, p.id), reverse=True)
    facets = {p.id: paper_facets(p, ctx) for p in papers}
    groups = []
    for f in FACETS:
        counts: Counter = Counter(v for fv in facets.values() for v in fv.get(f.key, []))
        if not counts:
            continue
        items = "".join(
            f'<li><label><input type="checkbox" name="{f.key}" value="{esc(v)}"> '
            f'<span class="atlas-facet__name">{esc(f.name(v, ctx))}</span> '
            f'<span class="atlas-facet__n" data-n>{counts[v]}</span></label></li>'
            for v in _sorted_values(counts, f.key)
        )
        groups.append(
            f'<details class="atlas-facet" data-facet="{f.key}"{" open" if f.open else ""}>'
            f'<summary>{esc(f.label)} <span class="atlas-facet__sel"></span></summary>'
            f'<fieldset><legend class="atlas-sr">{esc(f.label)}</legend><ul>{items}</ul></fieldset></details>'
        )
    rows = []
    for p in papers:
        base = " ".join(
            f'<a href="{href(page, BASELINES_PAGE, ctx.baseline_anchor(b))}"><code>{esc(b)}</code></a>'
            for b in p.baseline
        )
        names = [esc(ctx.term_name("models", m)) for m in p.models]
        models = ", ".join(names[:3])
        if len(names) > 3:  # the rest one click away (and in the text the filter box searches)
            models += (
                f'<details class="atlas-more"><summary>+{len(names) - 3} more</summary>'
                f"{', '.join(names[3:])}</details>"
            )
        code = ext_link(p.links.code, "code") if safe_url(p.links.code) else ""
        cats = " ".join(
            f'<span class="atlas-badge atlas-cat-{esc(c)}">{esc(c)}</span>' for c in [p.category, *p.also]
        ) + (" " + SUGGESTED_BADGE if p.suggested else "")
        data = esc(json.dumps(facets[p.id], separators=(",", ":"), ensure_ascii=False))
        rows.append(
            f'<tr data-f="{data}"><td data-label="Paper"><a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a>'
            f'<br><span class="atlas-muted">{esc(_authors(p))}</span></td>'
            f'<td data-label="Date" data-sort="{esc(p.date)}">{esc(p.date)}</td>'
            f'<td data-label="Venue">{esc(p.venue) if p.venue else "<span class=atlas-muted>unknown</span>"}</td>'
            f'<td data-label="Category">{cats}</td><td data-label="Models">{models}</td>'
            f'<td data-label="Code">{code}</td><td data-label="Baseline">{base}</td></tr>'
        )
    n = len(papers)
    out = [front_matter("All papers", hide=("toc", "navigation"), search_exclude=True), "# All papers\n"]
    out.append(
        f"<p>Every paper of the catalog ({n}), newest first. Tick values on the left to filter (any value "
        "within a facet, every facet at once); the number beside a value is how many papers you would see "
        "with it ticked. The address bar keeps the filters, so the link can be shared. Click a column "
        "header to sort.</p>\n"
    )
    out.append(
        '<noscript><p class="atlas-muted">The filters need JavaScript; without it this is the plain '
        "list of every paper, newest first.</p></noscript>\n"
    )
    out.append(
        '<div class="atlas-explorer" data-atlas-explorer>'
        '<form class="atlas-facets" hidden role="search" aria-label="Filter papers">'
        '<label class="atlas-sr" for="atlas-q">Filter papers by text</label>'
        '<input type="search" id="atlas-q" name="q" class="atlas-filter-input" '
        'placeholder="Title, author, venue, model…">'
        '<div class="atlas-facets__actions"><button type="button" class="md-button atlas-clear">Clear</button> '
        '<button type="button" class="md-button atlas-share">Copy link</button></div>'
        f"{''.join(groups)}</form>"
        '<div class="atlas-explorer__main"><p class="atlas-count" aria-live="polite">'
        f"{n} papers</p>"
        '<div class="atlas-table-wrap" data-atlas-table><div class="atlas-scroll">'
        '<table class="atlas-table atlas-stack" id="papers-all"><thead><tr>'
        '<th data-sort-type="text">Paper</th><th data-sort-type="text">Date</th>'
        '<th data-sort-type="text">Venue</th><th data-sort-type="text">Category</th>'
        '<th data-sort-type="text">Models</th><th data-sort-type="text">Code</th>'
        '<th data-sort-type="text">Baseline</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></div></div></div>\n"
    )
    return "\n".join(out)


def explorer_link(from_page: str, **filters: str) -> str:
    """A relative link to the explorer with the given filters (``category="attack"``) in the query string,
    escaped for an HTML attribute."""
    import html
    from urllib.parse import urlencode

    url = href(from_page, EXPLORER_PAGE) + ("?" + urlencode(filters) if filters else "")
    return html.escape(url, quote=True)
