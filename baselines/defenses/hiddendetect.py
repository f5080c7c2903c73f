"""HiddenDetect (Jiang et al., ACL 2025, arXiv 2502.14744): refusal-vector monitoring of hidden states.

Algorithm (``code/test.py`` of leigest519/HiddenDetect@2fd161b, spec 22-defenses.md §1): one prefill pass over
the chat-formatted prompt (image included); every decoder layer's last-position hidden state
(``hidden_states[1:]``) goes through the final norm and the LM head ("logit lens"); F[l] is the cosine between
that logit vector and a multi-hot *refusal vector* over the first sub-token of 20 refusal words; the score is
the trapezoid area of F over an inclusive band of layers s..e. Higher = more unsafe. The official code only
reports AUROC/AUPRC; as a defense the input is refused with ``refusal`` iff score > threshold (OmniSafeBench's
rule), otherwise the protected model answers.

Per tokenizer: the refusal vector is sized to the LM head's output dimension (official: 32,000 hard-coded), and
its ids are resolved with the model's own tokenizer and recorded in ``info()`` and every response's meta. The
official call ``encode(word)[0]`` gives the word-initial piece (``▁Sorry``) on LLaMA's SentencePiece tokenizer;
on a byte-level BPE tokenizer the same call gives a word-*internal* piece (``S``), so by default
(``word_form="word_initial"``) the word is encoded with a leading space and leading whitespace-only pieces are
skipped; ``word_form="as_is"`` is the literal official call.

Band: ``layer_start``/``layer_end`` (0-based indices into F, inclusive); None = the official LLaVA-1.6-7B band
16..29 of 32 layers scaled to the model's depth (floor(16 L/32) .. floor(29 L/32); 16..29 for L = 32).

Threshold: no official value. ``threshold`` fixes one; None calibrates it when the model is wrapped: the
(1 - ``calibration_fpr``) quantile of the scores of the benign samples of ``calibration_dataset``, both as text
and, when ``calibration_attack`` is set, as that attack renders them (benign inputs of the kind the defense
will see). The set, its checksum, n and the quantile are recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from baselines.base import Defense, Model
from baselines.defenses._whitebox_access import decoder_parts, hf_backend, last_position_hidden_states
from baselines.defenses._wrapper import WrappedModel, read_data, refusal_response, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

OFFICIAL_BAND = (16, 29)  # LLaVA-1.6-Vicuna-7B, 0-based indices into F (decoder layers 17..30 of 32)
OFFICIAL_DEPTH = 32


def refusal_words() -> list[str]:
    """The 20 refusal words of the official ``refusal_lst``, verbatim."""
    return json.loads(read_data("hiddendetect_refusal_words.json"))


def _is_blank_piece(tok: Any, i: int) -> bool:
    return tok.convert_ids_to_tokens(i).replace("\u2581", "").replace("\u0120", "").strip() == ""


def refusal_ids(tok: Any, words: Sequence[str], word_form: str = "word_initial") -> list[int]:
    """First sub-token id of each word (duplicates collapse, first occurrence order).

    ``as_is``: ``encode(word)[0]`` (the official call). ``word_initial``: ``encode(" " + word)``, skipping
    leading whitespace-only pieces, i.e. the piece a word starts with inside a sentence.
    """
    ids: list[int] = []
    for w in words:
        enc = tok.encode((" " + w) if word_form == "word_initial" else w, add_special_tokens=False)
        if word_form == "word_initial":
            enc = [i for k, i in enumerate(enc) if k > 0 or not _is_blank_piece(tok, i)] or enc
        if enc and enc[0] not in ids:
            ids.append(enc[0])
    return ids


def refusal_vector(ids: Sequence[int], size: int) -> Any:
    """Multi-hot float32 vector of length ``size`` (the LM head's output dimension) with ones at ``ids``."""
    import torch

    r = torch.zeros(size, dtype=torch.float32)
    r[list(ids)] = 1.0
    return r


def layer_curve(hidden: Any, norm: Any, lm_head: Any, r: Any) -> Any:
    """F: (B, L) cosine of logit-lens logits with ``r`` for ``hidden`` = (B, L + 1, d) (embeddings first)."""
    import torch

    with torch.inference_mode():
        h = hidden[:, 1:].to(lm_head.weight.dtype)
        logits = lm_head(norm(h)).float()
        return torch.nn.functional.cosine_similarity(logits, r.to(logits.device).view(1, 1, -1), dim=-1)


def trapezoid(values: Sequence[float]) -> float:
    """``np.trapz`` with unit spacing (0 for fewer than two points)."""
    v = list(values)
    return float(sum((a + b) / 2 for a, b in zip(v[:-1], v[1:], strict=True)))


def band_score(curve: Sequence[float], start: int, end: int) -> float:
    """Area under F over the inclusive band start..end (0.0 for an empty band, as OmniSafeBench)."""
    return trapezoid(list(curve)[start : end + 1])


def scaled_band(n_layers: int) -> tuple[int, int]:
    """The official 16..29-of-32 band scaled to ``n_layers`` decoder layers."""
    s = math.floor(OFFICIAL_BAND[0] * n_layers / OFFICIAL_DEPTH)
    e = math.floor(OFFICIAL_BAND[1] * n_layers / OFFICIAL_DEPTH)
    return min(s, n_layers - 1), min(e, n_layers - 1)


def safety_aware_layers(f_safe: Any, f_unsafe: Any) -> tuple[list[float], list[int]]:
    """FDV = mean F over unsafe - mean F over safe (per layer), and the layers whose FDV exceeds the last
    layer's (``safety_aware_layers.py``: the "most safety-aware layers")."""
    import numpy as np

    fdv = np.asarray(f_unsafe, dtype=float).mean(0) - np.asarray(f_safe, dtype=float).mean(0)
    return fdv.tolist(), [i for i, v in enumerate(fdv) if v > fdv[-1]]


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default)."""
    import numpy as np

    return float(np.quantile(np.asarray(values, dtype=float), q))


@register("defense")
class Hiddendetect(Defense):
    """HiddenDetect: refuse inputs whose hidden states lean toward refusal tokens (logit lens)."""

    paper_id = "2025-jiang-hiddendetect"
    summary = (
        "HiddenDetect: logit-lens cosine with a refusal vector, area over a layer band > threshold => refuse"
    )
    default_attack = "figstep"  # FigImg (FigStep typographic images) is one of the paper's sets
    contract_params = {"detector": "organism", "threshold": 0.0}

    class Params(StrictParams):
        """HiddenDetect parameters (official defaults where they exist)."""

        layer_start: int | None = Field(
            None, ge=0, description="first layer of the band (None: 16/32 scaled)"
        )
        layer_end: int | None = Field(None, ge=0, description="last layer, inclusive (None: 29/32 scaled)")
        word_form: Literal["word_initial", "as_is"] = Field(
            "word_initial", description="refusal ids: word-initial piece, or encode(word)[0] literally"
        )
        threshold: float | None = Field(None, description="refuse iff score > threshold (None: calibrate)")
        calibration_dataset: str = Field("bundled", description="dataset whose benign samples calibrate")
        calibration_attack: str | None = Field(
            "figstep", description="attack also applied to the benign calibration samples (None: text only)"
        )
        calibration_fpr: float = Field(0.05, gt=0, lt=1, description="benign share allowed above threshold")
        detector: str | None = Field(
            None, description="model spec whose hidden states are scored (None: the protected model)"
        )
        batch_size: int = Field(
            1,
            ge=1,
            description="samples per prefill pass (above 1: faster, but a score then depends at float level on "
            "which samples share the pass, so a resumed run can differ from a clean one)",
        )
        refusal: str = Field(
            "I'm sorry, I can't assist with that.", description="answer when flagged (OmniSafeBench's)"
        )

    deviations = [
        {
            "what": "refusal-vector size",
            "official": "vocab_size = 32000 hard-coded (LLaVA-1.6-Vicuna)",
            "ours": "the LM head's output dimension of the scored model",
            "why": "other tokenizers have other vocabularies; a 32,000 vector does not fit them",
            "effect": "none on LLaVA-1.6-Vicuna-7B; required elsewhere",
        },
        {
            "what": "refusal token ids",
            "official": "tokenizer.encode(word)[0]: the word-initial piece on LLaMA's SentencePiece",
            "ours": "word_form=word_initial: encode(' ' + word), leading blank pieces skipped; ids recorded",
            "why": "on byte-level BPE (the organism) the literal call gives word-internal letters ('S', 'u')",
            "effect": "same ids as the official call on LLaMA; on the organism text AUROC 0.22 -> 0.999",
        },
        {
            "what": "decision threshold",
            "official": "none (AUROC/AUPRC only); OmniSafeBench refuses iff score > 0.2",
            "ours": "calibrated: (1 - calibration_fpr) quantile of benign scores (text + attack view)",
            "why": "score scales differ by model and band; 0.2 belongs to LLaVA-1.6-7B's 14-layer band",
            "effect": "the benign calibration samples are the run's benign control too: over-refusal is "
            "partly in-sample",
        },
        {
            "what": "layer band",
            "official": "16..29 (LLaVA-1.6-7B), 21..24 (Qwen-VL), read off the few-shot FDV by hand",
            "ours": "16..29 of 32 scaled to the model's depth unless layer_start/layer_end are set",
            "why": "the few-shot file is not released; other models have other depths",
            "effect": "identical on 32-layer models; a guess elsewhere (the organism: layers 2..3 of 4)",
        },
    ]

    def wrap(self, model: Model) -> Model:
        """The model behind the detector (exit 2 when no model in this process exposes hidden states)."""
        if self.params.detector is not None:
            from baselines.models import load_model

            scorer = hf_backend(load_model(self.params.detector), self.name)
        else:
            scorer = hf_backend(model, self.name)
        return _HiddenDetectModel(model, self, scorer)


class _HiddenDetectModel(WrappedModel):
    def __init__(self, inner: Model, defense: Hiddendetect, scorer: Any) -> None:
        super().__init__(inner, defense)
        self.scorer = scorer
        tok = scorer.processor.tokenizer
        self.norm, self.lm_head = decoder_parts(scorer.model)
        self.ids = refusal_ids(tok, refusal_words(), defense.params.word_form)
        self.tokens = tok.convert_ids_to_tokens(self.ids)
        self.r = refusal_vector(self.ids, int(self.lm_head.weight.shape[0]))
        cfg = scorer.model.config
        n_layers = int(getattr(cfg, "text_config", cfg).num_hidden_layers)
        s0, e0 = scaled_band(n_layers)
        p = defense.params
        self.band = (
            s0 if p.layer_start is None else p.layer_start,
            e0 if p.layer_end is None else p.layer_end,
        )
        self.n_layers = n_layers
        self.threshold: float | None = p.threshold
        self.calibration: dict[str, Any] = {"source": "fixed"} if p.threshold is not None else {}

    def scores(self, samples: Sequence[Sample]) -> list[float]:
        """HiddenDetect score of each sample (batched by image count)."""
        return [band_score(c, *self.band) for c in self.curves(samples)]

    def curves(self, samples: Sequence[Sample]) -> list[list[float]]:
        """F (one value per decoder layer) of each sample."""
        out: list[list[float] | None] = [None] * len(samples)
        groups: dict[int, list[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault(len(s.images), []).append(i)
        bs = self.params.batch_size
        for idx in groups.values():
            for k in range(0, len(idx), bs):
                chunk = idx[k : k + bs]
                hidden = last_position_hidden_states(self.scorer, [samples[i] for i in chunk])
                f = layer_curve(hidden, self.norm, self.lm_head, self.r).cpu().tolist()
                for i, row in zip(chunk, f, strict=True):
                    out[i] = row
        return [c for c in out if c is not None]

    def calibrate(self) -> float:
        """Threshold from the benign calibration samples (computed once)."""
        if self.threshold is not None:
            return self.threshold
        from baselines import registry

        p = self.params
        loaded = registry.get("dataset", p.calibration_dataset)({}).load()
        benign = [s for s in loaded.samples if s.label == "benign"]
        if not benign:
            raise ValueError(f"hiddendetect: dataset {p.calibration_dataset!r} has no benign samples")
        views = list(benign)
        if p.calibration_attack:
            attack = registry.get("attack", p.calibration_attack)({})
            attack.prepare(benign, self.inner)
            views += attack.apply(benign, self.inner)
        scores = self.scores(views)
        self.threshold = quantile(scores, 1 - p.calibration_fpr)
        self.calibration = {
            "source": "calibrated",
            "dataset": p.calibration_dataset,
            "dataset_checksum": loaded.checksum,
            "attack": p.calibration_attack,
            "n_benign_samples": len(benign),
            "n_scores": len(scores),
            "quantile": 1 - p.calibration_fpr,
            "threshold": self.threshold,
        }
        return self.threshold

    def info(self) -> dict[str, Any]:
        """Inner info plus the resolved refusal ids, band and threshold provenance."""
        info = super().info()
        info["defenses"][-1].update(
            refusal_ids=self.ids,
            refusal_tokens=self.tokens,
            vector_size=int(self.r.shape[0]),
            band=list(self.band),
            n_layers=self.n_layers,
            scorer=self.scorer.info().get("id"),
            calibration=self.calibration or {"source": "not yet calibrated"},
        )
        return info

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Score every sample; refuse the flagged ones; one batched model call for the rest."""
        tau = self.calibrate()
        scores = self.scores(samples)
        flagged = [sc > tau for sc in scores]
        todo = [i for i, f in enumerate(flagged) if not f]
        answered = self.inner.generate([samples[i] for i in todo], config) if todo else []
        answers = dict(zip(todo, answered, strict=True))
        out: list[Response] = []
        for i, s in enumerate(samples):
            meta = {"score": scores[i], "threshold": tau, "flagged": flagged[i], "band": list(self.band)}
            if flagged[i]:
                out.append(refusal_response(s, self.params.refusal, "hiddendetect", meta))
            else:
                out.append(with_meta(answers[i], "hiddendetect", meta))
        return out
