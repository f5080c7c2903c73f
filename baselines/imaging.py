"""Shared image utilities: loading images with clear errors and stacking images.

Used by the dataset loaders, the attacks and ``baselines.typography`` (fonts and text layouts live there).
Imported, never copied.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError


class ImageLoadError(ValueError):
    """An image file is missing or cannot be decoded; the message names the path."""


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB; a missing or corrupt file raises ImageLoadError naming the path."""
    p = Path(path)
    if not p.is_file():
        raise ImageLoadError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageLoadError(f"cannot decode image {p}: {e}") from None


def stack_vertically(images: list[Image.Image], background: str = "#FFFFFF") -> Image.Image:
    """Concatenate images top to bottom, centred horizontally (e.g. an SD image above its typography)."""
    width = max(im.width for im in images)
    out = Image.new("RGB", (width, sum(im.height for im in images)), background)
    y = 0
    for im in images:
        out.paste(im.convert("RGB"), ((width - im.width) // 2, y))
        y += im.height
    return out
