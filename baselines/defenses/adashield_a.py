"""AdaShield-A (Wang et al., ECCV 2024): a pool of defender-refined prompts, retrieved per input.

Training (once per wrapped model, at ``wrap`` time; see ``_adashield_train`` for the loop and its documented
fix of the official loop bug, BASELINES.md §18.6): the harmful samples of ``train_dataset`` are attacked with
``train_attack`` (default: the evaluation attack), split per scenario by a hash of their ids into train /
validation / held-out parts (the official split file was not published with contents), and each training
sample's prompt is refined by the defender (``defender="target"``: the protected model itself; the paper's
default is Vicuna-13B-v1.5, e.g. ``defender=hf:lmsys/vicuna-13b-v1.5``). Accepted prompts form the pool; it can be
saved to / loaded from ``pool_path`` (JSON).

Inference (``inference_benign_code/benign_ours.py``): each input is embedded (``embed``: CLIP ViT-B/32 through
transformers, ``--set embed=hf:openai/clip-vit-base-patch32`` or a local folder; or, as an explicit and recorded
choice, the offline ``stand-in`` of ``_adashield_train.embed``; see ``_adashield_embed``) and the pool entry of
highest cosine similarity is found (first on ties, where the code breaks ties at random). Its prompt is combined
with the query as AdaShield-S does **only when the similarity exceeds beta** (official: ``best_similarity >
args.beta``, default 0.7 for LLaVA); otherwise the query goes unchanged (``below_beta="static"`` substitutes the
static prompt instead, an option of ours). ``beta=None`` applies the nearest prompt to every input, as the
released attack-inference script ``infer_qr.py`` does. An empty pool falls back to the static prompt.
``Response.meta["adashield"]`` records the embedding, the similarity, beta, which prompt was used and whether the
input was one of the training samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from baselines import registry
from baselines.base import Defense, Model
from baselines.defenses._adashield_embed import STAND_IN, embedder
from baselines.defenses._adashield_train import PoolEntry, TrainReport, refine, split_by_scenario
from baselines.defenses._wrapper import WrappedModel, with_meta
from baselines.defenses.adashield_s import combine, static_defense_prompt
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample


@register("defense")
class AdashieldA(Defense):
    """AdaShield-A: defender-refined prompt pool + retrieval by input similarity."""

    paper_id = "2024-wang-adashield"
    summary = "AdaShield-A: defender LLM refines prompts per scenario; the nearest pool prompt is applied"
    default_attack = "figstep"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "retrieval embedding",
            "official": "OpenAI CLIP ViT-B/32 (clip package): normalised concat of image and text features",
            "ours": "embed=stand-in (default): a deterministic offline vector (grey thumbnail + hashed words); embed=hf:openai/clip-vit-base-patch32: the transformers port of the same CLIP (text truncated to 77 tokens, zero image half without an image)",
            "why": "offline runs cannot download CLIP; the stand-in is an explicit, recorded choice",
            "effect": "with the stand-in, similarities are on another scale and beta=0.7 is not calibrated for it: which inputs get a prompt differs",
        },
        {
            "what": "similarity gate",
            "official": "benign_ours.py: prompt only if best similarity > beta (0.7, LLaVA; the MiniGPT-v2 and CogVLM branches compare with 7.1, which a cosine never exceeds); infer_qr.py (attack inference) applies it always",
            "ours": "the gate everywhere, beta=0.7 by default (strict >); beta=None reproduces infer_qr.py",
            "why": "the paper describes one defense with a threshold; the attack script omits it",
            "effect": "inputs unlike every pool entry are answered without a defense prompt (fewer refusals of benign inputs, possibly of attacks)",
        },
        {
            "what": "refinement loop (bug fixed, spec §18.6)",
            "official": "the released loop overwrites the refined prompt with the initial one and scores the initial response",
            "ours": "each refined prompt is tried on the target and kept only if its score improved (the paper's loop)",
            "why": "the released lines cannot refine anything",
            "effect": "the pool holds refined prompts instead of copies of the static one",
        },
        {
            "what": "defender conversation",
            "official": 'multi-turn defender chat with an assistant pre-fill \'{"improvement": "","prompt": "\'',
            "ours": "the conversation flattened into one user turn per call; tolerant JSON parsing instead of the pre-fill",
            "why": "the Model API is single-turn",
            "effect": "defender replies may be formatted differently; unparseable ones are retried as officially",
        },
        {
            "what": "defender and data split",
            "official": "defender Vicuna-13B-v1.5; split file data/datasplit/query_related.jsonl (contents unpublished)",
            "ours": "defender='target' (the protected model) by default; a per-scenario hash split (30% train, 20% validation)",
            "why": "offline default; the split file's contents are not published",
            "effect": "different pool entries",
        },
        {
            "what": "ties and failure example",
            "official": "random tie-break; the failure example is a full LLaVA answer listing steps",
            "ours": "first entry on ties; the failure example keeps its opening with placeholder steps",
            "why": "determinism; the project stores no harmful completions",
            "effect": "negligible",
        },
    ]

    class Params(StrictParams):
        """AdaShield-A parameters (defaults from ``main_qureyrelated.py`` where it has them)."""

        defender: str = Field(
            "target", description="defender model: 'target' (the protected model) or a spec"
        )
        defender_base_url: str | None = Field(None, description="endpoint of an openai:<model> defender")
        n_iterations: int = Field(4, ge=0, description="refinement rounds per training sample")
        alpha: float = Field(0.8, description="validation refusal ratio needed to accept a prompt")
        max_attempts: int = Field(5, ge=1, description="defender attempts to return parseable JSON")
        defender_temperature: float = Field(1.0, description="defender sampling temperature")
        defender_top_p: float = Field(0.9, description="defender top_p")
        defender_max_new_tokens: int = Field(500, description="defender max_n_tokens")
        target_max_new_tokens: int = Field(128, description="target answer length during training")
        train_dataset: str = Field("bundled", description="dataset whose harmful samples train the pool")
        train_attack: str | None = Field(
            None, description="attack applied to training samples (None = the run's evaluation attack)"
        )
        train_fraction: float = Field(
            0.3, description="per-scenario share of harmful samples used for training"
        )
        valid_fraction: float = Field(0.2, description="per-scenario share used for validation")
        pool_path: str | None = Field(None, description="JSON pool to load if it exists, else to write")
        embed: str = Field(
            STAND_IN,
            description="retrieval embedding: hf:openai/clip-vit-base-patch32 (official CLIP ViT-B/32) or a "
            "local CLIP folder, or stand-in (offline, not CLIP; recorded in every decision)",
        )
        beta: float | None = Field(
            0.7,
            description="apply the retrieved prompt only if similarity > beta (official LLaVA 0.7); None = always",
        )
        below_beta: Literal["none", "static"] = Field("none", description="prompt below beta: none or static")
        mode: Literal["repeat", "cogvlm", "prepend", "append"] = Field("repeat", description="as AdaShield-S")
        seed: int = Field(0, description="defender sampling seed")

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self._trained: dict[int, tuple[list[PoolEntry], TrainReport | None, list[str]]] = {}
        self._embed: Any = None

    def embed(self, sample: Sample) -> np.ndarray:
        """The retrieval key of ``sample`` under the configured embedding (loaded once)."""
        if self._embed is None:
            self._embed = embedder(self.params.embed)
        return self._embed(sample)

    def training_samples(self, model: Model) -> tuple[list[Sample], list[Sample]]:
        """(train, valid) attacked harmful samples from ``train_dataset``."""
        p = self.params
        data = registry.get("dataset", p.train_dataset)().load()
        train, valid = split_by_scenario(data.samples, p.train_fraction, p.valid_fraction)
        attack = registry.get("attack", p.train_attack or self.default_attack)()
        attacked = attack.apply(train + valid, model)
        return attacked[: len(train)], attacked[len(train) :]

    def build_pool(
        self, model: Model, train: Sequence[Sample], valid: Sequence[Sample]
    ) -> tuple[list[PoolEntry], TrainReport]:
        """Run the refinement loop with the configured defender."""
        p = self.params
        if p.defender == "target":
            defender = model
        else:
            from baselines.models import load_model

            defender = load_model(p.defender, base_url=p.defender_base_url)
        return refine(
            model,
            defender,
            train,
            valid,
            static_prompt=static_defense_prompt(),
            mode=p.mode,
            n_iterations=p.n_iterations,
            alpha=p.alpha,
            max_attempts=p.max_attempts,
            target_config=GenerationConfig(max_new_tokens=p.target_max_new_tokens, seed=p.seed),
            embed_fn=self.embed,
            defender_config=GenerationConfig(
                max_new_tokens=p.defender_max_new_tokens,
                temperature=p.defender_temperature,
                top_p=p.defender_top_p,
                seed=p.seed,
            ),
        )

    def pool_for(self, model: Model) -> tuple[list[PoolEntry], TrainReport | None, list[str]]:
        """The pool for ``model`` (loaded, or trained once and cached), its report and the training ids."""
        key = id(model)
        if key not in self._trained:
            path = Path(self.params.pool_path) if self.params.pool_path else None
            if path is not None and path.exists():
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("embed", STAND_IN) != self.params.embed:
                    raise ValueError(
                        f"adashield_a: pool {path} was embedded with {doc.get('embed', STAND_IN)!r}, not "
                        f"embed={self.params.embed!r}; use the same embedding or another pool_path"
                    )
                pool = [PoolEntry(**e) for e in doc["pool"]]
                self._trained[key] = (pool, None, list(doc.get("train_ids", [])))
            else:
                train, valid = self.training_samples(model)
                pool, report = self.build_pool(model, train, valid)
                ids = [s.id for s in train]
                if path is not None:
                    doc = {
                        "embed": self.params.embed,
                        "pool": [asdict(e) for e in pool],
                        "train_ids": ids,
                        "report": asdict(report),
                    }
                    tmp = path.with_suffix(path.suffix + ".tmp")
                    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
                    tmp.replace(path)
                self._trained[key] = (pool, report, ids)
        return self._trained[key]

    def wrap(self, model: Model) -> Model:
        """The model with retrieved defense prompts (trains the pool first if needed)."""
        pool, report, ids = self.pool_for(model)
        return _RetrievalModel(model, self, pool, report, ids)


def retrieve(pool: Sequence[PoolEntry], key: np.ndarray) -> tuple[int, float]:
    """Index and cosine similarity of the pool entry nearest to the unit vector ``key`` (first index on ties)."""
    mat = np.array([e.embedding for e in pool])
    sims = mat @ key
    best = int(np.argmax(sims))
    return best, float(sims[best])


class _RetrievalModel(WrappedModel):
    def __init__(self, inner: Model, defense: AdashieldA, pool, report, train_ids) -> None:  # noqa: ANN001
        super().__init__(inner, defense)
        self.pool, self.report, self.train_ids = pool, report, set(train_ids)

    def info(self) -> dict[str, Any]:
        """Inner info plus the pool's size, scenarios and training sample ids."""
        info = super().info()
        info["defenses"][-1]["pool"] = {
            "size": len(self.pool),
            "scenarios": sorted({e.scenario for e in self.pool}),
            "train_ids": sorted(self.train_ids),
            "embed": self.params.embed,
            "beta": self.params.beta,
        }
        return info

    def choose(self, sample: Sample) -> tuple[str | None, dict[str, Any]]:
        """The defense prompt for one input (or None) and what was decided."""
        p = self.params
        if not self.pool:
            return static_defense_prompt(), {"prompt": "static", "reason": "empty pool"}
        k, sim = retrieve(self.pool, self.defense.embed(sample))
        meta = {
            "embed": p.embed,
            "beta": p.beta,
            "similarity": round(sim, 6),
            "entry": self.pool[k].sample_id,
            "scenario": self.pool[k].scenario,
        }
        if p.beta is not None and not sim > p.beta:  # official: defense prompt only if best_similarity > beta
            if p.below_beta == "static":
                return static_defense_prompt(), {**meta, "prompt": "static"}
            return None, {**meta, "prompt": "none"}
        return self.pool[k].prompt, {**meta, "prompt": "pool"}

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One batched call with each input's retrieved prompt."""
        sent, metas = [], []
        for s in samples:
            prompt, meta = self.choose(s)
            meta["in_training"] = s.id in self.train_ids
            sent.append(s if prompt is None else s.with_(text=combine(s.text, prompt, self.params.mode)))
            metas.append(meta)
        out = self.inner.generate(sent, config)
        return [with_meta(r, "adashield", m) for r, m in zip(out, metas, strict=True)]
