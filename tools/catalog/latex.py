"""Turn the LaTeX that arXiv metadata contains into plain Unicode text (titles, abstracts, author names).

Handles accents (``\\"o``, ``{\\'e}``, ``\\c{c}``), special letters (``\\ss``, ``\\o``, ``\\l``), escaped
characters (``\\&``, ``\\%``), text-style commands (``\\textit{x}`` -> ``x``), simple math (``$\\alpha$`` -> α,
``$^2$``), dashes and quotes; collapses line breaks and runs of spaces; NFC-normalises the result.
"""

from __future__ import annotations

import re
import unicodedata

_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "c": "\u0327",
    "k": "\u0328",
    "r": "\u030a",
}
_LETTERS = {
    "ss": "ß",
    "o": "ø",
    "O": "Ø",
    "aa": "å",
    "AA": "Å",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
}
_SYMBOLS = {
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "varepsilon": "ε",
    "theta": "θ",
    "lambda": "λ",
    "mu": "μ",
    "pi": "π",
    "sigma": "σ",
    "tau": "τ",
    "phi": "φ",
    "omega": "ω",
    "Delta": "Δ",
    "ell": "ℓ",
    "infty": "∞",
    "times": "×",
    "cdot": "·",
    "leq": "≤",
    "geq": "≥",
    "le": "≤",
    "ge": "≥",
    "approx": "≈",
    "sim": "~",
    "pm": "±",
    "to": "→",
    "rightarrow": "→",
    "leftarrow": "←",
    "textendash": "–",
    "textemdash": "—",
    "ldots": "…",
    "dots": "…",
    "LaTeX": "LaTeX",
    "TeX": "TeX",
}
_STYLE = (
    r"textbf|textit|texttt|textsc|textrm|textsf|emph|mathrm|mathbf|mathit|mathcal|mathsf|mathtt|"
    r"mathbb|text|operatorname|boldsymbol|underline|url"
)
_SUPERSCRIPTS = str.maketrans("0123456789+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻")
_SUBSCRIPTS = str.maketrans("0123456789+-", "₀₁₂₃₄₅₆₇₈₉₊₋")


def _accent(m: re.Match[str]) -> str:
    cmd, letter = m.group(1), m.group(2)
    if letter.startswith("\\"):  # a special letter under the accent: \'\i -> í, \'\o -> ǿ
        letter = letter[1:]
        letter = letter if letter in "ij" else _LETTERS.get(letter, letter)
    base = letter
    return unicodedata.normalize("NFC", base + _ACCENTS[cmd])


def _math(m: re.Match[str]) -> str:
    body = m.group(1)
    body = re.sub(r"\^\{?([0-9+\-]+)\}?", lambda s: s.group(1).translate(_SUPERSCRIPTS), body)
    body = re.sub(r"_\{?([0-9+\-]+)\}?", lambda s: s.group(1).translate(_SUBSCRIPTS), body)
    return body


def clean_text(text: str) -> str:
    """Plain Unicode text for a LaTeX-flavoured string from arXiv (see the module docstring)."""
    s = text
    # accents: \"{o}, {\"o}, \"o, \c{c}, \v s
    sym = r"[\"'`^~=.]"
    s = re.sub(rf"\{{\\({sym})\s*\{{?(\\?[A-Za-z]{{1,2}})\}}?\}}", _accent, s)
    s = re.sub(rf"\\({sym})\s*\{{(\\?[A-Za-z]{{1,2}})\}}", _accent, s)
    s = re.sub(rf"\\({sym})\s*(\\?[A-Za-z])", _accent, s)
    s = re.sub(r"\{\\([uvHckr])\s*\{?([A-Za-z])\}?\}", _accent, s)
    s = re.sub(r"\\([uvHckr])\s*\{([A-Za-z])\}", _accent, s)
    s = re.sub(r"\\([uvHckr]) ([A-Za-z])", _accent, s)
    s = re.sub(r"\\(\\?)(ss|aa|AA|ae|AE|oe|OE|o|O|l|L|i|j)(?![A-Za-z])\s?", lambda m: _LETTERS[m.group(2)], s)
    s = re.sub(r"(?<!\\)\$([^$]*)\$", _math, s)
    for _ in range(3):  # nested style commands
        s = re.sub(rf"\\(?:{_STYLE})\s*\{{([^{{}}]*)\}}", r"\1", s)
    s = re.sub(r"\\([A-Za-z]+)(?![A-Za-z])\s?", lambda m: _SYMBOLS.get(m.group(1), m.group(0)), s)
    s = re.sub(r"\\([&%$#_{}])", r"\1", s)
    s = s.replace("\\\\", " ")
    s = re.sub(r"(?<=[A-Za-z.])~(?=[A-Z0-9])", " ", s)  # LaTeX non-breaking space (Fig.~1), not URLs
    s = s.replace("---", "—").replace("--", "–").replace("``", "“").replace("''", "”")
    s = re.sub(r"(?<!\\)[{}]", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    return unicodedata.normalize("NFC", s)
