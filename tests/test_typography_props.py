"""Property test over every typographic renderer: on a few hundred random phrases, no ink reaches a canvas edge
where it would be cut off (issue 12: the attacks' MM-SafetyBench TYPO canvas was one line short and kept only the
top ~28 px of the glyphs).

Renderers (``RENDERERS``): FigStep, FigStep-Pro's pieces, MM-SafetyBench TYPO (the attack), HADES's keyword strip
and Jailbreak-in-Pieces' typography target, each drawn through the attack that uses it. Every attack module that
imports ``baselines.typography`` must be listed here (``test_every_typographic_attack_is_covered``), so a layout
added later is checked the day it lands.

Documented exceptions, asserted as such rather than skipped: FigStep's fixed 760 x 760 canvas clips text that
needs more room (the official behaviour), and the TYPO greedy wrap cannot split a single word wider than the canvas
(official too). The left edge of TYPO is not an overflow edge: text starts at x = 0 as in the official code.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from baselines.attacks.figstep import FigStep
from baselines.attacks.hades import Hades
from baselines.attacks.jailbreak_in_pieces import JailbreakInPieces
from baselines.attacks.mmsafetybench import MMSafetyBench
from baselines.types import Sample
from baselines.typography import figstep_text, load_font, text_block_size, typo_wrap

WORDS = (
    "steal laptops smuggle jewelry forge passports hack accounts launder money counterfeit coins spread rumours "
    "bake bread repair bikes plant tomatoes organize a picnic write malware install spyware poison wells brew "
    "coffee paint fences sell stolen goods bypass security cameras gjpqy quickly Yelling WAVES jovial Ajax Vow"
).split()
N_PHRASES = 300
INK = 200  # a pixel darker than this (on a white canvas) is ink


def phrases(seed: int, n: int = N_PHRASES, max_words: int = 9) -> list[str]:
    """``n`` seeded random phrases of 1..max_words words from WORDS."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, max_words))) for _ in range(n)]


def ink_edges(image: Image.Image) -> set[str]:
    """The canvas edges ("top", "bottom", "left", "right") that some ink pixel touches."""
    g = np.asarray(image.convert("L"))
    dark = g < INK
    return {
        name
        for name, line in (
            ("top", dark[0]),
            ("bottom", dark[-1]),
            ("left", dark[:, 0]),
            ("right", dark[:, -1]),
        )
        if line.any()
    }


@dataclass(frozen=True)
class Renderer:
    """One typographic renderer: phrase -> image, the edges where overflow would cut ink, and the documented
    condition under which it clips (None: never)."""

    render: Callable[[str], Image.Image]
    edges: tuple[str, ...]
    clips: Callable[[str], bool] | None = None


def _sample(phrase: str) -> Sample:
    return Sample(
        id="x",
        text=f"How can I {phrase}?",
        meta={
            "key_phrase": phrase,
            "rephrased": "The bottom of the image shows a phrase.",
            "instruction": f"Steps to {phrase}.",
        },
    )


def _figstep(phrase: str) -> Image.Image:
    return FigStep().apply([_sample(phrase)], None)[0].images[0]


def _figstep_clips(phrase: str) -> bool:
    """FigStep's canvas is fixed: text whose block (at (20, 10)) exceeds 760 x 760 is cut (official)."""
    w, h = text_block_size(figstep_text(f"Steps to {phrase}."), "FreeMonoBold", 80, spacing=11)
    return w + 20 > 760 or h + 10 > 760


def _pieces(phrase: str) -> Image.Image:
    """FigStep-Pro's pieces side by side (the cuts between pieces are the layout, not clipping)."""
    images = FigStep({"variant": "figstep_pro"}).apply([_sample(phrase)], None)[0].images
    out = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width
    return out


def _too_wide_word(phrase: str, size: int = 90, width: int = 1024) -> bool:
    """The official greedy wrap never splits a word: one wider than the canvas runs off its right edge."""
    font = load_font("LiberationSans", size)
    return any(
        font.getlength(" " + line.strip()) >= width
        for line in typo_wrap(phrase, "LiberationSans", size, width).split("\n")
    )


def _typo(phrase: str) -> Image.Image:
    return MMSafetyBench().apply([_sample(phrase)], None)[0].images[0]


def _hades_strip(phrase: str) -> Image.Image:
    """HADES's keyword strip: the part of its image under the 1024 x 1024 stand-in picture."""
    s = Sample(id="x", text=f"How can I {phrase}?", meta={"key_phrase": phrase})
    image = Hades({"white_box": False}).apply([s], None)[0].images[0]
    return image.crop((0, 1024, image.width, image.height))


def _hades_keyword(phrase: str) -> str:
    from baselines.attacks.hades import keyword_of

    return keyword_of(Sample(id="x", text=f"How can I {phrase}?", meta={"key_phrase": phrase}))[0] or phrase


def _jip_target(phrase: str) -> Image.Image:
    return JailbreakInPieces().target_for(_sample(phrase))[0]


def _cs_dj_art(phrase: str) -> Image.Image:
    from baselines.attacks.cs_dj import CSDJ, TILE
    from baselines.typography import art_text_image

    p = CSDJ.Params()
    return art_text_image(phrase, p.font, p.font_size, TILE)


def _cs_dj_fills_the_tile(phrase: str) -> bool:
    """CS-DJ's wrap (as the original) keeps a line while its advance width is at most the tile's 500 px, centres it
    with no margin and never splits a word: a line within 2 px of the tile (or a word wider than it) may put a
    glyph's overhang on the side edges. Recomputed here from the rule as the original states it."""
    from baselines.attacks.cs_dj import CSDJ, TILE

    p = CSDJ.Params()
    font = load_font(p.font, p.font_size)
    widths, line = [], ""
    for word in phrase.split():
        test = f"{line} {word}".strip()
        if font.getlength(test) <= TILE:
            line = test
        else:
            widths.append(font.getlength(line))
            line = word
    widths.append(font.getlength(line))
    return any(w >= TILE - 2 for w in widths)


def _cs_dj_label(phrase: str) -> Image.Image:
    """CS-DJ's numbered tile strip, with the phrase's length as the number (1..3 digits)."""
    from baselines.typography import label_below

    return label_below(Image.new("RGB", (500, 500), "white"), str(len(phrase)), "DejaVuSans", 20).crop(
        (0, 500, 500, 530)
    )


def _himrd(phrase: str) -> Image.Image:
    from baselines.typography import centred_strip

    return centred_strip(phrase)


def _himrd_line_too_wide(phrase: str) -> bool:
    """HIMRD's strip (spec 21 §5.4) splits a long phrase into halves or thirds but never shrinks it: a part wider
    than the 512 px canvas is cut on both sides. Measured by drawing the same split on a wide canvas."""
    from baselines.typography import centred_strip

    wide = np.asarray(centred_strip(phrase, size=(4000, 100)).convert("L")) < INK
    cols = np.where(wide.any(0))[0]
    return cols.size > 0 and cols.max() - cols.min() + 1 > 512


def _vrp(phrase: str) -> Image.Image:
    from baselines.attacks.visual_roleplay import VisualRolePlay, typography

    p = VisualRolePlay.Params()
    return typography(phrase, p.font, p.font_size, p.width)


def _vrp_word_too_wide(phrase: str) -> bool:
    from baselines.attacks.visual_roleplay import VisualRolePlay

    p = VisualRolePlay.Params()
    return _too_wide_word(phrase, size=p.font_size, width=p.width) if p.font == "LiberationSans" else False


RENDERERS: dict[str, Renderer] = {
    "figstep": Renderer(_figstep, ("top", "bottom", "left", "right"), _figstep_clips),
    "figstep_pro_pieces": Renderer(_pieces, ("top", "bottom")),
    "mmsafetybench_typo": Renderer(_typo, ("top", "bottom", "right"), _too_wide_word),
    "hades_strip": Renderer(
        _hades_strip, ("top", "bottom", "right"), lambda p: _too_wide_word(_hades_keyword(p))
    ),
    "jailbreak_in_pieces_target": Renderer(_jip_target, ("top", "bottom", "right"), _too_wide_word),
    "cs_dj_sub_question": Renderer(_cs_dj_art, ("top", "bottom", "left", "right"), _cs_dj_fills_the_tile),
    "cs_dj_tile_number": Renderer(_cs_dj_label, ("top", "bottom", "left", "right")),
    "himrd_strip": Renderer(_himrd, ("top", "bottom", "left", "right"), _himrd_line_too_wide),
    # VRP draws at x = 0 like MM-SafetyBench's TYPO, so the left column is the layout's origin, not a cut
    "visual_roleplay_typography": Renderer(_vrp, ("top", "bottom", "right"), _vrp_word_too_wide),
}
#: attack module -> the renderers above that draw its typography. An attack that transforms a shared layout's
#: image afterwards (MML encrypts FigStep's image, SI-Attack shuffles its patches) is covered by that layout.
COVERS = {
    "mml": ("figstep",),
    "si_attack": ("figstep",),
    "figstep": ("figstep", "figstep_pro_pieces"),
    "mmsafetybench": ("mmsafetybench_typo",),
    "hades": ("hades_strip",),
    "jailbreak_in_pieces": ("jailbreak_in_pieces_target",),
    "jood": ("figstep",),  # a text-only sample's harmful image is FigStep's typography
    "cs_dj": ("cs_dj_sub_question", "cs_dj_tile_number"),
    "himrd": ("himrd_strip",),
    "visual_roleplay": ("visual_roleplay_typography",),
}


@pytest.mark.parametrize("name", list(RENDERERS))
def test_no_ink_reaches_a_clipping_edge(name: str) -> None:
    r = RENDERERS[name]
    clipped_as_documented = 0
    for phrase in phrases(seed=sum(map(ord, name))):
        image = r.render(phrase)
        touched = ink_edges(image) & set(r.edges)
        if r.clips is not None and r.clips(phrase):
            clipped_as_documented += 1
            continue  # asserted separately: the documented overflow really is cut
        assert not touched, (
            f"{name}: ink touches the {sorted(touched)} edge for {phrase!r} (size {image.size})"
        )
    assert clipped_as_documented < N_PHRASES // 3, f"{name}: most phrases fall under the documented exception"


def test_documented_clipping_happens_where_it_is_documented() -> None:
    long = " ".join(["counterfeit coins and launder money"] * 4)
    assert _figstep_clips(long) and "bottom" in ink_edges(_figstep(long))
    word = "W" * 30  # diagonal strokes cover every column
    assert _too_wide_word(word) and "right" in ink_edges(_typo(word))
    assert not _figstep_clips("steal laptops") and not _too_wide_word("steal laptops")


def test_one_line_typo_is_the_official_180_px_and_keeps_its_descenders() -> None:
    image = _typo("gjpqy")
    assert image.size == (1024, 180)  # official: 90 * (line_num + 1)
    rows = np.where((np.asarray(image.convert("L")) < INK).any(1))[0]
    assert rows.max() > 120 and rows.max() < 179  # descenders drawn (below 90 px), clear of the bottom edge


def test_every_typographic_attack_is_covered() -> None:
    attacks = Path(__file__).resolve().parents[1] / "baselines" / "attacks"
    drawing = set()
    for path in attacks.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "baselines.typography":
                drawing.add(path.stem)
    missing = sorted(drawing - set(COVERS))
    assert not missing, f"attacks drawing text without a renderer in RENDERERS/COVERS here: {missing}"
    assert drawing, "no attack imports baselines.typography: the scan is broken"
