"""A training-only auxiliary loss that teaches the organism's vision tower to see characters.

Without it the tiny tower never starts to read (see docs/organism.md): the language model settles on the answer
prior and ignores the glyphs. The FigStep layout is a fixed monospace grid (FreeMonoBold 80 at (20, 10),
advance 48 px, line pitch 75 px on a 760 px canvas), so the position of every drawn character is known at
render time. Each image token (a 24 px patch of the 192 px input) is split into 2 x 2 sub-cells of 12 px, and a
linear head on the projected image features predicts which character (or none) has its centre in each
sub-cell. The head is discarded after training; the shipped model is a plain LLaVA.
"""

from __future__ import annotations

import random
import string
from typing import Any

from baselines.imaging import render_text
from baselines.organism.data import figstep_text

CHARSET = string.ascii_letters + string.digits + ".,'-!?:;\"()/&"
N_CLASSES = len(CHARSET) + 1  # class 0: no character centred in the sub-cell
CANVAS = 760
ORIGIN_X, ADVANCE, CENTRE_Y, PITCH = 20, 48, 55, 75  # FigStep's grid (measured on FreeMonoBold 80)
SUB = 2  # sub-cells per patch side


def grid_labels(drawn: str, image_size: int, patch_size: int) -> Any:
    """(n_patches, SUB*SUB) long tensor: the character centred in each sub-cell of each patch (row-major)."""
    import torch

    cells = image_size // patch_size * SUB
    cell_px = patch_size / SUB
    scale = image_size / CANVAS
    lab = torch.zeros(cells, cells, dtype=torch.long)
    for j, line in enumerate(drawn.split("\n")):
        for k, ch in enumerate(line):
            if ch not in CHARSET:
                continue
            gx = int((ORIGIN_X + ADVANCE * k + ADVANCE / 2) * scale // cell_px)
            gy = int((CENTRE_Y + PITCH * j) * scale // cell_px)
            if gx < cells and gy < cells:
                lab[gy, gx] = CHARSET.index(ch) + 1
    n = cells // SUB
    return lab.view(n, SUB, n, SUB).permute(0, 2, 1, 3).reshape(n * n, SUB * SUB)


class GridTask:
    """Fresh FigStep-layout renders of generated text and their character grids, for the auxiliary loss."""

    def __init__(self, texts: list[str], image_size: int, patch_size: int, seed: int = 0) -> None:
        self.texts, self.size, self.patch = texts, image_size, patch_size
        self.rng = random.Random(seed)

    def batch(self, n: int, processor: Any) -> tuple[Any, Any]:
        """(pixel_values, labels) of ``n`` FigStep-style images."""
        import torch

        drawn = [figstep_text(f"Steps to {self.rng.choice(self.texts)}.") for _ in range(n)]
        pixels = processor.image_processor([render_text(d) for d in drawn], return_tensors="pt")[
            "pixel_values"
        ]
        return pixels, torch.stack([grid_labels(d, self.size, self.patch) for d in drawn])


def aux_loss(model: Any, head: Any, pixels: Any, labels: Any) -> Any:
    """Cross-entropy of the head's character predictions from the projected image features."""
    import torch

    feats = model.get_image_features(pixel_values=pixels)
    feats = getattr(feats, "pooler_output", feats)
    feats = feats if torch.is_tensor(feats) else torch.stack(list(feats))
    logits = head(feats.reshape(labels.shape[0], labels.shape[1], -1))
    return torch.nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES), labels.reshape(-1))
