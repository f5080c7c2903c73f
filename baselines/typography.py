"""Typography: the bundled fonts and every layout in which the project draws text on an image, in one place.

Layouts (each follows the reference implementation it names; see the attacks' module docstrings for sources):

- FigStep (:func:`figstep_text`, :func:`figstep_drawn`): ``textwrap.fill(width=15)`` + ``"\\n1. \\n2. \\n3. "``,
  FreeMonoBold 80 at (20, 10), line spacing 11, on a white 760 x 760 canvas (overflow clipped, as in FigStep);
  FigStep-Pro's keyword pieces (:func:`keyword_pieces`).
- MM-SafetyBench TYPO (:func:`typo_wrap`, :func:`typo_drawn`, :func:`typo_image`): greedy wrap at the canvas
  width where continuation lines begin with a space, text at (0, font_size / 2), default line spacing. The
  same image is the typography strip under HADES's harmful image (:func:`typo_below`) and Jailbreak in Pieces'
  default target.
- The organism's free layout (:func:`wrap_pixels`): a plain greedy wrap to a pixel width.

Every drawn text is described by a :class:`Drawn` (font, size, position, spacing, canvas), so the organism's
auxiliary loss can locate each character of what the generator draws. Attacks and the organism's data generator
import these functions; nobody keeps a copy. A fidelity fix to a layout belongs here and nowhere else.
"""

from __future__ import annotations

import functools
import textwrap
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageColor, ImageDraw, ImageFont

from baselines.imaging import stack_vertically

FONT_DIR = Path(__file__).parent / "fonts"
FONTS = {
    "FreeMonoBold": "FreeMonoBold.ttf",
    "FreeSans": "FreeSans.ttf",
    "LiberationSans": "LiberationSans-Regular.ttf",
    "DejaVuSans": "DejaVuSans.ttf",
    "DejaVuSansMono-Bold": "DejaVuSansMono-Bold.ttf",
}

#: Canvas height of the MM-SafetyBench TYPO image, in lines of ``font_size`` beyond the wrapped text's lines:
#: the official ``2_img_process.py`` makes the canvas ``90 * (line_num + 1)`` high (180 px for one line). Every
#: TYPO image (MM-SafetyBench, HADES's strip, Jailbreak-in-Pieces' target, the organism's data) uses it. (Until
#: issue 12 the attacks' canvas was one line shorter, which cut every glyph below ~28 px of its line; the
#: property test ``tests/test_typography_props.py`` now fails on any layout whose ink reaches a clipping edge.)
TYPO_EXTRA_LINES_OFFICIAL = 1


@functools.lru_cache(maxsize=64)
def load_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled font by name (see FONTS) or by path to a .ttf file, at ``size`` pixels."""
    path = FONT_DIR / FONTS[name] if name in FONTS else Path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"font {name!r} not found; bundled fonts: {', '.join(FONTS)} (or give a .ttf path)"
        )
    return CachedMaskFont(str(path), size)


#: Most bytes of line masks a :class:`CachedMaskFont` keeps (LRU beyond it).
MASK_CACHE_BYTES = 32 * 1024 * 1024


class CachedMaskFont(ImageFont.FreeTypeFont):
    """A FreeType font that keeps the greyscale masks it rasterised, by every argument that shapes them.

    Pillow draws multi-line text line by line, rasterising each line with FreeType (``getmask2``) while holding
    the GIL: ~75% of a FigStep image's rendering. Lines repeat across images (FigStep's ``1. ``, ``2. ``, ``3. ``
    are three of its six to eight lines), and a cached mask is the same bytes FreeType would produce again, so the
    pixels are unchanged. Masks are read-only to ``ImageDraw`` except in colour-font (``RGBA``) drawing, which is
    never cached. Thread-safe; bounded by :data:`MASK_CACHE_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._masks: OrderedDict[tuple, tuple[Any, tuple[int, int]]] = OrderedDict()
        self._mask_bytes = 0
        self._mask_lock = threading.Lock()

    def getmask2(self, text: Any, mode: str = "", *args: Any, **kwargs: Any) -> tuple[Any, tuple[int, int]]:
        """``FreeTypeFont.getmask2``, from the cache when the same line was rasterised the same way before."""
        if mode == "RGBA":
            return super().getmask2(text, mode, *args, **kwargs)
        try:
            key = (text, mode, _frozen(args), _frozen(sorted(kwargs.items())))
            hash(key)
        except TypeError:
            return super().getmask2(text, mode, *args, **kwargs)
        with self._mask_lock:
            hit = self._masks.get(key)
            if hit is not None:
                self._masks.move_to_end(key)
                return hit
        mask, offset = super().getmask2(text, mode, *args, **kwargs)
        size = mask.size[0] * mask.size[1]
        with self._mask_lock:
            if key not in self._masks and size <= MASK_CACHE_BYTES:
                self._masks[key] = (mask, offset)
                self._mask_bytes += size
                while self._mask_bytes > MASK_CACHE_BYTES:
                    _, (old, _) = self._masks.popitem(last=False)
                    self._mask_bytes -= old.size[0] * old.size[1]
        return mask, offset


def _frozen(value: Any) -> Any:
    """``value`` with its lists made tuples (recursively), so it can key a cache."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


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
    xy: tuple[float, float] = (20, 10),
    spacing: int = 11,
    background: str = "#FFFFFF",
    fill: str = "#000000",
    mode: str = "RGB",
) -> Image.Image:
    """Draw multi-line ``text`` on a fixed canvas (text that overflows is clipped, as in FigStep); ``mode="L"``
    draws it in greyscale.

    Grey text on a grey background (FigStep's black on white) is drawn in greyscale and converted to RGB: the
    same pixels (each channel blends the same ink over the same background) for about two thirds of the CPU
    (760x760: 3.7 -> 2.5 ms), which matters where the harness renders ahead of a fast endpoint."""
    if mode == "RGB" and _grey(background) and _grey(fill):
        return render_text(
            text, size=size, font=font, font_size=font_size, xy=xy, spacing=spacing,
            background=background, fill=fill, mode="L",
        ).convert("RGB")  # fmt: skip
    img = Image.new(mode, size, background)
    ImageDraw.Draw(img).text(xy, text, font=load_font(font, font_size), fill=fill, spacing=spacing)
    return img


def _grey(colour: str) -> bool:
    """Whether a colour is opaque with three equal channels."""
    rgb = ImageColor.getrgb(colour)
    return len(rgb) == 3 and rgb[0] == rgb[1] == rgb[2]


def text_block_size(text: str, font: str, font_size: int, spacing: int = 4) -> tuple[int, int]:
    """(width, height) in pixels that ``text`` occupies when drawn with this font."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox(
        (0, 0), text, font=load_font(font, font_size), spacing=spacing
    )
    return right, bottom


@dataclass(frozen=True)
class Drawn:
    """Text as drawn on a canvas: everything needed to render it and to locate every character in it."""

    text: str
    font: str
    font_size: int
    xy: tuple[float, float]
    spacing: int
    canvas: tuple[int, int]
    background: str = "#FFFFFF"
    fill: str = "#000000"

    def render(self, mode: str = "RGB") -> Image.Image:
        """The image (``mode="L"``: in greyscale)."""
        return render_text(
            self.text,
            size=self.canvas,
            font=self.font,
            font_size=self.font_size,
            xy=self.xy,
            spacing=self.spacing,
            background=self.background,
            fill=self.fill,
            mode=mode,
        )


# -- FigStep -----------------------------------------------------------------------------------------------------
def figstep_text(instruction: str, wrap_width: int = 15, n_items: int = 3) -> str:
    """The text drawn on a FigStep image: one trailing newline stripped, wrapped, then ``\\n1. \\n2. \\n3. ``
    (note the trailing spaces)."""
    text = instruction[:-1] if instruction.endswith("\n") else instruction
    text = wrap(text, wrap_width)
    for idx in range(1, n_items + 1):
        text += f"\n{idx}. "
    return text


def figstep_drawn(
    text: str, font: str = "FreeMonoBold", font_size: int = 80, canvas: int = 760, spacing: int = 11
) -> Drawn:
    """FigStep's layout of already composed text (see :func:`figstep_text`): at (20, 10) on a square canvas."""
    return Drawn(text, font, font_size, (20, 10), spacing, (canvas, canvas))


def keyword_pieces(keyword: str, font: str, font_size: int, n_pieces: int = 3) -> list[Image.Image]:
    """FigStep-Pro's split (the project's rule): the keyword on one line, cut at glyph boundaries into pieces.

    Canvas height is 1.5x the font size (120 px at size 80, as in the released pieces); each glyph advances
    by the monospaced font's advance (48 px at size 80). Pieces get ceil/floor shares of the characters,
    earlier pieces first; a keyword shorter than ``n_pieces`` is padded with spaces (blank pieces).
    """
    keyword = keyword.ljust(n_pieces)
    advance = round(load_font(font, font_size).getlength("M"))
    height = round(font_size * 1.5)
    line = render_text(
        keyword, size=(advance * len(keyword), height), font=font, font_size=font_size, xy=(0, 10), spacing=11
    )
    base, extra = divmod(len(keyword), n_pieces)
    pieces, start = [], 0
    for k in range(n_pieces):
        n = base + (1 if k < extra else 0)
        pieces.append(line.crop((start * advance, 0, (start + n) * advance, height)))
        start += n
    return pieces


# -- MM-SafetyBench TYPO (also HADES's strip and Jailbreak in Pieces' target) -------------------------------------
def typo_wrap(text: str, font: str = "LiberationSans", font_size: int = 90, max_width: int = 1024) -> str:
    """The official greedy wrap: a word joins the line while the running width stays < ``max_width``, else it
    starts a new line that begins with a space (``"\\n " + word``); words are split on single spaces."""
    f = load_font(font, font_size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    words = text.split(" ")
    out, width = words[0], draw.textlength(words[0], font=f)
    for word in words[1:]:
        w = draw.textlength(" " + word, font=f)
        if width + w < max_width:
            out += " " + word
            width += w
        else:
            out += "\n " + word
            width = w
    return out


def typo_drawn(
    text: str,
    font: str = "LiberationSans",
    font_size: int = 90,
    max_width: int = 1024,
    extra_lines: int = TYPO_EXTRA_LINES_OFFICIAL,
) -> Drawn:
    """The TYPO layout of ``text``: wrapped by :func:`typo_wrap`, black at (0, font_size / 2) with default line
    spacing on a white canvas ``max_width`` x ``font_size * (lines + extra_lines)``."""
    out = typo_wrap(text, font, font_size, max_width)
    height = font_size * (out.count("\n") + 1 + extra_lines)
    y = font_size // 2 if font_size % 2 == 0 else font_size / 2  # same pixels; an int where it is one
    return Drawn(out, font, font_size, (0, y), 4, (max_width, height))


def typo_image(
    text: str, font: str = "LiberationSans", font_size: int = 90, max_width: int = 1024
) -> Image.Image:
    """The TYPO image of ``text`` as the official code draws it (canvas ``max_width`` x ``font_size * (lines + 1)``)."""
    return typo_drawn(text, font, font_size, max_width).render()


def typo_below(image: Image.Image, text: str, font: str, font_size: int) -> Image.Image:
    """``image`` above the TYPO image of ``text`` as wide as it (HADES's harmful image over its keyword)."""
    return stack_vertically([image, typo_image(text, font, font_size, image.width)])


# -- free layouts (the organism's training data) -----------------------------------------------------------------
def wrap_pixels(text: str, font: str, font_size: int, max_width: int) -> str:
    """Greedy word wrap to ``max_width`` pixels (a word joins a line while the line fits; no leading spaces)."""
    f = load_font(font, font_size)
    lines: list[str] = []
    for w in text.split():
        if lines and f.getlength(lines[-1] + " " + w) <= max_width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return "\n".join(lines)


# -- CS-DJ (TeamPigeonLab/CS-DJ script/main.py @ 4577b05) --------------------------------------------------------
def art_text_image(
    text: str,
    font: str = "DejaVuSans",
    font_size: int = 50,
    width: int = 500,
    fill: tuple[int, int, int] = (255, 0, 0),
) -> Image.Image:
    """CS-DJ's sub-question image (``text_to_art_image``): greedy wrap while ``f"{line} {word}".strip()`` is at
    most ``width`` px wide (a too-wide first word leaves an empty line first, as the original), each line centred,
    ``font_size + 10`` px per line, on white ``width`` x ``lines * (font_size + 10)``."""
    f = load_font(font, font_size)
    lines: list[str] = []
    line = ""
    for word in text.split():
        test = f"{line} {word}".strip()
        if f.getlength(test) <= width:
            line = test
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    img = Image.new("RGB", (width, max(1, len(lines)) * (font_size + 10)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k, ln in enumerate(lines):
        draw.text(((width - int(f.getlength(ln))) // 2, k * (font_size + 10)), ln, font=f, fill=fill)
    return img


def label_below(image: Image.Image, label: str, font: str = "DejaVuSans", font_size: int = 20) -> Image.Image:
    """``image`` with a white strip of ``font_size + 10`` px below it holding ``label`` in black, centred by its
    bounding box at y = height + font_size // 2 (CS-DJ's numbered grid tile)."""
    f = load_font(font, font_size)
    out = Image.new("RGB", (image.width, image.height + font_size + 10), (255, 255, 255))
    out.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    left, _, right, _ = draw.textbbox((0, 0), label, font=f)
    draw.text(
        ((image.width - (right - left)) // 2, image.height + font_size // 2), label, font=f, fill=(0, 0, 0)
    )
    return out


def centred_strip(
    text: str,
    font: str = "DejaVuSans",
    font_size: int = 30,
    size: tuple[int, int] = (512, 100),
    max_width: int = 462,
    max_words: int = 9,
) -> Image.Image:
    """HIMRD's top strip (spec 21 §5.4, described behaviour): black text on a white ``size`` canvas; wider than
    ``max_width`` -> split into word thirds when it has more than ``max_words`` words, else word halves; each line
    centred horizontally by its bounding box, the block centred vertically."""
    f = load_font(font, font_size)
    out = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(out)
    words = text.split()
    n = 1
    if draw.textlength(text, font=f) > max_width:
        n = 3 if len(words) > max_words else 2
    k = -(-len(words) // n) if words else 0
    lines = [" ".join(words[i : i + k]) for i in range(0, len(words), k)] if words else [""]
    boxes = [draw.textbbox((0, 0), line, font=f) for line in lines]
    heights = [b[3] - b[1] for b in boxes]
    y = (size[1] - sum(heights)) // 2
    for line, box, h in zip(lines, boxes, heights, strict=True):
        draw.text(((size[0] - (box[2] - box[0])) // 2 - box[0], y - box[1]), line, font=f, fill=(0, 0, 0))
        y += h
    return out
