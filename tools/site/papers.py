"""Paper pages, category tables, tag pages and the timeline (HTML blocks with every YAML string escaped)."""

from __future__ import annotations

from collections import defaultdict

from tools.catalog.schema import Paper
from tools.site.compare import render_paper_results
from tools.site.ctx import (
    BASELINES_PAGE,
    TIMELINE_PAGE,
    Ctx,
    category_page,
    paper_page,
    tag_page,
)
from tools.site.explorer import explorer_link
from tools.site.util import (
    CATEGORY_TITLES,
    SUGGESTED_BADGE,
    breakable_path,
    chips,
    esc,
    esc_paragraphs,
    esc_pre,
    ext_link,
    front_matter,
    href,
    quarter_of,
    safe_url,
    slug,
)

_LINK_NAMES = (("paper", "Paper"), ("code", "Code"), ("project", "Project"), ("dataset", "Dataset"),
               ("huggingface", "Hugging Face"))  # fmt: skip


def _facet_chips(p: Paper, ctx: Ctx, page: str, vocab: str, terms: list[str]) -> str:
    return chips((href(page, tag_page(vocab, t)), ctx.term_name(vocab, t)) for t in terms)


def _links(p: Paper) -> str:
    links = [
        ext_link(getattr(p.links, k), label) for k, label in _LINK_NAMES if safe_url(getattr(p.links, k))
    ]
    if p.arxiv and not safe_url(p.links.paper):
        links.insert(0, ext_link(f"https://arxiv.org/abs/{p.arxiv}", "arXiv"))
    return " · ".join(links) or "—"


def render_paper(p: Paper, ctx: Ctx) -> str:
    """The page of one paper: every field, links, tags, results side by side, BibTeX, edit link."""
    page = paper_page(p.id)
    rows: list[tuple[str, str]] = []
    cats = [p.category, *p.also]
    rows.append(("Category", chips((href(page, category_page(c)), CATEGORY_TITLES.get(c, c)) for c in cats)))
    rows.append(("Date", esc(p.date)))
    rows.append(
        ("Venue", esc(p.venue) if p.venue else '<span class="atlas-muted">unknown (not recorded)</span>')
    )
    if p.arxiv:
        rows.append(("arXiv", ext_link(f"https://arxiv.org/abs/{p.arxiv}", p.arxiv)))
    rows.append(("Links", _links(p)))
    if p.scope != "core":
        rows.append(("Scope", f"{esc(p.scope)} — {esc(p.scope_reason)}"))
    for label, vocab, terms in ctx.facet_values(p):
        rows.append((label, _facet_chips(p, ctx, page, vocab, terms)))
    if p.evaluation is not None and p.evaluation.size is not None:
        rows.append(("Test items", str(int(p.evaluation.size))))
    if p.evaluation is not None and p.evaluation.dataset_released is not None:
        rows.append(("Dataset released", "yes" if p.evaluation.dataset_released else "no"))
    if p.baseline:
        rows.append(
            (
                "Baselines here",
                " ".join(
                    f'<a class="atlas-chip atlas-chip--run" href="{href(page, BASELINES_PAGE, ctx.baseline_anchor(b))}">'
                    f"<code>{esc(b)}</code></a>"
                    for b in p.baseline
                ),
            )
        )
    verified = p.verified
    if verified is not None:
        how = ", ".join(p.verified_by)
        rows.append(
            (
                "Identity check",
                f"arXiv id and title checked ({esc(how)})"
                if verified
                else '<span class="atlas-badge atlas-badge--warn">arXiv id and title not yet checked</span>',
            )
        )
    src = {k: v for k, v in p.field_sources.model_dump().items() if v}
    if src:
        rows.append(
            (
                "Field sources",
                "<br>".join(f"{esc(k)}: <code>{breakable_path(v)}</code>" for k, v in src.items()),
            )
        )
    if p.sources:
        rows.append(("Found in", ", ".join(breakable_path(s) for s in p.sources)))
    if p.suggested:
        rows.append(
            ("Facets", '<span class="atlas-badge atlas-badge--warn">suggested by a tool, unchecked</span>')
        )
    table = "".join(f'<tr><th scope="row">{k}</th><td>{v}</td></tr>' for k, v in rows)
    status = p.authors_status
    if p.authors:
        authors = esc(", ".join(p.authors)) + (
            " <em>et al.</em> (list incomplete)" if status == "partial" else ""
        )
    else:
        authors = (
            "<em>authors unknown: no source gives them</em>"
            if status == "unknown"
            else "<em>authors not recorded</em>"
        )
    yaml_path = f"catalog/papers/{slug(p.id)}.yaml"
    # the search index gets a trimmed entry per paper from the hook (tools/site/search.py), not the page
    out = [front_matter(p.title, p.abstract, hide=("navigation",), search_exclude=True)]
    out.append(
        f'<div class="atlas-paper"><h1 id="title">{esc(p.title)}</h1>'
        f'<p class="atlas-authors">{authors}</p>'
        + (f'<p class="atlas-affil">{esc("; ".join(p.affiliations))}</p>' if p.affiliations else "")
        + f'<table class="atlas-fields"><tbody>{table}</tbody></table></div>\n'
    )
    if p.abstract:
        out.append("## Abstract\n")
        out.append(f'<div class="atlas-abstract">{esc_paragraphs(p.abstract)}</div>\n')
    section = render_paper_results(p, ctx, page)
    if section:
        out.append(section)
    ledger = _ledgers(p, ctx)
    if ledger:
        out.append(ledger)
    out.append("## BibTeX\n")
    bib = _bibtex(p, ctx)
    out.append(
        f'<div class="atlas-bibtex"><button type="button" class="md-button atlas-copy" data-copy="bibtex-entry">'
        f'Copy</button><pre id="bibtex-entry">{esc_pre(bib)}</pre></div>\n'
    )
    if p.notes:
        out.append("## Notes\n")
        out.append(f'<div class="atlas-notes">{esc_paragraphs(p.notes)}</div>\n')
    out.append(
        f'<p class="atlas-edit"><a href="{esc(ctx.edit_url(yaml_path))}" rel="nofollow noopener">'
        f"Edit this page</a> (the YAML file <code>{esc(yaml_path)}</code>) · "
        f'<a href="{href(page, category_page(p.category))}">back to {esc(CATEGORY_TITLES.get(p.category, p.category))}</a></p>\n'
    )
    return "\n".join(out)


def _ledgers(p: Paper, ctx: Ctx) -> str:
    """The deviations ledger of each of the paper's registered baselines ('' when it has none registered)."""
    from tools.site.results import deviations_table

    parts = []
    for b in ctx.baselines:
        if b.name in (p.baseline or []):
            body = (
                deviations_table(b.deviations)
                if b.deviations
                else "<p>No deviations from the official code declared.</p>"
            )
            parts.append(f"### `{b.name}` ({esc(b.kind)})\n\n{body}\n")
    if not parts:
        return ""
    return "## Deviations of the implementation {#deviations}\n\n" + "\n".join(parts)


def _bibtex(p: Paper, ctx: Ctx) -> str:
    make = ctx.bibtex
    if make is None:
        from tools.catalog.bibtex import paper_bibtex as make
    try:
        return make(p)
    except Exception as e:  # one bad record must not break the whole site
        return f"% BibTeX could not be generated ({type(e).__name__})"


def render_category(category: str, papers: list[Paper], ctx: Ctx) -> str:
    """A category page: its papers newest first (main category, then those that also cover it), with a
    link to the explorer filtered on the category, where they can be filtered by every facet."""
    page = category_page(category)
    title = CATEGORY_TITLES.get(category, category)
    main = sorted((p for p in papers if p.category == category), key=lambda x: (x.date, x.id), reverse=True)
    also = sorted((p for p in papers if p.category != category), key=lambda x: (x.date, x.id), reverse=True)
    out = [front_matter(title, hide=("navigation",), search_exclude=True), f"# {title}\n"]
    others = " · ".join(
        f"<strong>{esc(CATEGORY_TITLES[c])}</strong>"
        if c == category
        else f'<a href="{href(page, category_page(c))}">{esc(CATEGORY_TITLES[c])}</a>'
        for c in CATEGORY_TITLES
    )
    out.append(f'<p class="atlas-muted">{others} · <a href="{href(page, TIMELINE_PAGE)}">Timeline</a></p>\n')
    out.append(
        f"<p>{len(main)} papers whose main category is <em>{esc(category)}</em>"
        + (f", plus {len(also)} that also cover it" if also else "")
        + f'. <a class="md-button md-button--primary" href="{explorer_link(page, category=category)}">'
        "Filter them in the explorer</a></p>\n"
    )
    out.append(f'<h2 id="main">Main category ({len(main)})</h2>\n')
    out.append(_paper_list(main, page, ctx))
    if also:
        out.append(f'<h2 id="also">Also covering {esc(category)} ({len(also)})</h2>\n')
        out.append(_paper_list(also, page, ctx))
    return "\n".join(out)


# vocabulary -> the explorer facet that filters on it (tools/site/explorer.py FACETS)
_EXPLORER_KEYS = {"threat_models": "threat", "attack_techniques": "technique", "defense_kinds": "defense",
                  "modalities": "modality", "attack_surfaces": "modality", "models": "model",
                  "toolkits": "impl", "datasets": "dataset"}  # fmt: skip


def render_tag(vocab: str, term: str, papers: list[Paper], ctx: Ctx) -> str:
    """A tag page: the term's definition and the papers tagged with it."""
    page = tag_page(vocab, term)
    name = ctx.term_name(vocab, term)
    t = ctx.terms.get(vocab, {}).get(term)
    out = [front_matter(f"Tag: {name}", search_exclude=True), f"# Tag: {esc(name)}\n"]
    voc = ctx.vocab.get(vocab)
    out.append(
        f'<p class="atlas-muted">Vocabulary <a href="{href(page, "glossary.md", slug(vocab))}">'
        f"{esc(voc.name if voc else vocab)}</a> · term <code>{esc(term)}</code></p>\n"
    )
    if t is not None:
        out.append(f"<p>{esc(t.definition)}</p>\n")
    key = _EXPLORER_KEYS.get(vocab)
    if key:
        out.append(
            f'<p><a href="{explorer_link(page, **{key: term})}">These {len(papers)} papers in the explorer</a>, '
            "to combine with other filters.</p>\n"
        )
    out.append(_paper_list(sorted(papers, key=lambda x: x.date, reverse=True), page))
    return "\n".join(out)


def _paper_list(papers: list[Paper], page: str, ctx: Ctx | None = None) -> str:
    items = "".join(
        f'<li><span class="atlas-badge atlas-cat-{esc(p.category)}">{esc(p.category)}</span> '
        + (SUGGESTED_BADGE + " " if p.suggested else "")
        + f'<a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a> '
        f'<span class="atlas-muted">{esc(p.date)} · {esc(p.venue) if p.venue else "venue unknown"}'
        + (" · " + " ".join(f"<code>{esc(b)}</code>" for b in p.baseline) if p.baseline else "")
        + "</span></li>"
        for p in papers
    )
    return f'<ul class="atlas-list">{items}</ul>\n'


def tag_index(ctx: Ctx) -> dict[tuple[str, str], list[Paper]]:
    """(vocabulary, term) -> papers carrying that tag, for every facet value used in the catalog."""
    idx: dict[tuple[str, str], list[Paper]] = defaultdict(list)
    for p in ctx.papers.values():
        for _label, vocab, terms in ctx.facet_values(p):
            for t in dict.fromkeys(terms):
                idx[(vocab, t)].append(p)
    return dict(sorted(idx.items()))


def render_timeline(ctx: Ctx) -> str:
    """Papers grouped by year and quarter, newest first."""
    page = TIMELINE_PAGE
    groups: dict[tuple[int, int], list[Paper]] = defaultdict(list)
    for p in ctx.papers.values():
        groups[quarter_of(p.date)].append(p)
    out = [
        front_matter("Timeline", search_exclude=True),
        "# Timeline\n",
        "Every paper by the date of its first public version.\n",
    ]
    year = None
    for y, q in sorted(groups, reverse=True):
        if y != year:
            n_year = sum(len(v) for (yy, _), v in groups.items() if yy == y)
            out.append(f"## {y} <small>({n_year} papers)</small> {{#y{y}}}\n")
            year = y
        ps = sorted(groups[(y, q)], key=lambda x: x.date, reverse=True)
        out.append(f"### {y} Q{q} <small>({len(ps)})</small> {{#y{y}-q{q}}}\n")
        out.append(_paper_list(ps, page))
    return "\n".join(out)
