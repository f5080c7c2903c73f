"""Maintainer's one-off importer: the merged literature lists -> catalog/papers/<id>.yaml (kept for provenance).

Reads ``papers.json`` and ``survey-companion-list.json`` from a literature folder (by default
``../shared/data/literature`` next to the repository), adds authors and affiliations from the survey's companion
list, suggests facets with the keyword rules of ``tools/track/import_rules.py``, applies the hand-written
entries of ``tools/track/import_overrides.yaml`` (ids, facets and reported numbers of the papers the
project implements), validates every record with ``tools.catalog.schema.Paper`` and writes one YAML file per paper.

Re-running it is safe: ids already in the catalog are kept (matched by arXiv id or normalized title), files are
written atomically and only when their content changes, and nothing is deleted. Tests never run it.

    python -m tools.track.import_literature [--source DIR] [--catalog DIR] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from tools.catalog.schema import Paper
from tools.track import import_rules as rules

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "literature"
OVERRIDES = Path(__file__).with_name("import_overrides.yaml")
STOPWORDS = set(
    "a an the of for in on via with and to by from against at as is are be can do does your you we our its it "
    "towards toward through into when how what why using based not all any more than one this that".split()
)


def ascii_slug_words(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (accents transliterated, every other character a separator)."""
    text = re.sub(r"['\u2019]s\b|['\u2019]", "", text)  # Google's -> Google, don't -> dont
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", plain.lower())


def normalize_title(title: str) -> str:
    """The title as compared for duplicates: lower-case ASCII words joined by single spaces."""
    return " ".join(ascii_slug_words(title))


def surname(author: str) -> str:
    """The slug of an author's family name (the last name word, ignoring Jr./II/III)."""
    words = [
        w for w in author.replace(",", " ").split() if w.lower().strip(".") not in {"jr", "sr", "ii", "iii"}
    ]
    return "".join(ascii_slug_words(words[-1])) if words else ""


def short_name(title: str) -> list[str]:
    """The acronym or short name before a colon (at most 4 words), else 3 significant title words."""
    head, sep, _ = title.partition(":")
    if sep and 1 <= len(head.split()) <= 4:
        words = ascii_slug_words(head)
        return words[1:] if len(words) > 1 and words[0] in {"a", "an", "the"} else words
    return [w for w in ascii_slug_words(title) if w not in STOPWORDS][:3]


def make_id(year: int, authors: list[str], title: str) -> str:
    """``<year>-<first author's surname, or the first significant title word>-<short name>``."""
    who = surname(authors[0]) if authors else ""
    short = short_name(title)
    if not who:
        words = [w for w in ascii_slug_words(title) if w not in STOPWORDS] or ascii_slug_words(title)
        who = words[0]  # the first significant title word
        if short and short[0] == who:
            short = short[1:] or words[1:3]
        elif short and short[0] in STOPWORDS and len(short) > 1 and short[1] == who:
            short = short[2:] or words[1:3]
    return "-".join([str(year), who, *short])


def split_list(text: str, sep: str) -> list[str]:
    """Non-empty stripped parts of ``text``."""
    return [part.strip() for part in (text or "").split(sep) if part.strip()]


def load_companion(path: Path) -> dict[str, dict[str, Any]]:
    """The companion list's distinct papers by arXiv id: authors, affiliations, date, code."""
    out: dict[str, dict[str, Any]] = {}
    for row in json.loads(path.read_text(encoding="utf-8")):
        m = re.search(r"(\d{4}\.\d{4,5})", row["link"])
        key = m.group(1) if m else normalize_title(row["title"])
        entry = out.setdefault(key, {"title": row["title"], "authors": [], "affiliations": []})
        entry["authors"] = entry["authors"] or split_list(row.get("authors", ""), ",")
        entry["affiliations"] = entry["affiliations"] or split_list(row.get("affiliations", ""), " | ")
    return out


def existing_ids(catalog: Path) -> dict[str, str]:
    """Ids already in the catalog, by arXiv id and by normalized title (keeps ids stable across runs)."""
    found: dict[str, str] = {}
    for path in sorted((catalog / "papers").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if data.get("arxiv"):
            found[str(data["arxiv"])] = path.stem
        found[normalize_title(str(data.get("title", "")))] = path.stem
    return found


def facets(rec: dict[str, Any], text: str) -> dict[str, Any]:
    """Facet blocks suggested by the keyword rules for the paper's category and ``also``."""
    cats = {rec["category"], *rec.get("also", [])}
    out: dict[str, Any] = {}
    blocks = [
        ("attack", rules.attack_facets(text)),
        ("defense", rules.defense_facets(text)),
        ("evaluation", rules.evaluation_facets(text, bool(rec.get("code")))),
    ]
    for name, block in blocks:
        block = {k: v for k, v in block.items() if v not in (None, [], {})}
        if name in cats and any(isinstance(v, list) and v for v in block.values()):
            out[name] = block
    return out


def build(
    rec: dict[str, Any], companion: dict[str, Any] | None, override: dict[str, Any] | None
) -> dict[str, Any]:
    """One paper as a plain dict in schema field order (before validation)."""
    override = dict(override or {})
    comp = companion or {}
    authors = rec["authors"] or comp.get("authors", [])
    notes = rec.get("notes") or ""
    text = f"{rec['title']} {notes} {rec.get('scope_flag') or ''}".lower()
    venue = rec.get("venue")
    paper: dict[str, Any] = {
        "id": make_id(rec["year"], authors, rec["title"]),
        "title": rec["title"],
        "authors": authors,
        "affiliations": comp.get("affiliations", []),
        "date": rec.get("date"),
        "venue": None if venue in (None, "arXiv") else venue,
        "arxiv": rec.get("arxiv"),
        "links": {"paper": rec.get("url"), "code": rec.get("code")},
        "category": rec["category"],
        "also": [c for c in rec.get("also") or [] if c != rec["category"]],
    }
    flag = rec.get("scope_flag")
    if flag:
        paper["scope"] = "borderline"
        paper["scope_reason"] = flag.split(":", 1)[1].strip()
    hand = "id" in override  # a hand-written entry: facets come from the overrides file, not from the rules
    order = ["evaluation", "attack", "defense", "survey", "other"]
    also = set(paper["also"]) | set(override.get("also", []))
    paper["also"] = [c for c in order if c in also and c != paper["category"]]
    paper["links"].update(override.get("links", {}))
    for key in ("id", "venue", "date"):
        if key in override:
            paper[key] = override[key]
    if hand:
        paper.update({k: override[k] for k in ("attack", "defense", "evaluation") if k in override})
        paper["models"] = override.get("models", [])
        paper["baseline"] = override.get("baseline", [])
        paper["reported_results"] = expand_results(override)
    else:
        paper.update(facets(paper | {"code": rec.get("code")}, text))
        paper["models"] = rules.model_terms(rec["title"])
        paper["suggested"] = any(k in paper for k in ("attack", "defense", "evaluation"))
    paper["sources"] = list(rec.get("sources") or [])
    paper["notes"] = " ".join(
        filter(None, [f"List labels: {notes}." if notes else None, override.get("notes")])
    )
    return paper


def expand_results(override: dict[str, Any]) -> list[dict[str, Any]]:
    """``results`` rows plus the compact ``results_table`` forms of the overrides file."""
    out = [dict(r) for r in override.get("results", [])]
    table = override.get("results_table")
    if table and "conditions" in table:  # rows: [model, value per condition...]
        for model, *values in table["rows"]:
            for cond, value in zip(table["conditions"], values, strict=True):
                out.append(
                    {
                        "model": model,
                        "dataset": table["dataset"],
                        "metric": table["metric"],
                        "value": value,
                        "condition": cond,
                        "judge": table["judge"],
                        "where": table["where"],
                    }
                )
    elif table:  # rows: [condition, value per metric...]
        for cond, *values in table["rows"]:
            for metric, value in zip(table["metrics"], values, strict=True):
                out.append(
                    {
                        "model": table["model"],
                        "dataset": table["dataset"],
                        "metric": metric,
                        "value": value,
                        "condition": cond,
                        "judge": table["judge"],
                        "where": table["where"],
                    }
                )
    return out


class _Dumper(yaml.SafeDumper):
    """Safe dumper that never writes anchors/aliases (catalog files reject them)."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102 - PyYAML hook
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    """Short lists of plain terms inline (``[a, b]``), everything else as a block list."""
    flow = all(isinstance(x, str) and re.fullmatch(r"[a-z0-9][a-z0-9+\-._]*", x) for x in data) and (
        sum(len(x) + 2 for x in data) <= 90
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump(paper: Paper) -> str:
    """YAML text of a paper: schema field order, empty and default fields left out."""
    data = paper.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    data = {"id": paper.id, **data}  # id has no default, kept first
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False
    )


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` via a temporary file + rename; False when the content is unchanged."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return True


def load_overrides(path: Path = OVERRIDES) -> dict[str, dict[str, Any]]:
    """Hand-written entries keyed by arXiv id or by ``title: <normalized title>``."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {(normalize_title(k[6:]) if k.startswith("title:") else k): v for k, v in raw.items()}


def import_all(source: Path, catalog: Path) -> dict[str, Paper]:
    """Build and validate every paper of the merged list (ids unique); raise ValueError on a problem."""
    records = json.loads((source / "papers.json").read_text(encoding="utf-8"))
    companion = load_companion(source / "survey-companion-list.json")
    overrides = load_overrides()
    known = existing_ids(catalog)
    papers: dict[str, Paper] = {}
    for rec in records:
        keys = [k for k in (rec.get("arxiv"), normalize_title(rec["title"])) if k]
        comp = next((companion[k] for k in keys if k in companion), None)
        override = next((overrides[k] for k in keys if k in overrides), None)
        data = build(rec, comp, override)
        if not (override and "id" in override):
            data["id"] = next((known[k] for k in keys if k in known), None) or unique_id(data, papers)
        if data["id"] in papers:
            raise ValueError(f"duplicate id {data['id']!r} for {rec['title']!r}")
        data = {k: v for k, v in data.items() if v not in (None, "", [], {})}
        papers[data["id"]] = Paper.model_validate(data)
    missing = [
        c["title"]
        for k, c in companion.items()
        if not any(p.arxiv == k or normalize_title(p.title) == k for p in papers.values())
    ]
    if missing:
        raise ValueError(f"companion-list papers missing from papers.json: {missing}")
    return dict(sorted(papers.items()))


def unique_id(data: dict[str, Any], taken: dict[str, Paper]) -> str:
    """The paper's id, lengthened with further title words (then the arXiv id) until it is unused."""
    base = data["id"]
    extra = [w for w in ascii_slug_words(data["title"]) if w not in STOPWORDS and w not in base.split("-")]
    candidate = base
    for word in extra:
        if candidate not in taken:
            return candidate
        candidate = f"{candidate}-{word}"
    if candidate not in taken:
        return candidate
    return f"{base}-{(data.get('arxiv') or 'x').replace('.', '')}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with papers.json")
    ap.add_argument("--catalog", type=Path, default=REPO / "catalog", help="catalog root to write into")
    ap.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    args = ap.parse_args(argv)
    if not (args.source / "papers.json").is_file():
        print(
            f"error: {args.source / 'papers.json'} not found; pass --source <literature folder>",
            file=sys.stderr,
        )
        return 1
    try:
        papers = import_all(args.source, args.catalog)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 1
    texts = {pid: dump(p) for pid, p in papers.items()}
    changed = (
        0
        if args.dry_run
        else sum(write_atomic(args.catalog / "papers" / f"{pid}.yaml", text) for pid, text in texts.items())
    )
    tagged = sum(1 for p in papers.values() if p.attack or p.defense or p.evaluation)
    cats: dict[str, int] = {}
    for p in papers.values():
        cats[p.category] = cats.get(p.category, 0) + 1
    print(
        f"{len(papers)} papers ({', '.join(f'{k} {v}' for k, v in sorted(cats.items()))}); "
        f"{tagged} with at least one facet block; {changed} files written"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
