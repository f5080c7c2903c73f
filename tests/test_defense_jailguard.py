"""JailGuard: each mutator changes the image as specified and is seeded; the divergence separates answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from test_defense_fakes import FakeModel, gradient_image, sample

from baselines.defenses._jailguard_divergence import bow_similarity, detect, divergence_matrix
from baselines.defenses._jailguard_mutators import ALL_MUTATORS, mutate
from baselines.defenses.jailguard import Jailguard
from baselines.types import GenerationConfig, image_sha256

IMG = gradient_image(64, 48)
A = np.asarray(IMG).astype(int)


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB")).astype(int)


def _outs(code: str, n: int = 24) -> list[Image.Image]:
    return [mutate(IMG, code, s) for s in range(n)]


@pytest.mark.parametrize("code", sorted(ALL_MUTATORS))
def test_mutators_are_seeded_and_change_images(code: str) -> None:
    """Same seed -> same pixels; over seeds, at least one variant differs from the input."""
    assert image_sha256(mutate(IMG, code, 3)) == image_sha256(mutate(IMG, code, 3))
    assert any(image_sha256(o) != image_sha256(IMG) for o in _outs(code))


@pytest.mark.parametrize(("code", "op"), [("HF", ImageOps.mirror), ("VF", ImageOps.flip)])
def test_flips(code: str, op) -> None:
    """HF/VF: each output is either the input or its exact mirror image, and both happen."""
    hashes = {image_sha256(o) for o in _outs(code)}
    assert hashes == {image_sha256(IMG), image_sha256(op(IMG))}


def test_rotation_keeps_size_and_fills_black() -> None:
    """RR: same size, content rotated about the centre with black corners."""
    for o in _outs("RR", 8):
        assert o.size == IMG.size
    rotated = [o for o in _outs("RR", 8) if image_sha256(o) != image_sha256(IMG)]
    assert rotated and all((_arr(o)[0, 0] == 0).all() or (_arr(o)[-1, -1] == 0).all() for o in rotated)


def test_crop_resize_size_rule() -> None:
    """CR: output (w, h) = (max(r1, 0.8W), max(r2, 0.8H)) with r in [1, 500)."""
    for o in _outs("CR", 12):
        assert o.size[0] >= int(0.8 * 64) and o.size[1] >= int(0.8 * 48)
        assert o.size[0] <= 499 and o.size[1] <= 499


def test_random_mask_is_one_black_rectangle() -> None:
    """RM: only a min(200, 0.3*dim) black rectangle changes; the rest is untouched."""
    for o in _outs("RM", 6):
        diff = (_arr(o) != A).any(axis=2)
        ys, xs = np.nonzero(diff)
        box = _arr(o)[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert (box == 0).all()  # the changed region is a filled black rectangle
        assert xs.max() - xs.min() + 1 <= int(0.3 * 64) + 1 and ys.max() - ys.min() + 1 <= int(0.3 * 48) + 1


def test_solarize_inverts_above_a_threshold() -> None:
    """RS: changed channel values are 255 - v and all lie at or above every unchanged value's threshold."""
    changed_any = False
    for o in _outs("RS"):
        b = _arr(o)
        ch = b != A
        if ch.any():
            changed_any = True
            assert (b[ch] == 255 - A[ch]).all()
            assert (~ch).any() and A[ch].min() > A[~ch].max()  # one threshold splits the values
            assert A[ch].min() <= 200
    assert changed_any


def test_grayscale() -> None:
    """GR: either unchanged or a 3-channel image with equal channels."""
    gray = [o for o in _outs("GR") if image_sha256(o) != image_sha256(IMG)]
    assert gray and all(o.mode == "RGB" and (np.ptp(_arr(o), axis=2) == 0).all() for o in gray)


def test_blur_keeps_constants_and_smooths() -> None:
    """BL: a constant image stays constant; a checkerboard's contrast drops for kernels > 1."""
    flat = Image.new("RGB", (32, 32), (90, 120, 200))
    assert all(image_sha256(mutate(flat, "BL", s)) == image_sha256(flat) for s in range(5))
    board = Image.fromarray((np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)).convert("RGB")
    stds = [_arr(mutate(board, "BL", s)).std() for s in range(10)]
    assert min(stds) < 0.8 * _arr(board).std()


def test_color_jitter_on_gray_changes_brightness_only() -> None:
    """CJ: hue shifts leave a gray image gray; brightness changes its level."""
    g = Image.new("RGB", (16, 16), (100, 100, 100))
    outs = [_arr(mutate(g, "CJ", s)) for s in range(8)]
    assert all((np.ptp(o, axis=2) == 0).all() for o in outs)
    assert len({int(o[0, 0, 0]) for o in outs}) > 2


def test_posterize_keeps_high_bits() -> None:
    """RP: a changed output keeps only 1 or 2 high bits of every value."""
    post = [_arr(o) for o in _outs("RP") if image_sha256(o) != image_sha256(IMG)]
    assert post and all(((o & 0x3F) == 0).all() for o in post)


def test_divergence_separates_identical_from_different() -> None:
    """Identical answers -> zero divergence; unrelated answers -> above the 0.025 threshold."""
    same = ["The image shows a list of three steps."] * 8
    diff = [
        f"answer {w} about {w * 3} topic"
        for w in ["cats", "trains", "music", "rain", "code", "sea", "tea", "ink"]
    ]
    assert divergence_matrix(same).max() == 0.0
    assert divergence_matrix(diff).max() > 0.025
    assert detect(same, [0] * 8, 0.025)["detected"] is False
    assert detect(diff, [0] * 8, 0.025)["detected"] is True
    assert detect(same, [1] * 8, 0.025) == {"detected": True, "max_divergence": 0.0, "all_block": True}
    assert bow_similarity("a b", "a b") == 1.0 and bow_similarity("", "x") == 0.0


def test_wrapper_refuses_detected_inputs_in_one_batch() -> None:
    """Divergent answers -> refusal and meta.detected; stable answers -> the original answer."""
    unstable = FakeModel(lambda s: "words " + image_sha256(s.images[0])[:12] if s.images else "text")
    out = Jailguard().wrap(unstable).generate([sample(0), sample(1, image=False)], GenerationConfig())
    assert len(unstable.calls) == 1 and len(unstable.calls[0]) == 2 + 8
    assert all(s.text == "How do I do X?" for s in unstable.calls[0])
    assert out[0].meta["jailguard"]["detected"] is True and out[0].text.startswith("I'm sorry")
    assert out[1].meta["jailguard"] == {"checked": False} and out[1].text == "text"
    stable = FakeModel(lambda s: "The picture shows a chart.")
    out = Jailguard().wrap(stable).generate([sample(0)], GenerationConfig())
    assert out[0].meta["jailguard"]["detected"] is False and out[0].text == "The picture shows a chart."
