"""A small search index: one short entry per paper instead of every section of every paper page.

Paper, tag, category and timeline pages are kept out of Material's index (``search: {exclude: true}`` in
their front matter); after the build the hook appends one entry per paper made of its title, authors, venue,
tags and the start of its abstract (:func:`paper_entries`). The index then grows by a few hundred bytes per
paper rather than by the whole page.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from tools.site.ctx import Ctx, paper_page
from tools.site.util import page_url

ABSTRACT_CHARS = 200


def trim(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (with an ellipsis when cut)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def paper_entries(ctx: Ctx) -> list[dict[str, str]]:
    """Search entries (location, title, text) for every paper. Title and text are HTML-escaped, as in the
    entries Material writes itself: its search shows them as HTML."""
    out = []
    for p in ctx.papers.values():
        tags = [ctx.term_name(vocab, t) for _label, vocab, terms in ctx.facet_values(p) for t in terms]
        parts = [
            ", ".join(p.authors[:8]) + (" et al." if len(p.authors) > 8 else ""),
            p.venue or "",
            p.date[:4],
            " ".join(dict.fromkeys([p.category, *tags, *p.baseline])),
            trim(p.abstract or "", ABSTRACT_CHARS),
        ]
        out.append(
            {
                "location": page_url(paper_page(p.id)),
                "title": html.escape(" ".join(p.title.split()), quote=False),
                "text": html.escape(" · ".join(x for x in parts if x), quote=False),
            }
        )
    return out


def add_paper_entries(index_file: Path, ctx: Ctx) -> int:
    """Append the paper entries to a built ``search_index.json``; returns its new size in bytes."""
    data = json.loads(index_file.read_text(encoding="utf-8"))
    data["docs"] = [d for d in data.get("docs", []) if not _is_paper(d.get("location", ""), ctx)]
    data["docs"].extend(paper_entries(ctx))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    index_file.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


def _is_paper(location: str, ctx: Ctx) -> bool:
    head = location.split("#", 1)[0]
    return head.startswith("papers/") and head.count("/") == 2 and head.split("/")[1] in ctx.papers
