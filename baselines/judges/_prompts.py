"""Byte-exact judge prompt templates (``data/prompts/<name>.txt``) and their provenance sidecars.

Each template has a sidecar ``<name>.source.yaml`` with ``source``, ``sha256`` and ``placeholders``; loading
checks the hash, so an accidental edit (an editor stripping a trailing space) is caught. Placeholders are
``{name}`` and are filled in one pass, so a response containing ``{goal}`` or braces is inserted literally.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROMPT_DIR = Path(__file__).parent / "data" / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    """A verbatim template with named ``{placeholders}`` and where it comes from."""

    name: str
    text: str
    source: str
    placeholders: tuple[str, ...]
    sha256: str

    def render(self, **values: str) -> str:
        """Fill every placeholder (all required, no extras) in a single pass."""
        missing = set(self.placeholders) - set(values)
        extra = set(values) - set(self.placeholders)
        if missing or extra:
            raise ValueError(
                f"prompt {self.name!r} takes {sorted(self.placeholders)}; missing {sorted(missing)}, "
                f"unexpected {sorted(extra)}"
            )
        pattern = re.compile("|".join(re.escape("{" + p + "}") for p in self.placeholders))
        return pattern.sub(lambda m: values[m.group(0)[1:-1]], self.text)


@functools.cache
def load_prompt(name: str) -> PromptTemplate:
    """Load ``data/prompts/<name>.txt``, verifying it against the sha256 in its sidecar."""
    path = PROMPT_DIR / f"{name}.txt"
    side_path = PROMPT_DIR / f"{name}.source.yaml"
    if not path.is_file() or not side_path.is_file():
        valid = sorted(p.name[: -len(".source.yaml")] for p in PROMPT_DIR.glob("*.source.yaml"))
        raise ValueError(f"unknown judge prompt {name!r}; available: {', '.join(valid)}")
    data = path.read_bytes()
    side = yaml.safe_load(side_path.read_text(encoding="utf-8"))
    digest = hashlib.sha256(data).hexdigest()
    if digest != side["sha256"]:
        raise ValueError(
            f"{path} was modified (sha256 {digest[:12]}..., expected {side['sha256'][:12]}...): "
            "prompts must stay byte-identical to their source; restore the file from git"
        )
    return PromptTemplate(
        name=name,
        text=data.decode("utf-8"),
        source=side["source"],
        placeholders=tuple(side["placeholders"]),
        sha256=digest,
    )


def generate_all(model: Any, queries: list[Any], config: Any, who: str) -> list[Any]:
    """One batched ``generate`` call of a judge's model: a back-end failure or a wrong number of answers
    turns every answer into an error Response (so the samples are unjudged), never a fallback."""
    from baselines.types import Response

    try:
        answers = model.generate(queries, config)
        if len(answers) != len(queries):
            raise RuntimeError(f"{who} returned {len(answers)} answers for {len(queries)} prompts")
    except Exception as e:  # noqa: BLE001 - a back-end failure makes the batch unjudged, never a fallback
        err = f"{who} error: {type(e).__name__}: {str(e)[:300]}"
        answers = [Response(q.id, "", error=err) for q in queries]
    return answers
