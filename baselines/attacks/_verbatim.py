"""Verbatim prompt files of the attacks (``baselines/attacks/data/<attack>/*.txt``).

Format: header lines beginning with ``# `` (what the text is, its source: repository, path, commit) up to a
line ``# ---``; the text is everything after that line, without the single final newline of the file (so a
text that itself ends with newlines keeps them). Each attack's tests check the sha256 of every text against
the value the specification gives.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MARKER = "# ---\n"


def read_verbatim(path: str | Path) -> str:
    """The text of a verbatim prompt file (see the module docstring)."""
    p = Path(path)
    raw = p.read_text(encoding="utf-8")
    if MARKER not in raw:
        raise ValueError(f"{p}: missing the '# ---' line that ends the header")
    body = raw.split(MARKER, 1)[1]
    return body[:-1] if body.endswith("\n") else body


def sha256_text(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes (the value the specification gives for each prompt)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
