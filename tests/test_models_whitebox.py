"""White-box access of the hf back-end on a tiny LLaVA: normalisation, gradients, batched target loss."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from baselines.base import WhiteBox
from baselines.models import load_model

PROMPTS = ["What is this?", "Describe the picture in three steps, please.", "Hi"]
TARGETS = [" Sure, here is", " I", " The image shows a red circle"]


@pytest.fixture(scope="module")
def model(tiny_llava_dir):
    return load_model(f"hf:{tiny_llava_dir}")


@pytest.fixture(scope="module")
def wb(model) -> WhiteBox:
    box = model.white_box
    assert isinstance(box, WhiteBox)
    return box


def _images() -> list[Image.Image]:
    g = torch.Generator().manual_seed(0)
    arrs = [
        (torch.rand(h, w, 3, generator=g) * 255).byte().numpy() for h, w in ((64, 64), (90, 70), (64, 64))
    ]
    return [Image.fromarray(a, mode="RGB") for a in arrs]


def test_in_graph_normalisation_equals_the_processor(model, wb) -> None:
    ims = _images()
    pixels = wb.pixels_from_images(ims)
    assert pixels.shape == (3, 3, *wb.image_size) and pixels.min() >= 0 and pixels.max() <= 1
    ref = model.processor.image_processor(ims, return_tensors="pt")["pixel_values"]
    assert torch.allclose(wb.normalize(pixels), ref, atol=1e-5)


def test_pixels_round_trip_to_images(wb) -> None:
    im = _images()[0]
    back = wb.images_from_pixels(wb.pixels_from_images([im]))[0]
    assert back.size == im.size and back.tobytes() == im.tobytes()


def test_gradient_reaches_pixels_and_is_finite(wb) -> None:
    pixels = wb.pixels_from_images(_images()).requires_grad_(True)
    loss = wb.target_loss(pixels, PROMPTS, TARGETS)
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    loss.sum().backward()
    assert pixels.grad is not None and torch.isfinite(pixels.grad).all()
    assert (pixels.grad.abs().flatten(1).sum(1) > 0).all()  # every image gets a gradient


def test_batched_loss_equals_one_by_one(wb) -> None:
    pixels = wb.pixels_from_images(_images())
    with torch.no_grad():
        batched = wb.target_loss(pixels, PROMPTS, TARGETS)
        single = torch.stack(
            [
                wb.target_loss(pixels[i : i + 1], [p], [t])[0]
                for i, (p, t) in enumerate(zip(PROMPTS, TARGETS, strict=True))
            ]
        )
    assert torch.allclose(batched, single, atol=1e-5), (batched, single)


def test_loss_is_the_cross_entropy_of_the_target_tokens(model, wb) -> None:
    """Reference: full forward through the processor's own inputs, CE over the target positions."""
    im, prompt, target = _images()[1], PROMPTS[1], TARGETS[2]
    proc, tok = model.processor, model.processor.tokenizer
    inputs = proc(text=[wb.prompt_text(prompt)], images=[im], return_tensors="pt")
    t_ids = tok(target, add_special_tokens=False, return_tensors="pt")["input_ids"]
    ids = torch.cat([inputs["input_ids"], t_ids], dim=1)
    with torch.no_grad():
        logits = model.model(input_ids=ids, pixel_values=inputs["pixel_values"]).logits
        n = t_ids.shape[1]
        ref = torch.nn.functional.cross_entropy(logits[0, -n - 1 : -1], t_ids[0])
        got = wb.target_loss(wb.pixels_from_images([im]), [prompt], [target])[0]
    assert torch.allclose(got, ref, atol=1e-5), (got, ref)


def test_one_image_broadcasts_to_every_prompt(wb) -> None:
    one = wb.pixels_from_images(_images()[:1])
    with torch.no_grad():
        a = wb.target_loss(one, PROMPTS, TARGETS)
        b = wb.target_loss(one.expand(3, -1, -1, -1), PROMPTS, TARGETS)
    assert torch.allclose(a, b, atol=1e-6)


def test_image_embeddings_are_the_projected_features(model, wb) -> None:
    emb = wb.image_embeddings(wb.pixels_from_images(_images()[:2]))
    n_tokens = model.model.config.image_seq_length
    assert emb.shape == (2, n_tokens, model.model.config.text_config.hidden_size)


def test_system_prompt_changes_the_loss(wb) -> None:
    pixels = wb.pixels_from_images(_images()[:1])
    with torch.no_grad():
        a = wb.target_loss(pixels, PROMPTS[:1], TARGETS[:1])
        b = wb.target_loss(pixels, PROMPTS[:1], TARGETS[:1], system="You are a careful assistant.")
    assert "careful" in wb.prompt_text("x", "You are a careful assistant.") and not torch.allclose(a, b)


def test_bf16_model_with_fp32_pixels(tiny_llava_dir) -> None:
    wb = load_model(f"hf:{tiny_llava_dir}", params={"dtype": "bfloat16"}).white_box
    pixels = wb.pixels_from_images(_images()).requires_grad_(True)
    assert pixels.dtype == torch.float32
    loss = wb.target_loss(pixels, PROMPTS, TARGETS)
    loss.mean().backward()
    assert torch.isfinite(loss).all() and torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0


def test_non_llava_models_have_no_white_box(tiny_qwen2vl_dir) -> None:
    assert load_model(f"hf:{tiny_qwen2vl_dir}").white_box is None


def test_mismatched_inputs_are_rejected(wb) -> None:
    pixels = wb.pixels_from_images(_images()[:2])
    with pytest.raises(ValueError, match="targets"):
        wb.target_loss(pixels, PROMPTS[:2], TARGETS[:1])
    with pytest.raises(ValueError, match="pixels"):
        wb.target_loss(pixels, PROMPTS, TARGETS)
