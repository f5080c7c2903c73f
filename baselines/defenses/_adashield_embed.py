"""AdaShield-A's retrieval embeddings: CLIP ViT-B/32 through transformers, or the offline stand-in (explicit choice).

Official (``inference_attack_code/infer_qr.py``, ``inference_benign_code/benign_ours.py`` @ 305df573):
``e = L2normalize(concat(clip.encode_image(preprocess(image)), clip.encode_text(clip.tokenize(query))))`` with
OpenAI CLIP ``ViT-B/32``; cosine similarity is the dot product of two such vectors.

- ``hf:<id or path>`` (e.g. ``hf:openai/clip-vit-base-patch32``, the transformers port of the same weights):
  ``get_image_features`` and ``get_text_features`` of a ``CLIPModel``, concatenated, L2-normalised. Text longer
  than CLIP's 77 tokens is truncated (``clip.tokenize`` would raise instead); a sample without an image gets a
  zero image half.
- ``stand-in``: :func:`baselines.defenses._adashield_train.embed`, a deterministic offline vector (grey
  thumbnail + hashed bag of words). Not CLIP: its similarities are on another scale, so the paper's beta is not
  calibrated for it. Chosen only by name (``--set embed=stand-in``), recorded in the config and in every
  response's decision, and declared in AdaShield-A's deviations ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from baselines.base import BackendError
from baselines.types import Sample

STAND_IN = "stand-in"
OFFICIAL = "hf:openai/clip-vit-base-patch32"


class ClipEmbedder:
    """CLIP image + text features of a sample, concatenated and L2-normalised (AdaShield's retrieval key)."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model, self.processor = model, processor

    @classmethod
    def load(cls, ref: str) -> ClipEmbedder:
        """A ``CLIPModel`` and its processor from a hub id or folder (``hf:`` stripped); a clear error if absent."""
        name = ref.removeprefix("hf:")
        try:
            from transformers import CLIPModel, CLIPProcessor

            model = CLIPModel.from_pretrained(name).eval()
            processor = CLIPProcessor.from_pretrained(name)
        except Exception as e:  # noqa: BLE001 - any failure to load is reported the same way
            raise BackendError(
                f"adashield_a: cannot load the CLIP retrieval embedding {ref!r} ({type(e).__name__}: "
                f"{str(e)[:200]}). Download it first (huggingface-cli download openai/clip-vit-base-patch32) or "
                "give a local folder (--set embed=hf:/path/to/clip), or choose the offline stand-in embedding "
                "explicitly with --set embed=stand-in (recorded as such in the result)"
            ) from None
        return cls(model, processor)

    def __call__(self, sample: Sample) -> np.ndarray:
        """The unit vector of one sample."""
        import torch

        with torch.no_grad():
            text_in = self.processor(
                text=[sample.text], return_tensors="pt", padding=True, truncation=True, max_length=77
            )
            t = _features(self.model.get_text_features(**text_in))
            if sample.images:
                image_in = self.processor(images=[sample.images[0].convert("RGB")], return_tensors="pt")
                i = _features(self.model.get_image_features(pixel_values=image_in["pixel_values"]))
            else:
                i = torch.zeros_like(t)
            v = torch.cat([i, t], dim=-1)[0].float()
        return (v / v.norm().clamp_min(1e-12)).numpy().astype(np.float64)


def _features(out: Any) -> Any:
    """The pooled projection from ``get_*_features`` (a tensor, or an output object in newer transformers)."""
    return out if hasattr(out, "shape") else out.pooler_output


def embedder(ref: str) -> Callable[[Sample], np.ndarray]:
    """The embedding function named by ``ref``: ``stand-in`` or ``hf:<CLIP id or folder>``."""
    if ref == STAND_IN:
        from baselines.defenses._adashield_train import embed

        return embed
    if ref.startswith("hf:"):
        return ClipEmbedder.load(ref)
    raise ValueError(f"adashield_a: unknown embed {ref!r}; expected 'stand-in' or 'hf:<CLIP id or folder>'")


def embed_all(fn: Callable[[Sample], np.ndarray], samples: Sequence[Sample]) -> list[list[float]]:
    """Embeddings of ``samples`` as plain lists (what a pool stores)."""
    return [[float(x) for x in fn(s)] for s in samples]
