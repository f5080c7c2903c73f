"""What git knows about the catalog, read once per build by the hook: the commit, the date of its last
change, and the date each paper file was first committed (the feed's "added" date).

Every function degrades to "unknown" (empty results) when git is missing, the catalog is outside a
repository, or the clone is shallow (a shallow clone's oldest commit would pass for every file's first), and
:func:`added_dates` then says why in a note that the site prints.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def build_info(catalog_root: Path) -> dict[str, str]:
    """{'commit', 'date', 'source'}: the repository's HEAD commit and the last commit date touching the
    catalog; without git, the build date with source 'build date'."""
    head = (_git(catalog_root, "rev-parse", "HEAD") or "").strip()
    last = (_git(catalog_root, "log", "-1", "--format=%cI", "--", ".") or "").strip()
    dirty = (_git(catalog_root, "status", "--porcelain", "--", ".") or "").strip()
    if head and last:
        info = {"commit": head, "date": last[:10], "source": "last commit to the catalog"}
        if dirty:
            info["source"] += " (plus uncommitted changes)"
        return info
    today = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    return {"commit": "", "date": today, "source": "build date (no git history)"}


def added_dates(catalog_root: Path, paper_ids: list[str]) -> tuple[dict[str, str], str]:
    """({paper id: ISO timestamp of the first commit adding papers/<id>.yaml}, note on papers left out)."""
    papers_dir = catalog_root / "papers"
    if (_git(catalog_root, "rev-parse", "--is-shallow-repository") or "").strip() == "true":
        return {}, "the site was built from a shallow clone, so the added dates are unknown"
    log = _git(papers_dir, "log", "--diff-filter=A", "--reverse", "--format=@%aI", "--name-only",
               "--relative", "--", ".")  # fmt: skip
    if log is None:
        return {}, "the catalog is not in a git repository, so the added dates are unknown"
    added: dict[str, str] = {}
    when = ""
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("@"):
            when = line[1:]
        elif line.endswith(".yaml"):
            added.setdefault(Path(line).stem, when)  # --reverse: the first add comes first
    ids = set(paper_ids)
    added = {k: v for k, v in added.items() if k in ids}
    missing = len(ids - set(added))
    note = (
        f"{missing} paper file{'s are' if missing != 1 else ' is'} not committed yet and {'have' if missing != 1 else 'has'} "
        "no added date (left out of the feed)"
        if missing
        else ""
    )
    return added, note
