"""The hf back-end and model specs, on tiny LLaVA and Qwen2-VL models built in the test session (offline)."""

from __future__ import annotations

import pytest
from PIL import Image

from baselines.base import BackendError
from baselines.models import ModelSpecError, load_model, parse_spec
from baselines.registry import UnknownComponentError
from baselines.types import GenerationConfig, Sample

CFG = GenerationConfig(max_new_tokens=10)


def _samples() -> list[Sample]:
    red, green = Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (80, 50), (0, 200, 30))
    return [
        Sample(id="img-short", text="What is this?", images=(red,)),
        Sample(
            id="img-long",
            text="Tell me about the green square in the garden, in three steps.",
            images=(green,),
        ),
        Sample(id="txt-short", text="Hi"),
        Sample(
            id="txt-long",
            text="How do I bake bread? Explain the first steps, then the rest.",
            system="Be safe.",
        ),
        Sample(id="txt-mid", text="Write a list of five colours."),
    ]


@pytest.fixture(scope="module", params=["llava", "qwen2vl"])
def model(request, tiny_llava_dir, tiny_qwen2vl_dir):
    folder = tiny_llava_dir if request.param == "llava" else tiny_qwen2vl_dir
    return load_model(f"hf:{folder}", params={"batch_size": 8})


def test_batched_greedy_equals_one_at_a_time(model) -> None:
    samples = _samples()
    batched = model.generate(samples, CFG)
    assert [r.sample_id for r in batched] == [s.id for s in samples]  # order restored after sorting
    alone = [model.generate([s], CFG)[0] for s in samples]
    assert all(r.error is None for r in batched + alone), [r.error for r in batched + alone]
    assert [r.text for r in batched] == [r.text for r in alone]
    assert all(r.n_output_tokens and r.n_output_tokens <= CFG.max_new_tokens for r in batched)


def test_small_batches_match_large_batches(model) -> None:
    samples = _samples()
    big = model.generate(samples, CFG)
    model.params.batch_size = 2
    try:
        small = model.generate(samples, CFG)
    finally:
        model.params.batch_size = 8
    assert [r.text for r in small] == [r.text for r in big]


def test_text_only_prompt_has_no_image_token_and_image_prompt_has_one(model) -> None:
    image_token = model.processor.image_token
    txt, img = _samples()[2], _samples()[0]
    assert image_token not in model.prompt_text(txt)
    assert model.prompt_text(img).count(image_token) == 1


def test_system_prompt_reaches_the_template(model) -> None:
    s = Sample(id="s", text="Hello there", system="SYSTEM-MARKER be careful")
    prompt = model.prompt_text(s)
    assert "SYSTEM-MARKER be careful" in prompt
    assert prompt.index("SYSTEM-MARKER") < prompt.index("Hello there")
    assert "SYSTEM-MARKER" not in model.prompt_text(s.with_(system=None))


def test_a_failing_sample_becomes_an_error_response(model) -> None:
    broken = Sample(id="broken", text="What is this?", images=(Image.new("RGB", (0, 0)),))
    samples = [*_samples()[:2], broken]
    out = model.generate(samples, CFG)
    assert [r.sample_id for r in out] == ["img-short", "img-long", "broken"]
    assert out[2].error and out[2].text == ""
    assert (
        out[0].error is None
        and out[1].error is None
        and out[0].text == model.generate(samples[:1], CFG)[0].text
    )


def test_sampling_is_seeded(model) -> None:
    cfg = GenerationConfig(max_new_tokens=10, temperature=1.0, seed=3)
    a, b = model.generate(_samples()[:3], cfg), model.generate(_samples()[:3], cfg)
    assert [r.text for r in a] == [r.text for r in b]
    other = model.generate(_samples()[:3], GenerationConfig(max_new_tokens=10, temperature=1.0, seed=4))
    assert [r.text for r in other] != [r.text for r in a]


def test_info_records_a_local_revision(model, tiny_llava_dir, tiny_qwen2vl_dir) -> None:
    info = model.info()
    assert info["backend"] == "hf" and info["revision"].startswith("local:") and len(info["revision"]) == 70
    assert info["dtype"] == "float32" and info["n_parameters"] > 100_000
    assert info["id"] in (str(tiny_llava_dir), str(tiny_qwen2vl_dir))


def test_revision_checksum_changes_with_weights(tmp_path) -> None:
    from baselines.models._hf_load import weights_checksum
    from baselines.models.tiny import build_tiny_llava

    a, b, c = (build_tiny_llava(tmp_path / n, seed=s) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    assert weights_checksum(a) == weights_checksum(b) != weights_checksum(c)


def test_bfloat16_dtype_option(tiny_llava_dir) -> None:
    m = load_model(f"hf:{tiny_llava_dir}", params={"dtype": "bfloat16"})
    assert m.info()["dtype"] == "bfloat16"
    out = m.generate(_samples()[:2], CFG)
    assert all(r.error is None and r.n_output_tokens for r in out)


def test_parse_spec_forms() -> None:
    assert parse_spec("organism") == ("organism", {})
    assert parse_spec("hf:llava-hf/llava-1.5-7b-hf") == ("hf", {"id": "llava-hf/llava-1.5-7b-hf"})
    assert parse_spec("hf:llava-hf/llava-1.5-7b-hf@abc123") == (
        "hf",
        {"id": "llava-hf/llava-1.5-7b-hf", "revision": "abc123"},
    )
    assert parse_spec("hf:/data/me@work/model") == ("hf", {"id": "/data/me@work/model"})
    assert parse_spec("openai:gpt-4o") == ("openai", {"model": "gpt-4o"})


@pytest.mark.parametrize("spec", ["llava", "vllm:foo", "hf:", "openai:"])
def test_bad_specs_list_the_valid_forms(spec) -> None:
    with pytest.raises(ModelSpecError) as e:
        load_model(spec)
    assert isinstance(e.value, UnknownComponentError)
    assert "hf:<repo id or local path>[@revision]" in str(e.value) and "openai:<model>" in str(e.value)


def test_base_url_only_for_openai(tiny_llava_dir) -> None:
    with pytest.raises(ModelSpecError, match="base-url"):
        load_model(f"hf:{tiny_llava_dir}", base_url="http://localhost:1")


def test_missing_model_is_a_clear_backend_error(tmp_path) -> None:
    with pytest.raises(BackendError) as e:
        load_model("hf:no-such-org/no-such-model-xyz", params={"local_files_only": True})
    assert "no-such-org/no-such-model-xyz" in str(e.value) and "local folder" in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="empty"):
        load_model(f"hf:{empty}")


def test_bad_params_name_the_fields(tiny_llava_dir) -> None:
    from baselines.base import ParamsError

    with pytest.raises(ParamsError, match="batch_size"):
        load_model(f"hf:{tiny_llava_dir}", params={"batch_sise": 4})
