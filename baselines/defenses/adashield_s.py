"""AdaShield-S: append AdaShield's static defense prompt to every query (Wang et al., ECCV 2024).

Faithful to the released code (``conversers.py``, ``inference_attack_code/infer_qr.py``): for LLaVA-1.5 and
MiniGPT-v2 the text sent is ``query + defense_prompt + query`` (the query is repeated after the prompt, no
separator); for CogVLM it is ``query + defense_prompt + "'" + query + "'"``. The paper describes the prompt as
*prepended*; ``mode`` selects the code's or the paper's placement (default: the code's, ``repeat``).
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

STATIC_PROMPT_FILE = "adashield_static_defense_prompt.txt"
Mode = Literal["repeat", "cogvlm", "prepend", "append"]


def static_defense_prompt() -> str:
    """AdaShield's static defense prompt, verbatim (``prompts/static_defense_prompt.txt``)."""
    return read_data(STATIC_PROMPT_FILE)


def combine(query: str, defense_prompt: str, mode: Mode = "repeat") -> str:
    """The user text with the defense prompt placed as the official code (or the paper) does.

    ``repeat``: ``query + P + query`` (LLaVA-1.5 / MiniGPT-v2 code path); ``cogvlm``: ``query + P + "'" + query
    + "'"``; ``prepend``: ``P + query``; ``append``: ``query + P``.
    """
    if mode == "repeat":
        return query + defense_prompt + query
    if mode == "cogvlm":
        return query + defense_prompt + "'" + query + "'"
    if mode == "prepend":
        return defense_prompt + query
    if mode == "append":
        return query + defense_prompt
    raise ValueError(
        f"unknown AdaShield combination mode {mode!r}; expected repeat, cogvlm, prepend or append"
    )


@register("defense")
class AdashieldS(Defense):
    """AdaShield-S: the static defense prompt added to every user turn."""

    paper_id = "2024-wang-adashield"
    summary = "AdaShield-S: appends AdaShield's static defense prompt (verbatim) to every query"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = []  # none: the verbatim static prompt, placed as the official code does

    class Params(StrictParams):
        """AdaShield-S parameters."""

        mode: Mode = Field(
            "repeat",
            description="where the prompt goes: repeat (query+P+query, official LLaVA code), cogvlm, prepend, append",
        )

    def wrap(self, model: Model) -> Model:
        """The model with the static prompt combined into each sample's text."""
        return _StaticPromptModel(model, self, static_defense_prompt())


class _StaticPromptModel(WrappedModel):
    def __init__(self, inner: Model, defense: Defense, prompt: str) -> None:
        super().__init__(inner, defense)
        self.prompt = prompt

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Answer each sample with the defense prompt combined into its text (one batched call)."""
        mode = self.params.mode
        shielded = [s.with_(text=combine(s.text, self.prompt, mode)) for s in samples]
        responses = self.inner.generate(shielded, config)
        return [with_meta(r, "adashield", {"prompt": "static", "mode": mode}) for r in responses]
