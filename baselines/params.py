"""Parameters of components and run configurations: one strict base class and its validation helpers.

Every component declares ``class Params(StrictParams)`` next to its code, with the paper's defaults and a
one-line doc per field (``Field(description=...)``). ``StrictParams`` rejects unknown fields, so a typo in
``--set`` is an error, never a silently ignored value.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictParams(BaseModel):
    """Base class of every Params and config model: unknown fields are an error (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")


class NoParams(StrictParams):
    """Params of a component that takes none."""


class ParamsError(ValueError):
    """A bad parameter override; the message names the valid fields and their types."""


def describe_params(params_cls: type[BaseModel]) -> list[dict[str, Any]]:
    """Each field of a Params class as {name, type, default, doc} (for help texts and the site)."""
    out = []
    for fname, f in params_cls.model_fields.items():
        ann = f.annotation
        tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        default = None if f.is_required() else f.get_default(call_default_factory=True)
        out.append({"name": fname, "type": tname, "default": default, "doc": f.description or ""})
    return out


def build_params(params_cls: type[BaseModel], values: dict[str, Any], owner: str) -> BaseModel:
    """Validate ``values`` against ``params_cls``; on error raise ParamsError naming fields and types."""
    try:
        return params_cls.model_validate(values)
    except ValidationError as e:
        fields = ", ".join(
            f"{d['name']} ({d['type']}, default {d['default']!r})" for d in describe_params(params_cls)
        )
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '?'}: {err['msg']}" for err in e.errors()
        )
        raise ParamsError(
            f"bad parameters for {owner}: {problems}. Valid fields: {fields or '(none)'}"
        ) from None
