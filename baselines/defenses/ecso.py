"""ECSO, "Eyes Closed, Safety On" (Gou et al., ECCV 2024): answer from a caption when the answer is harmful.

Algorithm (``llava/eval/model_mmsafe_tell_ask.py`` of gyhdog99/ECSO, BASELINES.md §9.1), each step one batched
call to the *same* model over the samples that need it:
1. answer normally, with the image -> ``r0``;
2. harm check with the image: ``TELL_PROMPT.format(query, r0[:1927])``; unsafe iff the answer, stripped and
   lower-cased, is exactly ``yes`` or ``yes.`` (otherwise ``r0`` is returned unchanged);
3. query-aware caption with the image: ``CAP_PROMPT.format(query)``;
4. answer without the image: ``LLM_GEN_PROMPT.format(caption, query)`` -> the final answer.
Steps 2-4 decode with ``max_new_tokens`` = 1024 (the official scripts; greedy when the run is greedy).
Samples without an image get ``r0`` (there is no image to close the eyes on). Stripping before the yes/no test
follows LLaVA's own ``outputs.strip()`` in the official eval loop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from baselines.base import Defense, Model
from baselines.defenses._wrapper import WrappedModel, query_config, read_data, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample


def ecso_prompts() -> dict[str, str]:
    """ECSO's three prompts, verbatim: ``tell``, ``cap`` and ``gen``."""
    return {
        "tell": read_data("ecso_tell_prompt.txt"),
        "cap": read_data("ecso_cap_prompt.txt"),
        "gen": read_data("ecso_llm_gen_prompt.txt"),
    }


def is_unsafe_verdict(text: str) -> bool:
    """ECSO's harm-check parse: the model's answer is exactly ``yes`` or ``yes.`` (case-insensitive)."""
    return text.strip().lower() in ("yes", "yes.")


@register("defense")
class Ecso(Defense):
    """ECSO: harm self-check, then a query-aware caption replaces the image for unsafe answers."""

    paper_id = "2024-gou-ecso"
    summary = (
        "ECSO: if the model calls its own answer harmful, re-answer from a query-aware caption, no image"
    )
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "text-only samples",
            "official": "every benchmark input has an image",
            "ours": "samples without an image get the first answer r0",
            "why": "there is no image to close the eyes on",
            "effect": "text-only conditions are unchanged by ECSO",
        },
    ]

    class Params(StrictParams):
        """ECSO parameters (defaults from the official scripts)."""

        response_chars: int = Field(
            1927, description="characters of the first answer shown to the harm check"
        )
        step_max_new_tokens: int | None = Field(
            1024, description="max_new_tokens of steps 2-4 (official 1024); None = the run's value"
        )

    def wrap(self, model: Model) -> Model:
        """The model wrapped by ECSO's four steps."""
        return _EcsoModel(model, self)


class _EcsoModel(WrappedModel):
    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """ECSO over a batch: step 1 for all samples, steps 2-4 for the ones that need them."""
        prompts = ecso_prompts()
        p = self.params
        step_cfg = query_config(config, p.step_max_new_tokens)
        t0 = time.perf_counter()
        first = self.inner.generate(samples, config)
        with_image = [i for i, s in enumerate(samples) if s.images and first[i].error is None]
        tell_in = [
            samples[i].with_(text=prompts["tell"].format(samples[i].text, first[i].text[: p.response_chars]))
            for i in with_image
        ]
        tells = self.inner.generate(tell_in, step_cfg) if tell_in else []
        unsafe = [
            i for i, t in zip(with_image, tells, strict=True) if t.error is None and is_unsafe_verdict(t.text)
        ]
        cap_in = [samples[i].with_(text=prompts["cap"].format(samples[i].text)) for i in unsafe]
        caps = self.inner.generate(cap_in, step_cfg) if cap_in else []
        gen_in = [
            samples[i].with_(text=prompts["gen"].format(c.text, samples[i].text), images=())
            for i, c in zip(unsafe, caps, strict=True)
        ]
        finals = self.inner.generate(gen_in, step_cfg) if gen_in else []
        elapsed = time.perf_counter() - t0
        tell_of = dict(zip(with_image, tells, strict=True))
        final_of = dict(zip(unsafe, zip(caps, finals, strict=True), strict=True))
        out: list[Response] = []
        for i, r0 in enumerate(first):
            meta: dict = {"checked": i in tell_of, "unsafe": i in final_of}
            if i in tell_of:
                meta["check_answer"] = tell_of[i].text[:50]
            if i in final_of:
                cap, fin = final_of[i]
                meta.update(first_answer=r0.text, caption=cap.text)
                out.append(with_meta(fin, "ecso", meta, latency_s=elapsed / max(len(samples), 1)))
            else:
                out.append(with_meta(r0, "ecso", meta, latency_s=elapsed / max(len(samples), 1)))
        return out
