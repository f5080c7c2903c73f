"""Helpers of the judge tests: a tiny causal LM folder and a processor/tokenizer recorder.

The recorder wraps a processor (or tokenizer) and keeps every ``text`` that reaches it, so a test can compare the
exact judge input against the verbatim prompt files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_tiny_causal_lm(path: Path, seed: int = 0) -> Path:
    """A seeded tiny Llama causal LM + fast tokenizer (BOS ``<s>`` added), saved at ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from baselines.models.tiny import _bpe_tokenizer, default_corpus

    torch.manual_seed(seed)
    corpus = default_corpus() + ["Yes", "No", "yes", "no", "[INST]", "[/INST]", "BEHAVIOR GENERATION CONTEXT"]
    raw = _bpe_tokenizer(["<pad>", "<s>", "</s>", "<unk>"], 400, corpus, "<s>")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


class Recorder:
    """Wraps a processor or tokenizer; records the ``text`` of every call and delegates everything."""

    def __init__(self, inner: Any) -> None:
        self.__dict__["_inner"] = inner
        self.__dict__["texts"] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        text = kwargs.get("text", args[0] if args else None)
        self.texts.extend([text] if isinstance(text, str) else list(text or []))
        return self._inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)
