"""Take the data home: the catalog as BibTeX, JSON and CSV, the paper JSON Schema, an Atom feed of newly
added papers, and the page that lists them (downloads.md).

The files come from the same exporters as ``mllm-safety catalog export`` (``tools.catalog.export``), so the
site's downloads equal the CLI's. The feed's "added" date of a paper is the date its YAML file was first
committed (``Ctx.added``, read from git by the hook); a paper without one is described by ``Ctx.added_note``.
"""

from __future__ import annotations

import datetime as _dt
import json
from xml.sax.saxutils import escape as xml_escape

from tools.site.ctx import DOWNLOADS_PAGE, FEED_PATH, Ctx, paper_page
from tools.site.util import esc, front_matter, page_url, safe_url

DOWNLOADS = {
    "downloads/catalog.bib": ("BibTeX", "one entry per paper, keys stable across releases"),
    "downloads/catalog.json": ("JSON", "every field of every paper, as the schema defines it"),
    "downloads/catalog.csv": ("CSV", "one row per paper; list fields joined with '; '"),
    "downloads/paper.schema.json": ("JSON Schema", "the schema of a paper file, with the vocabularies"),
}
FEED_SIZE = 50


def download_files(ctx: Ctx, site_url: str) -> dict[str, str]:
    """{site path: content} for every downloadable file and the Atom feed."""
    from tools.catalog.export import paper_json_schema, to_bibtex, to_csv, to_json

    papers = [ctx.papers[k] for k in sorted(ctx.papers)]
    return {
        "downloads/catalog.bib": to_bibtex(papers),
        "downloads/catalog.json": to_json(papers),
        "downloads/catalog.csv": to_csv(papers),
        "downloads/paper.schema.json": json.dumps(paper_json_schema(ctx.vocab), indent=2, ensure_ascii=False)
        + "\n",
        FEED_PATH: atom_feed(ctx, site_url),
    }


def _rfc3339(date: str) -> str:
    """A catalog date (YYYY-MM[-DD]) or an ISO timestamp as an RFC 3339 timestamp (UTC)."""
    if len(date) <= 10:
        parts = (date + "-01")[:10] if len(date) == 7 else date
        return f"{parts}T00:00:00Z"
    d = _dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
    return d.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_entries(ctx: Ctx) -> list[tuple[str, object, bool]]:
    """(added timestamp, paper, known) for the newest papers: those with a known added date first by that
    date; when no paper has one, the papers' own dates stand in (``known`` is False for those)."""
    known = [(ctx.added[p.id], p, True) for p in ctx.papers.values() if p.id in ctx.added]
    if known:
        rows = known
    else:
        rows = [(p.date, p, False) for p in ctx.papers.values()]
    rows.sort(key=lambda x: (_rfc3339(x[0]), x[1].id), reverse=True)
    return rows[:FEED_SIZE]


def atom_feed(ctx: Ctx, site_url: str) -> str:
    """An Atom 1.0 feed (RFC 4287) of the newest papers; every text is XML-escaped."""
    base = site_url.rstrip("/") + "/"
    entries = feed_entries(ctx)
    stamp = max((_rfc3339(e[0]) for e in entries), default=_rfc3339(ctx.build.get("date", "1970-01-01")))
    any_known = any(k for _, _, k in entries)
    subtitle = (
        "Papers newly added to the catalog, by the date their file was first committed."
        if any_known
        else f"Newest papers by their publication date: {ctx.added_note or 'no added dates are known'}."
    )
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "<title>MLLM Safety Atlas: new papers</title>",
        f"<subtitle>{xml_escape(subtitle)}</subtitle>",
        f'<link rel="self" type="application/atom+xml" href="{xml_escape(base + FEED_PATH)}"/>',
        f'<link rel="alternate" type="text/html" href="{xml_escape(base)}"/>',
        f"<id>{xml_escape(base + FEED_PATH)}</id>",
        f"<updated>{stamp}</updated>",
        "<author><name>MLLM Safety Atlas contributors</name></author>",
    ]
    for when, p, known in entries:
        url = base + page_url(paper_page(p.id))
        authors = "".join(f"<author><name>{xml_escape(a)}</name></author>" for a in p.authors[:20])
        how = "added to the catalog" if known else "published (added date unknown)"
        summary = f"{p.category} paper, {how} {when[:10]}. " + (p.abstract or "")
        out.append(
            "<entry>"
            f"<title>{xml_escape(p.title)}</title>"
            f'<link rel="alternate" type="text/html" href="{xml_escape(url)}"/>'
            f"<id>{xml_escape(url)}</id>"
            f"<updated>{_rfc3339(when)}</updated>"
            f"<published>{_rfc3339(p.date)}</published>"
            f"{authors}"
            f'<category term="{xml_escape(p.category, {chr(34): "&quot;"})}"/>'
            f"<summary>{xml_escape(' '.join(summary.split())[:1000])}</summary>"
            "</entry>"
        )
    out.append("</feed>")
    return "\n".join(out) + "\n"


def render_downloads_page(ctx: Ctx) -> str:
    """downloads.md: the files, what each holds, the feed, and where the dates come from."""
    page = DOWNLOADS_PAGE
    up = "../" * page_url(page).count("/")
    rows = "".join(
        f'<tr><td data-label="File"><a href="{up}{path}" download><code>{path.rsplit("/", 1)[-1]}</code></a></td>'
        f'<td data-label="Format">{fmt}</td><td data-label="Contents">{what}</td></tr>'
        for path, (fmt, what) in DOWNLOADS.items()
    )
    commit = ctx.build.get("commit", "")
    out = [front_matter("Downloads", hide=("navigation",)), "# Downloads\n"]
    out.append(
        f"<p>The whole catalog ({len(ctx.papers)} papers), as built for this site"
        + (f" from commit <code>{esc(commit[:12])}</code>" if commit else "")
        + ". The same files come from <code>mllm-safety catalog export --format bibtex|csv|json</code>.</p>\n"
    )
    out.append(
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack" id="downloads"><thead><tr>'
        f"<th>File</th><th>Format</th><th>Contents</th></tr></thead><tbody>{rows}</tbody></table></div>\n"
    )
    out.append('<h2 id="feed">Feed of new papers</h2>\n')
    out.append(
        f'<p><a href="{up}{FEED_PATH}"><code>{FEED_PATH}</code></a> is an Atom feed of the {FEED_SIZE} papers '
        "most recently added to the catalog. A paper's added date is the date its YAML file was first "
        "committed to the repository, read from git when the site is built.</p>\n"
    )
    if ctx.added_note:
        out.append(f'<p class="atlas-muted">In this build: {esc(ctx.added_note)}.</p>\n')
    out.append('<h2 id="licence">Reuse</h2>\n')
    repo = safe_url(ctx.repo_url)
    out.append(
        "<p>Metadata only: titles, authors, abstracts as their sources give them (each paper page names its "
        "sources), tags and numbers. No model outputs are published."
        + (f' The repository: <a href="{esc(repo)}">{esc(repo)}</a>.' if repo else "")
        + "</p>\n"
    )
    return "\n".join(out)
