"""Fakes shared by the defense tests: a recording Model and small images (imported by test_defense_*.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image

from baselines.base import Model
from baselines.types import GenerationConfig, Response, Sample


class FakeModel(Model):
    """A Model that answers with ``answer(sample)`` and records every batch it receives."""

    name = "fake"

    def __init__(self, answer: Callable[[Sample], str]) -> None:
        super().__init__()
        self.answer = answer
        self.calls: list[list[Sample]] = []
        self.configs: list[GenerationConfig] = []

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Answer each sample; record the batch."""
        self.calls.append(list(samples))
        self.configs.append(config)
        return [Response(sample_id=s.id, text=self.answer(s)) for s in samples]

    def info(self) -> dict:
        """Provenance of the fake."""
        return {"backend": "fake", "id": "fake-1"}


def gradient_image(w: int = 64, h: int = 48) -> Image.Image:
    """A deterministic RGB image with distinct pixels (so flips, crops and masks are visible)."""
    img = Image.new("RGB", (w, h))
    img.putdata([((x * 4) % 256, (y * 5) % 256, (x * y) % 256) for y in range(h) for x in range(w)])
    return img


def sample(i: int = 0, text: str = "How do I do X?", image: bool = True, **kw) -> Sample:
    """A sample with an optional gradient image."""
    return Sample(id=f"s{i}", text=text, images=(gradient_image(),) if image else (), **kw)


def test_fake_model_records_batches() -> None:
    """The fake records what it receives and answers per sample."""
    m = FakeModel(lambda s: s.text.upper())
    out = m.generate([sample(0, "a"), sample(1, "b")], GenerationConfig())
    assert [r.text for r in out] == ["A", "B"]
    assert [s.id for s in m.calls[0]] == ["s0", "s1"]
