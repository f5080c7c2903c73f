"""The site renderer: a pure function from the catalog (and the registry's baselines) to Markdown pages.

``render_site`` returns ``{docs-relative page path: markdown}`` for every generated page; the mkdocs hook
(``tools/site/mkdocs_hook.py``) adds them to the build without writing them to disk, so generated pages are never
committed. ``render_home_fragments`` fills the markers of the hand-written home page (``docs/index.md``).

Safety: every string from YAML is escaped by ``tools.site.util.esc`` and placed in raw HTML blocks (or, for
headings, as entity-encoded text), so Markdown cannot reinterpret it; only http(s) links are emitted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from tools.site.ctx import (
    BASELINES_PAGE,
    DOWNLOADS_PAGE,
    EXPLORER_PAGE,
    GLOSSARY_PAGE,
    JUDGES_PAGE,
    RESULTS_INDEX,
    TAGS_INDEX,
    TIMELINE_PAGE,
    BaselineInfo,
    Ctx,
    category_page,
    paper_page,
    tag_page,
)
from tools.site.datasets import DATASETS_PAGE, render_datasets_page
from tools.site.downloads import render_downloads_page
from tools.site.explorer import render_explorer
from tools.site.judges import render_judges_page
from tools.site.papers import render_category, render_paper, render_tag, render_timeline, tag_index
from tools.site.results import render_baselines_page, render_results_pages
from tools.site.svg import papers_per_quarter_svg
from tools.site.util import CATEGORIES, CATEGORY_TITLES, esc, front_matter, href, quarter_of, slug

__all__ = ["BaselineInfo", "make_ctx", "render_home_fragments", "render_site", "HOME_MARKERS"]

DEFAULT_REPO_URL = "https://github.com/mllm-safety-atlas/mllm-safety-atlas"
HOME_MARKERS = ("stats", "chart", "taxonomy", "latest")


def make_ctx(
    catalog: Any,
    baselines: list[BaselineInfo] | None = None,
    *,
    repo_url: str = DEFAULT_REPO_URL,
    bibtex: Callable[[Any], str] | None = None,
    added: dict[str, str] | None = None,
    added_note: str = "",
    build: dict[str, str] | None = None,
) -> Ctx:
    """Build the renderers' context from a ``tools.catalog.store.Catalog`` (or any object with ``papers``,
    ``vocab``, ``results`` and optionally ``result_paths`` and ``root``)."""
    result_files: dict[str, str] = {}
    root = getattr(catalog, "root", None)
    for run_id, path in (getattr(catalog, "result_paths", None) or {}).items():
        try:
            result_files[run_id] = f"catalog/{path.relative_to(root).as_posix()}" if root else str(path)
        except (ValueError, AttributeError):
            result_files[run_id] = str(getattr(path, "name", path))
    return Ctx(
        papers=dict(catalog.papers),
        vocab=dict(catalog.vocab),
        results=list(catalog.results),
        baselines=list(baselines or []),
        repo_url=repo_url,
        bibtex=bibtex,
        result_files=result_files,
        judge_validations=list(getattr(catalog, "judge_validations", None) or []),
        added=dict(added or {}),
        added_note=added_note,
        build=dict(build or {}),
    )


def render_site(ctx: Ctx) -> dict[str, str]:
    """Every generated page: the explorer, categories, papers, tags, timeline, glossary, baselines, judges,
    results, downloads."""
    pages: dict[str, str] = {}
    by_cat: dict[str, list] = {c: [] for c in CATEGORIES}
    for p in ctx.papers.values():
        for c in dict.fromkeys([p.category, *p.also]):
            by_cat.setdefault(c, []).append(p)
        pages[paper_page(p.id)] = render_paper(p, ctx)
    for c, papers in by_cat.items():
        pages[category_page(c)] = render_category(c, papers, ctx)
    tags = tag_index(ctx)
    for (vocab, term), papers in tags.items():
        pages[tag_page(vocab, term)] = render_tag(vocab, term, papers, ctx)
    pages[TAGS_INDEX] = _render_tags_index(tags, ctx)
    pages[TIMELINE_PAGE] = render_timeline(ctx)
    pages[GLOSSARY_PAGE] = _render_glossary(ctx, tags)
    pages[BASELINES_PAGE] = render_baselines_page(ctx)
    pages[EXPLORER_PAGE] = render_explorer(ctx)
    pages[JUDGES_PAGE] = render_judges_page(ctx)
    pages[DOWNLOADS_PAGE] = render_downloads_page(ctx)
    pages[DATASETS_PAGE] = render_datasets_page(ctx)
    pages.update(render_results_pages(ctx))
    return pages


def _render_tags_index(tags: dict[tuple[str, str], list], ctx: Ctx) -> str:
    out = [
        front_matter("Tags", search_exclude=True),
        "# Tags\n",
        "Every facet value used in the catalog, with its number of papers.\n",
    ]
    by_vocab: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (vocab, term), papers in tags.items():
        by_vocab[vocab].append((term, len(papers)))
    for vocab, terms in by_vocab.items():
        v = ctx.vocab.get(vocab)
        out.append(f"## {esc(v.name if v else vocab)} {{#{slug(vocab)}}}\n")
        items = " ".join(
            f'<a class="atlas-chip" href="{href(TAGS_INDEX, tag_page(vocab, t))}">{esc(ctx.term_name(vocab, t))} '
            f"<small>{n}</small></a>"
            for t, n in sorted(terms, key=lambda x: (-x[1], x[0]))
        )
        out.append(f'<p class="atlas-chips">{items}</p>\n')
    return "\n".join(out)


def _render_glossary(ctx: Ctx, tags: dict[tuple[str, str], list]) -> str:
    out = [front_matter("Glossary"), "# Glossary\n"]
    out.append("The controlled vocabularies the catalog's facets draw from (`catalog/vocab/`).\n")
    for name, v in sorted(ctx.vocab.items()):
        out.append(f"## {esc(v.name)} {{#{slug(name)}}}\n")
        out.append(f"<p>{esc(v.description)}</p>\n")
        items = []
        for t in sorted(v.terms, key=lambda x: x.name.lower()):
            n = len(tags.get((name, t.id), []))
            link = (
                f' <a href="{href(GLOSSARY_PAGE, tag_page(name, t.id))}">{n} paper{"s" if n != 1 else ""}</a>'
                if n
                else ""
            )
            aliases = (
                f' <span class="atlas-muted">(also: {esc(", ".join(t.aliases))})</span>' if t.aliases else ""
            )
            parent = (
                f' <span class="atlas-muted">— under {esc(ctx.term_name(name, t.parent))}</span>'
                if t.parent
                else ""
            )
            items.append(
                f'<dt id="{slug(name)}-{slug(t.id)}">{esc(t.name)} <code>{esc(t.id)}</code>{aliases}{parent}</dt>'
                f"<dd>{esc(t.definition)}{link}</dd>"
            )
        out.append(f'<dl class="atlas-glossary">{"".join(items)}</dl>\n')
    return "\n".join(out)


def render_home_fragments(ctx: Ctx, page: str = "index.md") -> dict[str, str]:
    """HTML for the markers of the home page: live counts, the chart, the taxonomy, the latest papers."""
    n_cat = Counter(p.category for p in ctx.papers.values())
    runnable = [b for b in ctx.baselines if b.kind in ("attack", "defense", "judge")]
    stats = [(len(ctx.papers), "papers", EXPLORER_PAGE)]
    stats += [(n_cat.get(c, 0), CATEGORY_TITLES[c].lower(), category_page(c)) for c in CATEGORIES[:4]]
    stats += [
        (len(runnable), "runnable baselines", BASELINES_PAGE),
        (len(ctx.results), "reproduced results", RESULTS_INDEX),
    ]
    stat_html = "".join(
        f'<a class="atlas-stat" href="{href(page, target)}"><span class="atlas-stat__n">{n}</span>'
        f'<span class="atlas-stat__label">{esc(label)}</span></a>'
        for n, label, target in stats
    )
    counts: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for p in ctx.papers.values():
        counts[quarter_of(p.date)][p.category] += 1
    chart = papers_per_quarter_svg(
        {k: dict(v) for k, v in counts.items()}, title="Papers per quarter, by category"
    )
    tags = tag_index(ctx)
    tax = []
    for name, v in sorted(ctx.vocab.items()):
        if name in ("models", "datasets", "categories"):
            continue
        chips_html = []
        children: dict[str | None, list] = defaultdict(list)
        for t in v.terms:
            children[t.parent if t.parent in ctx.terms.get(name, {}) else None].append(t)
        for t in sorted(children[None], key=lambda x: x.name.lower()):
            chips_html.append(_tax_chip(ctx, page, name, t, tags))
            for c in sorted(children.get(t.id, []), key=lambda x: x.name.lower()):
                chips_html.append(_tax_chip(ctx, page, name, c, tags, child=True))
        tax.append(
            f'<div class="atlas-tax"><h3><a href="{href(page, GLOSSARY_PAGE, slug(name))}">{esc(v.name)}</a></h3>'
            f'<p class="atlas-chips">{" ".join(chips_html)}</p></div>'
        )
    latest = sorted(ctx.papers.values(), key=lambda p: (p.date, p.id), reverse=True)[:8]
    latest_html = "".join(
        f'<li><span class="atlas-badge atlas-cat-{esc(p.category)}">{esc(p.category)}</span> '
        f'<a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a> <span class="atlas-muted">{esc(p.date)}</span></li>'
        for p in latest
    )
    return {
        "stats": f'<div class="atlas-stats">{stat_html}</div>',
        "chart": f'<div class="atlas-figure">{chart}</div>',
        "taxonomy": f'<div class="atlas-taxonomy">{"".join(tax)}</div>'
        if tax
        else "<p>No vocabularies yet.</p>",
        "latest": f'<ul class="atlas-list">{latest_html}</ul>',
    }


def _tax_chip(ctx: Ctx, page: str, vocab: str, t: Any, tags: dict, child: bool = False) -> str:
    n = len(tags.get((vocab, t.id), []))
    cls = "atlas-chip atlas-chip--child" if child else "atlas-chip"
    label = f"{esc(t.name)} <small>{n}</small>"
    if n:
        return f'<a class="{cls}" title="{esc(t.definition)}" href="{href(page, tag_page(vocab, t.id))}">{label}</a>'
    return f'<span class="{cls}" title="{esc(t.definition)}">{label}</span>'
