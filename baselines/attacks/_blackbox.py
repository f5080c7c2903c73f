"""Shared parts of the black-box attacks MML, JOOD, SI-Attack and CS-DJ (``_`` = not an attack itself).

- :func:`read_verbatim`: a prompt quoted verbatim from official code, stored after a ``# ---`` header line.
- :func:`sample_rng`: a random generator seeded by (seed, sample id), so an item's draws do not depend on the
  batch it came in nor on the global random state.
- :class:`LoopScorer`: the judge inside an attack's query loop (MML, SI-Attack). A model spec
  (``openai:gpt-4o-mini``, ``hf:...``, ``organism``) gets the attack's verbatim 1-5 judge prompt; ``judge:<name>``
  uses a registered judge instead (e.g. ``judge:refusal``, the offline stand-in: success -> the top score, no
  success -> 1, unjudged -> no score).
- :func:`query_meta`: the query accounting every query-based attack writes into an output sample's meta:
  ``attack_queries`` (target queries the attack's loop spent on the item) and ``attack_stop`` (why it stopped).
- :func:`draw_pool` / :func:`pool_images`: the project's own drawings (made here with Pillow, committed as PNGs
  under ``data/<attack>/``) and the reading of an image folder a user names.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from baselines.base import BackendError, Model
from baselines.imaging import load_image
from baselines.types import GenerationConfig, Response, Sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def read_verbatim(path: Path) -> str:
    """The text after the ``# ---`` line that ends a data file's header, minus the file's final newline."""
    raw = path.read_text(encoding="utf-8")
    marker = "# ---\n"
    if marker not in raw:
        raise ValueError(f"{path}: missing the '# ---' line that ends the header")
    body = raw.split(marker, 1)[1]
    return body[:-1] if body.endswith("\n") else body


def sample_rng(seed: int, sample_id: str, salt: str = "") -> random.Random:
    """A ``random.Random`` seeded from (seed, sample id, salt) through sha256 (stable across platforms)."""
    digest = hashlib.sha256(f"{seed}:{salt}:{sample_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def query_meta(queries: int, stop: str, **extra: Any) -> dict[str, Any]:
    """The query accounting of one item: ``attack_queries`` and ``attack_stop`` (+ attack-specific extras)."""
    return {"attack_queries": int(queries), "attack_stop": stop, **extra}


class LoopScorer:
    """A 1..``top`` score per (goal, response) for an attack's query loop; ``None`` when unscored.

    ``spec`` is ``judge:<registered judge>`` or a model spec; with a model, ``template % (goal, response)`` is
    sent as one user turn and ``parse`` reads the score from the answer. The model is loaded on first use; a
    model that cannot be loaded raises :class:`BackendError` naming the parameter to change.
    """

    def __init__(
        self,
        owner: str,
        spec: str,
        template: str,
        parse: Callable[[str], int | None],
        *,
        base_url: str | None = None,
        max_new_tokens: int = 1024,
        top: int = 5,
    ) -> None:
        self.owner, self.spec, self.template, self.parse = owner, spec, template, parse
        self.base_url, self.max_new_tokens, self.top = base_url, max_new_tokens, top
        self._model: Model | None = None
        self._judge: Any = None

    @property
    def is_stand_in(self) -> bool:
        """Whether the scorer is a registered judge standing in for the paper's judge model."""
        return self.spec.startswith("judge:")

    def _load(self) -> None:
        from baselines.registry import get

        if self.is_stand_in:
            if self._judge is None:
                self._judge = get("judge", self.spec.split(":", 1)[1])({})
            return
        if self._model is None:
            from baselines.models import load_model

            try:
                self._model = load_model(self.spec, base_url=self.base_url)
            except Exception as e:  # noqa: BLE001 - re-raised as a user error naming the parameter
                raise BackendError(
                    f"{self.owner}: the judge inside the attack's loop ({self.spec!r}) cannot be loaded: {e}. "
                    f"It needs that back-end (for openai: a reachable endpoint and its API key); or pass "
                    f"--set scorer=<model spec>, or --set scorer=judge:refusal for the offline stand-in"
                ) from e

    def score(self, goals: Sequence[str], samples: Sequence[Sample], responses: Sequence[Response]) -> list:
        """One score (int, or None when the judge gave none) per (goal, sample sent, response)."""
        if not responses:
            return []
        self._load()
        if self._judge is not None:
            originals = [s.with_(text=g) for g, s in zip(goals, samples, strict=True)]
            verdicts = self._judge.judge(originals, list(responses))
            return [None if v.success is None else (self.top if v.success else 1) for v in verdicts]
        assert self._model is not None
        queries = [
            Sample(id=f"{s.id}:judge", text=self.template % (g, r.text))
            for g, s, r in zip(goals, samples, responses, strict=True)
        ]
        answers = self._model.generate(queries, GenerationConfig(max_new_tokens=self.max_new_tokens))
        return [None if a.error else self.parse(a.text) for a in answers]

    def info(self) -> dict[str, Any]:
        """What the result records about the scorer."""
        return {"scorer": self.spec, "stand_in": self.is_stand_in}


# -- image pools -------------------------------------------------------------------------------------------
_PALETTE = [
    (220, 40, 40), (40, 150, 60), (40, 90, 210), (240, 190, 30), (150, 60, 170), (30, 170, 170),
    (240, 120, 30), (120, 80, 40), (250, 250, 250), (30, 30, 30), (200, 200, 200), (250, 170, 190),
]  # fmt: skip


def _named_drawing(name: str, size: int) -> Image.Image:
    """A simple picture of a named everyday object (JOOD's harmless images are named by what they show)."""
    img = Image.new("RGB", (size, size), (235, 245, 255))
    d = ImageDraw.Draw(img)
    s = size / 128
    if name == "apple":
        d.ellipse((28 * s, 36 * s, 100 * s, 108 * s), fill=(210, 30, 40))
        d.rectangle((62 * s, 20 * s, 67 * s, 40 * s), fill=(100, 60, 20))
        d.ellipse((68 * s, 18 * s, 92 * s, 32 * s), fill=(50, 160, 60))
    elif name == "sun":
        for k in range(12):
            d.line(
                (64 * s, 64 * s, (64 + 58 * _cos(k)) * s, (64 + 58 * _sin(k)) * s),
                fill=(250, 170, 0),
                width=3,
            )
        d.ellipse((36 * s, 36 * s, 92 * s, 92 * s), fill=(250, 210, 30))
    elif name == "house":
        d.rectangle((30 * s, 60 * s, 98 * s, 110 * s), fill=(200, 120, 60))
        d.polygon([(22 * s, 62 * s), (64 * s, 22 * s), (106 * s, 62 * s)], fill=(160, 40, 40))
        d.rectangle((56 * s, 80 * s, 72 * s, 110 * s), fill=(90, 50, 20))
    elif name == "tree":
        d.rectangle((56 * s, 70 * s, 72 * s, 116 * s), fill=(110, 70, 30))
        d.ellipse((24 * s, 14 * s, 104 * s, 84 * s), fill=(40, 150, 50))
    elif name == "flower":
        d.line((64 * s, 64 * s, 64 * s, 120 * s), fill=(40, 140, 40), width=4)
        for k in range(6):
            cx, cy = 64 + 20 * _cos(2 * k), 52 + 20 * _sin(2 * k)
            d.ellipse(((cx - 13) * s, (cy - 13) * s, (cx + 13) * s, (cy + 13) * s), fill=(240, 120, 180))
        d.ellipse((52 * s, 40 * s, 76 * s, 64 * s), fill=(250, 210, 40))
    else:
        raise ValueError(f"no drawing named {name!r}")
    return img


def _cos(k: int) -> float:
    import math

    return math.cos(k * math.pi / 6)


def _sin(k: int) -> float:
    import math

    return math.sin(k * math.pi / 6)


#: The named drawings of JOOD's bundled harmless pool (file stem = the word, as in AdvBench-M's harmless set).
NAMED_DRAWINGS = ("apple", "flower", "house", "sun", "tree")


def _abstract_drawing(index: int, size: int) -> Image.Image:
    """An abstract composition of a few coloured shapes, seeded by ``index`` (CS-DJ's bundled pool)."""
    rng = random.Random(index)
    bg = _PALETTE[rng.randrange(len(_PALETTE))]
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 4)):
        colour = _PALETTE[rng.randrange(len(_PALETTE))]
        x0, y0 = rng.randrange(0, size * 2 // 3), rng.randrange(0, size * 2 // 3)
        w, h = rng.randrange(size // 6, size // 2), rng.randrange(size // 6, size // 2)
        shape = rng.choice(("ellipse", "rectangle", "triangle"))
        box = (x0, y0, x0 + w, y0 + h)
        if shape == "ellipse":
            d.ellipse(box, fill=colour)
        elif shape == "rectangle":
            d.rectangle(box, fill=colour)
        else:
            d.polygon([(x0, y0 + h), (x0 + w // 2, y0), (x0 + w, y0 + h)], fill=colour)
    return img


def draw_pool(kind: str, size: int = 128, n: int = 24) -> dict[str, Image.Image]:
    """The project's drawings by file name: ``kind="named"`` (JOOD: apple, flower, ...) or ``"abstract"``
    (CS-DJ: ``pool_00.png`` ...). The committed PNGs are these images (a test regenerates and compares them)."""
    if kind == "named":
        return {f"{name}.png": _named_drawing(name, size) for name in NAMED_DRAWINGS}
    if kind == "abstract":
        return {f"pool_{i:02d}.png": _abstract_drawing(i, size) for i in range(n)}
    raise ValueError(f"unknown pool kind {kind!r}")


def pool_files(folder: str | Path, owner: str) -> list[Path]:
    """The image files of a folder, sorted by name (an empty or missing folder is a user error)."""
    p = Path(folder)
    if not p.is_dir():
        raise BackendError(f"{owner}: image folder not found: {p} (pass --set pool=<folder of images>)")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise BackendError(f"{owner}: no images ({', '.join(IMAGE_SUFFIXES)}) in {p}")
    return files


def pool_images(files: Sequence[Path]) -> list[Image.Image]:
    """The images of ``files`` as RGB (a file that cannot be read raises ImageLoadError naming it)."""
    return [load_image(f) for f in files]


def write_pool(kind: str, folder: Path) -> list[Path]:
    """Write :func:`draw_pool`'s images as PNGs into ``folder`` (how the bundled pools were made)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, img in draw_pool(kind).items():
        img.save(folder / name, format="PNG", optimize=True)
        out.append(folder / name)
    return out
