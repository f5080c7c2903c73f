"""Small helpers shared by the site renderer: escaping, links, slugs, dates.

Every string that comes from catalog YAML (untrusted input) goes through :func:`esc` before it reaches a
page. ``esc`` HTML-escapes the text *and* turns every character that Markdown (or one of the enabled
extensions such as attr_list) gives a meaning to into a numeric character reference, so the result is
literal text both inside raw HTML blocks and inside Markdown headings. Links are emitted only for
absolute http(s) URLs (:func:`safe_url`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

# Characters Markdown or its extensions may interpret inline (emphasis, links, images, code, attr_list,
# tables, footnotes, escapes, math). Encoded as numeric references, they display unchanged in a browser.
_MD_SPECIAL = "\\`*_{}[]#!|~^$"
_MD_TABLE = {ord(c): f"&#{ord(c)};" for c in _MD_SPECIAL}
# One pass (so that the entities it writes are never escaped again): HTML's five plus Markdown's specials.
_ESC_TABLE = {
    **_MD_TABLE,
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    ord("'"): "&#39;",
}

CATEGORIES: tuple[str, ...] = ("evaluation", "attack", "defense", "survey", "other")
CATEGORY_TITLES: dict[str, str] = {
    "evaluation": "Evaluations & benchmarks",
    "attack": "Attacks",
    "defense": "Defenses",
    "survey": "Surveys",
    "other": "Other",
}
CATEGORY_COLORS: dict[str, str] = {
    "evaluation": "#1f77b4",
    "attack": "#d62728",
    "defense": "#2ca02c",
    "survey": "#9467bd",
    "other": "#7f7f7f",
}


def esc(value: object) -> str:
    """Untrusted text -> literal text, safe in raw HTML, HTML attributes and inline Markdown.

    Whitespace (including newlines) is collapsed to single spaces so the text can never end a raw HTML
    block or start a Markdown block construct.
    """
    if value is None:
        return ""
    return " ".join(str(value).split()).translate(_ESC_TABLE)


def esc_paragraphs(value: object) -> str:
    """Untrusted multi-paragraph text (an abstract) -> escaped ``<p>`` elements, one per paragraph."""
    if value is None:
        return ""
    paras = [p for p in re.split(r"\n\s*\n", str(value)) if p.strip()]
    return "".join(f"<p>{esc(p)}</p>" for p in paras)


def safe_url(url: object) -> str | None:
    """The URL if it is an absolute http(s) URL without whitespace or quotes, else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not re.match(r"^https?://[^\s/$.?#][^\s\"'<>`]*$", url, flags=re.IGNORECASE):
        return None
    return url


def ext_link(url: object, text: object) -> str:
    """An external ``<a>`` for a valid http(s) URL, or the escaped text alone when the URL is not valid."""
    good = safe_url(url)
    if good is None:
        return esc(text)
    return f'<a href="{html.escape(good, quote=True)}" rel="nofollow noopener">{esc(text)}</a>'


def slug(value: object) -> str:
    """A file-name-safe slug (lower case letters, digits, dashes, dots); never empty."""
    s = re.sub(r"[^a-z0-9.+-]+", "-", str(value).lower()).strip("-.")
    s = s.replace("+", "-plus-").strip("-")
    return s or "x"


def quarter_of(date: str) -> tuple[int, int]:
    """(year, quarter) of a YYYY-MM[-DD] date."""
    year, month = int(date[:4]), int(date[5:7])
    return year, (month - 1) // 3 + 1


def chips(items: Iterable[tuple[str, str]]) -> str:
    """Tag chips: ``(href or '', label)`` pairs -> ``<a class="atlas-chip">`` elements (labels escaped)."""
    out = []
    for href, label in items:
        if href:
            out.append(f'<a class="atlas-chip" href="{html.escape(href, quote=True)}">{esc(label)}</a>')
        else:
            out.append(f'<span class="atlas-chip">{esc(label)}</span>')
    return " ".join(out)


def front_matter(
    title: str, description: str | None = None, hide: tuple[str, ...] = (), *, search_exclude: bool = False
) -> str:
    """YAML front matter with an HTML-escaped page title (Material prints ``page.meta.title`` unescaped);
    ``hide`` lists Material sidebars to hide ("navigation", "toc"); ``search_exclude`` keeps the page out
    of the search index (lists that repeat what paper pages say)."""
    import json

    lines = ["---", f"title: {json.dumps(esc(title))}"]
    if description:
        lines.append(f"description: {json.dumps(esc(description)[:300])}")
    if hide:
        lines.append("hide: [" + ", ".join(h for h in hide if h in ("navigation", "toc")) + "]")
    if search_exclude:
        lines.append("search: {exclude: true}")
    lines.append("---")
    return "\n".join(lines) + "\n\n"


def fmt_rate(value: float | None) -> str:
    """A rate in [0, 1] as a percentage with one decimal, or an em dash."""
    if value is None:
        return "—"
    return f"{100 * value:.1f}%"


def esc_pre(value: object) -> str:
    """Untrusted preformatted text (BibTeX) -> escaped text for a ``<pre>``; keeps line breaks, drops
    blank lines (a blank line could end the raw HTML block in Markdown)."""
    if value is None:
        return ""
    lines = [ln.rstrip() for ln in str(value).splitlines() if ln.strip()]
    return "\n".join(ln.translate(_ESC_TABLE) for ln in lines)


def page_url(path: str) -> str:
    """The site URL (directory style, relative to the site root) of a docs-relative Markdown page."""
    stem = path[:-3] if path.endswith(".md") else path
    if stem == "index":
        return ""
    if stem.endswith("/index"):
        return stem[: -len("index")]
    return stem + "/"


def href(from_page: str, to_page: str, anchor: str = "") -> str:
    """A relative href, usable in raw HTML, from one page's URL to another page's URL (directory URLs)."""
    src = [p for p in page_url(from_page).split("/") if p]
    dst = [p for p in page_url(to_page).split("/") if p]
    i = 0
    while i < len(src) and i < len(dst) and src[i] == dst[i]:
        i += 1
    parts = [".."] * (len(src) - i) + dst[i:]
    out = "/".join(parts) + "/" if parts else "./"
    return out + (f"#{anchor}" if anchor else "")


def breakable_path(value: object) -> str:
    """Untrusted path-like text (``arxiv-digest:owner/repo/README.md@bf0d467``) escaped, with a line-break
    opportunity after each ``/``, ``:`` and before ``@``, so it wraps on a phone without splitting words."""
    return esc(value).replace("/", "/<wbr>").replace(":", ":<wbr>").replace("@", "<wbr>@")


#: The label shown wherever a paper's category or facets are displayed while no reviewer has read them.
SUGGESTED_BADGE = (
    '<span class="atlas-badge atlas-badge--warn" title="category and facets suggested by a tool from the title '
    'and list keywords; no reviewer has read the paper yet">suggested</span>'
)

