"""Jailbreak in Pieces (Shayegani et al., arXiv 2307.14539, ICLR 2024): compositional embedding-space attack.

An image is optimised so that the vision side of the model embeds it like a harmful *target* image; it is
then paired with a generic, benign-looking instruction about "the objects in the image" (BASELINES.md §5,
official ``src/adv_image.py``, fork of erfanshayegani/Jailbreak-In-Pieces @ b7b2bce8):

- start: a white image; variable: its pixels in [0, 1] at the model's input resolution;
- loss: L2 distance between the embeddings of the adversarial and the target image; Adam, lr 0.1; 5000 steps;
  after each step the pixels are clamped to [0, 1];
- target (``target_image``): a given image file for every sample, or by default the typography of the
  sample's key phrase (the paper's "OCR textual trigger"), rendered with the MM-SafetyBench layout;
- prompt (``prompt``): one of the 16 README prompts (verbatim in ``data/jailbreak_in_pieces/prompts.json``),
  by index, or any text.

Embeddings: the official code used the stand-alone CLIP ViT-L/14-336 ``get_image_features`` (projected pooled
768-d vector) fed with un-normalised pixels (``do_normalize=False``, a quirk). Here the attack uses the
attacked model's own vision tower and projector through ``white_box.image_embeddings`` (the features the
language model actually sees, flattened), with the model's normalisation inside the graph. One adversarial
image per sample, all optimised together in one batch (the per-sample losses are independent, so Adam's
per-element updates equal separate runs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from baselines.attacks._pgd import frozen, require_white_box
from baselines.base import Attack, Model
from baselines.imaging import ImageLoadError, load_image
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample
from baselines.typography import typo_image

PROMPTS_FILE = Path(__file__).parent / "data" / "jailbreak_in_pieces" / "prompts.json"


@cache
def readme_prompts() -> tuple[str, ...]:
    """The 16 inference prompts of the README, verbatim."""
    return tuple(json.loads(PROMPTS_FILE.read_text(encoding="utf-8"))["prompts"])


def embedding_distance(wb: Any, pixels: Any, target: Any) -> Any:
    """Per-sample L2 distance (B,) between the flattened image embeddings of ``pixels`` and ``target``."""
    e = wb.image_embeddings(pixels).flatten(1).float()
    return (e - target).norm(dim=1)


def optimise_embeddings(
    wb: Any, x0: Any, target_emb: Any, *, steps: int, lr: float
) -> tuple[Any, list[float]]:
    """Adam on the pixels toward ``target_emb`` (clamped to [0, 1] after each step); returns (pixels, the summed
    distance before every step)."""
    import torch

    x = x0.detach().clone().float().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    history = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = embedding_distance(wb, x, target_emb).sum()
        loss.backward()
        history.append(loss.detach())
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    losses = torch.stack(history).cpu().tolist() if history else []
    return x.detach(), losses


@register("attack")
class JailbreakInPieces(Attack):
    """Jailbreak in Pieces: an image matched in embedding space to a harmful target + a generic instruction."""

    paper_id = "2023-shayegani-jailbreak-in-pieces"
    summary = (
        "Embedding-space attack: an image whose vision embedding matches a harmful target image (white-box)."
    )
    needs_white_box = True
    contract_params = {"steps": 2}  # tests/test_contracts.py: cheap offline run

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "feature space",
            "official": "stand-alone CLIP ViT-L/14-336 get_image_features (projected pooled 768-d vector) on un-normalised pixels",
            "ours": "the attacked model's own vision tower + projector (white_box.image_embeddings), normalised inside the graph",
            "why": "the white-box interface exposes the features the language model actually sees; no separate CLIP download",
            "effect": "the image matches its target in the target model's embedding space: likely stronger on that model, transfer differs",
        },
        {
            "what": "target image",
            "official": "hand-made harmful target images (e.g. OCR text of a harmful phrase) per scenario",
            "ours": "a given target_image, else the typography of the sample's key phrase in the MM-SafetyBench TYPO layout",
            "why": "the paper's target images are not released",
            "effect": "targets carry the key phrase as text only",
        },
    ]

    class Params(StrictParams):
        """Jailbreak-in-Pieces parameters (defaults from the official code)."""

        target_image: str | None = Field(
            None, description="target image file; None: typography of each sample's key phrase"
        )
        prompt: int | str = Field(2, description="README prompt index 0-15, or a prompt text")
        steps: int = Field(5000, ge=0, description="Adam steps")
        lr: float = Field(0.1, gt=0, description="Adam learning rate")
        font: str = Field("LiberationSans", description="font of the key-phrase typography target")
        font_size: int = Field(90, gt=0, description="font size of the typography target")

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        p = self.params
        if isinstance(p.prompt, int) and not 0 <= p.prompt < len(readme_prompts()):
            from baselines.base import ParamsError

            raise ParamsError(f"jailbreak_in_pieces: prompt index must be 0-{len(readme_prompts()) - 1}")
        if p.target_image and not Path(p.target_image).is_file():
            raise ImageLoadError(f"jailbreak_in_pieces: target image not found: {p.target_image}")

    def prompt_text(self) -> str:
        """The instruction sent with every adversarial image."""
        p = self.params.prompt
        return readme_prompts()[p] if isinstance(p, int) else p

    def target_for(self, sample: Sample) -> tuple[Any, str]:
        """(target image, description) for one sample."""
        if self.params.target_image:
            return load_image(self.params.target_image), self.params.target_image
        phrase = str(sample.meta.get("key_phrase") or sample.goal)
        return typo_image(phrase, self.params.font, self.params.font_size), f"typography of {phrase!r}"

    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """One adversarial image per sample (batched optimisation), paired with the generic prompt."""
        import torch

        wb = require_white_box(self.name, model)
        targets = [self.target_for(s) for s in samples]
        h, w = wb.image_size
        with frozen(wb):
            with torch.no_grad():
                t_emb = wb.image_embeddings(wb.pixels_from_images([t for t, _ in targets])).flatten(1).float()
            x0 = torch.ones((len(samples), 3, h, w), device=wb.device)
            with torch.no_grad():
                d0 = embedding_distance(wb, x0, t_emb)
            x, _ = optimise_embeddings(wb, x0, t_emb, steps=self.params.steps, lr=self.params.lr)
            with torch.no_grad():
                d1 = embedding_distance(wb, x, t_emb)
        images = wb.images_from_pixels(x)
        text = self.prompt_text()
        return [
            s.with_(
                text=text,
                images=(im,),
                meta={
                    "attack": self.name,
                    "target": desc,
                    "steps": self.params.steps,
                    "distance_start": float(d0[i]),
                    "distance_end": float(d1[i]),
                },
            )
            for i, (s, im, (_, desc)) in enumerate(zip(samples, images, targets, strict=True))
        ]
