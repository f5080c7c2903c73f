"""A safety system prompt: the generic prompt-level baseline (no catalogued paper).

The default text is Llama 2's ``DEFAULT_SYSTEM_PROMPT`` from Meta's reference code (``llama/generation.py``,
July 2023; see ``data/SOURCES.md``), the best-known safety system prompt. ``text`` replaces it with any other.
``placement="system"`` puts it in the system turn (before an existing system prompt, separated by a blank
line); ``"prefix"`` puts it at the start of the user text instead (for back-ends without a system turn).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from baselines.base import Defense, Model
from baselines.defenses._wrapper import WrappedModel, read_data, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

PROMPT_FILES = {"llama2": "llama2_default_system_prompt.txt"}


def apply_safety_prompt(sample: Sample, prompt: str, placement: str) -> Sample:
    """``sample`` with ``prompt`` placed in its system turn or before its user text."""
    if placement == "prefix":
        return sample.with_(text=prompt + "\n\n" + sample.text)
    system = prompt if not sample.system else prompt + "\n\n" + sample.system
    return sample.with_(system=system)


@register("defense")
class SafetyPrompt(Defense):
    """A fixed safety system prompt added to every request."""

    paper_id = None
    summary = "Safety system prompt (default: Llama 2's DEFAULT_SYSTEM_PROMPT) added to every request"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = []  # none: Llama 2's default system prompt, verbatim, in the system turn

    class Params(StrictParams):
        """Which prompt and where it goes."""

        prompt: Literal["llama2"] = Field(
            "llama2", description="bundled prompt: llama2 (Llama 2 reference code)"
        )
        text: str | None = Field(None, description="custom safety prompt text (overrides `prompt`)")
        placement: Literal["system", "prefix"] = Field(
            "system", description="system turn, or a prefix of the user text"
        )

    def prompt_text(self) -> str:
        """The safety prompt in use."""
        return (
            self.params.text if self.params.text is not None else read_data(PROMPT_FILES[self.params.prompt])
        )

    def wrap(self, model: Model) -> Model:
        """The model with the safety prompt on every request."""
        return _SafetyPromptModel(model, self)


class _SafetyPromptModel(WrappedModel):
    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One batched call with the prompt applied."""
        prompt = self.defense.prompt_text()  # type: ignore[attr-defined]
        placed = [apply_safety_prompt(s, prompt, self.params.placement) for s in samples]
        out = self.inner.generate(placed, config)
        return [with_meta(r, "safety_prompt", {"placement": self.params.placement}) for r in out]
