"""Visual-RolePlay, query-specific (Ma et al., "Visual-RolePlay: Universal Jailbreak Attack on MultiModal Large
Language Models via Role-playing Image Character", arXiv 2405.20773).

Official code ``SiyuanMaCS/VisualRoleplay`` @ dbaf4b57 (spec ``21-attacks-more.md`` §4), black-box:

1. Character: an attacker LLM (paper: Mistral-7B-Instruct-v0.2; ``--set attacker=...``) gets the verbatim
   prompt (``data/visual_roleplay/character_*.txt``; the two demonstrations of ``demos.csv``, byte-identical to
   the official file) sent raw, sampled with temperature 1, top-p 0.5, 1024 new tokens. The answer is accepted
   when each of the three official regexes — ``\\[([^]]+)\\]`` (text-to-image prompt, < 300 characters),
   ``\\{([^}]+)\\}`` (detailed description), ``\\|([^)]+)\\|`` (brief description) — matches exactly once;
   otherwise it is asked again (the official loop has no cap; here ``max_tries``).
2. Picture: the text-to-image prompt through SDXL base + refiner (ensemble of experts, 30 steps, hand-over at
   0.8, 1024 x 1024) with a local ``diffusers`` install (``--set t2i=<pipeline folder or hub id>``), or with
   ``t2i=none`` a drawn stand-in portrait from ``pool`` (default: the project's drawings), labelled as such
   in every sample's meta.
3. Image: typography of the brief description on top, the picture, typography of the query at the bottom
   (Arial 60 -> Liberation Sans 60, the metric-compatible bundled substitute; canvas 1024 x 60 (lines + 1), text
   at (0, 30), greedy wrap at 1024 px: ``baselines.typography.typo_drawn``), stacked vertically.
4. Text: the fixed role-play instruction (the query is only in the image).

The universal variant (a character searched over RedTeam-2K in five rounds) is not implemented: its official
scripts do not run as shipped (spec §4.6). No target query is made by the attack (``attack_queries`` 0).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, Field

from baselines.attacks._llm import Helpers, ask, model_label
from baselines.attacks._pool import load_pool, pick
from baselines.attacks._verbatim import read_verbatim
from baselines.base import Attack, BackendError, Model
from baselines.imaging import stack_vertically
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import Sample
from baselines.typography import font_file, typo_drawn

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).parent / "data" / "visual_roleplay"
RE_T2I = re.compile(r"\[([^]]+)\]")
RE_DETAILED = re.compile(r"\{([^}]+)\}")
RE_BRIEF = re.compile(r"\|([^)]+)\|")


def demonstrations() -> str:
    """The demonstrations block built from ``demos.csv`` as the official code formats each row."""
    with (DATA_DIR / "demos.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return "".join(
        f"Demonstration {i}:\nbrief description: |{r['brief description']}|\n"
        f"detailed description: {{{r['detailed description']}}}\n"
        f"Prompt for image-generation model: [{r['diffusion prompt']}]\n\n"
        for i, r in enumerate(rows)
    )


def character_prompt(question: str) -> str:
    """The full prompt sent (raw) to the attacker LLM for one question."""
    return (
        read_verbatim(DATA_DIR / "character_prompt.txt")
        .replace("{system_prompt}", read_verbatim(DATA_DIR / "character_system.txt"), 1)
        .replace("{demonstrations}", demonstrations(), 1)
        .replace("{question}", question, 1)
    )


def parse_character(text: str, max_t2i_chars: int = 300) -> dict[str, str] | None:
    """{"t2i", "detailed", "brief"} when each regex matches exactly once and the prompt is short enough."""
    found = [r.findall(text) for r in (RE_T2I, RE_DETAILED, RE_BRIEF)]
    if any(len(f) != 1 for f in found) or len(found[0][0]) >= max_t2i_chars:
        return None
    return {"t2i": found[0][0], "detailed": found[1][0], "brief": found[2][0]}


def typography(text: str, font: str, size: int, width: int) -> Image.Image:
    """VRP's typography: canvas ``width`` x ``size * (lines + 1)``, black text at (0, size / 2)."""
    return typo_drawn(text.replace("\n", " "), font, size, width, extra_lines=1).render()


def vrp_image(brief: str, picture: Image.Image, query: str, font: str, size: int, width: int) -> Image.Image:
    """[brief-description typography] / [picture] / [query typography], stacked (black fill if narrower)."""
    parts = [typography(brief, font, size, width), picture, typography(query, font, size, width)]
    return stack_vertically(parts, background="#000000")


@register("attack")
class VisualRolePlay(Attack):
    """Visual-RolePlay: a high-risk character (LLM + T2I) and the query in one image, + a role-play prompt."""

    paper_id = "2024-ma-visual-roleplay"
    summary = "Role-play image: an LLM-written high-risk character's picture + the query typography."
    queries_model = True  # the attacker may be the target itself
    contract_params = {"attacker": "target", "t2i": "none", "max_tries": 2}

    class Params(StrictParams):
        """Visual-RolePlay parameters (defaults from the official code)."""

        attacker: str = Field(
            "hf:mistralai/Mistral-7B-Instruct-v0.2", description="character LLM spec (paper: Mistral-7B)"
        )
        attacker_base_url: str | None = Field(None, description="base URL for an openai: attacker")
        temperature: float = Field(1.0, ge=0, description="attacker sampling temperature")
        top_p: float = Field(0.5, gt=0, le=1, description="attacker nucleus sampling")
        max_new_tokens: int = Field(1024, gt=0, description="attacker token budget")
        max_tries: int = Field(20, ge=1, description="attacker calls per query until a parseable answer")
        max_t2i_chars: int = Field(300, gt=0, description="text-to-image prompts this long are rejected")
        t2i: str = Field(
            "stabilityai/stable-diffusion-xl-base-1.0",
            description="diffusers pipeline (folder or hub id) or 'none' for the drawn stand-in portrait",
        )
        t2i_refiner: str | None = Field(
            "stabilityai/stable-diffusion-xl-refiner-1.0", description="SDXL refiner (None: base only)"
        )
        t2i_steps: int = Field(30, ge=1, description="diffusion steps of base and refiner")
        t2i_switch: float = Field(0.8, gt=0, lt=1, description="denoising_end / denoising_start hand-over")
        pool: str | None = Field(None, description="stand-in portraits folder (None: bundled drawings)")
        font: str = Field("LiberationSans", description="typography font (Arial substitute) or a .ttf path")
        font_size: int = Field(60, gt=0, description="typography font size")
        width: int = Field(1024, gt=0, description="typography canvas width and wrap width")
        seed: int = Field(0, description="seed of the attacker sampling, diffusion and pool choice")

    deviations = [
        {
            "what": "retry cap",
            "official": "the character is regenerated until it parses (no cap)",
            "ours": "at most max_tries calls, then the sample is left unchanged with attack_error in meta",
            "why": "a run must end",
            "effect": "none unless the attacker keeps failing the format",
        },
        {
            "what": "font",
            "official": "Arial (assets/ARIAL.TTF) size 60",
            "ours": "Liberation Sans size 60 (metric-compatible, bundled)",
            "why": "Arial is not redistributable",
            "effect": "same wrapping; glyph shapes differ slightly",
        },
        {
            "what": "seeding",
            "official": "no seed for the LLM or SDXL",
            "ours": "seeded attacker sampling and diffusion",
            "why": "reproducible runs",
            "effect": "none on average",
        },
        {
            "what": "universal variant",
            "official": "5-round character search over RedTeam-2K (scripts not runnable as shipped)",
            "ours": "not implemented; query-specific only",
            "why": "time; the official universal pipeline has undefined names (spec section 4.6)",
            "effect": "the universal numbers of the paper cannot be reproduced with this baseline",
        },
    ]

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.helpers = Helpers(self.name)
        self._pipes: tuple[Any, Any] | None = None
        self._pool: list[Image.Image] | None = None
        if self.params.t2i != "none":
            self._check_diffusers()

    def _check_diffusers(self) -> None:
        try:
            import diffusers  # noqa: F401
        except ImportError:
            raise BackendError(
                "visual_roleplay: the character picture needs the 'diffusers' package (SDXL, the paper's "
                "text-to-image model), which is not installed: pip install diffusers, or pass --set t2i=none "
                f"for the labelled stand-in portrait (the attack also needs its attacker LLM, now "
                f"{self.params.attacker!r}: --set attacker=<model spec>)"
            ) from None

    # -- characters ------------------------------------------------------------------------------------------
    def characters(self, samples: Sequence[Sample], target: Model) -> dict[str, dict[str, Any]]:
        """Per sample id: the parsed character and the number of attacker calls (or an error)."""
        p = self.params
        llm = self.helpers.get("attacker", p.attacker, target, p.attacker_base_url)
        out: dict[str, dict[str, Any]] = {}
        todo = list(samples)
        for attempt in range(p.max_tries):
            if not todo:
                break
            texts = ask(
                self.name,
                "attacker",
                llm,
                [character_prompt(s.goal or s.text) for s in todo],
                max_new_tokens=p.max_new_tokens,
                temperature=p.temperature,
                top_p=p.top_p,
                seed=p.seed + attempt,
                ids=[s.id for s in todo],
            )
            left = []
            for s, text in zip(todo, texts, strict=True):
                parsed = parse_character(text, p.max_t2i_chars)
                if parsed is None:
                    left.append(s)
                else:
                    out[s.id] = {**parsed, "attacker_calls": attempt + 1}
            todo = left
        for s in todo:
            out[s.id] = {
                "error": f"no parseable character in {p.max_tries} attacker answers",
                "attacker_calls": p.max_tries,
            }
        return out

    # -- pictures --------------------------------------------------------------------------------------------
    def picture(self, prompt: str, key: str) -> tuple[Image.Image, str]:
        """(picture, source): SDXL base + refiner, or the stand-in portrait."""
        p = self.params
        if p.t2i == "none":
            if self._pool is None:
                self._pool = load_pool(p.pool or DATA_DIR / "pool")
            i, im = pick(self._pool, key, p.seed)
            return im, f"stand-in portrait pool[{i}] (no text-to-image model; not the paper's SDXL picture)"
        import torch

        base, refiner = self._pipelines()
        gen = torch.Generator("cpu").manual_seed(p.seed)
        if refiner is None:
            return base(prompt=prompt, num_inference_steps=p.t2i_steps, generator=gen).images[0], p.t2i
        latents = base(
            prompt=prompt,
            num_inference_steps=p.t2i_steps,
            denoising_end=p.t2i_switch,
            output_type="latent",
            generator=gen,
        ).images
        image = refiner(
            prompt=prompt,
            num_inference_steps=p.t2i_steps,
            denoising_start=p.t2i_switch,
            image=latents,
            generator=gen,
        ).images[0]
        return image, f"{p.t2i} + {p.t2i_refiner}"

    def _pipelines(self) -> tuple[Any, Any]:
        if self._pipes is None:
            import torch
            from diffusers import DiffusionPipeline

            p = self.params
            dev = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = torch.float16 if dev == "cuda" else torch.float32
            try:
                base = DiffusionPipeline.from_pretrained(p.t2i, torch_dtype=dtype).to(dev)
                refiner = None
                if p.t2i_refiner:
                    refiner = DiffusionPipeline.from_pretrained(
                        p.t2i_refiner, text_encoder_2=base.text_encoder_2, vae=base.vae, torch_dtype=dtype
                    ).to(dev)
            except OSError as e:
                raise BackendError(
                    f"visual_roleplay: cannot load the text-to-image pipeline {p.t2i!r} ({e}); download it, "
                    "pass --set t2i=<local diffusers folder>, or --set t2i=none for the stand-in portrait"
                ) from None
            self._pipes = (base, refiner)
        return self._pipes

    # -- the attack ------------------------------------------------------------------------------------------
    def apply(self, samples: Sequence[Sample], model: Model) -> list[Sample]:
        """The VRP image and the role-play instruction per sample (the target model is not queried)."""
        p = self.params
        chars = self.characters(samples, model)
        llm = self.helpers.get("attacker", p.attacker, model, p.attacker_base_url)
        out = []
        for s in samples:
            c = chars[s.id]
            meta: dict[str, Any] = {
                "attack": self.name,
                "attacker": p.attacker if p.attacker != "target" else f"target ({model_label(llm)})",
                "attacker_calls": c["attacker_calls"],
                "attack_queries": 0,
                "attack_stop": "no-feedback",
            }
            if "error" in c:
                log.warning("visual_roleplay: %s: %s", s.id, c["error"])
                out.append(s.with_(meta={**meta, "attack_error": c["error"]}))
                continue
            picture, source = self.picture(c["t2i"], s.id)
            image = vrp_image(c["brief"], picture, s.goal or s.text, p.font, p.font_size, p.width)
            meta.update(
                brief=c["brief"],
                detailed=c["detailed"],
                t2i_prompt=c["t2i"],
                picture=source,
                font_file=font_file(p.font),
                font_size=p.font_size,
            )
            text = read_verbatim(DATA_DIR / "roleplay_instruction.txt")
            out.append(s.with_(text=text, images=(image,), meta=meta))
        return out
