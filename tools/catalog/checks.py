"""The checks behind ``mllm-safety catalog check``: per-file validation plus cross-file rules.

Used through :func:`tools.catalog.store.check_catalog` / :func:`tools.catalog.store.load_catalog`. Each paper file is
read, parsed (``tools.catalog.yamlio``), validated (``tools.catalog.schema``) and checked against the vocabularies and the
baseline registry right away, so that the node trees (needed only for line numbers) can be dropped; the
cross-file rules (unique ids, arXiv ids and titles) run at the end on a few recorded values.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tools.catalog.errors import validation_issues
from tools.catalog.model import NOT_VOCABULARIES, Catalog, CatalogIssue
from tools.catalog.schema import VOCAB_FIELDS, Paper, Result, Vocabulary
from tools.catalog.yamlio import YamlDoc, YamlProblem, decode_utf8, parse_yaml


@dataclass
class Scan:
    """What one pass over the catalog found: the loaded objects, the issues and file counts."""

    catalog: Catalog
    issues: list[CatalogIssue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def suggest(value: str, choices: Any, what: str = "") -> str | None:
    """A hint naming the closest valid choices (difflib), or None when nothing is close."""
    close = difflib.get_close_matches(value, sorted(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return f"did you mean {', '.join(repr(c) for c in close)}?{what}"


def registry_names() -> tuple[set[str] | None, str | None]:
    """Registered attack, defense and judge names, or (None, why) when they cannot be known.

    An empty registry (nothing implemented yet) gives (None, None): the check is then skipped.
    """
    try:
        from baselines import registry

        names: set[str] = set()
        for kind in ("attack", "defense", "judge", "dataset"):  # dataset: results of `mllm-safety eval`
            names.update(registry.names(kind))
    except Exception as e:  # a broken baseline module must not hide the catalog's own errors
        return None, f"could not load the baseline registry ({type(e).__name__}: {e})"
    return (names or None), None


def normalize_title(title: str) -> str:
    """Title key for duplicate detection: ASCII-folded, lowercase, letters and digits only."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", " ", folded).strip()


def read_doc(path: Path) -> YamlDoc | CatalogIssue:
    """Read and safely parse one file, or the issue that prevents it."""
    try:
        return parse_yaml(decode_utf8(path.read_bytes()))
    except YamlProblem as p:
        return CatalogIssue(path, p.line, p.message, p.hint)
    except OSError as e:
        return CatalogIssue(path, None, f"cannot read the file ({e.strerror})", "check its permissions")


def validate(model: type[BaseModel], path: Path, what: str) -> tuple[Any, YamlDoc | None, list[CatalogIssue]]:
    """Read ``path`` and validate it as ``model``; returns (object or None, parsed doc, issues)."""
    doc = read_doc(path)
    if isinstance(doc, CatalogIssue):
        return None, None, [doc]
    if doc.data is None:
        return None, doc, [CatalogIssue(path, 1, "the file is empty", f"write {what} as a YAML mapping")]
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else f"a single {type(doc.data).__name__} value"
        hint = f"write {what} as a mapping of fields ('title: ...'), not as list items ('- ...')"
        return None, doc, [CatalogIssue(path, doc.line_of(()), f"the file is {kind}, not a mapping", hint)]
    try:
        return model.model_validate(doc.data), doc, []
    except ValidationError as e:
        return None, doc, validation_issues(e, doc, path, model)


def _yaml_files(folder: Path, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    found = folder.rglob("*.yaml") if recursive else folder.glob("*.yaml")
    return sorted(p for p in found if not p.name.startswith(".") and p.is_file())


def _term_values(obj: Any, parts: list[str], loc: tuple) -> Iterator[tuple[tuple, str]]:
    """(loc, value) of every value at the dotted field path ``parts`` (lists are walked)."""
    if obj is None:
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _term_values(item, parts, (*loc, i))
        return
    if not parts:
        yield loc, obj
        return
    yield from _term_values(getattr(obj, parts[0], None), parts[1:], (*loc, parts[0]))


def provenance_issues(path: Path, paper: Paper, doc: YamlDoc) -> list[CatalogIssue]:
    """Every author list comes from a named source, or the paper says explicitly that they are unknown."""
    issues = []
    if not paper.authors and paper.authors_status != "unknown":
        issues.append(
            CatalogIssue(
                path,
                doc.line_of(("authors",)) or doc.line_of(("title",)),
                "the paper lists no authors",
                "add them with their source in field_sources.authors, or write 'authors_status: unknown' "
                "when no source gives them",
            )
        )
    if paper.authors and not paper.field_sources.authors:
        issues.append(
            CatalogIssue(
                path,
                doc.line_of(("authors",)),
                "the authors have no source",
                "name it in field_sources.authors, e.g. 'paper', 'arxiv-api' or 'list:<owner>/<repo>' "
                "(docs/schema.md lists the kinds)",
            )
        )
    return issues


class _Checker:
    """State of one scan: vocabularies, registry names and the values the cross-file rules need."""

    def __init__(self, root: Path, full: bool, names: set[str] | None) -> None:
        self.root, self.full, self.names = root, full, names
        self.scan = Scan(Catalog(root))
        self.terms: dict[str, set[str]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.missing_vocab: set[str] = set()
        self.ids: dict[str, Path] = {}
        self.arxiv: dict[str, Path] = {}
        self.titles: dict[str, Path] = {}
        self.field_paths = {f: f.split(".") for f in VOCAB_FIELDS}

    def add(self, issue: CatalogIssue) -> None:
        self.scan.issues.append(issue)

    def vocabularies(self) -> None:
        files = [p for p in _yaml_files(self.root / "vocab") if p.stem not in NOT_VOCABULARIES]
        self.scan.counts["vocabularies"] = len(files)
        for path in files:
            vocab, doc, issues = validate(Vocabulary, path, "the vocabulary")
            self.scan.issues.extend(issues)
            if vocab is None:
                continue
            seen: dict[str, int] = {}
            for i, term in enumerate(vocab.terms):
                if term.id in seen:
                    self.add(
                        CatalogIssue(
                            path,
                            doc.line_of(("terms", i, "id")),
                            f"term id {term.id!r} appears twice (also term #{seen[term.id] + 1})",
                            "merge the two terms or rename one",
                        )
                    )
                seen.setdefault(term.id, i)
            for i, term in enumerate(vocab.terms):
                if term.parent and term.parent not in seen:
                    self.add(
                        CatalogIssue(
                            path,
                            doc.line_of(("terms", i, "parent")),
                            f"parent {term.parent!r} of term {term.id!r} is not a term of this vocabulary",
                            suggest(term.parent, seen) or "use the id of another term in this file",
                        )
                    )
            self.scan.catalog.vocab[path.stem] = vocab
            self.terms[path.stem] = set(seen)
            self.aliases[path.stem] = {a.lower(): t.id for t in vocab.terms for a in (t.aliases or [])}

    def papers(self) -> None:
        folder = self.root / "papers"
        for path in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
            self.add(CatalogIssue(path, None, "paper files end in .yaml", f"rename it to {path.stem}.yaml"))
        files = _yaml_files(folder)
        self.scan.counts["papers"] = len(files)
        for path in files:
            paper, doc, issues = validate(Paper, path, "the paper")
            self.scan.issues.extend(issues)
            if paper is None:
                continue
            if self.full:
                self.paper_rules(path, paper, doc)
            self.scan.catalog.papers[paper.id] = paper
        self.scan.catalog.papers = dict(sorted(self.scan.catalog.papers.items()))

    def paper_rules(self, path: Path, paper: Paper, doc: YamlDoc) -> None:
        """Rules of one valid paper that need the vocabularies, the registry or the other papers."""
        if paper.id != path.stem:
            hint = f"rename the file to {paper.id}.yaml or set id: {path.stem}"
            self.add(
                CatalogIssue(path, doc.line_of(("id",)), f"id {paper.id!r} differs from the file name", hint)
            )
        for key, seen, value in (
            ("id", self.ids, paper.id),
            ("arXiv id", self.arxiv, paper.arxiv),
            ("title", self.titles, normalize_title(paper.title)),
        ):
            if not value:
                continue
            if value in seen:
                loc = {"id": ("id",), "arXiv id": ("arxiv",), "title": ("title",)}[key]
                self.add(
                    CatalogIssue(
                        path,
                        doc.line_of(loc),
                        f"duplicate {key}: {seen[value].name} has the same {key}",
                        "the catalog has one file per paper; merge the two files",
                    )
                )
            else:
                seen[value] = path
        for issue in provenance_issues(path, paper, doc):
            self.add(issue)
        for fld, vocab_name in VOCAB_FIELDS.items():
            for loc, value in _term_values(paper, self.field_paths[fld], ()):
                self.term_rule(path, doc, fld, vocab_name, loc, value)
        if self.names is not None:
            for i, name in enumerate(paper.baseline):
                if name not in self.names:
                    hint = suggest(name, self.names, "") or "use a registry name from `mllm-safety list`"
                    msg = f"baseline {name!r} is not a registered attack, defense or judge"
                    self.add(CatalogIssue(path, doc.line_of(("baseline", i)), msg, hint))

    def term_rule(self, path: Path, doc: YamlDoc, fld: str, vocab_name: str, loc: tuple, value: str) -> None:
        """One term-valued field: the term must exist in its vocabulary."""
        terms = self.terms.get(vocab_name)
        if terms is None:
            if vocab_name not in self.missing_vocab and vocab_name not in self.scan.catalog.vocab:
                self.missing_vocab.add(vocab_name)
                vpath = self.root / "vocab" / f"{vocab_name}.yaml"
                self.add(
                    CatalogIssue(
                        vpath,
                        None,
                        f"vocabulary {vocab_name!r} is missing or invalid, but {path.name} uses {fld}",
                        "create it with name, description and terms (see docs/schema.md)",
                    )
                )
            return
        if value in terms:
            return
        vfile = f"catalog/vocab/{vocab_name}.yaml"
        alias = self.aliases[vocab_name].get(str(value).lower())
        if alias:
            hint = f"{value!r} is an alias; write the term id {alias!r}"
        else:
            close = suggest(str(value), terms)
            hint = (
                f"{close} valid terms are listed in {vfile}"
                if close
                else f"use a term id from {vfile}, or add the term there"
            )
        msg = f"unknown {fld} term {value!r}"
        self.add(CatalogIssue(path, doc.line_of(loc), msg, hint))

    def results(self) -> None:
        files = _yaml_files(self.root / "results", recursive=True)
        self.scan.counts["results"] = len(files)
        for path in files:
            result, doc, issues = validate(Result, path, "the result")
            self.scan.issues.extend(issues)
            if result is None:
                continue
            if self.full:
                folder = path.parent.name
                if folder != result.baseline:
                    msg = f"result of baseline {result.baseline!r} is in the folder {folder!r}"
                    hint = "results are written only by `mllm-safety run`; rerun or move the file"
                    self.add(CatalogIssue(path, doc.line_of(("baseline",)), msg, hint))
                if self.names is not None and result.baseline not in self.names:
                    msg = f"baseline {result.baseline!r} is not a registered attack, defense or judge"
                    self.add(
                        CatalogIssue(
                            path, doc.line_of(("baseline",)), msg, suggest(result.baseline, self.names)
                        )
                    )
                if result.paper_id and result.paper_id not in self.scan.catalog.papers:
                    msg = f"paper_id {result.paper_id!r} is not a paper of the catalog"
                    hint = suggest(result.paper_id, self.scan.catalog.papers) or "add the paper or fix the id"
                    self.add(CatalogIssue(path, doc.line_of(("paper_id",)), msg, hint))
            self.scan.catalog.results.append(result)
            self.scan.catalog.result_paths[result.run_id] = path


def scan(
    root: Path, *, full: bool = True, registry_names_: set[str] | None = None, check_registry: bool = True
) -> Scan:
    """Read every catalog file under ``root``; with ``full`` also run the cross-file rules.

    ``check_registry=False`` skips the baseline-name rule (for exports, whose content does not depend on
    which baselines are implemented).
    """
    names = registry_names_ if check_registry else None
    warning = None
    if full and check_registry and names is None:
        names, warning = registry_names()
    checker = _Checker(root, full, names)
    if warning:
        checker.add(
            CatalogIssue(Path("baselines"), None, warning, "baseline names were not checked", "warning")
        )
    checker.vocabularies()
    checker.papers()
    checker.results()
    from tools.catalog.judges_schema import check_validations  # catalog/judges/ (judge validations)

    check_validations(checker)
    return checker.scan
