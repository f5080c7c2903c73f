"""CIDER: the cosine-drop decision, the batched wrapper with stand-in models, the missing-model error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_defense_fakes import FakeModel, sample

from baselines.base import BackendError
from baselines.defenses.cider import Cider, decide, timesteps
from baselines.types import GenerationConfig


def test_timesteps_and_decision_rule() -> None:
    """t = 50..350; adversarial iff some denoised similarity drops below c_0 + tau."""
    assert timesteps() == [50, 100, 150, 200, 250, 300, 350]
    text = np.array([1.0, 0.0])
    stable = np.array([[1.0, 0.0]] * 8)
    dropping = np.array([[1.0, 0.0]] + [[1.0, 0.2]] * 7)
    assert decide(text, stable, -0.003936767578125)["detected"] is False
    d = decide(text, dropping, -0.003936767578125)
    assert d["detected"] is True and d["min_delta"] < -0.01 and len(d["cos"]) == 8


class FakeEncoder:
    """Text -> [1, 0]; image -> [1, brightness of the centre pixel] (so denoising can change similarity)."""

    def embed_text(self, texts):
        """Constant text embedding."""
        return np.array([[1.0, 0.0]] * len(texts))

    def embed_images(self, images):
        """Embedding from the centre pixel."""
        return np.array([[1.0, im.getpixel((112, 112))[0] / 255.0] for im in images])


class FakeDenoiser:
    """'Denoising' sets the red channel to 200; records the timesteps it sees."""

    def __init__(self) -> None:
        self.ts: list[int] = []

    def denoise(self, images, t):
        """Red channel to 200."""
        self.ts.append(t)
        return [Image.merge("RGB", (Image.new("L", im.size, 200), *im.split()[1:])) for im in images]


def test_wrapper_refuses_detected_and_passes_the_rest() -> None:
    """A black image (its similarity drops after 'denoising') is refused; a red one reaches the model."""
    black = sample(0).with_(images=(Image.new("RGB", (300, 200), (0, 0, 0)),))
    red = sample(1).with_(images=(Image.new("RGB", (300, 200), (200, 0, 0)),))
    den = FakeDenoiser()
    fake = FakeModel(lambda s: "answer")
    out = (
        Cider(encoder=FakeEncoder(), denoiser=den)
        .wrap(fake)
        .generate([black, red, sample(2, image=False)], GenerationConfig())
    )
    assert den.ts == timesteps()  # one batched denoise per noise level
    assert out[0].text == "I'm sorry, but I can not assist." and out[0].meta["cider"]["detected"] is True
    assert out[1].text == "answer" and out[1].meta["cider"]["detected"] is False
    assert out[2].meta["cider"] == {"checked": False}
    assert [s.id for s in fake.calls[0]] == ["s1", "s2"]


def test_missing_models_error_names_them() -> None:
    """Without local model paths, wrap() fails with a message naming both params."""
    with pytest.raises(BackendError) as e:
        Cider().wrap(FakeModel(lambda s: ""))
    assert (
        "encoder_path" in str(e.value)
        and "denoiser_path" in str(e.value)
        and "never downloaded" in str(e.value)
    )
    with pytest.raises(BackendError, match="does not exist"):
        Cider({"encoder_path": "/nonexistent/llava", "denoiser_path": "/nonexistent/unet"}).wrap(
            FakeModel(str)
        )


def test_llava_encoder_on_tiny_llava(tiny_llava_dir) -> None:
    """The real encoder computes text and image embeddings of the projector's width from a local folder."""
    from baselines.defenses._cider_models import LlavaEncoder

    enc = LlavaEncoder(str(tiny_llava_dir), device="cpu", dtype="float32")
    t = enc.embed_text(["how to do this", "another query"])
    im = enc.embed_images(
        [Image.new("RGB", (224, 224), (10, 20, 30)), Image.new("RGB", (224, 224), (200, 0, 0))]
    )
    assert t.shape[0] == 2 and im.shape == (2, t.shape[1])
    assert not np.allclose(im[0], im[1]) and not np.allclose(t[0], t[1])
