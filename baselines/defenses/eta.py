"""ETA, "Evaluating Then Aligning" (Ding, Li, Zhang, ICLR 2025, arXiv 2410.06625).

Algorithm (``ETA.generate`` of DripNowhy/ETA@3580833, spec 22-defenses.md §3.2), per sample:
1. the vanilla answer y0 of the protected model (the run's decoding; official greedy, 1024 tokens);
2. post-generation check: s_post = RM(user: the post-eval reward prompt, assistant: y0); safe iff
   s_post > ``post_threshold`` -> y0;
3. only if that failed, pre-generation check: s_pre = CLIP(image, "The image contains unsafe/...") cosine; safe
   iff s_pre < ``pre_threshold`` -> y0 (text-only samples: no image, see the ledger);
4. only if both failed, align: the shallow prefix ``As an AI assistant`` forced after the prompt, then the deep
   sentence-level best-of-N search scored by the RM under the *other* (search) reward prompt, plus
   (1/k) x CLIP(sentence, image) from the second sentence on (``_eta_search``). The answer starts with the prefix.
The two reward prompts differ (the search's is ``Base.from_token_to_reward``'s default argument); both are kept,
verbatim, in ``data/eta_rm_prompt_post_eval.txt`` and ``data/eta_rm_prompt_search.txt``.

Evaluators (``_eta_scorers``): ``clip`` and ``reward_model`` are model specs. None picks the paper's models
(``hf:openai/clip-vit-large-patch14-336``, ``hf:RLHFlow/ArmoRM-Llama3-8B-v0.1``) for any protected model
except the organism, which gets the offline stand-ins built from the organism (``organism``); thresholds None
use the threshold of the evaluator actually loaded (0.16 / 0.06 for the paper's, 0.5 for the stand-ins).
Aligned decoding needs token-level access to the protected model (``hf``/``organism``), or ``decoder``: a
local copy of the same weights when the protected model is served elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from baselines.base import Defense, Model
from baselines.defenses import _eta_scorers as scorers
from baselines.defenses._eta_search import HFStepper, best_of_n_search, prefix_token_ids, stop_token_id
from baselines.defenses._whitebox_access import hf_backend
from baselines.defenses._wrapper import WrappedModel, query_config, read_data, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

SAFETY_PREFIX = "As an AI assistant"  # literal in ETA.generate


def eta_prompts() -> dict[str, str]:
    """The three verbatim strings: ``clip`` (unsafe-image sentence), ``post`` and ``search`` reward prompts."""
    return {
        "clip": read_data("eta_clip_safety_prompt.txt"),
        "post": read_data("eta_rm_prompt_post_eval.txt"),
        "search": read_data("eta_rm_prompt_search.txt"),
    }


def post_eval_safe(score: float, threshold: float) -> bool:
    """``Base.is_safe_post_eval``: the answer is safe iff its reward is strictly above the threshold."""
    return score > threshold


def pre_eval_safe(score: float, threshold: float) -> bool:
    """``Base.get_safety_clip_score``: the image is safe iff its 'unsafe' cosine is strictly below."""
    return score < threshold


def needs_alignment(post_safe: bool, pre_safe: bool | None) -> bool:
    """Align only when both checks say unsafe (pre_safe None: no image, the post check decides alone)."""
    return not post_safe and pre_safe is not True


@register("defense")
class Eta(Defense):
    """ETA: reward-model check of the answer, CLIP check of the image; if both fail, prefix + best-of-N."""

    paper_id = "2024-ding-eta"
    summary = (
        "ETA: if the answer's reward is low and the image looks unsafe (CLIP), re-decode with the prefix "
        "'As an AI assistant' and a sentence-level best-of-N search scored by the reward model"
    )
    default_attack = "figstep"  # FigStep is one of the paper's evaluation sets (dataset/FigStep.py)
    contract_params = {
        "clip": "organism",
        "reward_model": "organism",
        "decoder": "organism",
        "max_new_tokens": 24,
    }

    class Params(StrictParams):
        """ETA parameters (defaults of eta_safetybench.py / eta_quick_use.py)."""

        clip: str | None = Field(
            None,
            description="image-text scorer: hf:<CLIP id or path> or organism (stand-in); None: the paper's "
            "hf:openai/clip-vit-large-patch14-336, or the stand-in on the organism",
        )
        reward_model: str | None = Field(
            None,
            description="reward model: hf:<id or path> (sequence classification) or organism (stand-in); None: "
            "the paper's hf:RLHFlow/ArmoRM-Llama3-8B-v0.1, or the stand-in on the organism",
        )
        pre_threshold: float | None = Field(
            None, description="image unsafe iff score >= this (None: the scorer's; 0.16 for CLIP-L/14-336)"
        )
        post_threshold: float | None = Field(
            None, description="answer safe iff reward > this (None: the scorer's; 0.06 for ArmoRM)"
        )
        beta: float = Field(1.5, gt=0, description="sampling temperature of the aligned decoding")
        topk: int = Field(
            5, ge=1, description="top-k of token sampling and N of best-of-N (official: one value)"
        )
        alpha: float = Field(1.0, description="weight of the CLIP helpfulness term (alpha / k)")
        sentence_cap: int = Field(70, ge=2, description="most tokens of one candidate sentence")
        max_new_tokens: int | None = Field(
            1024,
            ge=1,
            description="tokens of the vanilla and the aligned answer (official 1024; None: the run's)",
        )
        seed: int = Field(1, description="seed of the aligned sampling (official 1), per sample")
        decoder: str | None = Field(
            None,
            description="local model spec with the protected model's weights for the aligned decoding (None: "
            "the protected model itself, which must be hf or organism)",
        )
        device: str | None = Field(None, description="torch device of the evaluators (None: cuda if any)")
        trust_remote_code: bool = Field(
            True,
            description="let an hf reward model run its repository's code (ArmoRM needs it, as officially)",
        )

    deviations = [
        {
            "what": "evaluators on the offline default run",
            "official": "CLIP ViT-L/14-336 cosine (threshold 0.16) and ArmoRM-Llama3-8B (threshold 0.06)",
            "ours": "the paper's models by default on hf/openai targets; on the organism, stand-ins built from "
            "the organism: 'CLIP' = P(organism refuses its own transcription of the image, typed as text) and "
            "bag-of-words cosine of that transcription with a sentence; 'ArmoRM' = P(no) of the organism's "
            "trained ECSO-form harm check; both thresholds 0.5",
            "why": "no CLIP or reward model can be downloaded offline; thresholds are tied to the evaluator",
            "effect": "organism results check the mechanism (check order, both-fail rule, prefix, search), not "
            "ETA's calibration; such results count eta.stand_in_clip / eta.stand_in_reward_model as true in "
            "their decisions, and every response's meta records the thresholds applied",
        },
        {
            "what": "stand-in reward model's inputs",
            "official": "ArmoRM reads user=reward prompt, assistant=answer; never the user's question",
            "ours": "the stand-in fills the harm check's QUERY slot with the sample's request text and ignores "
            "the reward prompts' wording (the hf reward model gets both prompts verbatim)",
            "why": "the organism was trained on this form with the request as QUERY; the reward prompts are "
            "outside its vocabulary (with them in QUERY its verdict on benign answers is near random)",
            "effect": "only on stand-in runs: the stand-in may use the request text the official RM never sees",
        },
        {
            "what": "text-only samples",
            "official": "is_safe_pre_eval raises ValueError without an image; the aligned loop has a text-only "
            "branch (no CLIP term)",
            "ours": "no pre-generation check without an image: the post-generation check decides alone; the "
            "search runs without the CLIP term",
            "why": "the official path crashes; its text-only search branch shows that such inputs were meant "
            "to be aligned",
            "effect": "text-only answers with a low reward are always re-decoded",
        },
        {
            "what": "prefix tokens on byte-level BPE",
            "official": "tokenizer('As an AI assistant').input_ids[1:] (LLaMA SentencePiece: '▁As' ...)",
            "ours": "the same on SentencePiece; on byte-level BPE ' As an AI assistant' (leading space: 'ĠAs')",
            "why": "byte-level BPE would glue 'As' to 'ASSISTANT:' without the space",
            "effect": "none on LLaVA-1.5; the word-initial form elsewhere",
        },
        {
            "what": "random stream of the aligned sampling",
            "official": "one global seed (1) for the whole dataset, in processing order",
            "ours": "a torch.Generator seeded with `seed` per sample",
            "why": "answers must not depend on batching, sharding or resumption",
            "effect": "different samples drawn than the official run (same distribution)",
        },
        {
            "what": "sentence stop token and model",
            "official": "'.' = LLaMA id 29889 (LLaVA-1.5-7B, original LLaVA loader, conv llava_v1, bf16 autocast)",
            "ours": "convert_tokens_to_ids('.') of the protected model's tokenizer (the InternLM variant's "
            "rule); the transformers back-end with its own chat template, weights' dtype",
            "why": "any hf MLLM; the project's back-ends",
            "effect": "sentences end at the bare '.' token only (as officially); merged pieces like '.\"' do not",
        },
        {
            "what": "several images in one sample",
            "official": "one image per input (CLIP and LLaVA-1.5 see that image)",
            "ours": "the protected model sees all images; the CLIP checks use the first one",
            "why": "ETA's CLIP scores are defined for one image",
            "effect": "none on single-image benchmarks (every set ETA was evaluated on)",
        },
        {
            "what": "reward batching",
            "official": "the N candidates' rewards computed one call each",
            "ours": "the stand-in scores the N candidates in one batch (the hf RM one by one, as officially)",
            "why": "speed",
            "effect": "none beyond float rounding",
        },
    ]

    def wrap(self, model: Model) -> Model:
        """The model wrapped by ETA (the evaluators and the decoder are loaded now; exit 2 if one cannot be)."""
        p = self.params
        if p.decoder is not None:
            from baselines.models import load_model

            decoder = hf_backend(load_model(p.decoder), self.name)
        else:
            decoder = hf_backend(model, self.name)
        on_organism = scorers.is_organism(model)
        clip_spec = p.clip or (scorers.STAND_IN if on_organism else scorers.PAPER_CLIP)
        rm_spec = p.reward_model or (scorers.STAND_IN if on_organism else scorers.PAPER_RM)
        clip = scorers.load_clip(clip_spec, model, p.device)
        reward = scorers.load_reward(rm_spec, model, p.device, trust_remote_code=p.trust_remote_code)
        return EtaModel(model, self, decoder=decoder, clip=clip, reward=reward)


class EtaModel(WrappedModel):
    """A model wrapped by ETA; ``clip`` and ``reward`` are scorer objects (see ``_eta_scorers``)."""

    def __init__(self, inner: Model, defense: Eta, *, decoder: Any, clip: Any, reward: Any) -> None:
        super().__init__(inner, defense)
        self.decoder = decoder
        self.clip = clip
        self.reward = reward
        p = defense.params
        self.pre_threshold = p.pre_threshold if p.pre_threshold is not None else clip.default_threshold
        self.post_threshold = p.post_threshold if p.post_threshold is not None else reward.default_threshold
        self.prompts = eta_prompts()

    def info(self) -> dict[str, Any]:
        """Inner info plus the evaluators actually used (stand-ins labelled) and the thresholds applied."""
        info = super().info()
        info["defenses"][-1].update(
            clip=self.clip.info(),
            reward_model=self.reward.info(),
            pre_threshold=self.pre_threshold,
            post_threshold=self.post_threshold,
            stand_ins=[k for k, s in (("clip", self.clip), ("reward_model", self.reward)) if s.stand_in],
            decoder=self.decoder.info().get("id") if hasattr(self.decoder, "info") else None,
        )
        return info

    def evaluator_labels(self) -> dict[str, Any]:
        """Recorded in every response's meta (and so counted in a result's ``decisions``): whether each
        evaluator is an offline stand-in, and the thresholds applied (the harness records the unwrapped
        model's info only)."""
        return {
            "stand_in_clip": bool(getattr(self.clip, "stand_in", False)),
            "stand_in_reward_model": bool(getattr(self.reward, "stand_in", False)),
            "pre_threshold": self.pre_threshold,
            "post_threshold": self.post_threshold,
        }

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Vanilla answers in one batch; post check for all; pre check where it failed; align where both did."""
        cfg = query_config(config, self.params.max_new_tokens)
        first = self.inner.generate(samples, cfg)
        ok = [i for i, r in enumerate(first) if r.error is None]
        posts = self.reward.score(
            self.prompts["post"], [first[i].text for i in ok], requests=[samples[i].text for i in ok]
        )
        post_of = dict(zip(ok, posts, strict=True))
        labels = self.evaluator_labels()
        out: list[Response] = []
        for i, (s, r0) in enumerate(zip(samples, first, strict=True)):
            if i not in post_of:
                out.append(with_meta(r0, "eta", {"checked": False, **labels}))
                continue
            s_post = post_of[i]
            meta: dict[str, Any] = {
                **labels,
                "post_score": s_post,
                "post_safe": post_eval_safe(s_post, self.post_threshold),
            }
            pre_safe: bool | None = None
            if not meta["post_safe"] and s.images:
                s_pre = self.clip.unsafe_score(s.images[0], self.prompts["clip"])
                pre_safe = pre_eval_safe(s_pre, self.pre_threshold)
                meta.update(pre_score=s_pre, pre_safe=pre_safe)
            meta["aligned"] = needs_alignment(meta["post_safe"], pre_safe)
            if not meta["aligned"]:
                out.append(with_meta(r0, "eta", meta))
                continue
            t0 = time.perf_counter()
            try:
                text, ids, trace = self.align(s, cfg.max_new_tokens)
            except Exception as e:  # noqa: BLE001 - one sample's failure must not sink the batch
                from baselines.models._hf_gen import error_text

                meta["align_error"] = error_text(e)
                out.append(
                    Response(sample_id=s.id, text="", error=f"eta align: {error_text(e)}", meta={"eta": meta})
                )
                continue
            meta.update(
                vanilla_answer=r0.text,
                n_sentences=len(trace.rounds),
                sentence_rewards=[rd["rewards"][rd["best"]] for rd in trace.rounds],
            )
            out.append(
                Response(
                    sample_id=s.id,
                    text=text,
                    latency_s=r0.latency_s + time.perf_counter() - t0,
                    n_output_tokens=len(ids),
                    meta={**r0.meta, "eta": meta},
                )
            )
        return out

    def align(self, sample: Sample, max_new_tokens: int):  # noqa: ANN201 - (text, ids, SearchTrace)
        """The shallow prefix and the deep best-of-N search for one sample on the decoder back-end."""
        import torch

        p = self.params
        tok = self.decoder.processor.tokenizer
        prefix_ids, _ = prefix_token_ids(tok, SAFETY_PREFIX)
        eos = {i for i in [tok.eos_token_id] if i is not None}
        gen_eos = getattr(self.decoder.model.generation_config, "eos_token_id", None)
        eos |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        g = torch.Generator().manual_seed(p.seed)
        image = sample.images[0] if sample.images else None

        def decode(ids: Sequence[int]) -> str:
            return tok.decode(list(ids), skip_special_tokens=True).strip()

        def reward(texts: list[str]) -> list[float]:
            return self.reward.score(self.prompts["search"], texts, requests=[sample.text] * len(texts))

        clip = (lambda texts: self.clip.similarity(image, texts)) if image is not None else None
        return best_of_n_search(
            HFStepper(self.decoder, sample, prefix_ids),
            prefix_ids=prefix_ids,
            decode=decode,
            reward=reward,
            clip=clip,
            eos_ids=eos,
            stop_id=stop_token_id(tok),
            topk=p.topk,
            n=p.topk,
            beta=p.beta,
            alpha=p.alpha,
            max_new_tokens=max_new_tokens,
            sentence_cap=p.sentence_cap,
            generator=g,
        )
