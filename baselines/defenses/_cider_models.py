"""CIDER's two models, loaded from local folders only: LLaVA embeddings and a one-shot diffusion denoiser."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from baselines.base import BackendError


def _device(device: str):  # noqa: ANN202 - torch.device
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _local_dir(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BackendError(
            f"cider: {what} folder {str(p)!r} does not exist (give a local folder; nothing is downloaded)"
        )
    return p


class LlavaEncoder:
    """CIDER's embeddings from a LLaVA-1.5 (HF format) folder.

    Text: mean over tokens of ``get_input_embeddings()(tokenizer(query).input_ids)`` (BOS included, no chat
    template). Image: mean over patches of ``multi_modal_projector(vision_tower(pixels).hidden_states[layer][:, 1:])``.
    """

    def __init__(self, path: str, *, device: str = "auto", dtype: str = "float16") -> None:
        import torch
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        folder = _local_dir(path, "encoder_path")
        self.device = _device(device)
        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        self.model = LlavaForConditionalGeneration.from_pretrained(
            folder, local_files_only=True, torch_dtype=getattr(torch, dtype)
        ).to(self.device)
        self.model.eval()

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) mean input-token embeddings of each text."""
        import torch

        table = self.model.get_input_embeddings()
        out = []
        with torch.no_grad():
            for t in texts:
                ids = self.processor.tokenizer(t, return_tensors="pt").input_ids.to(self.device)
                out.append(table(ids)[0].float().mean(0).cpu().numpy())
        return np.stack(out)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, d) mean projected patch features (CLS dropped) of each image."""
        import torch

        m = self.model.model if hasattr(self.model, "model") else self.model
        layer = self.model.config.vision_feature_layer
        pixels = self.processor.image_processor(list(images), return_tensors="pt")["pixel_values"]
        pixels = pixels.to(self.device, dtype=next(m.vision_tower.parameters()).dtype)
        with torch.no_grad():
            hidden = m.vision_tower(pixels, output_hidden_states=True).hidden_states[layer][:, 1:]
            feats = m.multi_modal_projector(hidden)
        return feats.float().mean(1).cpu().numpy()


def linear_alphas_cumprod(n: int = 1000):  # noqa: ANN201 - torch.Tensor
    """guided-diffusion's linear schedule: betas from 1e-4 to 0.02 (scaled by 1000/n), cumulative alphas."""
    import torch

    scale = 1000 / n
    betas = torch.linspace(scale * 1e-4, scale * 0.02, n, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


class DiffusersDenoiser:
    """One-shot denoising with a diffusers ``UNet2DModel`` (noise prediction in the first 3 channels)."""

    def __init__(self, path: str, *, device: str = "auto", seed: int = 0) -> None:
        folder = _local_dir(path, "denoiser_path")
        try:
            from diffusers import UNet2DModel
        except ImportError:
            raise BackendError(
                "cider's denoiser needs the `diffusers` package: pip install diffusers"
            ) from None
        self.device = _device(device)
        self.unet = UNet2DModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()
        self.alphas = linear_alphas_cumprod()
        self.seed = seed

    def denoise(self, images: Sequence[Image.Image], t: int) -> list[Image.Image]:
        """``pred_xstart`` of one reverse step from ``x_t = q_sample(x0, t)``, as uint8 JPEG-round-tripped images."""
        import torch

        x0 = torch.stack(
            [torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1) for im in images]
        )
        x0 = x0.to(self.device)
        gen = torch.Generator(device="cpu").manual_seed(self.seed + t)
        noise = torch.randn(x0.shape, generator=gen).to(self.device)
        a = float(self.alphas[t])
        xt = a**0.5 * x0 + (1 - a) ** 0.5 * noise
        with torch.no_grad():
            eps = self.unet(xt, torch.full((len(images),), t, device=self.device)).sample[:, :3]
        pred = ((xt - (1 - a) ** 0.5 * eps) / a**0.5).clamp(-1, 1)
        return [jpeg_roundtrip(tensor_to_image(p)) for p in pred]


def tensor_to_image(x) -> Image.Image:  # noqa: ANN001 - a (3, H, W) tensor in [-1, 1]
    """A [-1, 1] CHW tensor as an 8-bit RGB image."""
    arr = ((x.float().cpu().permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def jpeg_roundtrip(img: Image.Image) -> Image.Image:
    """The image saved as JPEG (PIL defaults) and read back, as the official code stores denoised images."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    buf.seek(0)
    return Image.open(buf).convert("RGB")
