"""MLLM-Protector: harmful answers (score < 0.5) are detoxified or refused; the prompt is verbatim."""

from __future__ import annotations

import pytest
from test_defense_fakes import FakeModel, sample

from baselines.base import BackendError
from baselines.defenses.mllm_protector import MllmProtector, detox_prompt
from baselines.types import GenerationConfig

VERBATIM = (
    "You are given a response which may contain sensitive or harmful information, Please rewrite the response "
    "to make it harmless. \nOriginal response: R\nCorrected response: "
)


def _scorer(texts):
    return [0.1 if "BAD" in t else 0.9 for t in texts]


def test_detox_prompt_verbatim() -> None:
    """Inference prompt (no question) and training prompt (with question) as in the official code."""
    assert detox_prompt("R") == VERBATIM
    assert detox_prompt("R", "Q?").startswith("You are given a question and a response, the response may")
    assert detox_prompt("R", "Q?").endswith(
        " harmless. \nQuestion: Q?\nOriginal response: R\nCorrected response: "
    )


def test_refusal_without_detoxifier() -> None:
    """Without a detoxifier a harmful answer becomes the fixed refusal; safe answers pass."""
    fake = FakeModel(lambda s: "BAD stuff" if "x" in s.text else "fine")
    out = (
        MllmProtector(scorer=_scorer)
        .wrap(fake)
        .generate([sample(0, "x"), sample(1, "y")], GenerationConfig())
    )
    assert out[0].text == "Sorry, but I can't help you with your request." and out[1].text == "fine"
    assert out[0].meta["mllm_protector"] == {"score": 0.1, "harmful": True, "original": "BAD stuff"}
    assert out[1].meta["mllm_protector"] == {"score": 0.9, "harmful": False}


def test_detoxifier_rewrites_in_one_batch() -> None:
    """Harmful answers go to the detoxifier (one batch) with the inference prompt (no question)."""
    seen = []

    def detox(prompts):
        seen.append(prompts)
        return ["rewritten"] * len(prompts)

    fake = FakeModel(lambda s: "BAD " + s.text)
    out = (
        MllmProtector(scorer=_scorer, detoxifier=detox)
        .wrap(fake)
        .generate([sample(0, "a"), sample(1, "b")], GenerationConfig())
    )
    assert [r.text for r in out] == ["rewritten", "rewritten"]
    assert seen == [[detox_prompt("BAD a"), detox_prompt("BAD b")]]


def test_missing_detector_error() -> None:
    """No detector path -> a clear error naming detector_path and the released LoRA."""
    with pytest.raises(BackendError, match="detector_path not set.*protector_detector"):
        MllmProtector().wrap(FakeModel(str))


def test_local_tiny_detector_and_detoxifier(tiny_llava_dir, tmp_path) -> None:
    """Real loaders: a tiny seq-cls detector scores in (0, 1) and a tiny causal LM continues the prompt."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_llava_dir)
    cfg = dict(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    LlamaForSequenceClassification(LlamaConfig(num_labels=1, **cfg)).save_pretrained(tmp_path / "det")
    LlamaForCausalLM(LlamaConfig(**cfg)).save_pretrained(tmp_path / "detox")
    tok.save_pretrained(tmp_path / "det")
    tok.save_pretrained(tmp_path / "detox")
    params = {
        "detector_path": str(tmp_path / "det"),
        "detoxifier_path": str(tmp_path / "detox"),
        "dtype": "float32",
        "device": "cpu",
        "threshold": 1.1,
        "detox_max_length": 8,
    }
    d = MllmProtector(params)
    out = d.wrap(FakeModel(lambda s: "some answer")).generate([sample(0)], GenerationConfig())
    meta = out[0].meta["mllm_protector"]
    assert 0.0 < meta["score"] < 1.0 and meta["harmful"] is True  # threshold 1.1: everything is harmful
    assert isinstance(out[0].text, str) and out[0].text != "some answer"
