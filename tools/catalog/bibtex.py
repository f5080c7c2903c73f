"""BibTeX for catalog papers: stable keys derived from the paper id, LaTeX-escaped fields.

``paper_bibtex(paper)`` gives one entry (used for the site's per-paper BibTeX blocks and by
``mllm-safety catalog export --format bibtex``):

* ``@inproceedings`` with ``booktitle`` when a venue is known, ``@article`` with ``journal`` when the
  venue is a journal, ``@misc`` with ``eprint`` / ``archivePrefix`` (and ``primaryClass`` when the paper
  records its arXiv category) for arXiv-only papers;
* the key is ``<surname><year><short name>`` from the id (``2023-gong-figstep`` -> ``gong2023figstep``,
  ``2023-liu-mm-safetybench`` -> ``liu2023mm-safetybench``), so distinct ids give distinct keys;
* LaTeX special characters are escaped; accented Latin letters become LaTeX accent commands (``{\\"{u}}``),
  other non-ASCII text (e.g. CJK names) is kept as UTF-8, which biber and modern BibTeX accept.
"""

from __future__ import annotations

import re
import unicodedata

from tools.catalog.schema import Paper

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_ACCENTS = {  # combining mark -> LaTeX accent command
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0308": '"',
    "\u030a": "r",
    "\u0327": "c",
    "\u030c": "v",
    "\u0304": "=",
    "\u0307": ".",
    "\u0306": "u",
    "\u030b": "H",
    "\u0328": "k",
}
_LETTERS = {
    "ß": r"{\ss}",
    "ø": r"{\o}",
    "Ø": r"{\O}",
    "æ": r"{\ae}",
    "Æ": r"{\AE}",
    "œ": r"{\oe}",
    "Œ": r"{\OE}",
    "ł": r"{\l}",
    "Ł": r"{\L}",
    "ı": r"{\i}",
    "–": "--",
    "—": "---",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "\u00a0": "~",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_JOURNAL_HINTS = re.compile(
    r"\b(transactions|journal|letters|tpami|tmlr|tifs|tdsc|ijcv|jmlr|pattern recognition|pr|neurocomputing"
    r"|tmm|tip|tcsvt|tnnls|tkde|tacl|tomm|tist|ieee access|nature|science|information fusion"
    r"|acm computing surveys|csur)\b",
    re.IGNORECASE,
)
_PREPRINT = re.compile(r"^\s*(arxiv|corr|preprint)\b", re.IGNORECASE)


def latex_escape(text: str) -> str:
    """``text`` with LaTeX specials escaped and accented letters as accent commands."""
    out: list[str] = []
    for ch in text:
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in _LETTERS:
            out.append(_LETTERS[ch])
        else:
            decomposed = unicodedata.normalize("NFD", ch)
            base, marks = decomposed[0], decomposed[1:]
            if ord(base) < 128 and marks and all(m in _ACCENTS for m in marks):
                for mark in marks:
                    base = f"\\{_ACCENTS[mark]}{{{base}}}"
                out.append("{" + base + "}")
            else:
                out.append(ch)
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _title(text: str) -> str:
    """Escaped title; words with capitals after their first letter (acronyms, FigStep) keep their case."""
    words = []
    for word in text.split():
        escaped = latex_escape(word)
        words.append("{" + escaped + "}" if re.search(r"[A-Z]", word[1:]) else escaped)
    return " ".join(words)


def bibtex_key(paper_id: str) -> str:
    """``<surname><year><short name>`` from an id ``<year>-<surname>-<short-name>``."""
    parts = paper_id.split("-")
    if len(parts) < 2 or not parts[0].isdigit():
        return re.sub(r"[^a-z0-9-]+", "", paper_id.lower()) or "paper"
    year, surname, rest = parts[0], parts[1], "-".join(parts[2:])
    return f"{surname}{year}{rest}"


def entry_type(paper: Paper) -> str:
    """``inproceedings``, ``article`` or ``misc`` (preprints and papers without a venue)."""
    if not paper.venue or _PREPRINT.match(paper.venue):
        return "misc"
    return "article" if _JOURNAL_HINTS.search(paper.venue) else "inproceedings"


def paper_bibtex(paper: Paper, key: str | None = None) -> str:
    """One BibTeX entry for ``paper`` (key from :func:`bibtex_key` unless given), ending with a newline."""
    kind = entry_type(paper)
    fields: list[tuple[str, str]] = [("title", "{" + _title(paper.title) + "}")]
    if paper.authors:
        fields.append(("author", "{" + " and ".join(latex_escape(a) for a in paper.authors) + "}"))
    if kind == "inproceedings":
        fields.append(("booktitle", "{" + latex_escape(paper.venue or "") + "}"))
    elif kind == "article":
        fields.append(("journal", "{" + latex_escape(paper.venue or "") + "}"))
    # A published entry carries the venue's year (AAAI 2025), a preprint the year of its first version.
    venue_year = re.search(r"\b(19|20)\d{2}\b", paper.venue or "") if kind != "misc" else None
    fields.append(("year", "{" + (venue_year.group(0) if venue_year else paper.date[:4]) + "}"))
    if len(paper.date) >= 7 and not venue_year:
        fields.append(("month", _MONTHS[int(paper.date[5:7]) - 1]))
    if paper.arxiv:
        fields.append(("eprint", "{" + paper.arxiv + "}"))
        fields.append(("archivePrefix", "{arXiv}"))
        primary = getattr(paper, "arxiv_class", None)
        if primary:
            fields.append(("primaryClass", "{" + latex_escape(primary) + "}"))
    url = paper.links.paper or (f"https://arxiv.org/abs/{paper.arxiv}" if paper.arxiv else None)
    if url:
        fields.append(("url", "{" + url.replace("\\", "").replace("{", "%7B").replace("}", "%7D") + "}"))
    if kind == "misc" and paper.venue and not paper.arxiv:
        fields.append(("howpublished", "{" + latex_escape(paper.venue) + "}"))
    width = max(len(name) for name, _ in fields)
    body = ",\n".join(f"  {name.ljust(width)} = {value}" for name, value in fields)
    return f"@{kind}{{{key or bibtex_key(paper.id)},\n{body}\n}}\n"


def catalog_bibtex(papers: list[Paper]) -> str:
    """All entries, in the given order, with keys made unique (a suffix b, c, ... on a rare clash)."""
    used: set[str] = set()
    entries = []
    for paper in papers:
        key = base = bibtex_key(paper.id)
        n = 0
        while key in used:
            n += 1
            key = f"{base}{chr(ord('a') + n)}" if n < 26 else f"{base}-{n}"
        used.add(key)
        entries.append(paper_bibtex(paper, key))
    return "\n".join(entries)
