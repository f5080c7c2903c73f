"""White-box access for defenses that read a protected model's internals (HiddenDetect, CoCA, ETA).

A defense receives a :class:`~baselines.base.Model`, possibly already wrapped by other defenses. These helpers
find the transformers back-end underneath (an ``hf`` or ``organism`` model: it has ``.model`` and
``.processor``) and run one prefill forward pass over chat-formatted samples, exactly as the back-end would
prompt them (its own chat template, its own processor), returning the per-layer hidden states at the last
prompt position. Heavy imports stay inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baselines.base import Model, WhiteBoxRequiredError
from baselines.types import Sample


def hf_backend(model: Model, defense: str) -> Any:
    """The transformers back-end under ``model`` (walking through defense wrappers).

    Raises WhiteBoxRequiredError (the CLI's exit 2) naming what ``defense`` needs when the model is an API or
    any back-end without weights in this process.
    """
    m: Any = model
    seen = 0
    while m is not None and seen < 32:
        if hasattr(m, "processor") and hasattr(m, "model") and hasattr(m, "prompt_text"):
            return m
        m = getattr(m, "inner", None)
        seen += 1
    raise WhiteBoxRequiredError(
        f"defense {defense!r} reads the protected model's hidden states/logits and needs a local transformers "
        f"model (--model organism or hf:<id or path>); {getattr(model, 'name', type(model).__name__)!r} "
        "gives no such access"
    )


def decoder_parts(hf_model: Any) -> tuple[Any, Any]:
    """(final norm, LM head) of a transformers image-text-to-text model (LLaVA family and similar)."""
    lm_head = hf_model.get_output_embeddings()
    inner = getattr(hf_model, "model", hf_model)
    lang = getattr(inner, "language_model", inner)
    norm = getattr(lang, "norm", None)
    if norm is None:
        norm = getattr(getattr(lang, "model", None), "norm", None)
    if norm is None or lm_head is None:
        raise WhiteBoxRequiredError(
            f"cannot find the final norm and LM head of {type(hf_model).__name__} (logit lens needs both)"
        )
    return norm, lm_head


def prefill_inputs(backend: Any, samples: Sequence[Sample]) -> Any:
    """The processor output for ``samples`` as the back-end would generate from them (left padded)."""
    from baselines.models._hf_gen import prepare

    texts = [backend.prompt_text(s) for s in samples]
    inputs, _ = prepare(backend, list(samples), texts)
    inputs = inputs.to(backend.device)
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(backend.model.dtype)
    return inputs


def last_position_hidden_states(backend: Any, samples: Sequence[Sample]) -> Any:
    """(B, L + 1, d) float32: every entry of ``hidden_states`` (embeddings first) at the last prompt position.

    Samples of one call must have the same number of images (the processor pads the text on the left, so
    the last position is the last prompt token of every row).
    """
    import torch

    tok = backend.processor.tokenizer
    if len({len(s.images) for s in samples}) > 1:
        raise ValueError("last_position_hidden_states: samples of one call must have equal image counts")
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        inputs = prefill_inputs(backend, samples)
    finally:
        tok.padding_side = side
    with torch.inference_mode():
        out = backend.model(**inputs, output_hidden_states=True, use_cache=False, logits_to_keep=1)
    return torch.stack([h[:, -1, :].float() for h in out.hidden_states], dim=1)


def last_position_logits(backend: Any, samples: Sequence[Sample]) -> Any:
    """(B, V) float32 next-token logits after each chat-formatted prompt (the first generated position's
    logits under greedy decoding, before any sampling processor). Samples of one call share an image count."""
    import torch

    tok = backend.processor.tokenizer
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        inputs = prefill_inputs(backend, samples)
    finally:
        tok.padding_side = side
    with torch.inference_mode():
        out = backend.model(**inputs, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, :].float()
