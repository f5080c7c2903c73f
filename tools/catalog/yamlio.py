"""Safe, line-aware YAML reading for catalog files (which are untrusted input).

``parse_yaml`` composes the node tree with libyaml's C parser when available (``yaml.CSafeLoader``) and then
builds plain Python values itself, so that it can:

* accept only the plain YAML types (mappings, sequences, strings, numbers, booleans, null) and reject every
  other tag -- ``!!python/object/apply:...`` and friends are never constructed, let alone executed;
* reject a key written twice in one mapping (PyYAML silently keeps the last one), naming the second line;
* reject anchors and aliases (``&x`` / ``*x``), which catalog files do not need and which allow
  "billion laughs" expansion;
* keep dates as the strings they were written as (``2023-11-09`` stays a string, like ``2023-11``);
* map a location inside the data (a pydantic ``loc`` tuple) back to a 1-based line number, lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = SafeConstructor()
_T = "tag:yaml.org,2002:"


class YamlProblem(Exception):
    """A file that is not acceptable YAML; ``line`` is 1-based (None when unknown)."""

    def __init__(self, line: int | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint


@dataclass
class YamlDoc:
    """Parsed YAML: the Python ``data`` and the root ``node`` it was built from (None for an empty file)."""

    data: Any
    node: Node | None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The 1-based line of the deepest node that ``loc`` reaches (a mapping key's line for a field)."""
        node = self.node
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, MappingNode):
                for key, value in node.value:
                    if isinstance(key, ScalarNode) and key.value == str(part):
                        line, node = key.start_mark.line + 1, value
                        break
                else:
                    return line
            elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def decode_utf8(raw: bytes) -> str:
    """Decode file bytes as UTF-8 (a BOM is allowed); raise YamlProblem at the line of a bad byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlProblem(
            line,
            f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start})",
            "save the file with UTF-8 encoding",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def parse_yaml(text: str) -> YamlDoc:
    """Parse one YAML document safely (see the module docstring); raise YamlProblem with a line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(p for p in (e.context, e.problem) if p)
        hint = "check the indentation, the colons and the quoting around this line"
        lines = text.splitlines()
        if "single document" in what:
            hint = "a catalog file holds one YAML document; remove the extra '---' line"
        elif line and line <= len(lines) and "\t" in lines[line - 1]:
            hint = "indent with spaces, not tabs"
        raise YamlProblem(line, f"malformed YAML: {what}", hint) from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        raise YamlProblem(
            line,
            f"the file contains the control character {_codepoint(e.character)}",
            "remove it; only printable text is allowed",
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - the reader/parser errors above cover libyaml's errors
        raise YamlProblem(None, f"malformed YAML: {e}", "check the file") from None
    finally:
        loader.dispose()
    if node is None:
        return YamlDoc(None, None)
    try:
        return YamlDoc(_build(node, set()), node)
    except RecursionError:
        raise YamlProblem(_line(node), "the YAML is nested too deeply", "catalog files are shallow") from None


def _codepoint(char: int | str) -> str:
    return f"U+{char if isinstance(char, int) else ord(char):04X}"


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _build(node: Node, seen: set[int]) -> Any:
    """Plain Python value of ``node``; rejects unknown tags, aliases and duplicate keys."""
    tag = node.tag or ""
    if isinstance(node, ScalarNode):
        if tag == _T + "str":
            return node.value
        if tag == _T + "null":
            return None
        if tag == _T + "bool":
            return _SCALARS.construct_yaml_bool(node)
        if tag == _T + "int":
            return _SCALARS.construct_yaml_int(node)
        if tag == _T + "float":
            return _SCALARS.construct_yaml_float(node)
        if tag == _T + "timestamp":
            return node.value
        _bad_tag(node)
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        if tag != _T + "seq":
            _bad_tag(node)
        return [_build(_unique(item, seen, _line(node)), seen) for item in node.value]
    if isinstance(node, MappingNode):
        if tag != _T + "map":
            _bad_tag(node)
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _T + "merge":
                raise YamlProblem(
                    _line(key_node),
                    "keys must be plain names (no complex keys, no '<<' merge keys)",
                    "write each field as 'name: value'",
                )
            key = _build(key_node, seen)
            if not isinstance(key, str):
                raise YamlProblem(
                    _line(key_node),
                    f"key {key_node.value!r} is not a name",
                    "field names are words such as 'title'; quote the key if it really is text",
                )
            if key in out:
                raise YamlProblem(
                    _line(key_node),
                    f"duplicate key {key!r} (first written at line {first_line[key]})",
                    "keep only one of them",
                )
            first_line[key] = _line(key_node)
            out[key] = _build(_unique(value_node, seen, _line(key_node)), seen)
        return out
    _bad_tag(node)  # pragma: no cover - the composer only makes the three node kinds


def _unique(node: Node, seen: set[int], line: int) -> Node:
    """``node`` unless it was already built: then it is an alias (``*name``), which is not allowed."""
    if id(node) in seen:
        raise YamlProblem(
            line,
            "anchors and aliases (&name / *name) are not allowed in catalog files",
            "write the value out in full",
        )
    return node


def _bad_tag(node: Node) -> None:
    raise YamlProblem(
        _line(node),
        f"YAML tag {node.tag!r} is not allowed (catalog files are loaded as plain data only)",
        "remove the tag; use plain strings, numbers, lists and mappings",
    )
