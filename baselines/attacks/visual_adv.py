"""Visual Adversarial Examples (Qi et al., arXiv 2306.13213, AAAI 2024): one universal adversarial image.

White-box PGD on the image (BASELINES.md §3, official ``*/visual_attacker.py`` @ 5fc9883c): the image is
optimised to make a corpus of target sentences likely after an *empty* user instruction; it is then paired
with every sample's own request. All optimisation happens in [0, 1] pixel space of the image at the model's
input resolution; the model normalises inside the graph (§18.1).

- Constrained (``constrained=True``, ``eps`` in /255 units: the README runs 16, 32, 64; 255 = the whole range):
  delta ~ U(-eps, eps) clipped so x + delta is in [0, 1]; each step delta <- clip(delta - alpha*sign(grad),
  -eps, eps), then delta <- clip(x + delta, 0, 1) - x.
- Unconstrained (``constrained=False``): starts from **uniform noise**, not the clean image (§18.4);
  x <- clip(x - alpha*sign(grad), 0, 1).
- alpha = 1/255; 5000 steps (the LLaVA/InstructBLIP scripts' ``--n_iters`` default; the loop's extra final
  step of ``range(num_iter + 1)`` is not repeated); each step draws ``batch_size = 8`` targets with
  ``random.sample`` (without replacement within a step) and descends the NLL of the target tokens only,
  averaged over all target tokens of the batch (as the models' own LM loss does).

Differences from the official code, documented: the target corpus shipped here is a mild stand-in (see
``data/visual_adv/target_corpus.txt``; pass the original with ``--set targets=...``); the clean image
(``adversarial_images/clean.jpeg``) is not redistributable, so the default start is a generated neutral
picture (``--set image=...`` for your own); the model's own chat template is used (the paper's LLaVA-LLaMA-2
template carried a system prompt: ``--set system=...``).
"""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from baselines.attacks._pgd import (
    as_targets,
    frozen,
    linf_pgd,
    neutral_image,
    require_white_box,
    save_png,
)
from baselines.base import Attack, Model
from baselines.imaging import load_image
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample

log = logging.getLogger(__name__)
DEFAULT_CORPUS = Path(__file__).parent / "data" / "visual_adv" / "target_corpus.txt"


def read_corpus(path: str | Path) -> list[str]:
    """Target sentences: a ``.csv`` file -> its first column (official format); a project data file (header up
    to ``# ---``) or any text file -> one sentence per non-empty line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"target corpus not found: {p} (give a .csv or a one-sentence-per-line file)")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".csv":
        rows = [r[0].strip() for r in csv.reader(text.splitlines()) if r and r[0].strip()]
    else:
        if "# ---\n" in text:
            text = text.split("# ---\n", 1)[1]
        rows = [line.strip() for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"target corpus {p} has no sentences")
    return rows


def token_counts(wb: Any, targets: Sequence[str]) -> list[int]:
    """Number of tokens of each target as the white box tokenises it (1 each if it has no tokenizer)."""
    tok = getattr(wb, "tokenizer", None)
    if tok is None:
        return [1] * len(targets)
    return [max(1, len(tok(t, add_special_tokens=False)["input_ids"])) for t in targets]


@register("attack")
class VisualAdv(Attack):
    """Qi et al.: a universal adversarial image (PGD toward a target corpus) paired with every request."""

    paper_id = "2023-qi-visual-adversarial-examples"
    summary = "Universal adversarial image by L-inf PGD toward a target corpus (white-box), + each request."
    needs_white_box = True
    contract_params = {"steps": 2, "batch_size": 2}  # tests/test_contracts.py: cheap offline run

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "target corpus",
            "official": "harmful_corpus/derogatory_corpus.csv (66 derogatory sentences)",
            "ours": "a mild stand-in corpus (data/visual_adv/target_corpus.txt); the original via --set targets=...",
            "why": "the project does not redistribute the derogatory corpus",
            "effect": "the image is optimised toward other sentences: results are not comparable to the paper's",
        },
        {
            "what": "start image",
            "official": "adversarial_images/clean.jpeg",
            "ours": "a generated neutral picture (--set image=... for your own)",
            "why": "clean.jpeg cannot be redistributed",
            "effect": "constrained attacks start from another image; unconstrained start from noise either way",
        },
        {
            "what": "chat template",
            "official": "LLaVA-LLaMA-2 conversation template with its system prompt",
            "ours": "the attacked model's own chat template (--set system=... adds one)",
            "why": "one harness for every model",
            "effect": "the prompt tokens around the image differ; the optimisation follows whichever template is used",
        },
        {
            "what": "number of steps",
            "official": "range(num_iter + 1): one extra final step",
            "ours": "exactly n_iters steps",
            "why": "the extra step is an off-by-one of the loop",
            "effect": "negligible (one of 5000 steps)",
        },
    ]

    class Params(StrictParams):
        """Qi et al. parameters (defaults from the official code)."""

        eps: int = Field(32, ge=1, le=255, description="L-inf radius in /255 units (paper: 16, 32, 64)")
        constrained: bool = Field(True, description="False: unconstrained attack starting from uniform noise")
        alpha: float = Field(1.0, gt=0, description="PGD step size in /255 units")
        steps: int = Field(5000, ge=0, description="PGD iterations (official --n_iters default)")
        batch_size: int = Field(8, ge=1, description="targets drawn per step with random.sample")
        targets: str | None = Field(
            None, description="target corpus file (.csv: first column); None: the bundled mild stand-in"
        )
        prompt: str = Field("", description="user text during optimisation (official: empty)")
        system: str | None = Field(None, description="system prompt during optimisation (None: none)")
        image: str | None = Field(None, description="clean start image path; None: a generated neutral image")
        seed: int = Field(0, description="seed of the target sampling and the random start")
        save: str | None = Field(None, description="also write the adversarial image here (PNG, lossless)")

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self._cache: dict[int, tuple[Any, dict[str, Any]]] = {}

    def corpus(self) -> list[str]:
        """The target sentences (the user's file or the bundled stand-in)."""
        return read_corpus(self.params.targets or DEFAULT_CORPUS)

    def clean_image(self) -> Any:
        """The clean starting image (user file or the generated neutral stand-in)."""
        return (
            load_image(self.params.image)
            if self.params.image
            else neutral_image((400, 400), self.params.seed)
        )

    def loss_function(self, wb: Any) -> tuple[Any, list[str]]:
        """(loss_fn(pixels, step) -> scalar, targets): each call draws ``batch_size`` targets with
        ``random.sample`` and returns their NLL averaged over all their target tokens."""
        import torch

        p = self.params
        targets = as_targets(wb, self.corpus())
        rng = random.Random(p.seed)
        k = min(p.batch_size, len(targets))
        prompts = [p.prompt] * k
        counts = dict(zip(targets, token_counts(wb, targets), strict=True))
        kwargs = {"system": p.system} if p.system else {}

        def loss_fn(x: Any, _t: int) -> Any:
            batch = rng.sample(targets, k)
            per = wb.target_loss(x, prompts, batch, **kwargs)
            w = torch.tensor([counts[b] for b in batch], dtype=per.dtype, device=per.device)
            return (per * w).sum() / w.sum()

        return loss_fn, targets

    def optimise(self, model: Model) -> tuple[Any, dict[str, Any]]:
        """Run the attack once against ``model``; return (adversarial PIL image, details for meta)."""
        import torch

        wb = require_white_box(self.name, model)
        p = self.params
        loss_fn, targets = self.loss_function(wb)
        k = min(p.batch_size, len(targets))
        gen = torch.Generator().manual_seed(p.seed)
        x0 = wb.pixels_from_images([self.clean_image()])
        with frozen(wb):
            res = linf_pgd(
                loss_fn,
                x0,
                steps=p.steps,
                alpha=p.alpha / 255,
                eps=p.eps / 255 if p.constrained else None,
                random_start=True,
                generator=gen,
                progress=f"{self.name} PGD",
            )
        image = wb.images_from_pixels(res.pixels)[0]
        details = {
            "attack": self.name,
            "eps": p.eps if p.constrained else None,
            "constrained": p.constrained,
            "alpha": p.alpha,
            "steps": p.steps,
            "batch_size": k,
            "n_targets": len(targets),
            "targets_source": p.targets or "bundled mild stand-in corpus (not the paper's)",
            "image_source": p.image or "generated neutral stand-in (not the paper's clean.jpeg)",
            "loss_first": res.losses[0] if res.losses else None,
            "loss_last": res.losses[-1] if res.losses else None,
            "max_abs_delta": float((res.pixels - x0).abs().max()) if p.constrained else None,
        }
        if p.save:
            details["saved_to"] = save_png(image, p.save)
        log.info("visual_adv: loss %s -> %s", details["loss_first"], details["loss_last"])
        return image, details

    def adversarial_image(self, model: Model) -> tuple[Any, dict[str, Any]]:
        """The universal image for ``model``, optimised on first use and reused for every later batch."""
        key = id(model)
        if key not in self._cache:
            self._cache[key] = self.optimise(model)
        return self._cache[key]

    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """Each request (text unchanged) with the universal adversarial image as its only image."""
        image, details = self.adversarial_image(model)
        return [s.with_(images=(image,), meta=details) for s in samples]
