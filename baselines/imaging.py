"""Shared image utilities: bundled fonts, typographic rendering, loading images with clear errors.

Used by every typography-based attack (FigStep, MM-SafetyBench, HADES), by the organism's training
data generator and by the dataset loaders. Imported, never copied.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

FONT_DIR = Path(__file__).parent / "fonts"
FONTS = {
    "FreeMonoBold": "FreeMonoBold.ttf",
    "FreeSans": "FreeSans.ttf",
    "LiberationSans": "LiberationSans-Regular.ttf",
    "DejaVuSans": "DejaVuSans.ttf",
    "DejaVuSansMono-Bold": "DejaVuSansMono-Bold.ttf",
}


class ImageLoadError(ValueError):
    """An image file is missing or cannot be decoded; the message names the path."""


@functools.lru_cache(maxsize=64)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled font by name (see FONTS) or by path to a .ttf file, at ``size`` pixels."""
    path = FONT_DIR / FONTS[name] if name in FONTS else Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"font {name!r} not found; bundled fonts: {', '.join(FONTS)} (or give a .ttf path)"
        )
    return ImageFont.truetype(str(path), size)


def font_file(name: str) -> str:
    """The file name of a bundled font (recorded in results as the font actually used)."""
    return FONTS.get(name, Path(name).name)


def wrap(text: str, width: int) -> str:
    """``textwrap.fill`` as the reference implementations use it (FigStep: width 15)."""
    return textwrap.fill(text, width=width)


def render_text(
    text: str,
    *,
    size: tuple[int, int] = (760, 760),
    font: str = "FreeMonoBold",
    font_size: int = 80,
    xy: tuple[int, int] = (20, 10),
    spacing: int = 11,
    background: str = "#FFFFFF",
    fill: str = "#000000",
    mode: str = "RGB",
) -> Image.Image:
    """Draw multi-line ``text`` on a fixed canvas (text that overflows is clipped, as in FigStep); ``mode="L"``
    draws it in greyscale."""
    img = Image.new(mode, size, background)
    ImageDraw.Draw(img).text(xy, text, font=load_font(font, font_size), fill=fill, spacing=spacing)
    return img


def text_block_size(text: str, font: str, font_size: int, spacing: int = 4) -> tuple[int, int]:
    """(width, height) in pixels that ``text`` occupies when drawn with this font."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox(
        (0, 0), text, font=load_font(font, font_size), spacing=spacing
    )
    return right, bottom


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
