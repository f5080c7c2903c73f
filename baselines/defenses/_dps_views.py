"""DPS partial images (``util.py`` of tools-only/DPS@72c004b, spec 22-defenses.md §4.2): centre crop, random
crop and the text-box mask, each JPEG-encoded as the official code saves it before sending the file.

Geometry is the official integer arithmetic exactly:
- centre crop: box ``(cx - (W//2)//2, cy - (H//2)//2, cx + (W//2)//2, cy + (H//2)//2)`` with ``cx, cy = W//2, H//2``;
- random crop: ``r = rng.uniform(1/4, 1/2)``, size ``(int(W*r), int(H*r))``, top-left ``rng.randint(0, W - w)``,
  ``rng.randint(0, H - h)`` (three draws in that order; the official ``random`` module is unseeded, ours is a
  ``random.Random`` seeded per sample);
- mask: every ``[l, t, r, b]`` matching :data:`BOX_PATTERN` in the crop agent's reply, clipped as
  ``[max(0, l), max(0, t), min(W, r), min(H, b)]``, is painted 0 (``array[t:b, l:r] = 0``) in the full image.
"""

from __future__ import annotations

import io
import random
import re

import numpy as np
from PIL import Image

#: The official box regex (exactly ", " between the four integers).
BOX_PATTERN = re.compile(r"\[(\d+), (\d+), (\d+), (\d+)\]")

#: PIL modes the official ``img.save(...jpg)`` can write as they are; others are converted to RGB first.
JPEG_MODES = ("L", "RGB", "CMYK")


def jpeg_roundtrip(img: Image.Image) -> Image.Image:
    """The image as the official code sends it: saved as ``.jpg`` (PIL defaults, quality 75) and read back."""
    if img.mode not in JPEG_MODES:
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def center_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``crop_image``'s box for an image of ``size`` = (W, H)."""
    w, h = size
    new_w, new_h = w // 2, h // 2
    cx, cy = w // 2, h // 2
    return (cx - new_w // 2, cy - new_h // 2, cx + new_w // 2, cy + new_h // 2)


def random_box(size: tuple[int, int], rng: random.Random) -> tuple[int, int, int, int]:
    """``random_crop``'s box, drawing from ``rng`` in the official order (ratio, x, y)."""
    w, h = size
    ratio = rng.uniform(1 / 4, 1 / 2)
    cw, ch = int(w * ratio), int(h * ratio)
    x = rng.randint(0, w - cw)
    y = rng.randint(0, h - ch)
    return (x, y, x + cw, y + ch)


def parse_boxes(text: str, size: tuple[int, int]) -> list[list[int]]:
    """Every box of the crop agent's reply (official regex), clipped as ``auto_mask`` clips it."""
    w, h = size
    return [
        [max(0, int(a)), max(0, int(b)), min(w, int(c)), min(h, int(d))]
        for a, b, c, d in BOX_PATTERN.findall(text)
    ]


def mask_boxes(img: Image.Image, boxes: list[list[int]]) -> Image.Image:
    """``remove_areas``: the boxes set to 0 in a numpy copy of the image (empty boxes change nothing)."""
    arr = np.array(img)
    for left, top, right, bottom in boxes:
        arr[top:bottom, left:right] = 0
    return Image.fromarray(arr)


def center_crop(img: Image.Image) -> Image.Image:
    """The centre crop as sent (JPEG round trip)."""
    return jpeg_roundtrip(img.crop(center_box(img.size)))


def random_crop(img: Image.Image, rng: random.Random) -> Image.Image:
    """The random crop as sent (JPEG round trip)."""
    return jpeg_roundtrip(img.crop(random_box(img.size, rng)))


def auto_mask(img: Image.Image, reply: str) -> tuple[Image.Image, list[list[int]]]:
    """The text-masked image as sent (JPEG round trip) and the boxes parsed from ``reply``."""
    boxes = parse_boxes(reply, img.size)
    return jpeg_roundtrip(mask_boxes(img, boxes)), boxes
