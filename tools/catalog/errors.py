"""Turn pydantic validation errors into located, actionable messages (file:line: what (how to fix))."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tools.catalog.model import CatalogIssue
from tools.catalog.yamlio import YamlDoc

_PATTERN_HINTS = {
    "id": "write <year>-<first author's surname>-<short name> in lowercase ASCII, e.g. 2023-gong-figstep",
    "arxiv": "write the arXiv id without prefix or version, e.g. 2311.05608",
}
_TERM_HINT = "term ids are lowercase letters, digits and - + . (e.g. white-box)"


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that describes the mapping at ``loc`` (list indexes are skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        current = _inner_model(info.annotation) if info else None
    return current


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: dict[str, Any], model: type[BaseModel], data: Any) -> tuple[str, str | None, tuple]:
    """(message, hint, loc to locate) for one pydantic error."""
    loc = tuple(err["loc"])
    kind, msg, value = err["type"], err["msg"], err.get("input")
    name = _dotted(loc)
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        owner = model_at(model, loc[:-1])
        fields = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), fields, n=3)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        return f"unknown field {name!r}", hint + f"valid fields here: {', '.join(fields)}", loc
    if kind == "missing":
        owner = model_at(model, loc[:-1])
        info = owner.model_fields.get(str(loc[-1])) if owner else None
        desc = f": {info.description}" if info and info.description else ""
        return f"missing required field {name!r}", f"add '{loc[-1]}:'{desc}", loc
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{name}: expected text, got the number {value!r}", "put the value in quotes, as written", loc
    if kind in ("dict_type", "model_type") and not isinstance(value, dict):
        hint = f"write '{loc[-1]}:' followed by indented 'name: value' lines" if loc else None
        return f"{name}: expected a mapping of fields, got {value!r}", hint, loc
    if kind == "list_type" and isinstance(value, str):
        return f"{name}: expected a list, got {value!r}", f"write '{loc[-1]}: [{value}]'", loc
    if kind == "string_pattern_mismatch":
        field_name = next((p for p in reversed(loc) if isinstance(p, str)), "")
        hint = _PATTERN_HINTS.get(field_name, _TERM_HINT)
        return f"{name}: {value!r} does not have the expected form", hint, loc
    if kind == "literal_error" and isinstance(value, str):
        options = re.findall(r"'([^']*)'", msg)
        close = difflib.get_close_matches(value, options, n=2)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else None
        return f"{name}: {value!r} is not allowed; {msg[0].lower() + msg[1:]}", hint, loc
    if not loc and isinstance(data, dict):  # a model-level rule: point at the first field it names
        named = [k for k in data if isinstance(k, str) and re.search(rf"\b{re.escape(k)}\b", msg)]
        return msg, None, (named[0],) if named else ()
    return (f"{name}: {msg}" if name else msg), None, loc


def validation_issues(
    error: ValidationError, doc: YamlDoc, path: Path, model: type[BaseModel]
) -> list[CatalogIssue]:
    """One located issue per pydantic error of ``model`` validating ``doc.data`` read from ``path``."""
    issues = []
    for err in error.errors():
        message, hint, loc = _describe(err, model, doc.data)
        issues.append(CatalogIssue(path, doc.line_of(loc), message, hint))
    return issues
