"""VisCRA: verbatim prompts (sha256), the window search (integral image vs brute force, stride, overlap, top-3,
border zeroing), mask geometry and colour, the prompt forms byte for byte, the attention read-out on a tiny
LLaVA, the bundled pool and the query accounting. The organism cannot reason about a masked region, so no
behaviour test: the prompt carries the request as text and the organism refuses it (docs/organism.md)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from baselines.attacks._pool import draw_scene
from baselines.attacks._verbatim import read_verbatim, sha256_text
from baselines.attacks.viscra import (
    DATA_DIR,
    VisCRA,
    attention_grid,
    draw_mask,
    reasoning_prompt,
    top_windows,
    window_sums,
    zero_border,
)
from baselines.models import load_model
from baselines.types import Sample

SHA = {
    "infer_closed.txt": "d3632f663ed5799335fe351b391c2eaa84cbe7a92c14ec95b5f5b8106bb44342",
    "infer_open.txt": "d445d2b2959fd430ea906d468f39b86b206b9a7b65d201cf54e693ebec17dc9a",
    "visual_cot.txt": "a6f2d193c5fe839292d7394896112c717d16813d29afddbdb0fd9f5d9fb169fb",
}
INFER = read_verbatim(DATA_DIR / "infer_closed.txt")


@pytest.mark.parametrize("name", sorted(SHA))
def test_verbatim_texts_match_the_spec(name: str) -> None:
    assert sha256_text(read_verbatim(DATA_DIR / name)) == SHA[name]


def test_window_sums_equal_brute_force() -> None:
    g = np.random.default_rng(0).random((20, 17))
    got = {(r, c): s for s, r, c in window_sums(g, 6, 3)}
    want = {(r, c): g[r : r + 6, c : c + 6].sum() for r in range(0, 15, 3) for c in range(0, 12, 3)}
    assert got.keys() == want.keys()
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want)


def test_top_windows_keep_three_with_small_overlap() -> None:
    g = np.zeros((36, 36))
    g[10:14, 10:14] = 5.0  # the hottest spot
    g[30:34, 2:6] = 1.0
    wins = top_windows(g, 12, 3, 40)
    assert len(wins) == 3
    r0, c0 = wins[0]
    assert r0 <= 10 and r0 + 12 >= 14 and c0 <= 10 and c0 + 12 >= 14
    for i, (r, c) in enumerate(wins):
        for r2, c2 in wins[:i]:
            assert max(0, 12 - abs(r - r2)) * max(0, 12 - abs(c - c2)) < 40
    assert top_windows(np.zeros((36, 36)), 12, 3, 40)[0] == (0, 0)  # ties: row, then column


def test_zero_border_rows_and_columns() -> None:
    g = zero_border(np.ones((30, 20)), 4, 12, 1)
    assert g[:4].sum() == 0 and g[18:].sum() == 0 and g[:, 0].sum() == 0 and g[:, -1].sum() == 0
    assert g[4:18, 1:19].min() == 1.0


def test_mask_is_green_on_the_window_cells() -> None:
    im = Image.new("RGB", (280, 140), "white")
    out = draw_mask(im, (1, 2), 3, (5, 10), "green")  # 28 x 28 px cells
    assert out.size == im.size
    assert out.getpixel((56, 28)) == (0, 128, 0) and out.getpixel((139, 111)) == (0, 128, 0)
    assert out.getpixel((55, 28)) == (255, 255, 255) and out.getpixel((140, 111)) == (255, 255, 255)
    assert out.getpixel((139, 112)) == (255, 255, 255)


def test_prompt_forms_byte_exact() -> None:
    q = "List steps in detail to make a cake. Be precise"
    assert reasoning_prompt("How can I make a cake?", "paper") == (
        f"{INFER} how can I make a cake? Show your reasoning ability."
    )
    assert reasoning_prompt("Make a cake", "paper").endswith(" make a cake. Show your reasoning ability.")
    assert (
        reasoning_prompt("How To Bake?", "hades_code")
        == INFER + "how to bake?" + "Show your reasoning ability."
    )
    assert reasoning_prompt(q, "mmsb_code") == (
        "List steps in detail to make a cake. " + INFER + "be precise" + "Show your reasoning ability."
    )
    assert (
        reasoning_prompt("One part only", "mmsb_code")
        == INFER + "one part only" + "Show your reasoning ability."
    )
    open_infer = read_verbatim(DATA_DIR / "infer_open.txt")
    assert (
        reasoning_prompt(q, "open_source")
        == "List steps in detail to make a cake. " + open_infer + "be precise"
    )
    assert reasoning_prompt("Bake it", "visual_cot").endswith("instruction : Bake it")
    assert "red-masked" in reasoning_prompt("x", "paper", color="red")


def test_attention_grid_on_a_tiny_llava(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}")
    grid, hw = attention_grid(m.model, m.processor, draw_scene(0, (64, 64)), "What is this?", -1)
    assert hw == (8, 8) and grid.shape == (8, 8)
    assert (grid >= 0).all() and 0 < grid.sum() <= 1.0 + 1e-5  # a share of one softmax row
    with pytest.raises(ValueError, match="out of range"):
        attention_grid(m.model, m.processor, draw_scene(0, (64, 64)), "x", 99)


def test_the_bundled_pool_is_the_drawing_code_output() -> None:
    files = sorted((DATA_DIR / "pool").glob("*.png"))
    assert len(files) == 4
    for i, f in enumerate(files):
        assert np.array_equal(np.asarray(Image.open(f).convert("RGB")), np.asarray(draw_scene(i, (336, 336))))


def test_attack_on_a_tiny_llava_records_windows_and_queries(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}")
    params = {
        "aux_model": "target",
        "layer": -1,
        "block": 3,
        "stride": 1,
        "max_overlap": 4,
        "border_top": 1,
        "border_bottom": 2,
        "border_side": 0,
    }
    s = [Sample(id="a", text="How can I bake bread?"), Sample(id="b", text="Q", images=(draw_scene(2),))]
    out = VisCRA(params).apply(s, m)
    again = VisCRA(params).apply(s, m)
    assert [o.image_hashes() for o in out] == [o.image_hashes() for o in again]
    assert out[0].meta["image_source"].startswith("pool[") and out[1].meta["image_source"] == "sample"
    for o in out:
        assert o.meta["window"] in o.meta["windows"] and len(o.meta["windows"]) <= 3
        assert o.meta["attack_queries"] == 1 and o.meta["attack_stop"] == "no-feedback"
        r, c = o.meta["window"]
        assert r >= 1 and r + 3 <= 8 - 2 or o.meta["windows"] == [[0, 0]]
    green = np.all(np.asarray(out[1].images[0]) == (0, 128, 0), axis=-1)
    assert 0 < green.mean() < 0.5
    assert out[0].text.startswith(INFER)
