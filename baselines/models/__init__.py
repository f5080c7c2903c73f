"""Models (auto-discovered: each public module registers one component)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


class SharedModels:
    """Models loaded once and handed out again, keyed by back-end + Params values (see :func:`shared_models`)."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], Any] = {}
        self.loads = 0  # models built while this cache was active

    def retain(self, keys: set[tuple[str, str]]) -> None:
        """Drop every model whose key is not in ``keys`` (no later run needs it: free its memory)."""
        for key in [k for k in self.models if k not in keys]:
            del self.models[key]


_SHARED: ContextVar[SharedModels | None] = ContextVar("shared_models", default=None)


@contextmanager
def shared_models() -> Iterator[SharedModels]:
    """Within the block, :func:`load_model` returns the model it already built for the same spec and Params
    (several runs in one process load their model once) instead of building another."""
    token = _SHARED.set(SharedModels())
    try:
        yield _SHARED.get()
    finally:
        _SHARED.reset(token)


def resolve(spec: str, *, base_url: str | None = None, params: dict[str, Any] | None = None):
    """(back-end name, Params values) of a model spec with ``base_url`` and extra ``params`` applied."""
    name, values = parse_spec(spec)
    if base_url is not None:
        if name != "openai":
            raise _spec_error(spec, "--base-url applies only to openai:<model> back-ends")
        values["base_url"] = base_url
    values.update(params or {})
    return name, values


def model_key(spec: str, *, base_url: str | None = None, params: dict[str, Any] | None = None):
    """What identifies a loaded model in :func:`shared_models`: back-end name and canonical Params JSON."""
    name, values = resolve(spec, base_url=base_url, params=params)
    return name, json.dumps(values, sort_keys=True, default=str)


def load_model(spec: str, *, base_url: str | None = None, params: dict[str, Any] | None = None):
    """Build the Model named by ``spec`` (``organism``, ``hf:<id or path>[@rev]``, ``openai:<model>``).

    ``base_url`` applies to ``openai:`` only; ``params`` are extra Params values of the back-end
    (e.g. ``{"dtype": "bfloat16", "batch_size": 16}``) and win over what the spec string says. Inside
    :func:`shared_models`, a model already built with the same spec and Params is returned instead.
    """
    name, values = resolve(spec, base_url=base_url, params=params)
    shared = _SHARED.get()
    key = (name, json.dumps(values, sort_keys=True, default=str))
    if shared is not None and key in shared.models:
        return shared.models[key]
    model = get("model", name)(values)
    if shared is not None:
        shared.models[key] = model
        shared.loads += 1
    return model
