"""JailGuard's ten image mutators and its policy mutator, re-implemented with PIL + numpy (no torchvision).

Source: ``JailGuard/utils/augmentations.py`` of shiningrain/JailGuard (BASELINES.md §10.1). The official code
draws its levels with ``numpy`` and then calls torchvision transforms that draw again with torch; here a single
seeded ``numpy.random.Generator`` makes both kinds of draws, in the same order, so a (seed, image) pair always
gives the same variant. torchvision semantics kept: RandomSolarize and RandomPosterize apply with their default
``p = 0.5``; GaussianBlur draws one sigma in U(0.1, 2.0) and pads with reflection; RandomRotation rotates
counter-clockwise with nearest resampling and black fill, without expanding; RandomResizedCrop uses its
ratio (3/4, 4/3) and 10-attempt sampling with a centre-crop fallback, then a bilinear resize; ColorJitter applies
brightness and hue in a random order, the hue shift wrapping in PIL's uint8 HSV space.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

Rng = np.random.Generator
Mutator = Callable[[Image.Image, Rng], Image.Image]


def _u(rng: Rng, maxl: float, minl: float = 0.1) -> float:
    """``sample_float_level``: U(minl, maxl)."""
    return float(rng.uniform(minl, maxl))


def _i(rng: Rng, maxl: int, minl: int = 1) -> int:
    """``sample_int_level``: randint(minl, maxl), maxl exclusive."""
    return int(rng.integers(minl, maxl))


def horizontal_flip(img: Image.Image, rng: Rng) -> Image.Image:
    """HF: ``RandomHorizontalFlip(p=U(0.1, 1.0))``."""
    p = _u(rng, 1.0)
    return ImageOps.mirror(img) if rng.random() < p else img.copy()


def vertical_flip(img: Image.Image, rng: Rng) -> Image.Image:
    """VF: ``RandomVerticalFlip(p=U(0.1, 1.0))``."""
    p = _u(rng, 1.0)
    return ImageOps.flip(img) if rng.random() < p else img.copy()


def random_rotation(img: Image.Image, rng: Rng) -> Image.Image:
    """RR: ``RandomRotation(degrees=(0, U(0.1, 180)))``."""
    top = _u(rng, 180)
    angle = float(rng.uniform(0.0, top))
    return img.rotate(angle, resample=Image.Resampling.NEAREST, expand=False, fillcolor=0)


def crop_resize(img: Image.Image, rng: Rng) -> Image.Image:
    """CR: output (h, w) = (max(randint(1,500), 0.8H), max(randint(1,500), 0.8W)); ``RandomResizedCrop(scale=(0.9,1))``."""
    w_img, h_img = img.size
    out_w = int(max(_i(rng, 500), 0.8 * w_img))
    out_h = int(max(_i(rng, 500), 0.8 * h_img))
    area = w_img * h_img
    log_ratio = (math.log(3 / 4), math.log(4 / 3))
    box = None
    for _ in range(10):
        target = area * float(rng.uniform(0.9, 1.0))
        aspect = math.exp(float(rng.uniform(*log_ratio)))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w_img and 0 < ch <= h_img:
            top = int(rng.integers(0, h_img - ch + 1))
            left = int(rng.integers(0, w_img - cw + 1))
            box = (left, top, left + cw, top + ch)
            break
    if box is None:  # torchvision's fallback: centre crop at the clamped ratio
        in_ratio = w_img / h_img
        if in_ratio < 3 / 4:
            cw, ch = w_img, int(round(w_img / (3 / 4)))
        elif in_ratio > 4 / 3:
            ch, cw = h_img, int(round(h_img * (4 / 3)))
        else:
            cw, ch = w_img, h_img
        top, left = (h_img - ch) // 2, (w_img - cw) // 2
        box = (left, top, left + cw, top + ch)
    return img.resize((out_w, out_h), Image.Resampling.BILINEAR, box=box)


def random_mask(img: Image.Image, rng: Rng) -> Image.Image:
    """RM: a black rectangle of min(200, 0.3*dim) per dimension at a random top-left inside the image."""
    w_img, h_img = img.size
    mw, mh = min(200, 0.3 * w_img), min(200, 0.3 * h_img)
    x = int(rng.integers(0, max(1, int(w_img - mw))))
    y = int(rng.integers(0, max(1, int(h_img - mh))))
    out = img.copy()
    ImageDraw.Draw(out).rectangle((x, y, x + mw, y + mh), fill="black")
    return out


def random_solarize(img: Image.Image, rng: Rng) -> Image.Image:
    """RS: ``RandomSolarize(threshold=U(0.1, 200))`` (applied with p = 0.5; pixels >= threshold inverted)."""
    threshold = _u(rng, 200)
    return ImageOps.solarize(img, threshold) if rng.random() < 0.5 else img.copy()


def random_grayscale(img: Image.Image, rng: Rng) -> Image.Image:
    """GR: grayscale with the same channel count when U(0.1, 1) >= 0.5, else unchanged."""
    if _u(rng, 1) >= 0.5:
        return img.convert("L").convert(img.mode) if img.mode != "L" else img.copy()
    return img.copy()


def _gauss_kernel(k: int, sigma: float) -> np.ndarray:
    x = np.linspace(-(k - 1) / 2, (k - 1) / 2, k)
    pdf = np.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def gaussian_blur(img: Image.Image, rng: Rng) -> Image.Image:
    """BL: ``GaussianBlur(kernel_size=(kx, ky))``, kx, ky in {1, 3, 5, 7}, sigma ~ U(0.1, 2.0)."""
    kx = 2 * _i(rng, 5) - 1
    ky = 2 * _i(rng, 5) - 1
    sigma = float(rng.uniform(0.1, 2.0))
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    px, py = kx // 2, ky // 2
    pad = np.pad(arr, ((py, py), (px, px), (0, 0)), mode="reflect")
    gx, gy = _gauss_kernel(kx, sigma), _gauss_kernel(ky, sigma)
    h, w = arr.shape[:2]
    tmp = sum(gx[i] * pad[:, i : i + w] for i in range(kx))
    out = sum(gy[i] * tmp[i : i + h] for i in range(ky))
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8)).convert(img.mode)


def _adjust_hue(img: Image.Image, factor: float) -> Image.Image:
    h, s, v = img.convert("HSV").split()
    np_h = (np.asarray(h, dtype=np.int64) + int(factor * 255)) % 256
    return Image.merge("HSV", (Image.fromarray(np_h.astype(np.uint8), "L"), s, v)).convert(img.mode)


def color_jitter(img: Image.Image, rng: Rng) -> Image.Image:
    """CJ: ``ColorJitter(brightness=U(0.1, 1), hue=U(0.1, 0.5))``, the two in random order."""
    b, hue = _u(rng, 1), _u(rng, 0.5)
    order = rng.permutation(4)  # torchvision's fn_idx over (brightness, contrast, saturation, hue)
    bf = float(rng.uniform(max(0.0, 1 - b), 1 + b))
    hf = float(rng.uniform(-hue, hue))
    out = img.convert("RGB")
    for idx in order:
        if idx == 0:
            out = ImageEnhance.Brightness(out).enhance(bf)
        elif idx == 3:
            out = _adjust_hue(out, hf)
    return out


def random_posterize(img: Image.Image, rng: Rng) -> Image.Image:
    """RP: ``RandomPosterize(bits=randint(1, 3))`` (bits 1 or 2; applied with p = 0.5)."""
    bits = _i(rng, 3)
    return ImageOps.posterize(img.convert("RGB"), bits) if rng.random() < 0.5 else img.copy()


MUTATORS: dict[str, Mutator] = {
    "HF": horizontal_flip,
    "VF": vertical_flip,
    "RR": random_rotation,
    "CR": crop_resize,
    "RM": random_mask,
    "RS": random_solarize,
    "GR": random_grayscale,
    "BL": gaussian_blur,
    "CJ": color_jitter,
    "RP": random_posterize,
}
POLICY = (("RR", 0.34), ("BL", 0.45), ("RP", 0.21))


def policy(img: Image.Image, rng: Rng) -> Image.Image:
    """PL (default): RR / BL / RP with probabilities 0.34 / 0.45 / 0.21 (a draw exactly on a boundary picks
    the last, as the official ``find_index`` returning -1 does)."""
    r = float(rng.random())
    edges = [0.0]
    for _, p in POLICY:
        edges.append(edges[-1] + p)
    index = next((i for i in range(len(POLICY)) if edges[i] < r < edges[i + 1]), -1)
    return MUTATORS[POLICY[index][0]](img, rng)


ALL_MUTATORS: dict[str, Mutator] = {**MUTATORS, "PL": policy}


def mutate(img: Image.Image, code: str, seed: int) -> Image.Image:
    """One variant of ``img`` by mutator ``code`` (HF, VF, RR, CR, RM, RS, GR, BL, CJ, RP or PL), seeded."""
    if code not in ALL_MUTATORS:
        raise ValueError(f"unknown JailGuard mutator {code!r}; valid: {', '.join(ALL_MUTATORS)}")
    return ALL_MUTATORS[code](
        img.convert("RGB") if img.mode not in ("RGB", "L") else img, np.random.default_rng(seed)
    )
