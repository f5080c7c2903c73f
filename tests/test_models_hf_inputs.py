"""hf back-end inputs: the fast image path is exact, raw prompts, conversations, a single BOS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from baselines.models import load_model
from baselines.models._hf_gen import prepare
from baselines.models._hf_inputs import pre_resize, resize_rule
from baselines.types import GenerationConfig, Sample

CFG = GenerationConfig(max_new_tokens=8)


class Recorder:
    """Wraps a processor: records the texts it is called with and what it returns."""

    def __init__(self, processor) -> None:
        self._p = processor
        self.texts: list[str] = []
        self.outputs: list = []

    def __call__(self, *args, **kwargs):
        self.texts.extend(kwargs.get("text") or [])
        out = self._p(*args, **kwargs)
        self.outputs.append(out)
        return out

    def __getattr__(self, name):
        return getattr(self._p, name)


def _noise(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    return Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)


@pytest.fixture(scope="module", params=["llava", "qwen2vl"])
def model(request, tiny_llava_dir, tiny_qwen2vl_dir):
    folder = tiny_llava_dir if request.param == "llava" else tiny_qwen2vl_dir
    return load_model(f"hf:{folder}", params={"batch_size": 4})


@pytest.mark.parametrize(
    ("size", "mode"), [((760, 760), "RGB"), ((80, 50), "RGB"), ((50, 123), "RGB"), ((300, 200), "RGBA")]
)
def test_fast_image_path_gives_the_processors_pixel_values(model, size, mode) -> None:
    ip = model.processor.image_processor
    rule = resize_rule(ip)
    assert rule is not None  # the fast path is really taken for both tiny models
    im = _noise(*size, mode=mode)
    fast = pre_resize(im, ip, rule)
    if size == (760, 760):
        assert fast.size != im.size and max(fast.size) < 200  # resized up front, not by the processor
    ref = ip(images=[im.convert("RGB")], return_tensors="pt")
    got = ip(images=[fast], return_tensors="pt")
    assert set(ref.keys()) == set(got.keys())
    for k in ref:
        assert ref[k].shape == got[k].shape, k
        assert torch.allclose(ref[k].float(), got[k].float(), atol=1e-6, rtol=0), k


def test_prepared_batch_equals_the_plain_processor_call(model) -> None:
    samples = [
        Sample(f"s{i}", f"What is in picture {i}?", images=(_noise(760, 500, seed=i),)) for i in range(3)
    ]
    texts = [model.prompt_text(s) for s in samples]
    inputs, _ = prepare(model, samples, texts)
    ref = model.processor(
        text=texts, images=[s.images[0] for s in samples], return_tensors="pt", padding=True
    )
    assert set(inputs.keys()) == set(ref.keys())
    for k in ref:
        assert (
            torch.equal(inputs[k], ref[k])
            if not ref[k].is_floating_point()
            else torch.allclose(inputs[k], ref[k], atol=1e-6, rtol=0)
        ), k


def test_unknown_image_processors_are_left_alone() -> None:
    class Custom:
        do_resize = True

    assert resize_rule(Custom()) is None
    im = _noise(40, 30, mode="L")
    assert pre_resize(im, Custom(), None).mode == "RGB" and pre_resize(im, Custom(), None).size == (40, 30)


def test_raw_prompt_reaches_the_processor_verbatim(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}")
    rec = Recorder(m.processor)
    m.processor = rec
    img = _noise(64, 64)
    raw = "Task: say hi\n<image>\nThe end:"
    out = m.generate([Sample("r", raw, images=(img,), meta={"raw_prompt": True})], CFG)
    assert out[0].error is None and rec.texts == [raw]
    bad = m.generate([Sample("b", "no image token here", images=(img,), meta={"raw_prompt": True})], CFG)
    assert bad[0].error and "image tokens" in bad[0].error


def test_a_leading_bos_is_not_doubled(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}")
    rec = Recorder(m.processor)
    m.processor = rec
    tok = m.processor.tokenizer
    m.generate([Sample("b", "<s>USER: hi ASSISTANT:", meta={"raw_prompt": True})], CFG)
    ids = rec.outputs[-1]["input_ids"][0].tolist()
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert rec.texts[-1] == "USER: hi ASSISTANT:"


def test_messages_and_template_kwargs_reach_the_chat_template(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}")
    m.processor.chat_template = (
        "{%- for msg in messages -%}[{{ msg['role'] }}]"
        "{%- for p in msg['content'] -%}{%- if p['type'] == 'image' -%}<image>{%- else -%}{{ p['text'] }}"
        "{%- endif -%}{%- endfor -%}{%- endfor -%}|{{ marker | default('none') }}|"
    )
    rec = Recorder(m.processor)
    m.processor = rec
    msgs = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
    ]
    s = Sample(
        "m",
        "ignored",
        images=(_noise(64, 64),),
        meta={"messages": msgs, "chat_template_kwargs": {"marker": "K"}},
    )
    out = m.generate([s], CFG)
    assert out[0].error is None and rec.texts == ["[user]<image>q[assistant]a|K|"]
    wrong = s.with_(images=())
    assert "image parts" in (m.generate([wrong], CFG)[0].error or "")
