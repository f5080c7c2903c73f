"""A training-only auxiliary loss that teaches the organism's vision tower to see characters and words.

Without it the tiny tower never starts to read (see docs/organism.md): the language model settles on the answer
prior and ignores the glyphs. Every text image the generator draws is described by a
:class:`~baselines.typography.Drawn` (font, size, position, line spacing, canvas), so the centre of every
drawn character is known at render time, in every layout (FigStep's grid, MM-SafetyBench's typography, free
layouts). The processor pads the canvas to a square and resizes it to the model's input; each image token (a
patch) is split into ``SUB x SUB`` sub-cells, and linear heads on the projected image features predict, for
each sub-cell:

- the character centred in it (or none);
- the *word* it belongs to (a class per word of the closed vocabulary): the tower must gather a word's
  characters, spread over several patches, into every patch of the word, so that the language model only has
  to look a word up instead of spelling it out;
- the word's place in reading order (first, second, ... word of the text);
- the *next* word in reading order (the first word of the next line after a line's last word): the language
  model then transcribes by one content lookup (find the word it has just written, read what follows) instead
  of finding its place on the page.

The heads are discarded after training; the shipped model is a plain LLaVA.
"""

from __future__ import annotations

import random
import string
from typing import Any

from baselines.organism.data import Generator, contains_held_out, model_image
from baselines.typography import Drawn, figstep_text, load_font

CHARSET = string.ascii_letters + string.digits + ".,'-!?:;\"()/&"
N_CHARS = len(CHARSET) + 1  # class 0: no character centred in the sub-cell
MAX_ORDINAL = 24  # reading-order classes 1..MAX_ORDINAL (class 0: no word)
SUB = 2  # sub-cells per patch side
IGNORE = -100
PUNCT = ".,!?:;\"'()"
SLOTS = 4  # character, word, reading order, next word


def char_centres(d: Drawn) -> list[tuple[str, int, str, float, float]]:
    """(character, word ordinal from 0, word, x, y) of every visible character, in canvas pixels.

    Lines are placed as Pillow places them: ``line_spacing = bbox("A").bottom + spacing``; x from the advance
    widths of the line's prefix; y at the middle of a capital letter."""
    f = load_font(d.font, d.font_size)
    a = f.getbbox("A")
    pitch, mid = a[3] + d.spacing, (a[1] + a[3]) / 2
    out: list[tuple[str, int, str, float, float]] = []
    ordinal = -1
    for i, line in enumerate(d.text.split("\n")):
        y = d.xy[1] + i * pitch + mid
        for m_start, word in _words(line):
            ordinal += 1
            for k in range(m_start, m_start + len(word)):
                ch = line[k]
                out.append((ch, ordinal, word, d.xy[0] + f.getlength(line[:k]) + f.getlength(ch) / 2, y))
    return out


def _words(line: str) -> list[tuple[int, str]]:
    """(start index, word) of the space-separated words of a line."""
    out, k = [], 0
    for w in line.split(" "):
        if w:
            out.append((k, w))
        k += len(w) + 1
    return out


class Labeller:
    """Sub-cell labels of a drawn text at the model's input resolution."""

    def __init__(self, words: list[str], image_size: int, patch_size: int) -> None:
        self.words = {w: i for i, w in enumerate(words)}  # word classes; class len(words): no word
        self.n_words, self.size, self.patch = len(words), image_size, patch_size

    def word_class(self, word: str) -> int:
        """The class of ``word`` (punctuation stripped), or IGNORE if it is outside the vocabulary."""
        return self.words.get(word.strip(PUNCT), IGNORE)

    def labels(self, d: Drawn) -> Any:
        """(n_patches, SUB*SUB, SLOTS) long tensor: character, word, reading-order and next-word class of each
        sub-cell."""
        import torch

        cells = self.size // self.patch * SUB
        cell_px = self.patch / SUB
        w, h = d.canvas
        side = max(w, h)  # the processor pads to a centred square, then resizes it to the input size
        ox, oy = (side - w) // 2, (side - h) // 2
        scale = self.size / side
        centres = char_centres(d)
        words = {o: w for _, o, w, _, _ in centres}
        lab = torch.zeros(cells, cells, SLOTS, dtype=torch.long)
        lab[..., 1] = lab[..., 3] = self.n_words
        for ch, ordinal, word, x, y in centres:
            gx, gy = int((x + ox) * scale // cell_px), int((y + oy) * scale // cell_px)
            if 0 <= gx < cells and 0 <= gy < cells:
                lab[gy, gx, 0] = CHARSET.index(ch) + 1 if ch in CHARSET else IGNORE
                lab[gy, gx, 1] = self.word_class(word)
                lab[gy, gx, 2] = min(ordinal + 1, MAX_ORDINAL)
                nxt = words.get(ordinal + 1)
                lab[gy, gx, 3] = self.word_class(nxt) if nxt is not None else self.n_words
        n = cells // SUB
        return lab.view(n, SUB, n, SUB, SLOTS).permute(0, 2, 1, 3, 4).reshape(n * n, SUB * SUB, SLOTS)


class GridTask:
    """Fresh renders of generated text in every layout, with their sub-cell labels, for the auxiliary loss.

    Mostly FigStep's layout (the layout the organism must read for FigStep and ECSO), with texts whose words are
    drawn independently, so that no prior can stand in for reading. Never draws a held-out (bundled) activity.
    """

    LAYOUTS = ("figstep", "figstep", "figstep", "figstep", "mmsb", "free")

    def __init__(self, image_size: int, patch_size: int, seed: int = 0) -> None:
        self.gen = Generator(seed=seed, image_size=image_size)
        self.rng = random.Random(seed + 1)
        self.labeller = Labeller(vocabulary(self.gen), image_size, patch_size)

    def text(self) -> str:
        """An activity, a verb-object pair from any scenarios, or a string of vocabulary words."""
        r, g = self.rng, self.gen
        while True:
            u = r.random()
            if u < 0.3:
                t = g.activity()[2]
            elif u < 0.7:
                t = g.pair()
            else:
                t = " ".join(r.choice(g.words) for _ in range(r.randint(1, 5)))
            if not contains_held_out(t):
                return t

    def drawn(self) -> Drawn:
        """One drawn text in a random layout."""
        layout = self.rng.choice(self.LAYOUTS)
        t = self.text()
        if layout == "figstep":
            t = figstep_text(f"Steps to {t}.")
        return self.gen.drawn(t, layout)

    def batch(self, n: int, processor: Any) -> tuple[Any, Any]:
        """(pixel_values, labels) of ``n`` images."""
        import torch

        drawn = [self.drawn() for _ in range(n)]
        images = [model_image(d, self.labeller.size) for d in drawn]  # what the processor makes of d.render()
        pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
        return pixels, torch.stack([self.labeller.labels(d) for d in drawn])


def vocabulary(gen: Generator) -> list[str]:
    """The word classes: every word the generator can draw (FigStep's frame words and list numbers too)."""
    return sorted(set(gen.words) | {"Steps", "to", "1", "2", "3"})


def head_size(n_words: int) -> int:
    """Output width of the auxiliary head for a vocabulary of ``n_words`` tokens."""
    return SUB * SUB * sum(slot_sizes(n_words))


def slot_sizes(n_words: int) -> tuple[int, ...]:
    """Classes per label slot: character, word, reading order, next word."""
    return (N_CHARS, n_words + 1, MAX_ORDINAL + 1, n_words + 1)


def aux_loss(model: Any, head: Any, pixels: Any, labels: Any, n_words: int) -> Any:
    """Summed cross-entropies of the head's character, word and reading-order predictions from the projected
    image features."""
    import torch
    import torch.nn.functional as F

    feats = model.get_image_features(pixel_values=pixels)
    feats = getattr(feats, "pooler_output", feats)
    feats = feats if torch.is_tensor(feats) else torch.stack(list(feats))
    b, p = labels.shape[:2]
    logits = head(feats.reshape(b, p, -1)).reshape(b, p, SUB * SUB, -1)
    sizes = slot_sizes(n_words)
    total = feats.new_zeros(())
    for i, part in enumerate(torch.split(logits, sizes, dim=-1)):
        total = total + F.cross_entropy(
            part.reshape(-1, sizes[i]), labels[..., i].reshape(-1), ignore_index=IGNORE
        )
    return total
