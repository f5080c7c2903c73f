"""JOOD, jailbreak by out-of-distribution inputs (Jeong et al., arXiv 2503.20823, CVPR 2025): the harmful image
mixed with a harmless one, and a text that asks about "two realistic objects" in it.

Image (spec ``20-attacks-blackbox.md`` section 2.3; official ``utils/mixaug.py``, read at the authors' commit
4ca1368 in a fork): both images RGBA, each resized so its longest side is 320 px (bicubic), each centred on a
transparent white canvas of the larger width x larger height, then ``mix(harmless, harmful, lam)`` with ``lam``
the weight (Mixup: ``Image.blend``) or the side fraction (CutMix: a ``int(W*lam) x int(H*lam)`` crop of the
harmful image pasted at the same random place on the harmless one; ResizeMix: the whole harmful image resized to
that box) of the **harmful** image. Text: the official prefix for the aug (``data/jood/prefixes.json``, first
``startswith`` match) + the instruction.

The harmful image is the sample's own image, or, for a text-only sample, the instruction in FigStep's typography.
The harmless image is drawn per sample from a folder (``pool``; default: the project's five drawings named by
what they show, ``data/jood/harmless``). The official attack sends every (harmless image, lam) pair and keeps the
most harmful answer afterwards with its evaluation judge; here one pair goes per item (see the ledger).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, Field

from baselines.attacks._blackbox import pool_files, sample_rng
from baselines.base import Attack, Model
from baselines.imaging import load_image
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample
from baselines.typography import figstep_drawn, figstep_text

DATA_DIR = Path(__file__).parent / "data" / "jood"
DEFAULT_POOL = DATA_DIR / "harmless"
#: Our aug names -> the official ``--aug`` values (whose prefix the text gets).
OFFICIAL_AUG = {"mixup": "mixup", "cutmix": "cutmix_original", "resizemix": "cutmix_resizemix"}
SIDE = 320


@cache
def prefix_table() -> tuple[list[tuple[str, str]], str]:
    """The official (startswith, prefix) chain and the default prefix, verbatim."""
    data = json.loads((DATA_DIR / "prefixes.json").read_text(encoding="utf-8"))
    return [(a, b) for a, b in data["prefixes"]], data["default"]


def prefix_for(aug: str) -> str:
    """The instruction prefix of an official aug name: the first ``startswith`` match, else the default."""
    chain, default = prefix_table()
    for start, prefix in chain:
        if aug.startswith(start):
            return prefix
    return default


def resize_longest(image: Image.Image, side: int = SIDE) -> Image.Image:
    """RGBA, longest side ``side`` (the other ``int(side / long * short)``), bicubic."""
    im = image.convert("RGBA")
    w, h = im.size
    size = (side, int(side / w * h)) if w >= h else (int(side / h * w), side)
    return im.resize(size, Image.BICUBIC)


def pad_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` centred (offsets floored) on a transparent white RGBA canvas of ``size``."""
    canvas = Image.new("RGBA", size, (255, 255, 255, 0))
    canvas.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return canvas


def prepare(harmless: Image.Image, harmful: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Both images resized (longest side 320) and padded to the larger width x larger height."""
    a, b = resize_longest(harmless), resize_longest(harmful)
    size = (max(a.width, b.width), max(a.height, b.height))
    return pad_to(a, size), pad_to(b, size)


def mix(
    harmless: Image.Image, harmful: Image.Image, lam: float, aug: str, xy: tuple[float, float] = (0.0, 0.0)
) -> tuple[Image.Image, tuple[int, int] | None]:
    """The mixed RGBA image and the patch position (CutMix/ResizeMix). ``lam`` weights the harmful image;
    ``xy`` in [0, 1) picks the position among the ``W - w`` x ``H - h`` allowed (``randint(0, W - w)``)."""
    a, b = prepare(harmless, harmful)
    if aug == "mixup":
        return Image.blend(a, b, lam), None
    if lam <= 0:
        return a, None
    if lam >= 1:
        return b, None
    w, h = a.size
    mw, mh = int(w * lam), int(h * lam)
    x, y = int(xy[0] * (w - mw)), int(xy[1] * (h - mh))
    patch = b.crop((x, y, x + mw, y + mh)) if aug == "cutmix" else b.resize((mw, mh))
    out = a.copy()
    out.paste(patch, (x, y))
    return out, (x, y)


@register("attack")
class JOOD(Attack):
    """JOOD: the harmful image mixed with a harmless one (Mixup/CutMix/ResizeMix) + "two objects" prefix."""

    paper_id = "2025-jeong-playing-the-fool"
    summary = "Mix the harmful image with a harmless one (Mixup, CutMix, ResizeMix) to make the input out of distribution."

    class Params(StrictParams):
        """JOOD parameters (defaults from the official scripts, one lam of their sweep)."""

        aug: Literal["mixup", "cutmix", "resizemix"] = Field("mixup", description="mixing transform")
        lam: float = Field(
            0.5, gt=0, lt=1, description="weight / side fraction of the harmful image (paper sweeps 0.1-0.9)"
        )
        pool: str | None = Field(None, description="folder of harmless images (None: the bundled drawings)")
        seed: int = Field(0, description="seed of the harmless-image choice and of the patch position")

    deviations = [
        {
            "what": "attempts per instruction",
            "official": "every harmless image x lam in 0.1..0.9 sent; the answer with the highest GPT-4 "
            "harmfulness kept afterwards (oracle best-of-N)",
            "ours": "one harmless image (drawn per sample) at one lam (0.5) per item",
            "why": "the harness sends one attacked input per item and judges it",
            "effect": "lower ASR than the paper's best-of-N; a sweep is --set lam=... over runs",
        },
        {
            "what": "instructions",
            "official": "AdvBench-M instructions rewritten to refer to 'each of these objects'",
            "ours": "meta['jood_instruction'] when the dataset has it, else the sample's goal",
            "why": "the rewritten instructions exist only for AdvBench-M",
            "effect": "the harmful object is also named in the text",
        },
        {
            "what": "harmful image of a text-only sample",
            "official": "AdvBench-M photographs",
            "ours": "the instruction in FigStep's typography",
            "why": "the bundled set has no images",
            "effect": "closer to the paper's typographic variant (whose 'OCR' prefix we do not switch to)",
        },
        {
            "what": "harmless images",
            "official": "AdvBench-M's harmless set (not seen; a secondary summary says 5 images)",
            "ours": "the project's 5 drawings (apple, flower, house, sun, tree), or --set pool=<folder>",
            "why": "the official set is on a private drive",
            "effect": "different auxiliary images",
        },
        {
            "what": "image sent",
            "official": "RGBA PNG (transparent padding) labelled image/jpeg; Qwen2-VL drops alpha",
            "ours": "converted to RGB (padding white), as the Qwen2-VL path",
            "why": "back-ends take RGB",
            "effect": "none on the mixed area",
        },
        {
            "what": "patch position",
            "official": "np.random.randint, unseeded",
            "ours": "a generator seeded by (seed, sample id)",
            "why": "reproducible runs",
            "effect": "same distribution",
        },
        {
            "what": "RandAug and the text-only word mixing",
            "official": "randaug<N> and textmix_* augs",
            "ours": "not offered",
            "why": "scope: the image-mixing attacks of the paper's headline",
            "effect": "those variants cannot be run",
        },
    ]

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.files = pool_files(self.params.pool or DEFAULT_POOL, "jood")
        self._cache: dict[Path, Image.Image] = {}

    def harmful_image(self, sample: Sample) -> tuple[Image.Image, str]:
        """The sample's image, or its instruction in FigStep's typography."""
        if sample.images:
            return sample.images[0], "sample"
        inst = sample.meta.get("instruction")
        inst = inst if isinstance(inst, str) and inst.strip() else sample.goal
        return figstep_drawn(figstep_text(inst)).render(), "figstep-typography"

    def attack_one(self, sample: Sample) -> Sample:
        """The mixed image and prefixed instruction of one sample."""
        p = self.params
        rng = sample_rng(p.seed, sample.id, "jood")
        file = self.files[rng.randrange(len(self.files))]
        if file not in self._cache:
            self._cache[file] = load_image(file)
        harmful, source = self.harmful_image(sample)
        image, xy = mix(self._cache[file], harmful, p.lam, p.aug, (rng.random(), rng.random()))
        inst = sample.meta.get("jood_instruction")
        inst = inst if isinstance(inst, str) and inst.strip() else sample.goal
        meta = {
            "attack": self.name,
            "aug": OFFICIAL_AUG[p.aug],
            "lam": p.lam,
            "harmless_image": file.name,
            "harmful_image": source,
            "patch_xy": list(xy) if xy else None,
        }
        return sample.with_(
            text=prefix_for(OFFICIAL_AUG[p.aug]) + inst, images=(image.convert("RGB"),), meta=meta
        )

    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """Attacked samples, in order (the model is not queried)."""
        return [self.attack_one(s) for s in samples]
