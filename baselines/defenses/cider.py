"""CIDER, Cross-modality Information DEtectoR (Xu et al., Findings of EMNLP 2024; BASELINES.md §11).

For each (query, image): resize the image to 224x224 (step 0), denoise it one-shot at t = 50, 100, ..., 350
(``range(step, cps*step, step)``, step 50, cps 8) with a diffusion model, embed the query (mean of LLaVA's input
token embeddings, BOS included, no chat template) and every image (mean of LLaVA's projected vision features),
and compute ``c_k = cos(E_text, E_img(k))``. Adversarial iff ``min_k (c_k - c_0) < threshold`` (default
-0.003936767578125). Detected inputs get ``refusal`` ("I'm sorry, but I can not assist.", README); others go to
the model unchanged. The decision is in ``Response.meta["cider"]``. Text-only inputs pass unchecked.

The models are not downloaded: ``encoder_path`` is a local ``llava-hf/llava-1.5-7b-hf``-format folder and
``denoiser_path`` a local diffusers ``UNet2DModel`` folder (e.g. a conversion of guided-diffusion's
``256x256_diffusion_uncond.pt``, whose first 3 output channels are the noise prediction) with the
guided-diffusion linear schedule (1000 steps, betas 1e-4..0.02). Denoised images are JPEG round-tripped as the
official code saves them. See ``_cider_models`` for both loaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from PIL import Image
from pydantic import Field

from baselines.base import BackendError, Defense, Model
from baselines.defenses._wrapper import WrappedModel, refusal_response, with_meta
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample


class Encoder(Protocol):
    """Text and image embeddings in one space (CIDER uses LLaVA's embedding table and vision path)."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) text embeddings."""

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, d) image embeddings."""


class Denoiser(Protocol):
    """One-shot diffusion denoising of an image at timestep t."""

    def denoise(self, images: Sequence[Image.Image], t: int) -> list[Image.Image]:
        """The ``pred_xstart`` of one reverse step from ``q_sample(image, t)``."""


def timesteps(step: int = 50, cps: int = 8) -> list[int]:
    """CIDER's noise levels: ``range(step, cps*step, step)`` = 50..350."""
    return list(range(step, cps * step, step))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``a`` (d,) or (n, d) with ``b`` (n, d)."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def decide(text_emb: np.ndarray, image_embs: np.ndarray, threshold: float) -> dict[str, Any]:
    """CIDER's rule on one input: ``image_embs[0]`` is the resized original, the rest the denoised images."""
    c = cosine(text_emb, image_embs)
    deltas = c[1:] - c[0]
    min_delta = float(deltas.min())
    return {
        "detected": bool(min_delta < threshold),
        "min_delta": min_delta,
        "cos": [round(float(x), 6) for x in c],
    }


@register("defense")
class Cider(Defense):
    """CIDER: refuse when denoising the image drops its similarity to the query by more than tau."""

    paper_id = "2024-xu-cider"
    summary = "CIDER: query-image cosine before/after diffusion denoising; a drop beyond tau => refuse"
    default_attack = "visual_adv"  # the paper's evaluation attack: `run` default

    deviations: ClassVar[list[dict[str, str]]] = [  # the ledger (baselines.base.DEVIATION_KEYS)
        {
            "what": "denoiser",
            "official": "guided-diffusion 256x256 unconditional model run by its own code",
            "ours": "a diffusers UNet2DModel conversion of that checkpoint with the guided-diffusion linear schedule (1000 steps, betas 1e-4..0.02)",
            "why": "one diffusers dependency instead of the guided-diffusion code base",
            "effect": "numerical differences in the denoised images",
        },
        {
            "what": "text-only samples",
            "official": "every input has an image",
            "ours": "inputs without an image pass unchecked",
            "why": "there is no image to compare",
            "effect": "text-only conditions are unchanged by CIDER",
        },
    ]

    class Params(StrictParams):
        """CIDER parameters (defaults from ``code/main.py``)."""

        encoder_path: str | None = Field(None, description="local llava-1.5-7b-hf folder (embeddings)")
        denoiser_path: str | None = Field(None, description="local diffusers UNet2DModel folder (denoiser)")
        threshold: float = Field(
            -0.003936767578125, description="tau: adversarial iff min_k(c_k - c_0) < tau"
        )
        step: int = Field(50, description="noise-level step")
        cps: int = Field(8, description="number of checkpoints incl. the original (t = step .. (cps-1)*step)")
        image_size: int = Field(224, description="images are resized to this square size first")
        refusal: str = Field("I'm sorry, but I can not assist.", description="answer to detected inputs")
        device: str = Field("auto", description="torch device for the encoder and denoiser")
        dtype: str = Field("float16", description="encoder dtype (official: fp16; use float32 on CPU)")
        seed: int = Field(0, description="seed of the diffusion noise")

    def __init__(
        self, params: Any = None, *, encoder: Encoder | None = None, denoiser: Denoiser | None = None
    ):
        super().__init__(params)
        self.encoder, self.denoiser = encoder, denoiser

    def wrap(self, model: Model) -> Model:
        """The model behind CIDER's detector; loads the encoder and denoiser from their local paths."""
        missing = [
            n for n, v in (("encoder_path", self.encoder), ("denoiser_path", self.denoiser)) if v is None
        ]
        missing = [n for n in missing if getattr(self.params, n) is None]
        if missing:
            raise BackendError(
                "cider needs local models that are never downloaded: "
                + ", ".join(missing)
                + " not set. Set --set encoder_path=<local llava-1.5-7b-hf folder> (the embedding model) and "
                "--set denoiser_path=<local diffusers UNet2DModel folder, e.g. guided-diffusion 256x256 uncond>."
            )
        from baselines.defenses import _cider_models

        p = self.params
        if self.encoder is None:
            self.encoder = _cider_models.LlavaEncoder(p.encoder_path, device=p.device, dtype=p.dtype)
        if self.denoiser is None:
            self.denoiser = _cider_models.DiffusersDenoiser(p.denoiser_path, device=p.device, seed=p.seed)
        return _CiderModel(model, self)

    def detect(self, samples: Sequence[Sample]) -> list[dict[str, Any]]:
        """CIDER's decision for each sample with an image (its first image), batched per noise level."""
        p = self.params
        base = [s.images[0].convert("RGB").resize((p.image_size, p.image_size)) for s in samples]
        series = [base] + [self.denoiser.denoise(base, t) for t in timesteps(p.step, p.cps)]
        text = self.encoder.embed_text([s.text for s in samples])
        per_level = [self.encoder.embed_images(level) for level in series]  # (levels, n, d)
        return [
            decide(text[i], np.stack([lv[i] for lv in per_level]), p.threshold) for i in range(len(samples))
        ]


class _CiderModel(WrappedModel):
    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Detect on image inputs; one batched model call for everything not detected."""
        checked = [i for i, s in enumerate(samples) if s.images]
        decisions = dict(zip(checked, self.defense.detect([samples[i] for i in checked]), strict=True))  # type: ignore[attr-defined]
        passed = [i for i in range(len(samples)) if not decisions.get(i, {}).get("detected")]
        replies = self.inner.generate([samples[i] for i in passed], config) if passed else []
        answers = dict(zip(passed, replies, strict=True))
        out = []
        for i, s in enumerate(samples):
            meta = {"checked": i in decisions, **decisions.get(i, {})}
            if i in answers:
                out.append(with_meta(answers[i], "cider", meta))
            else:
                out.append(refusal_response(s, self.params.refusal, "cider", meta))
        return out
