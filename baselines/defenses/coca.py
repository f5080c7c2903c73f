"""CoCA — Constitutional Calibration (Gao et al., COLM 2024, arXiv 2409.11365): principle-conditioned logit
calibration at decode time.

No official code was released; the algorithm is OmniSafeBench-MM's re-implementation
(``defenses/utils.py::generate_with_coca``, spec 22-defenses.md §2.1). Every decoding step runs the protected
model on two prompts, the user text with the safety principle in front (``f"{principle} {question}"``, one
space) and the plain user text, and takes their next-token logits L_p and L_0; the safety delta
``L_p - L_0`` is amplified and added: ``calibrated = L_p + alpha * (L_p - L_0)`` with ``alpha = 4``; the next
token is the argmax of the calibrated logits and is appended to both prompts.

White-box: the protected model must be a transformers back-end in this process (``organism`` or ``hf:``);
an API model raises WhiteBoxRequiredError (the CLI's exit 2). OmniSafeBench's version crashes on every call
(it reads ``case.get(...)`` from a dataclass); that is recorded in ``deviations``, not reproduced. Decoding
follows the run's GenerationConfig: greedy at temperature 0 (OmniSafeBench), else sampled from the calibrated
logits at the run's temperature and top-p (``base`` and sampling: the spec's two unverified choices, exposed).
A sample given as a raw prompt or a ready-made conversation (``meta["raw_prompt"]`` / ``meta["messages"]``) has
no user text to put the principle in front of: it gets an error response, not a silent undefended answer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from baselines.base import Defense, Model
from baselines.defenses._coca_decode import Decoded, batch_inputs, decode
from baselines.defenses._whitebox_access import hf_backend
from baselines.defenses._wrapper import WrappedModel, read_data
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

PRINCIPLE_FILE = "coca_safety_principle.txt"
#: OmniSafeBench's answer when no token was generated (``generate_with_coca``).
EMPTY_RESPONSE = "CoCA did not generate any new content."


def safety_principle() -> str:
    """OmniSafeBench's ``safety_principle`` (``config/defenses/coca.yaml``), verbatim."""
    return read_data(PRINCIPLE_FILE)


def with_principle(sample: Sample, principle: str) -> Sample:
    """``sample`` with ``principle`` and one space in front of its user text (OmniSafeBench's f-string)."""
    return sample.with_(text=f"{principle} {sample.text}")


@register("defense")
class Coca(Defense):
    """CoCA: calibrate every next-token distribution by the logit shift a safety principle causes."""

    paper_id = "2024-gao-coca"
    summary = "CoCA: decode from L_p + alpha*(L_p - L_0), logits with/without a safety principle (white-box)"
    default_attack = "figstep"  # the paper evaluates on MM-SafetyBench and FigStep
    contract_params: ClassVar[dict[str, Any]] = {"model": "organism"}

    class Params(StrictParams):
        """CoCA parameters (OmniSafeBench's defaults)."""

        alpha: float = Field(4.0, ge=0, description="calibration strength (OmniSafeBench default_alpha = 4)")
        base: Literal["principle", "plain"] = Field(
            "principle", description="delta added to the logits with the principle (OmniSafeBench) or without"
        )
        principle: str | None = Field(
            None, description="safety principle text (None: OmniSafeBench's, verbatim)", min_length=1
        )
        use_cache: bool = Field(
            True,
            description="KV cache (same tokens); false re-runs the whole sequence per step as OmniSafeBench",
        )
        model: str | None = Field(None, description="model spec that is decoded (None: the protected model)")
        empty_response: str = Field(
            EMPTY_RESPONSE, description="answer when no token was generated (OmniSafeBench's)"
        )

    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "reading the test case",
            "official": "no official code; OmniSafeBench's generate_with_coca calls case.get('attack_prompt') on "
            "a TestCase dataclass: AttributeError on every call, no response",
            "ours": "reads the sample's (attacked) text and images",
            "why": "the evident intent; the crash gives nothing to compare",
            "effect": "OmniSafeBench's CoCA produces no output as written; ours answers every sample",
        },
        {
            "what": "protected model",
            "official": "OmniSafeBench always loads llava-hf/llava-1.5-7b-hf (fp16), re-loaded for every case, "
            "whatever the benchmark target",
            "ours": "the protected model of the run (loaded once); `model` names another one as OmniSafeBench does",
            "why": "a defense protects the run's model; re-loading changes nothing but time",
            "effect": "none on outputs for the same model and dtype",
        },
        {
            "what": "prompt layout",
            "official": "OmniSafeBench: one user turn with content [text, image] (text first) through the "
            "processor's chat template",
            "ours": "the back-end's own chat turn (images, then text; system prompt kept) with the principle, one "
            "space, then the user text",
            "why": "the same prompt every other condition of the project gets; alpha = 0 is then exactly the "
            "back-end's answer to the principled prompt",
            "effect": "LLaVA-1.5 sees '<image>\\n{text}' instead of '{text}<image>'-style order; small, unmeasured",
        },
        {
            "what": "decoding length and stop",
            "official": "max_new_tokens = 1000; stop at tokenizer.eos_token_id",
            "ours": "the run's max_new_tokens (default 128); stop at the back-end's EOS ids (generation config "
            "and tokenizer), as its plain generate",
            "why": "every condition of a run gets the same budget; judges read the first tokens",
            "effect": "longer answers are cut at the run's budget",
        },
        {
            "what": "per-step forward passes",
            "official": "whole sequence re-run every step (no KV cache), pixel_values of the principled call "
            "reused for both branches",
            "ours": "KV cache by default (use_cache=false: the re-run); each branch's own processor call "
            "(same images, identical pixel_values)",
            "why": "speed; the same tokens (tested on a tiny LLaVA)",
            "effect": "none beyond floating-point noise",
        },
        {
            "what": "text-only inputs and sampling",
            "official": "OmniSafeBench: an image is required; greedy only. Paper: base of the delta and "
            "decoding unverified",
            "ours": "text-only samples decoded the same way; temperature > 0 samples from the calibrated logits "
            "(top-p as transformers); base=plain adds the delta to L_0",
            "why": "the spec asks for both options; text-only requests are the benign control",
            "effect": "none at the defaults (greedy, base=principle)",
        },
        {
            "what": "generation-config extras",
            "official": "OmniSafeBench: plain argmax of the calibrated logits",
            "ours": "plain argmax too; the model's generation_config processors (repetition penalty, ...) are "
            "not applied, unlike the back-end's plain generate",
            "why": "the calibrated logits are the decision rule",
            "effect": "none on the organism (no such processors); alpha = 0 may differ from plain generate on "
            "models whose generation_config sets them",
        },
    ]

    def principle_text(self) -> str:
        """The principle in use."""
        return self.params.principle if self.params.principle is not None else safety_principle()

    def wrap(self, model: Model) -> Model:
        """The model whose answers are decoded with calibrated logits (exit 2 when no logits are reachable)."""
        if self.params.model is not None:
            from baselines.models import load_model

            decoder = hf_backend(load_model(self.params.model), self.name)
        else:
            decoder = hf_backend(model, self.name)
        return _CocaModel(model, self, decoder)


class _CocaModel(WrappedModel):
    def __init__(self, inner: Model, defense: Coca, decoder: Any) -> None:
        super().__init__(inner, defense)
        self.decoder = decoder
        self.principle = defense.principle_text()
        self.principle_sha256 = hashlib.sha256(self.principle.encode()).hexdigest()

    def info(self) -> dict[str, Any]:
        """Inner info plus the decoded model and the principle's checksum."""
        info = super().info()
        info["defenses"][-1].update(
            decoder=self.decoder.info().get("id"), principle_sha256=self.principle_sha256
        )
        return info

    def _meta(self, d: Decoded | None = None, **extra: Any) -> dict[str, Any]:
        p = self.params
        meta: dict[str, Any] = {"alpha": p.alpha, "base": p.base, "principle_sha256": self.principle_sha256}
        if d is not None:
            meta.update(n_calibrated_changes=d.n_changed)
        meta.update(extra)
        return {"coca": meta}

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Calibrated decoding, batched as the back-end batches the principled prompts; errors per sample."""
        import torch

        from baselines.models._hf_gen import error_text
        from baselines.models._hf_inputs import sample_mode

        results: list[Response | None] = [None] * len(samples)
        pairs: dict[int, tuple[str, str]] = {}
        for i, s in enumerate(samples):
            mode = sample_mode(s)
            if mode != "chat":
                results[i] = Response(
                    sample_id=s.id,
                    text="",
                    error=f"coca: a {mode!r} prompt has no user text to put the principle in front of",
                    meta=self._meta(),
                )
                continue
            try:
                pairs[i] = (
                    self.decoder.prompt_text(with_principle(s, self.principle)),
                    self.decoder.prompt_text(s),
                )
            except Exception as e:  # noqa: BLE001 - a bad sample must not sink the batch
                results[i] = Response(sample_id=s.id, text="", error=f"chat template: {error_text(e)}")
        todo = sorted(pairs)
        generator = None if config.greedy else torch.Generator().manual_seed(config.seed)
        batches = self.decoder._batches([samples[i] for i in todo], [pairs[i][0] for i in todo])
        for batch in batches:
            idx = [todo[b] for b in batch]
            try:
                out = self._run(samples, idx, pairs, config, generator)
            except Exception:  # noqa: BLE001 - retried one by one
                out = []
                for i in idx:
                    try:
                        out += self._run(samples, [i], pairs, config, generator)
                    except Exception as e:  # noqa: BLE001 - isolate the failing sample
                        out.append(
                            Response(sample_id=samples[i].id, text="", error=error_text(e), meta=self._meta())
                        )
            for i, r in zip(idx, out, strict=True):
                results[i] = r
        return [r for r in results if r is not None]

    def _run(
        self,
        samples: Sequence[Sample],
        idx: list[int],
        pairs: dict[int, tuple[str, str]],
        config: GenerationConfig,
        generator: Any,
    ) -> list[Response]:
        from baselines.models._hf_gen import state

        t0 = time.perf_counter()
        b = self.decoder
        batch = [samples[i] for i in idx]
        with_p = batch_inputs(
            b, [with_principle(s, self.principle) for s in batch], [pairs[i][0] for i in idx]
        )
        without_p = batch_inputs(b, batch, [pairs[i][1] for i in idx])
        st = state(b)
        tok = b.processor.tokenizer
        decoded = decode(
            b,
            with_p,
            without_p,
            config,
            alpha=self.params.alpha,
            base=self.params.base,
            use_cache=self.params.use_cache,
            eos_ids=st.eos_ids,
            pad_id=tok.pad_token_id,
            generator=generator,
        )
        per = (time.perf_counter() - t0) / len(batch)
        out = []
        for s, d in zip(batch, decoded, strict=True):
            with st.lock:
                text = tok.decode(d.ids, skip_special_tokens=True).strip()
            empty = not text  # nothing but EOS / special tokens
            out.append(
                Response(
                    sample_id=s.id,
                    text=self.params.empty_response if empty else text,
                    latency_s=per,
                    n_output_tokens=len(d.ids),
                    meta=self._meta(d, empty=empty),
                )
            )
        return out
