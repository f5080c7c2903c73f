"""JailGuard (Zhang et al., arXiv 2312.10766): mutation-based detection of attack inputs.

For each input with an image: ``number`` (8) variants by an image mutator (default PL = RR/BL/RP policy), the
question unchanged; the model answers every variant; the input is an attack if the maximum pairwise KL
divergence of the answers' similarity distributions exceeds ``threshold`` (0.025 for images), or if every
answer contains a refusal keyword (GCG list, §15.4). See ``_jailguard_mutators`` and ``_jailguard_divergence``.

JailGuard is a detector; as a defense wrapper it answers a detected input with ``refusal`` (the project's
choice: the paper defines no response) and otherwise returns the model's answer to the *unmutated* input (one
extra query). The decision is in ``Response.meta["jailguard"]``. Originals and all variants of a batch go to
the model in one batched call. Text-only inputs are not checked (the text mutators need GPT/translation
services) and pass through; their meta says ``checked: False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar, Literal

from pydantic import Field

from baselines import refusal
from baselines.base import Defense, Model
from baselines.defenses._jailguard_divergence import bow_similarity, detect, spacy_similarity
from baselines.defenses._jailguard_mutators import mutate
from baselines.defenses._wrapper import WrappedModel, refusal_response, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

MutatorCode = Literal["HF", "VF", "RR", "CR", "RM", "RS", "GR", "BL", "CJ", "RP", "PL"]


def variant_seed(seed: int, sample_id: str, variant: int, image: int) -> int:
    """A stable per-(sample, variant, image) seed derived from the defense's ``seed``."""
    key = f"{seed}:{sample_id}:{variant}:{image}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def variants(sample: Sample, code: str, number: int, seed: int) -> list[Sample]:
    """``number`` copies of ``sample`` whose images are mutated by ``code`` (text unchanged)."""
    return [
        sample.with_(
            images=tuple(
                mutate(im, code, variant_seed(seed, sample.id, k, j)) for j, im in enumerate(sample.images)
            ),
            meta={"jailguard_variant": k},
        )
        for k in range(number)
    ]


@register("defense")
class Jailguard(Defense):
    """JailGuard: refuse inputs whose mutated variants make the model's answers diverge (or all refuse)."""

    paper_id = "2023-zhang-jailguard"
    summary = "JailGuard: 8 mutated image variants; KL divergence of answer similarities > 0.025 => refuse"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "detector as a defense",
            "official": "JailGuard only detects attack inputs (no response is defined)",
            "ours": "a detected input is answered with the refusal text; otherwise the answer to the unmutated input (one extra query)",
            "why": "the harness needs a response per sample",
            "effect": "ASR under JailGuard counts detected inputs as refused",
        },
        {
            "what": "text-only inputs",
            "official": "text mutators (GPT / translation services) for text inputs",
            "ours": "inputs without an image are not checked (meta checked: False)",
            "why": "the text mutators need external services",
            "effect": "text-only attacks pass through JailGuard unchanged",
        },
    ]

    class Params(StrictParams):
        """JailGuard parameters (defaults from ``main_img.py``)."""

        mutator: MutatorCode = Field(
            "PL", description="image mutator code; PL = RR/BL/RP policy (official default)"
        )
        number: int = Field(8, ge=2, description="number of mutated variants per input")
        threshold: float = Field(0.025, description="divergence threshold (image default 0.025)")
        similarity: Literal["bow", "spacy"] = Field(
            "bow", description="answer similarity: bow (offline hashed bag-of-words) or spacy (official)"
        )
        spacy_model: str = Field("en_core_web_md", description="spaCy model for similarity='spacy'")
        refusal_list: str = Field(
            "gcg", description="refusal keyword list for the all-blocked rule (§15.4: gcg)"
        )
        refusal: str = Field(
            "I'm sorry, but I cannot assist with that request.",
            description="answer given when an attack is detected",
        )
        seed: int = Field(0, description="seed of the mutators (per sample and variant)")

    def wrap(self, model: Model) -> Model:
        """The model behind JailGuard's detector."""
        refusal.get_list(self.params.refusal_list)  # fail early on an unknown list
        sim = bow_similarity if self.params.similarity == "bow" else spacy_similarity(self.params.spacy_model)
        return _JailguardModel(model, self, sim)


class _JailguardModel(WrappedModel):
    def __init__(self, inner: Model, defense: Defense, similarity) -> None:  # noqa: ANN001
        super().__init__(inner, defense)
        self.similarity = similarity

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Originals and all variants in one batched call, then one decision per image input."""
        p = self.params
        checked = [i for i, s in enumerate(samples) if s.images]
        batch = list(samples)
        for i in checked:
            batch += variants(samples[i], p.mutator, p.number, p.seed)
        answers = self.inner.generate(batch, config)
        originals, extra = answers[: len(samples)], answers[len(samples) :]
        rlist = refusal.get_list(p.refusal_list)
        out: list[Response] = [with_meta(r, "jailguard", {"checked": False}) for r in originals]
        for n, i in enumerate(checked):
            group = extra[n * p.number : (n + 1) * p.number]
            errors = [r.error for r in group if r.error]
            if errors:
                meta = {"checked": False, "error": f"{len(errors)} variant answers failed: {errors[0]}"}
                out[i] = with_meta(originals[i], "jailguard", meta)
                continue
            texts = [r.text for r in group]
            decision = detect(texts, [len(rlist.matches(t)) for t in texts], p.threshold, self.similarity)
            meta = {"checked": True, **decision}
            if decision["detected"]:
                out[i] = refusal_response(samples[i], p.refusal, "jailguard", meta)
            else:
                out[i] = with_meta(originals[i], "jailguard", meta)
        return out
