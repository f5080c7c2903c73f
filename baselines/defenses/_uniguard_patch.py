"""UniGuard's image guardrail: optimisation of a universal additive noise, loading a released one, applying it.

Optimisation (``image_safety_patch.py`` + ``llava_utils/visual_defender.py`` of donghyunkm/LLaVAGuard@8a7c7a1,
spec 22-defenses.md §5.1): noise delta ~ U(-eps, eps) projected so that x + delta is a valid image; for t = 0..n_iters
(inclusive) a batch of harmful strings is drawn from the corpus, CE = the token-averaged LM loss of the targets after
the prompt with image clamp(x + delta); delta <- clip(delta + alpha * sign(grad CE), -eps, eps), re-projected into
the pixel box (gradient *ascent* on the harmful strings' NLL); the delta kept is the one of the last multiple of 100.
Pixels are [0, 1] at the surrogate's input grid (the processor's resize/crop/pad already applied), so the noise
lands on the exact grid the surrogate sees, as the official code adds it after CLIP preprocessing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baselines.base import WhiteBox


def init_delta(template: Any, epsilon: float, seed: int) -> Any:
    """U(-eps, eps) noise, projected so that template + delta is in [0, 1]."""
    import torch

    g = torch.Generator().manual_seed(seed)
    delta = (torch.rand(template.shape, generator=g, dtype=torch.float32) * 2 - 1) * epsilon
    delta = delta.to(template.device)
    return (template + delta).clamp(0, 1) - template


def optimize_patch(
    wb: WhiteBox,
    template: Any,
    corpus: Sequence[str],
    *,
    prompt: str,
    epsilon: float,
    alpha: float,
    n_iters: int,
    batch_size: int,
    seed: int,
    keep_every: int = 100,
) -> tuple[Any, list[float]]:
    """(delta (1, 3, H, W) float32, CE of each iteration's batch) from the official sign-gradient ascent."""
    import torch

    rng = random.Random(seed)
    template = template.detach().float()
    delta = init_delta(template, epsilon, seed)
    kept = delta.clone()
    history: list[float] = []
    for t in range(n_iters + 1):
        targets = rng.sample(list(corpus), min(batch_size, len(corpus)))
        d = delta.clone().requires_grad_(True)
        ce = wb.target_loss((template + d).clamp(0, 1), [prompt] * len(targets), targets).mean()
        (grad,) = torch.autograd.grad(ce, d)
        history.append(float(ce.detach()))
        with torch.no_grad():
            delta = (delta + alpha * grad.sign()).clamp(-epsilon, epsilon)
            delta = (template + delta).clamp(0, 1) - template
        if (t + 1) % keep_every == 0 or t == n_iters:
            kept = delta.clone()
    return kept.detach().cpu(), history


def load_patch(path: str) -> tuple[Any, dict[str, Any]]:
    """A released patch (``torch.save``d float tensor (3, H, W) or (1, 3, H, W)) and its measured epsilon.

    ``measured_eps_255`` = max |delta| x 255 (rounded to 3 decimals): the file names of released patches are not
    to be trusted (OmniSafeBench's ``safety_patch_eps32.pt`` measures 64/255).
    """
    import hashlib

    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"UniGuard patch file not found: {p}")
    delta = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(delta, torch.Tensor):
        raise ValueError(f"{p}: expected a tensor, got {type(delta).__name__}")
    delta = delta.float()
    if delta.dim() == 3:
        delta = delta.unsqueeze(0)
    if delta.dim() != 4 or delta.shape[:2] != (1, 3):
        raise ValueError(f"{p}: expected shape (3, H, W), got {tuple(delta.shape)}")
    info = {
        "file": p.name,
        "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
        "shape": list(delta.shape[1:]),
        "measured_eps_255": round(float(delta.abs().max()) * 255, 3),
    }
    return delta, info


def apply_patch(images: Sequence[Any], delta: Any, wb: WhiteBox | None) -> tuple[list[Any], str]:
    """``images`` with ``delta`` added, and how: ``processor`` grid (a white-box target whose input size equals
    the patch's: the processor's own resize/crop/pad, then the noise, 8-bit PIL at that size) or ``resize``
    (OmniSafeBench's route for other targets: a plain resize to the patch size, then the noise)."""
    import numpy as np
    import torch
    from PIL import Image

    h, w = int(delta.shape[-2]), int(delta.shape[-1])
    if not images:
        return [], "none"
    if wb is not None and tuple(wb.image_size) == (h, w):
        pixels = wb.pixels_from_images(list(images)).detach().cpu().float()
        return wb.images_from_pixels((pixels + delta).clamp(0, 1)), "processor"
    out = []
    for im in images:
        arr = np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32) / 255
        x = torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)
        y = (x + delta).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        out.append(Image.fromarray((y * 255).round().astype("uint8"), mode="RGB"))
    return out, "resize"
