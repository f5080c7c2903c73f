"""The ``hf`` back-end: any transformers image-text-to-text model, through its own processor and chat template.

``hf:<repo id or local path>[@revision]`` (see ``baselines.models.load_model``). Batched generation with
left padding; samples are grouped by image count and sorted by prompt length (order restored); greedy by
default. ``white_box`` gives gradient access for LLaVA-family models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from baselines.base import BackendError, Model, WhiteBox
from baselines.params import StrictParams
from baselines.registry import register
from baselines.types import GenerationConfig, Response, Sample

# Model types for which white-box access is implemented (CLIP tower + projector + LM, fixed resolution).
WHITE_BOX_TYPES = ("llava",)


class HFParams(StrictParams):
    """Parameters of the hf back-end."""

    id: str = Field(description="hub repo id or local folder of an image-text-to-text model")
    revision: str | None = Field(None, description="hub branch, tag or commit (None: the default branch)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="weights dtype")
    device_map: str | None = Field(None, description="accelerate device map (None: one GPU if any, else CPU)")
    device: str | None = Field(
        None,
        pattern=r"^(cpu|mps|(cuda|xpu)(:[0-9]+)?)$",
        description="torch device of the whole model, e.g. cuda:1 (None: cuda if any, else cpu); "
        "ignored with device_map; not part of the run's identity (shards on different GPUs merge)",
    )
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


def require_accelerate(device_map: str | None) -> None:
    """A device map is placed by ``accelerate`` (not a core dependency): say how to get it, or what else to use."""
    import importlib.util

    if device_map and importlib.util.find_spec("accelerate") is None:
        raise BackendError(
            f"--set model.device_map={device_map} needs the accelerate package: pip install -e '.[accelerate]'. "
            "To put the whole model on one device, use --device cuda:<i> instead (no accelerate needed)"
        )


@register("model")
class HFModel(Model):
    """A transformers image-text-to-text model, loaded with AutoProcessor + AutoModelForImageTextToText."""

    summary = "any transformers image-text-to-text model (hf:<repo id or path>[@revision]), batched"
    Params = HFParams

    deviations: ClassVar[list[dict[str, str]]] = [
        {
            "what": "a literal image placeholder in a chat prompt's text",
            "official": "prompt texts written for API models (VLSBench's GPT-4o judge template holds "
            "'[INPUT]\\n<image>'), which read the placeholder as plain text",
            "ours": "in a sample's text or system prompt the processor's image token (LLaVA: '<image>') is written "
            "with its first letter's case swapped ('<Image>'); raw prompts and given conversations are unchanged",
            "why": "the processor expands every '<image>' of the text into image tokens: the prompt would hold two "
            "placeholders for one image and the model call fails",
            "effect": "the model reads '<Image>' where the text says '<image>'; the images are placed by the chat "
            "template as for every other prompt",
        }
    ]

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.hf_params: HFParams = self.params  # what was loaded (the organism sets its own)
        self._load()

    # -- loading -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        from baselines.models._hf_load import load_model_and_processor, resolve_revision

        require_accelerate(self.hf_params.device_map)
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
    @property
    def image_token(self) -> str | None:
        """The processor's image placeholder (what a raw prompt must contain once per image)."""
        return getattr(self.processor, "image_token", None)

    @property
    def chat_template(self) -> str | None:
        """The chat template text the prompts go through (processor's, else tokenizer's), or None."""
        tpl = getattr(self.processor, "chat_template", None) or getattr(
            self.processor.tokenizer, "chat_template", None
        )
        if isinstance(tpl, dict):
            tpl = tpl.get("default") or next(iter(tpl.values()), None)
        return tpl

    def prompt_text(self, sample: Sample) -> str:
        """The prompt text that reaches the processor for ``sample``.

        By default the model's chat template over :func:`build_messages` (with the generation prompt).
        ``sample.meta["messages"]``: a chat conversation given as is (``{"type": "image"}`` parts take the
        sample's images in order), with ``sample.meta["chat_template_kwargs"]`` passed to the template (e.g.
        Llama Guard's ``excluded_category_keys``). ``sample.meta["raw_prompt"] = True``: ``sample.text``
        verbatim, no chat template (it must hold :attr:`image_token` once per image).
        """
        from baselines.models._hf_inputs import count_image_parts, sample_mode

        mode = sample_mode(sample)
        if mode == "raw":
            n = sample.text.count(self.image_token) if self.image_token else 0
            if n != len(sample.images):
                raise ValueError(
                    f"raw prompt holds {n} image tokens {self.image_token!r} for {len(sample.images)} images"
                )
            return sample.text
        if mode == "chat":  # a placeholder in the text stays text (ledger); the images are the image parts
            from baselines.models._hf_inputs import literal_image_token

            token = self.image_token
            sample = sample.with_(
                text=literal_image_token(sample.text, token),
                system=literal_image_token(sample.system, token) if sample.system else sample.system,
            )
        msgs = build_messages(sample) if mode == "chat" else list(sample.meta["messages"])
        if mode == "messages" and count_image_parts(msgs) != len(sample.images):
            raise ValueError(
                f"meta messages have {count_image_parts(msgs)} image parts for {len(sample.images)} images"
            )
        kwargs = dict(sample.meta.get("chat_template_kwargs") or {}) if mode == "messages" else {}
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False, **kwargs)

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
        """One Response per sample, in order; a failing sample becomes Response(error=...).

        Batches are prepared (prompt, images, processor) one ahead in a background thread while the model
        generates the previous one."""
        from baselines.models._hf_gen import generate_all

        return generate_all(self, samples, config)
