"""Shared plumbing of the defenses: a Model that wraps another Model, and small helpers.

Every defense's ``wrap(model)`` returns a subclass of :class:`WrappedModel`. The wrapper delegates
``generate`` (through the defense's own logic), ``info`` (the inner model's info plus the defense chain),
``white_box`` and ``accepts_images`` to the inner model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from baselines.base import Defense, Model
from baselines.types import GenerationConfig, Response, Sample

DATA_DIR = Path(__file__).parent / "data"


def read_data(name: str) -> str:
    """The verbatim text of ``baselines/defenses/data/<name>`` (exact bytes, decoded as UTF-8).

    Data files hold only the quoted text; their source is named in ``data/SOURCES.md``.
    """
    return (DATA_DIR / name).read_bytes().decode("utf-8")


class WrappedModel(Model):
    """A Model that applies a defense around ``inner``; subclasses implement ``generate``."""

    def __init__(self, inner: Model, defense: Defense) -> None:
        # Not a registered component: the params are the defense's (already validated) params.
        self.inner = inner
        self.defense = defense
        self.params = defense.params
        self.name = inner.name  # type: ignore[misc]  # the back-end name stays the inner one's
        self.accepts_images = inner.accepts_images  # type: ignore[misc]

    def info(self) -> dict[str, Any]:
        """The inner model's info, plus ``defenses``: the chain of defenses around it (innermost first)."""
        info = dict(self.inner.info())
        chain = list(info.get("defenses", []))
        chain.append({"name": self.defense.name, "params": self.defense.params.model_dump(mode="json")})
        info["defenses"] = chain
        info["inner"] = self.inner.info()
        return info

    @property
    def white_box(self):  # noqa: ANN201 - WhiteBox | None, as in Model
        """The inner model's gradient access (attacks optimise against the undefended model)."""
        return self.inner.white_box

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Default: pass through to the inner model (subclasses override)."""
        return self.inner.generate(samples, config)


def with_meta(response: Response, key: str, value: Any, **changes: Any) -> Response:
    """A copy of ``response`` with ``meta[key] = value`` added and other fields replaced."""
    return replace(response, meta={**response.meta, key: value}, **changes)


def refusal_response(sample: Sample, text: str, key: str, meta: dict[str, Any]) -> Response:
    """The fixed answer a detection defense returns instead of querying the model."""
    return Response(sample_id=sample.id, text=text, latency_s=0.0, n_output_tokens=None, meta={key: meta})


def query_config(config: GenerationConfig, max_new_tokens: int | None) -> GenerationConfig:
    """``config`` with ``max_new_tokens`` replaced when the defense fixes it (None keeps the run's value)."""
    return config if max_new_tokens is None else replace(config, max_new_tokens=max_new_tokens)
