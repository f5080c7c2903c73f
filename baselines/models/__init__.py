"""Models (auto-discovered: each public module registers one component)."""

from __future__ import annotations

from typing import Any

from baselines.registry import UnknownComponentError, get

MODEL_SPEC_FORMS = (
    "organism (the offline default)",
    "hf:<repo id or local path>[@revision]",
    "openai:<model> (with --base-url for a non-OpenAI endpoint)",
)


class ModelSpecError(UnknownComponentError):
    """A model spec string that names no back-end; the message lists the valid forms."""


def _spec_error(spec: str, why: str) -> ModelSpecError:
    return ModelSpecError(f"bad model spec {spec!r}: {why}. Valid forms: {'; '.join(MODEL_SPEC_FORMS)}")


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a model spec into (back-end name, Params values), without loading anything."""
    spec = spec.strip()
    if spec == "organism":
        return "organism", {}
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in ("hf", "openai"):
        raise _spec_error(spec, "unknown back-end" if sep else "no back-end prefix")
    if not rest:
        raise _spec_error(spec, f"nothing after '{prefix}:'")
    if prefix == "openai":
        return "openai", {"model": rest}
    # hf: the revision follows the last '@' unless that '@' is part of a path (a '/' after it).
    head, at, rev = rest.rpartition("@")
    if at and head and rev and "/" not in rev:
        return "hf", {"id": head, "revision": rev}
    return "hf", {"id": rest}


def load_model(spec: str, *, base_url: str | None = None, params: dict[str, Any] | None = None):
    """Build the Model named by ``spec`` (``organism``, ``hf:<id or path>[@rev]``, ``openai:<model>``).

    ``base_url`` applies to ``openai:`` only; ``params`` are extra Params values of the back-end
    (e.g. ``{"dtype": "bfloat16", "batch_size": 16}``) and win over what the spec string says.
    """
    name, values = parse_spec(spec)
    if base_url is not None:
        if name != "openai":
            raise _spec_error(spec, "--base-url applies only to openai:<model> back-ends")
        values["base_url"] = base_url
    values.update(params or {})
    return get("model", name)(values)
