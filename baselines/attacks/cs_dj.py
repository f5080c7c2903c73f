"""CS-DJ, Contrasting Subimage Distraction Jailbreaking (Yang et al., arXiv 2502.10794, CVPR 2025).

Per instruction (spec ``20-attacks-blackbox.md`` section 4; official TeamPigeonLab/CS-DJ @ 4577b05):

1. *Structured distraction*: a small LLM (official ``Qwen/Qwen2.5-3B-Instruct``, sampled at temperature 1, 200
   new tokens, the verbatim ``task_split_prompt``) splits the instruction into three sub-questions; an answer is
   accepted when ``\\d+\\.\\s*(.*)`` finds exactly three and it does not echo "First sub-question" (re-asked
   up to ``decomposer_tries`` times). Each sub-question is drawn in red, 50 px, 500 px wide
   (``baselines.typography.art_text_image``).
2. *Visual-enhanced distraction*: ``num_images`` images sampled (seeded) from a pool folder are embedded; from
   the set S = {instruction's text embedding}, 15 times pick the image whose mean cosine similarity to S is
   lowest and add it to S; the first 9 are used.
3. A 3 x 4 grid of 500 x 530 numbered tiles (1-9 the retrieved images, 10-12 the sub-questions; each image
   thumbnailed to 500 and placed as the official double padding does, 1 px up-left for even sizes) goes with
   the verbatim benign prompt about "pictures 10, 11, and 12". One target query per item, made by the harness.

External models are back-end specs: ``decomposer`` (paper: ``hf:Qwen/Qwen2.5-3B-Instruct``; offline stand-in
``stand-in:split``, the instruction's words cut into three runs, labelled) and ``embedder`` (paper: CLIP
ViT-L/14; ``hf:openai/clip-vit-large-patch14`` or any local CLIP folder through transformers; default
``stand-in``: colour-layout image vectors and hashed text vectors, not semantic, labelled in meta and ledger).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from baselines.attacks._blackbox import pool_files, pool_images
from baselines.base import Attack, BackendError, Model
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Sample
from baselines.typography import art_text_image, font_file, label_below

DATA_DIR = Path(__file__).parent / "data" / "cs_dj"
DEFAULT_POOL = DATA_DIR / "pool"
TILE = 500
SUB_RE = re.compile(r"\d+\.\s*(.*)")


@cache
def prompts() -> dict[str, str]:
    """The verbatim target prompt (``input_text``), decomposer prompt and decomposer system prompt."""
    data = json.loads((DATA_DIR / "prompts.json").read_text(encoding="utf-8"))
    return {k: v for k, v in data.items() if not k.startswith("_")}


def parse_subquestions(answer: str) -> list[str] | None:
    """The three sub-questions of a decomposer answer, or None when the official check rejects it."""
    subs = SUB_RE.findall(answer)
    if len(subs) != 3 or "First sub-question" in answer:
        return None
    return subs


def split_stand_in(instruction: str) -> list[str]:
    """The offline stand-in decomposer: the instruction's words cut into three consecutive runs."""
    words = instruction.split()
    k, r = divmod(len(words), 3)
    out, start = [], 0
    for i in range(3):
        n = k + (1 if i < r else 0)
        out.append(" ".join(words[start : start + n]) or instruction)
        start += n
    return out


def retrieve(text_emb: np.ndarray, image_embs: np.ndarray, n: int = 15) -> list[int]:
    """Greedy contrasting retrieval: ``n`` times, the image with the lowest mean cosine similarity to the set
    (query + images picked so far), first index on ties; picked images are not excluded (official)."""

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    imgs = unit(image_embs.astype(np.float64))
    chosen_vecs = [unit(text_emb.astype(np.float64))]
    picked: list[int] = []
    for _ in range(n):
        mean = (imgs @ np.stack(chosen_vecs).T).mean(axis=1)
        j = int(np.argmin(mean))
        picked.append(j)
        chosen_vecs.append(imgs[j])
    return picked


def grid_tile(image: Image.Image, number: int, font: str, size: int = TILE) -> Image.Image:
    """One numbered tile as the official ``concatenate_images_with_padding`` (rotation 0): thumbnail to
    ``size``, centred in a white square of the diagonal, that square pasted centred (negative offset) on a
    white ``size`` x ``size``, then the number in a 30-px strip below."""
    img = image.convert("RGB").copy()
    img.thumbnail((size, size))
    diag = int((size**2 + size**2) ** 0.5)
    expanded = Image.new("RGB", (diag, diag), (255, 255, 255))
    expanded.paste(img, ((diag - img.width) // 2, (diag - img.height) // 2))
    square = Image.new("RGB", (size, size), (255, 255, 255))
    square.paste(expanded, ((size - diag) // 2, (size - diag) // 2))
    return label_below(square, str(number), font, 20)


def grid(images: Sequence[Image.Image], font: str, per_row: int = 3) -> Image.Image:
    """Numbered tiles placed row-major, ``per_row`` per row (12 tiles: 1500 x 2120)."""
    tiles = [grid_tile(im, k + 1, font) for k, im in enumerate(images)]
    w, h = tiles[0].size
    rows = (len(tiles) + per_row - 1) // per_row
    out = Image.new("RGB", (w * per_row, h * rows), (255, 255, 255))
    for k, t in enumerate(tiles):
        out.paste(t, ((k % per_row) * w, (k // per_row) * h))
    return out


class StandInEmbedder:
    """Offline stand-in for CLIP (not semantic): an image is its 4 x 4 colour layout (48 numbers, centred); a
    text is a unit vector drawn from its sha256. Only the retrieval's mechanics can be tested with it."""

    label = "stand-in (colour layout / hashed text; not CLIP)"

    def images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 48) image vectors."""
        vecs = [np.asarray(im.convert("RGB").resize((4, 4), Image.BILINEAR), dtype=np.float64).ravel() / 255 - 0.5
                for im in images]  # fmt: skip
        return np.stack(vecs)

    def text(self, text: str) -> np.ndarray:
        """(48,) text vector."""
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
        return np.random.default_rng(seed).standard_normal(48)


class ClipEmbedder:
    """CLIP through transformers (``hf:<repo id or local folder>``, loaded from the local cache only)."""

    def __init__(self, model_id: str) -> None:
        try:
            from transformers import AutoProcessor, CLIPModel

            self.model = CLIPModel.from_pretrained(model_id).eval()
            self.processor = AutoProcessor.from_pretrained(model_id)
        except Exception as e:  # noqa: BLE001 - re-raised as a user error naming the parameter
            raise BackendError(
                f"cs_dj: the CLIP embedder {model_id!r} cannot be loaded: {e}. It needs that model in the local "
                "Hugging Face cache or folder; or pass --set embedder=stand-in (offline, not semantic)"
            ) from e
        self.label = f"hf:{model_id}"

    def images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, d) CLIP image embeddings."""
        import torch

        with torch.no_grad():
            inputs = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
            out = self.model.get_image_features(**inputs)
        return _tensor(out).numpy()

    def text(self, text: str) -> np.ndarray:
        """(d,) CLIP text embedding (truncated to the model's context)."""
        import torch

        with torch.no_grad():
            inputs = self.processor(text=[text], return_tensors="pt", padding=True, truncation=True)
            out = self.model.get_text_features(**inputs)
        return _tensor(out).numpy()[0]


def _tensor(out: Any) -> Any:
    """The embedding tensor of a ``get_*_features`` output (a tensor, or an output object in newer versions)."""
    return out if hasattr(out, "numpy") else out.pooler_output


@register("attack")
class CSDJ(Attack):
    """CS-DJ: 3 red sub-question tiles + 9 contrasting pool images in a numbered grid + a benign prompt."""

    paper_id = "2025-yang-distraction-need-multimodal"
    summary = (
        "Distraction: sub-questions as typography among 9 maximally contrasting images in a 12-tile grid."
    )
    queries_model = True  # the decomposer may be the target model itself
    contract_params = {"decomposer": "stand-in:split", "num_images": 12}

    class Params(StrictParams):
        """CS-DJ parameters (defaults from the official code; stand-in embedder by default)."""

        decomposer: str = Field(
            "hf:Qwen/Qwen2.5-3B-Instruct", description="query decomposer: a model spec, or stand-in:split"
        )
        decomposer_base_url: str | None = Field(None, description="base URL for an openai: decomposer")
        decomposer_tries: int = Field(5, ge=1, description="decomposer answers tried before giving up")
        embedder: str = Field(
            "stand-in", description="image/text embedder: stand-in, or hf:<CLIP repo id or folder>"
        )
        pool: str | None = Field(None, description="folder of distractor images (None: the bundled drawings)")
        num_images: int = Field(100, ge=1, description="pool images sampled (seeded) for retrieval")
        retrievals: int = Field(15, ge=1, description="images retrieved (the first 9 are used)")
        seed: int = Field(0, description="seed of the pool sampling and the decomposer")
        font: str = Field("DejaVuSans", description="sub-question font (official Super Moods, not shipped)")
        font_size: int = Field(50, gt=0, description="sub-question font size")
        label_font: str = Field("DejaVuSans", description="tile-number font (official Arial or PIL default)")

    deviations = [
        {
            "what": "embedder (default)",
            "official": "sentence-transformers clip-ViT-L-14",
            "ours": "stand-in: colour-layout image vectors, hashed text vectors (not semantic); "
            "--set embedder=hf:openai/clip-vit-large-patch14 for CLIP through transformers",
            "why": "no model download offline; the default run must work on a laptop",
            "effect": "with the stand-in, distractors contrast in colour layout, not in meaning",
        },
        {
            "what": "decomposer failure",
            "official": "re-asks forever (and crashes on an undefined counter after the first rejection)",
            "ours": "at most decomposer_tries answers, then the item is sent without attack (attack_error)",
            "why": "a bounded, working loop",
            "effect": "none when the decomposer follows the format",
        },
        {
            "what": "pool sampling",
            "official": "os.listdir order (unsorted) then random.shuffle(seed)",
            "ours": "sorted file names then random.Random(seed).shuffle",
            "why": "the same pool on every machine",
            "effect": "different sample of the pool than the authors'",
        },
        {
            "what": "fonts",
            "official": "Super Moods (licence unknown) for sub-questions; Arial or PIL's default for numbers",
            "ours": "DejaVuSans for both",
            "why": "fonts the project may ship",
            "effect": "glyph shapes and line breaks differ",
        },
        {
            "what": "bundled pool",
            "official": "LLaVA-CC3M-Pretrain-595K photographs (10K in the paper, 100 by default in the code)",
            "ours": "24 abstract drawings made by the project (or --set pool=<folder>)",
            "why": "no download",
            "effect": "distractors are simple shapes, not photographs",
        },
        {
            "what": "grid image sent",
            "official": "saved as JPEG (quality 75) and sent as a data URL labelled PNG",
            "ours": "the RGB grid as drawn (the back-end encodes it)",
            "why": "no lossy step in the harness",
            "effect": "no JPEG artefacts",
        },
    ]

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        files = pool_files(p.pool or DEFAULT_POOL, "cs_dj")
        random.Random(p.seed).shuffle(files)
        self.files = files[: p.num_images]
        self.pool = pool_images(self.files)
        self._embedder: Any = None
        self._image_embs: np.ndarray | None = None
        self._decomposer: Model | None = None

    @property
    def embedder(self) -> Any:
        """The embedder, built on first use."""
        if self._embedder is None:
            spec = self.params.embedder
            if spec == "stand-in":
                self._embedder = StandInEmbedder()
            elif spec.startswith("hf:"):
                self._embedder = ClipEmbedder(spec[3:])
            else:
                raise BackendError(
                    f"cs_dj: embedder must be 'stand-in' or 'hf:<CLIP id or folder>', got {spec!r}"
                )
        return self._embedder

    def distractors(self, instruction: str) -> list[int]:
        """Indices (into the sampled pool) of the retrieved images, in retrieval order."""
        if self._image_embs is None:
            self._image_embs = self.embedder.images(self.pool)
        return retrieve(self.embedder.text(instruction), self._image_embs, self.params.retrievals)

    def decompose(self, samples: Sequence[Sample]) -> dict[str, tuple[list[str] | None, int]]:
        """Sub-questions (or None) and the number of decomposer answers used, per sample id."""
        p = self.params
        if p.decomposer == "stand-in:split":
            return {s.id: (split_stand_in(s.goal), 0) for s in samples}
        if self._decomposer is None:
            from baselines.models import load_model

            try:
                self._decomposer = load_model(p.decomposer, base_url=p.decomposer_base_url)
            except Exception as e:  # noqa: BLE001 - re-raised as a user error naming the parameter
                raise BackendError(
                    f"cs_dj: the query decomposer {p.decomposer!r} cannot be loaded: {e}. Pass --set "
                    "decomposer=<model spec> (a local hf: folder or an openai: endpoint), or "
                    "--set decomposer=stand-in:split for the offline stand-in"
                ) from e
        pr = prompts()
        out: dict[str, tuple[list[str] | None, int]] = {}
        todo = list(samples)
        for attempt in range(p.decomposer_tries):
            if not todo:
                break
            queries = [
                Sample(id=f"{s.id}:split", text=pr["task_split_prompt"].format(jailbreak_prompt=s.goal),
                       system=pr["decomposer_system"])
                for s in todo
            ]  # fmt: skip
            gen = GenerationConfig(max_new_tokens=200, temperature=1.0, seed=p.seed + attempt)
            answers = self._decomposer.generate(queries, gen)
            left = []
            for s, a in zip(todo, answers, strict=True):
                subs = None if a.error else parse_subquestions(a.text)
                out[s.id] = (subs, attempt + 1)
                if subs is None:
                    left.append(s)
            todo = left
        return out

    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """The grid and the fixed prompt per sample (the target is not queried; the decomposer may be)."""
        p = self.params
        subs_by_id = self.decompose(samples)
        out = []
        for s in samples:
            subs, calls = subs_by_id[s.id]
            meta: dict[str, Any] = {
                "attack": self.name,
                "decomposer": p.decomposer,
                "decomposer_calls": calls,
                "embedder": self.embedder.label,
            }
            if subs is None:
                out.append(s.with_(meta={**meta, "attack_error": "decomposer gave no 3 sub-questions"}))
                continue
            picked = self.distractors(s.goal)
            tiles = [self.pool[j] for j in picked[:9]]
            tiles += [art_text_image(q, p.font, p.font_size, TILE) for q in subs]
            meta.update(
                sub_questions=subs,
                distractors=[self.files[j].name for j in picked[:9]],
                font_file=font_file(p.font),
            )
            out.append(s.with_(text=prompts()["input_text"], images=(grid(tiles, p.label_font),), meta=meta))
        return out
