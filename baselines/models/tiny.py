"""Deterministic builders of tiny multimodal models, saved as ordinary transformers folders (no download).

- :func:`build_tiny_llava` — a ``LlavaForConditionalGeneration`` (CLIP-style tower + Llama-style LM,
  ~0.5M parameters by default, 64 image tokens at 64 px), with a byte-level BPE tokenizer trained on
  generated sentences and a LLaVA-1.5 chat template. Loadable by ``AutoProcessor`` and
  ``AutoModelForImageTextToText``. Used by tests, by the smoke-test ``organism`` and as the organism's
  starting architecture.
- :func:`build_tiny_qwen2vl` — a ``Qwen2VLForConditionalGeneration`` (~0.7M parameters) with an image-only
  processor (see ``baselines.models._qwen_processor``; ``AutoProcessor`` returns only its tokenizer, the
  hf back-end handles that).

Weights are random (seeded): outputs are gibberish, but fully deterministic, which is what tests need.
Heavy imports stay inside functions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LLAVA_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<image>"]
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# LLaVA-1.5 format: "<system>\n\nUSER: <image>\n<text> ASSISTANT: <answer></s>". Content may be a string or a
# list of {"type": "image"} / {"type": "text", "text": ...} parts; the system message is optional.
LLAVA_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set parts = [{'type': 'text', 'text': m['content']}] -%}"
    "{%- else -%}{%- set parts = m['content'] -%}{%- endif -%}"
    "{%- if m['role'] == 'system' -%}"
    "{%- for p in parts if p['type'] == 'text' -%}{{ p['text'] }}{%- endfor -%}{{ '\\n\\n' }}"
    "{%- elif m['role'] == 'user' -%}{{ 'USER: ' }}"
    "{%- for p in parts if p['type'] == 'image' -%}{{ '<image>\\n' }}{%- endfor -%}"
    "{%- for p in parts if p['type'] == 'text' -%}{{ p['text'] }}{%- endfor -%}{{ ' ' }}"
    "{%- elif m['role'] == 'assistant' -%}{{ 'ASSISTANT: ' }}"
    "{%- for p in parts if p['type'] == 'text' -%}{{ p['text'] }}{%- endfor -%}{{ '</s>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}ASSISTANT:{%- endif -%}"
)

QWEN_CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['content'] is string -%}{%- set parts = [{'type': 'text', 'text': m['content']}] -%}"
    "{%- else -%}{%- set parts = m['content'] -%}{%- endif -%}"
    "<|im_start|>{{ m['role'] + '\\n' }}"
    "{%- for p in parts -%}"
    "{%- if p['type'] == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif p['type'] == 'text' -%}{{ p['text'] }}{%- endif -%}"
    "{%- endfor -%}{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

_WORDS = (
    "the a an of to and in is it that for on with as how what why can you please tell me about "
    "image picture photo shows describe write list steps make explain safe help answer question "
    "red blue green yellow circle square triangle text words number one two three four five "
    "cat dog house tree car book water food cook bake bread garden plant learn study code program "
    "sorry cannot assist request here are some first then finally sure I will this above below"
).split()


def default_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Generated sentences over a small English word list (plus digits/punctuation), for tokenizer training."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 14))]
        sent = " ".join(words).capitalize() + rng.choice([".", "?", "!", ":"])
        out.append(f"{i % 10}. {sent}" if i % 7 == 0 else sent)
    return out


def _bpe_tokenizer(specials: list[str], vocab_size: int, corpus: Sequence[str], bos: str | None) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` (nothing is ever unknown); ``bos`` prepended if given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    if bos is not None:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return tok


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def build_tiny_llava(
    path: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    corpus: Sequence[str] | None = None,
    image_size: int = 64,
    patch_size: int = 8,
    vision_hidden: int = 64,
    vision_layers: int = 2,
    text_hidden: int = 128,
    text_layers: int = 2,
    text_heads: int = 4,
    text_kv_heads: int = 2,
    extra_tokens: Sequence[str] = (),
) -> Path:
    """Build and save a seeded tiny LLaVA-1.5-style model + processor folder at ``path``; return the path.

    ``corpus`` (sentences) trains the tokenizer (default: :func:`default_corpus`); ``extra_tokens`` are
    added as ordinary (non-special) tokens. Same arguments -> byte-identical weights and tokenizer.
    """
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok_obj = _bpe_tokenizer(LLAVA_SPECIALS, vocab_size, corpus or default_corpus(seed=seed), bos="<s>")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tok_obj,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        padding_side="left",
    )
    if extra_tokens:
        tok.add_tokens(list(extra_tokens))
    tok.chat_template = LLAVA_CHAT_TEMPLATE
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    vision = CLIPVisionConfig(
        hidden_size=vision_hidden,
        intermediate_size=2 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
    )
    text = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=text_hidden,
        intermediate_size=2 * text_hidden,
        num_hidden_layers=text_layers,
        num_attention_heads=text_heads,
        num_key_value_heads=text_kv_heads,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        max_position_embeddings=1024,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        image_seq_length=(image_size // patch_size) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    _seed_everything(seed)
    model = LlavaForConditionalGeneration(config).eval()
    _set_generation_defaults(model, tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _set_generation_defaults(model: Any, tok: Any) -> None:
    gc = model.generation_config
    gc.bos_token_id = tok.bos_token_id
    gc.eos_token_id = tok.eos_token_id
    gc.pad_token_id = tok.pad_token_id
    gc.do_sample = False


def build_tiny_qwen2vl(
    path: str | Path, *, seed: int = 0, vocab_size: int = 512, image_size: int = 56
) -> Path:
    """Build and save a seeded tiny Qwen2-VL model + image-only processor folder; return the path.

    Images are resized to ``image_size`` x ``image_size`` (a multiple of 28; ``min_pixels = max_pixels``
    fixes the grid), giving ``(image_size // 28) ** 2`` image tokens.
    """
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    from baselines.models._qwen_processor import Qwen2VLImageOnlyProcessor

    if image_size % 28:
        raise ValueError(f"image_size must be a multiple of 28, got {image_size}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok_obj = _bpe_tokenizer(QWEN_SPECIALS, vocab_size, default_corpus(seed=seed), bos=None)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tok_obj,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"},
        padding_side="left",
    )
    tok.chat_template = QWEN_CHAT_TEMPLATE
    pixels = image_size * image_size
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=pixels, max_pixels=pixels, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    processor = Qwen2VLImageOnlyProcessor(image_processor, tok, chat_template=QWEN_CHAT_TEMPLATE)
    hidden, heads = 128, 4
    head_dim = hidden // heads
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 8, head_dim // 8 * 3 // 2, head_dim // 8 * 3 // 2],
            },
            "bos_token_id": None,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 64,
            "hidden_size": hidden,
            "num_heads": 4,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    _seed_everything(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    _set_generation_defaults(model, tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
