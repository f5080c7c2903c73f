"""Exports of the catalog (BibTeX, CSV, JSON) and the editor-facing JSON Schema of a paper file."""

from __future__ import annotations

import csv
import io
import json
import typing
from typing import Any

from pydantic import BaseModel

from tools.catalog.bibtex import catalog_bibtex
from tools.catalog.schema import VOCAB_FIELDS, Paper, Vocabulary

LIST_SEPARATOR = "; "
_FORMULA_START = ("=", "+", "@", "\t", "\r")


def to_bibtex(papers: list[Paper]) -> str:
    """One BibTeX entry per paper (see :mod:`tools.catalog.bibtex`)."""
    return catalog_bibtex(papers)


def to_json(papers: list[Paper]) -> str:
    """A JSON list of the papers as the schema dumps them (every field); reloads to equal Paper objects."""
    return json.dumps([p.model_dump(mode="json") for p in papers], indent=2, ensure_ascii=False) + "\n"


def from_json(text: str) -> list[Paper]:
    """The papers of a :func:`to_json` export."""
    return [Paper.model_validate(item) for item in json.loads(text)]


def _is_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def csv_columns() -> list[str]:
    """Column names: top-level fields, nested facets as ``attack.techniques`` and so on."""
    cols: list[str] = []
    for name, info in Paper.model_fields.items():
        sub = _is_model(info.annotation)
        if sub is not None and typing.get_origin(info.annotation) is not list:
            cols.extend(f"{name}.{child}" for child in sub.model_fields)
        else:
            cols.append(name)
    return cols


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = LIST_SEPARATOR.join(_cell(v) for v in value)
    elif isinstance(value, dict):  # a reported result: model / dataset / metric = value
        text = f"{value.get('model')}/{value.get('dataset')}/{value.get('metric')}={value.get('value')}"
        if value.get("condition"):
            text += f" ({value['condition']})"
    else:
        text = str(value)
    return text


def to_csv(papers: list[Paper]) -> str:
    """One row per paper; lists joined with ``"; "``.

    Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``@``) get a leading ``'``.
    """
    cols = csv_columns()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for paper in papers:
        data = paper.model_dump(mode="json")
        row = []
        for col in cols:
            head, _, child = col.partition(".")
            value = data.get(head)
            if child:
                value = value.get(child) if isinstance(value, dict) else None
            cell = _cell(value)
            row.append("'" + cell if cell.startswith(_FORMULA_START) else cell)
        writer.writerow(row)
    return buf.getvalue()


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and pick the non-null branch of an Optional (``anyOf``)."""
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) != 1:
                return node
            node = branches[0]
        else:
            return node


def paper_json_schema(vocab: dict[str, Vocabulary] | None = None) -> dict[str, Any]:
    """JSON Schema of a paper file, with each term-valued field's vocabulary injected as an ``enum``.

    Editors use it for completion and inline checks (see docs/schema.md). Fields whose vocabulary is
    missing keep their plain pattern.
    """
    schema = Paper.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "MLLM Safety Atlas paper (catalog/papers/<id>.yaml)"
    defs = schema.get("$defs", {})
    for field_path, vocab_name in VOCAB_FIELDS.items():
        terms = (vocab or {}).get(vocab_name)
        if terms is None:
            continue
        node: dict[str, Any] = schema
        for part in field_path.split("."):
            node = _deref(node, defs)
            if node.get("type") == "array":
                node = _deref(node["items"], defs)
            node = node.get("properties", {}).get(part)
            if node is None:
                break
        if node is None:
            continue
        leaf = _deref(node, defs)
        if leaf.get("type") == "array":
            leaf = _deref(leaf["items"], defs)
        by_id = {t.id: t for t in terms.terms}
        if "enum" not in leaf:  # a Literal in the schema already fixes its values: keep them
            leaf["enum"] = list(by_id)
        leaf["markdownEnumDescriptions"] = [
            f"**{by_id[v].name}**: {by_id[v].definition}" if v in by_id else str(v) for v in leaf["enum"]
        ]
    return schema
