"""UniGuard (Oh et al., arXiv 2411.01703): an optimised universal image noise plus a text guardrail.

Spec 22-defenses.md §5. At inference every input image gets the additive noise delta (L-inf <= eps) and every
prompt the text guardrail; nothing else is queried. The noise comes from (``image_patch``):
- ``optimize`` (default): the official sign-gradient ascent on the NLL of a harmful corpus (``_uniguard_patch``),
  run once when the model is wrapped, on ``surrogate`` (None: the protected model's white box). Official corpus:
  AdvBench ``harmful_strings.csv`` (574 strings; ``corpus_path``); the bundled stand-in is 32 compliance strings of
  the model organism naming harmful activities of its *training* vocabulary (none of the bundled held-out ones).
  Official template: Qi et al.'s unconstrained adversarial image (``template_path``); the stand-in is the FigStep
  layout of the corpus's first activity (the organism's own jailbreak image).
- ``file``: a released patch from ``patch_path`` (``torch.save``d (3, H, W)); its real epsilon (max |delta| x 255)
  is measured and recorded, and ``expected_eps`` (if set) must match it — OmniSafeBench's
  ``safety_patch_eps32.pt`` measures 64/255.
- ``none``: text guardrail only.
Text (``text_patch``): ``heuristic`` appended as ``text + "\\n" + guardrail`` (OmniSafeBench's default);
``optimized`` and ``natural_language`` prepended as ``guardrail + "\\n" + text`` (the official script's placement
for the optimised one); the guardrail string is removed from answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from baselines.base import Defense, Model, WhiteBoxRequiredError
from baselines.defenses._uniguard_patch import apply_patch, load_patch, optimize_patch
from baselines.defenses._wrapper import WrappedModel, read_data, with_meta
from baselines.params import ParamsError, StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

TEXT_PATCHES = {
    "heuristic": "uniguard_text_patch_heuristic.txt",
    "optimized": "uniguard_text_patch_optimized.txt",
    "natural_language": "uniguard_text_patch_optimized_natural_language.txt",
}


def text_patch(kind: str) -> str:
    """The guardrail text (the file's final newline stripped, as the official code reads it)."""
    return read_data(TEXT_PATCHES[kind]).strip()


def guard_text(text: str, kind: str) -> str:
    """The prompt with the guardrail: heuristic appended after a newline, the optimised ones prepended."""
    if kind == "none":
        return text
    g = text_patch(kind)
    return text + "\n" + g if kind == "heuristic" else g + "\n" + text


def strip_guardrail(answer: str, kind: str) -> str:
    """The answer with every copy of the guardrail string removed."""
    return answer if kind == "none" else answer.replace(text_patch(kind), "").strip()


def read_corpus(path: str | None) -> list[str]:
    """Harmful strings, one per line, empty lines dropped (``corpus_path``, else the organism stand-in)."""
    if path is None:
        text = read_data("uniguard_organism_corpus.txt")
    else:
        from pathlib import Path

        text = Path(path).expanduser().read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def eps_in_name(name: str) -> int | None:
    """The epsilon a patch file's name claims (``..._eps32.pt`` -> 32), or None."""
    m = re.search(r"eps(\d+)", name)
    return int(m.group(1)) if m else None


@register("defense")
class Uniguard(Defense):
    """UniGuard: universal safety noise on every image + a text guardrail on every prompt."""

    paper_id = "2024-oh-uniguard"
    summary = "UniGuard: optimised additive image noise (eps 64/255) + a text guardrail on every request"
    default_attack = "figstep"  # the project's typographic attack (paper: Qi et al. adversarial images)
    contract_params = {"image_patch": "optimize", "surrogate": "organism", "n_iters": 1}

    class Params(StrictParams):
        """UniGuard parameters (LLaVAGuard defaults: eps 64/255, alpha 1/255, 5000 iterations, batch 2)."""

        image_patch: Literal["optimize", "file", "none"] = Field(
            "optimize", description="optimise the noise now, load a released one, or none"
        )
        patch_path: str | None = Field(None, description="local .pt patch file (image_patch=file)")
        expected_eps: int | None = Field(None, description="eps x 255 the patch file must measure (checked)")
        epsilon: int = Field(64, ge=1, le=255, description="L-inf bound of the optimised noise, x 1/255")
        alpha: int = Field(1, ge=1, description="step size, x 1/255")
        n_iters: int = Field(5000, ge=0, description="optimisation iterations (inclusive loop: n + 1 steps)")
        batch_size: int = Field(2, ge=1, description="harmful targets per step (LLaVAGuard 2)")
        corpus_path: str | None = Field(None, description="harmful strings, one per line (None: stand-in)")
        template_path: str | None = Field(None, description="template image (None: FigStep stand-in)")
        prompt: str = Field("", description="user text during optimisation (official: empty query)")
        surrogate: str | None = Field(None, description="model spec to optimise on (None: protected model)")
        seed: int = Field(0, description="noise init and target sampling seed")
        text_patch: Literal["heuristic", "optimized", "natural_language", "none"] = Field(
            "heuristic", description="text guardrail (heuristic appended, optimised ones prepended)"
        )

    deviations = [
        {
            "what": "harmful corpus and template image",
            "official": "AdvBench harmful_strings.csv (574) and Qi et al.'s unconstrained adversarial image",
            "ours": "local files when given; offline stand-ins: 32 organism compliance strings (training "
            "vocabulary) and the FigStep layout of the first one's activity",
            "why": "neither file is bundled; the organism's 'harmful content' is compliance naming a harmful act",
            "effect": "a patch tuned to the organism's jailbreak answers; says nothing about real corpora",
        },
        {
            "what": "iterations on the organism run",
            "official": "5000 (LLaVAGuard)",
            "ours": "5000 by default; the committed organism run sets n_iters (see its params)",
            "why": "CPU time",
            "effect": "a weaker patch if the loss has not converged",
        },
        {
            "what": "target tokenisation",
            "official": "targets tokenised alone, BOS stripped, after '[/INST] ' (LLaMA SentencePiece: '▁Sure')",
            "ours": "a leading space is added to each target (byte-level BPE needs it after 'ASSISTANT:')",
            "why": "the same word-initial tokens on the organism's tokenizer",
            "effect": "none intended",
        },
        {
            "what": "noise grid on other targets",
            "official": "added after LLaVA's CLIP preprocessing (336 grid)",
            "ours": "processor grid when the target's tower size equals the patch's; else OmniSafeBench's "
            "plain resize to the patch size, then 8-bit PIL",
            "why": "black-box targets take images, not tensors",
            "effect": "the target's own preprocessing moves the noise off its optimised grid",
        },
    ]

    def wrap(self, model: Model) -> Model:
        """The model with the guardrails (the noise is optimised or loaded now)."""
        delta, provenance = self.image_delta(model)
        return _UniGuardModel(model, self, delta, provenance)

    def image_delta(self, model: Model) -> tuple[Any, dict[str, Any]]:
        """(delta (1, 3, H, W) or None, provenance) for ``image_patch``."""
        p = self.params
        if p.image_patch == "none":
            return None, {"image_patch": "none"}
        if p.image_patch == "file":
            if not p.patch_path:
                raise ParamsError("uniguard: image_patch=file needs patch_path=<local .pt file>")
            delta, info = load_patch(p.patch_path)
            named = eps_in_name(info["file"])
            info.update(image_patch="file", named_eps_255=named)
            if p.expected_eps is not None and round(info["measured_eps_255"]) != p.expected_eps:
                raise ParamsError(
                    f"uniguard: {info['file']} measures eps {info['measured_eps_255']}/255, not the expected "
                    f"{p.expected_eps}/255"
                )
            info["name_matches_eps"] = named is None or named == round(info["measured_eps_255"])
            return delta, info
        return self.optimize(model)

    def optimize(self, model: Model) -> tuple[Any, dict[str, Any]]:
        """Run the official optimisation on the surrogate (or the protected model's white box)."""
        import hashlib

        p = self.params
        source = model
        if p.surrogate is not None:
            from baselines.models import load_model

            source = load_model(p.surrogate)
        wb = source.white_box
        if wb is None:
            raise WhiteBoxRequiredError(
                "uniguard: image_patch=optimize needs gradients of a LLaVA-family model (--model organism or "
                "hf:<llava>, or surrogate=<spec>), or image_patch=file with patch_path=<released .pt>"
            )
        corpus = read_corpus(p.corpus_path)
        template = self.template_image(corpus)
        x = wb.pixels_from_images([template]).detach()
        targets = [" " + t for t in corpus]
        delta, history = optimize_patch(
            wb,
            x,
            targets,
            prompt=p.prompt,
            epsilon=p.epsilon / 255,
            alpha=p.alpha / 255,
            n_iters=p.n_iters,
            batch_size=p.batch_size,
            seed=p.seed,
        )
        return delta, {
            "image_patch": "optimize",
            "surrogate": source.info().get("id"),
            "corpus": p.corpus_path or "stand-in: uniguard_organism_corpus.txt",
            "corpus_sha256": hashlib.sha256("\n".join(corpus).encode()).hexdigest(),
            "n_corpus": len(corpus),
            "template": p.template_path or "stand-in: FigStep layout of the corpus's first activity",
            "ce_first": history[0] if history else None,
            "ce_last": history[-1] if history else None,
            "measured_eps_255": round(float(delta.abs().max()) * 255, 3),
            "shape": list(delta.shape[1:]),
        }

    def template_image(self, corpus: Sequence[str]) -> Any:
        """The template image: ``template_path``, else the FigStep layout of the corpus's first activity."""
        if self.params.template_path:
            from baselines.imaging import load_image

            return load_image(self.params.template_path)
        from baselines.typography import figstep_drawn, figstep_text

        first = corpus[0].split(" the steps to ", 1)[-1].rstrip(".")
        return figstep_drawn(figstep_text(f"Steps to {first}.")).render()


class _UniGuardModel(WrappedModel):
    def __init__(self, inner: Model, defense: Uniguard, delta: Any, provenance: dict[str, Any]) -> None:
        super().__init__(inner, defense)
        self.delta = delta
        self.provenance = provenance

    def info(self) -> dict[str, Any]:
        """Inner info plus where the noise came from (measured eps, corpus, losses)."""
        info = super().info()
        info["defenses"][-1]["patch"] = self.provenance
        return info

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Noise on every image, guardrail on every prompt, one batched call; guardrail removed from answers."""
        kind = self.params.text_patch
        wb = self.inner.white_box
        guarded: list[Sample] = []
        grids: list[str] = []
        for s in samples:
            images, grid = (
                apply_patch(s.images, self.delta, wb) if self.delta is not None else (list(s.images), "none")
            )
            guarded.append(s.with_(text=guard_text(s.text, kind), images=tuple(images)))
            grids.append(grid)
        out = self.inner.generate(guarded, config)
        meta = {"text_patch": kind, "image_patch": self.provenance.get("image_patch")}
        return [
            with_meta(r, "uniguard", {**meta, "noise_grid": g}, text=strip_guardrail(r.text, kind))
            for r, g in zip(out, grids, strict=True)
        ]
