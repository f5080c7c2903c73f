"""The small frozen value types that flow through a run: Sample -> Response -> Verdict.

These are the only objects that cross component boundaries (datasets, attacks, defenses, models,
judges, harness). They are deliberately plain: no torch, no YAML, no I/O.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image


def _frozen_meta(meta: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(meta or {}))


def image_sha256(image: Image) -> str:
    """A stable content hash of a PIL image (mode, size and raw pixels), used in per-sample records."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def image_png_bytes(image: Image) -> bytes:
    """The image encoded as PNG (lossless), e.g. for base64 data URLs."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True, eq=False)
class Sample:
    """One request to a model: a user turn with text and zero or more images.

    - ``id``: stable within a dataset; an attack keeps it, so the harness can pair conditions.
    - ``text``: the user text actually sent to the model (an attack may rewrite it).
    - ``goal``: the underlying request in plain words (e.g. the harmful behaviour). Attacks never change
      it; judges use it as "the behaviour" the response is judged against.
    - ``images``: PIL images, in the order they appear in the user turn.
    - ``category``: harm category / scenario (e.g. "01-Illegal_Activitiy"), used for per-category tables.
    - ``label``: "harmful" (refusal expected) or "benign" (an answer expected; over-refusal control).
    - ``system``: an optional system prompt (defenses may set it).
    - ``meta``: free-form, JSON-serialisable extras (source fields, attack details).
    """

    id: str
    text: str
    goal: str = ""
    images: tuple[Image, ...] = ()
    category: str = "uncategorized"
    label: str = "harmful"
    system: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "meta", _frozen_meta(self.meta))
        if not self.goal:
            object.__setattr__(self, "goal", self.text)
        if self.label not in ("harmful", "benign"):
            raise ValueError(f"Sample {self.id!r}: label must be 'harmful' or 'benign', got {self.label!r}")

    def with_(self, **changes: Any) -> Sample:
        """A copy with some fields replaced (``meta`` changes are merged into the existing meta)."""
        if "meta" in changes:
            changes["meta"] = {**self.meta, **dict(changes["meta"])}
        return replace(self, **changes)

    def image_hashes(self) -> list[str]:
        """SHA-256 of every image, in order."""
        return [image_sha256(im) for im in self.images]


@dataclass(frozen=True)
class GenerationConfig:
    """How a model should generate. Greedy (temperature 0) by default, as most papers report."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic (temperature 0)."""
        return self.temperature <= 0.0


@dataclass(frozen=True)
class Response:
    """A model's answer to one Sample. ``error`` is set (and ``text`` empty) when generation failed.

    ``latency_s``: seconds the back-end spent on this answer (a batch's time shared out among its answers).
    The run summary prints it per condition (``mllm-safety run``); it is never written to samples.jsonl or a
    Result, which stay the same from one run to the next."""

    sample_id: str
    text: str
    latency_s: float = 0.0
    n_output_tokens: int | None = None
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", _frozen_meta(self.meta))


@dataclass(frozen=True)
class Verdict:
    """One judge's decision about one (Sample, Response).

    - ``success``: True when the response counts as a successful attack (compliant / unsafe) by this judge,
      False when it does not, None when the judge could not decide (then ``error`` says why). A judge never
      silently falls back to another method: an error is an unjudged sample.
    - ``refused``: True/False when the judge can tell whether the model refused (refusal-string judges),
      else None.
    - ``score``: an optional numeric score (e.g. a 1-10 rating or a probability).
    - ``reason``: a short machine-readable note (matched prefix, category code); never a full judge output.
    """

    judge: str
    success: bool | None
    refused: bool | None = None
    score: float | None = None
    reason: str | None = None
    error: str | None = None

    @property
    def judged(self) -> bool:
        """Whether the judge reached a decision."""
        return self.success is not None
