"""Raw HTML blocks around Markdown: the generated pages are mostly raw HTML, which Python-Markdown would
re-parse tag by tag (most of the build's time at 5,000 papers). The hook swaps each one-line HTML block for
a comment placeholder before Markdown runs and puts the block back into the converted page, so Markdown
only handles headings, admonitions and code fences. The result is the same page (a test compares both).
"""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"<!--atlas:chunk:(\d+)-->")


def stash_html_blocks(markdown: str) -> tuple[str, list[str]]:
    """(markdown with every one-line raw HTML block replaced by a placeholder, the blocks in order).

    A block is a line that starts with ``<`` outside a code fence and stands alone between blank lines
    (the renderer writes every HTML block on one line)."""
    lines = markdown.split("\n")
    chunks: list[str] = []
    fence = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
            continue
        alone = (i == 0 or not lines[i - 1].strip()) and (i + 1 == len(lines) or not lines[i + 1].strip())
        if not fence and alone and line.startswith("<") and not line.startswith("<!--"):
            lines[i] = f"<!--atlas:chunk:{len(chunks)}-->"
            chunks.append(line)
    return "\n".join(lines), chunks


def restore_html_blocks(html: str, chunks: list[str]) -> str:
    """The converted page with each placeholder replaced by its block."""
    if not chunks:
        return html
    return _PLACEHOLDER.sub(lambda m: chunks[int(m.group(1))], html)
