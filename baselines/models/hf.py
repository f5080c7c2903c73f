"""The ``hf`` back-end: any transformers image-text-to-text model, through its own processor and chat template.

``hf:<repo id or local path>[@revision]`` (see ``baselines.models.load_model``). Batched generation with
left padding; samples are grouped by image count and sorted by prompt length (order restored); greedy by
default. ``white_box`` gives gradient access for LLaVA-family models.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from baselines.base import Model, WhiteBox
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

# Model types for which white-box access is implemented (CLIP tower + projector + LM, fixed resolution).
WHITE_BOX_TYPES = ("llava",)


class HFParams(BaseModel):
    """Parameters of the hf back-end."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="hub repo id or local folder of an image-text-to-text model")
    revision: str | None = Field(None, description="hub branch, tag or commit (None: the default branch)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="weights dtype")
    device_map: str | None = Field(None, description="accelerate device map (None: one GPU if any, else CPU)")
    attn_implementation: str | None = Field(
        None, description="eager | sdpa | flash_attention_2 (None: default)"
    )
    trust_remote_code: bool = Field(False, description="run the repo's own modelling code (off unless asked)")
    batch_size: int = Field(8, ge=1, description="samples per generate call")
    local_files_only: bool = Field(False, description="never contact the hub (implied for local folders)")


def build_messages(sample: Sample) -> list[dict[str, Any]]:
    """The chat messages of one sample: an optional system turn, then one user turn (images, then text)."""
    msgs: list[dict[str, Any]] = []
    if sample.system:
        msgs.append({"role": "system", "content": [{"type": "text", "text": sample.system}]})
    content = [{"type": "image"} for _ in sample.images] + [{"type": "text", "text": sample.text}]
    msgs.append({"role": "user", "content": content})
    return msgs


def _error_text(e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}"[:500]


@register("model")
class HFModel(Model):
    """A transformers image-text-to-text model, loaded with AutoProcessor + AutoModelForImageTextToText."""

    summary = "any transformers image-text-to-text model (hf:<repo id or path>[@revision]), batched"
    Params = HFParams

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.hf_params: HFParams = self.params  # what was loaded (the organism sets its own)
        self._load()

    # -- loading -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        from baselines.models._hf_load import load_model_and_processor, resolve_revision

        self.model, self.processor = load_model_and_processor(self.hf_params)
        self.revision = resolve_revision(self.model, self.hf_params.id, self.hf_params.revision)
        self._white_box: WhiteBox | None = None

    @property
    def device(self) -> Any:
        """Device of the model's input embeddings (where inputs go)."""
        return self.model.get_input_embeddings().weight.device

    def info(self) -> dict[str, Any]:
        """Provenance: id, requested and resolved revision, dtype, device, architecture, size, labels."""
        cfg = self.model.config
        return {
            "backend": self.name,
            "id": self.hf_params.id,
            "requested_revision": self.hf_params.revision,
            "revision": self.revision,
            "model_type": cfg.model_type,
            "architecture": type(self.model).__name__,
            "n_parameters": int(sum(p.numel() for p in self.model.parameters())),
            "dtype": str(self.model.dtype).replace("torch.", ""),
            "device": str(self.device),
            "attn_implementation": getattr(cfg, "_attn_implementation", None),
            "labels": [],
        }

    @property
    def white_box(self) -> WhiteBox | None:
        """Gradient access for LLaVA-family models (CLIP tower at a fixed resolution), else None."""
        if self.model.config.model_type not in WHITE_BOX_TYPES:
            return None
        if self._white_box is None:
            from baselines.models._hf_whitebox import LlavaWhiteBox

            self._white_box = LlavaWhiteBox(self.model, self.processor)
        return self._white_box

    # -- generation ----------------------------------------------------------------------------------------
    def prompt_text(self, sample: Sample) -> str:
        """The chat-formatted prompt (with the generation prompt) that the model sees for ``sample``."""
        return self.processor.apply_chat_template(
            build_messages(sample), add_generation_prompt=True, tokenize=False
        )

    def _batches(self, samples: Sequence[Sample], texts: list[str]) -> list[list[int]]:
        """Index batches: grouped by image count, sorted by prompt length (longest first), batch_size each."""
        order = sorted(range(len(samples)), key=lambda i: (len(samples[i].images), -len(texts[i]), i))
        out: list[list[int]] = []
        for i in order:
            if out and len(out[-1]) < self.params.batch_size:
                if len(samples[out[-1][0]].images) == len(samples[i].images):
                    out[-1].append(i)
                    continue
            out.append([i])
        return out

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One Response per sample, in order; a failing sample becomes Response(error=...)."""
        import torch

        results: list[Response | None] = [None] * len(samples)
        texts: list[str] = []
        for i, s in enumerate(samples):
            try:
                texts.append(self.prompt_text(s))
            except Exception as e:  # noqa: BLE001 - a bad sample must not sink the batch
                texts.append("")
                results[i] = Response(sample_id=s.id, text="", error=f"chat template: {_error_text(e)}")
        todo = [i for i in range(len(samples)) if results[i] is None]
        if not config.greedy:
            torch.manual_seed(config.seed)
        for batch in self._batches([samples[i] for i in todo], [texts[i] for i in todo]):
            idx = [todo[b] for b in batch]
            try:
                out = self._generate_batch([samples[i] for i in idx], [texts[i] for i in idx], config)
                for i, r in zip(idx, out, strict=True):
                    results[i] = r
            except Exception as e:  # noqa: BLE001 - isolate the failing sample(s)
                if len(idx) == 1:
                    results[idx[0]] = Response(sample_id=samples[idx[0]].id, text="", error=_error_text(e))
                    continue
                for i in idx:
                    try:
                        results[i] = self._generate_batch([samples[i]], [texts[i]], config)[0]
                    except Exception as e1:  # noqa: BLE001
                        results[i] = Response(sample_id=samples[i].id, text="", error=_error_text(e1))
        return [r for r in results if r is not None]

    def _generate_batch(
        self, samples: list[Sample], texts: list[str], config: GenerationConfig
    ) -> list[Response]:
        import torch

        t0 = time.perf_counter()
        images = [im.convert("RGB") for s in samples for im in s.images]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if images:
            kwargs["images"] = images
        inputs = self.processor(**kwargs).to(self.device)
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        tok = self.processor.tokenizer
        gen: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "pad_token_id": tok.pad_token_id}
        if config.greedy:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=None)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen)
        new = out[:, inputs["input_ids"].shape[1] :].cpu()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        eos_ids.add(tok.eos_token_id)
        per = (time.perf_counter() - t0) / len(samples)
        responses = []
        for s, row in zip(samples, new.tolist(), strict=True):
            n = len(row)
            for j, t in enumerate(row):
                if t in eos_ids:
                    n = j + 1
                    break
            text = tok.decode(row[:n], skip_special_tokens=True).strip()
            responses.append(Response(sample_id=s.id, text=text, latency_s=per, n_output_tokens=n))
        return responses
