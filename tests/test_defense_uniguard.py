"""UniGuard: verbatim text guardrails (sha256), their placement and removal, the noise optimiser's mechanics
(sign-gradient ascent, L-inf and pixel-box projections, determinism) on a tiny LLaVA, a released patch's real
epsilon, and where the noise is added."""

from __future__ import annotations

import hashlib

import pytest
import torch
from test_defense_fakes import FakeModel, gradient_image, sample

from baselines.base import WhiteBoxRequiredError
from baselines.defenses import uniguard as ug
from baselines.defenses._uniguard_patch import apply_patch, load_patch, optimize_patch
from baselines.defenses._wrapper import DATA_DIR
from baselines.params import ParamsError
from baselines.types import GenerationConfig

HEURISTIC = "DO NOT INCLUDE any harmful, sexual, toxic, threatening, and insulting words and phrases in your response."


def test_text_patches_verbatim() -> None:
    """File bytes match the spec's sha256; the guardrail is read without its final newline."""
    sha = {
        "uniguard_text_patch_heuristic.txt": "8f531ba67d4fbdb2eecba2f367121daf87999b67a0c504138792067305c0ba6d",
        "uniguard_text_patch_optimized.txt": "3d9d3ec86fa7c20a83693d9e71707bc3afe1276cbe1b69e3d2c84e9699a3a838",
    }
    for name, digest in sha.items():
        assert hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest() == digest
    assert ug.text_patch("heuristic") == HEURISTIC
    assert ug.text_patch("optimized").split(" ")[:3] == ["<!--", "results", "[{"]
    assert len(ug.read_corpus(None)) == 32


def test_guardrail_placement_and_removal() -> None:
    """Heuristic appended after a newline; optimised prepended; removed from answers."""
    assert ug.guard_text("Q", "heuristic") == "Q\n" + HEURISTIC
    assert ug.guard_text("Q", "natural_language") == ug.text_patch("natural_language") + "\nQ"
    assert ug.strip_guardrail(f"Sure. {HEURISTIC}", "heuristic") == "Sure."
    assert ug.eps_in_name("safety_patch_eps32.pt") == 32 and ug.eps_in_name("patch.pt") is None


@pytest.fixture(scope="module")
def tiny(tiny_llava_dir):
    """A tiny LLaVA (random weights) with gradient access."""
    from baselines.models import load_model

    return load_model(f"hf:{tiny_llava_dir}", params={"batch_size": 4})


def test_optimiser_ascends_and_projects(tiny) -> None:
    """CE of the harmful targets rises; |delta| <= eps; x + delta in [0, 1]; same seed, same delta."""
    wb = tiny.white_box
    x = wb.pixels_from_images([gradient_image(32, 32)]).detach()
    targets = [" Sure, here is how", " Step one"]
    kw = dict(prompt="", epsilon=16 / 255, alpha=4 / 255, n_iters=6, batch_size=2, seed=3, keep_every=1)
    delta, hist = optimize_patch(wb, x, targets, **kw)
    assert delta.abs().max() <= 16 / 255 + 1e-6
    assert ((x.cpu() + delta) >= -1e-6).all() and ((x.cpu() + delta) <= 1 + 1e-6).all()
    start = wb.target_loss(x, ["", ""], targets).mean().item()
    after = wb.target_loss((x + delta.to(x.device)).clamp(0, 1), ["", ""], targets).mean().item()
    assert after > start and hist[-1] > hist[0]
    again, _ = optimize_patch(wb, x, targets, **kw)
    assert torch.equal(delta, again)


def test_released_patch_real_eps_is_measured(tmp_path) -> None:
    """A file named eps32 holding a 64/255 patch is recorded as 64 (name mismatch flagged);
    expected_eps=32 refuses it."""
    delta = torch.zeros(3, 8, 8)
    delta[0, 0, 0] = 64 / 255
    path = tmp_path / "safety_patch_eps32.pt"
    torch.save(delta, path)
    loaded, info = load_patch(str(path))
    assert loaded.shape == (1, 3, 8, 8) and info["measured_eps_255"] == 64.0
    d = ug.Uniguard({"image_patch": "file", "patch_path": str(path)})
    fake = FakeModel(lambda s: "ok")
    wrapped = d.wrap(fake)
    assert wrapped.provenance["named_eps_255"] == 32 and wrapped.provenance["name_matches_eps"] is False
    with pytest.raises(ParamsError, match="measures eps 64"):
        ug.Uniguard({"image_patch": "file", "patch_path": str(path), "expected_eps": 32}).wrap(fake)
    out = wrapped.generate([sample(0, "Q"), sample(1, "T", image=False)], GenerationConfig(max_new_tokens=4))
    sent = fake.calls[0]
    assert sent[0].images[0].size == (8, 8) and sent[0].text == "Q\n" + HEURISTIC
    assert (
        out[0].meta["uniguard"]["noise_grid"] == "resize" and out[1].meta["uniguard"]["noise_grid"] == "none"
    )


def test_noise_on_processor_grid(tiny) -> None:
    """A white-box target whose tower size equals the patch's gets the noise on its processor grid."""
    wb = tiny.white_box
    h, w = wb.image_size
    delta = torch.full((1, 3, h, w), 8 / 255)
    (img,), grid = apply_patch([gradient_image(40, 30)], delta, wb)
    base = wb.pixels_from_images([gradient_image(40, 30)]).cpu()
    got = wb.pixels_from_images([img]).cpu()
    assert grid == "processor" and img.size == (w, h)
    assert torch.allclose(got, (base + delta).clamp(0, 1), atol=1 / 255 + 1e-6)


def test_optimize_needs_gradients() -> None:
    """A black-box target without a surrogate: WhiteBoxRequiredError (exit 2) naming the alternatives."""
    with pytest.raises(WhiteBoxRequiredError, match="patch_path"):
        ug.Uniguard({}).wrap(FakeModel(lambda s: "x"))
