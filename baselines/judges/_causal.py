"""Two back-ends for text-only classifiers that take a *raw* prompt string (HarmBench's classifiers):

- :class:`CausalLMJudgeModel` — a transformers causal LM (``AutoModelForCausalLM`` + ``AutoTokenizer``, slow
  tokenizer as HarmBench's notebook loads it, left padding), greedy; the prompt string reaches the tokenizer
  verbatim (BOS added by the tokenizer as usual, no chat template).
- :class:`CompletionsJudgeModel` — an OpenAI-compatible ``/completions`` endpoint (vLLM, as HarmBench's
  ``evaluate_completions.py`` uses it): ``prompt`` sent verbatim, ``temperature 0``.

Both are Models (``generate(samples, config)``) used only by judges; they are not registered run back-ends.
Heavy imports stay inside functions.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from baselines.base import BackendError, Model
from baselines.types import GenerationConfig, Response, Sample


class CausalLMJudgeModel(Model):
    """A local or hub causal LM answering raw prompts (no chat template), batched with left padding."""

    name = "hf-causal"
    accepts_images = False

    def __init__(self, model_id: str, *, revision: str | None = None, dtype: str = "auto", batch_size: int = 8,
                 local_files_only: bool = False) -> None:  # fmt: skip
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from baselines.models._hf_load import is_local, resolve_revision, torch_dtype

        local = local_files_only or is_local(model_id)
        try:
            try:
                tok = AutoTokenizer.from_pretrained(
                    model_id, revision=revision, use_fast=False, local_files_only=local
                )
            except (ValueError, OSError, ImportError, TypeError):  # no slow tokenizer in the folder
                tok = AutoTokenizer.from_pretrained(model_id, revision=revision, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(
                model_id, revision=revision, dtype=torch_dtype(dtype), local_files_only=local
            )
        except (OSError, ValueError, KeyError) as e:
            raise BackendError(
                f"cannot load causal LM {model_id!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}. "
                "Give a local folder or a hub id in the Hugging Face cache."
            ) from None
        tok.padding_side = "left"
        tok.truncation_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.tokenizer = tok
        self.model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
        self.model_id = model_id
        self.revision = resolve_revision(self.model, model_id, revision)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """Provenance: id, revision, architecture, size, dtype."""
        return {
            "backend": self.name,
            "id": self.model_id,
            "revision": self.revision,
            "architecture": type(self.model).__name__,
            "n_parameters": int(sum(p.numel() for p in self.model.parameters())),
            "dtype": str(self.model.dtype).replace("torch.", ""),
        }

    def clip(self, text: str, n_tokens: int) -> str:
        """``text`` cut to its first ``n_tokens`` tokens (HarmBench: a right-truncating copy of the tokenizer)."""
        with self._lock:
            ids = self.tokenizer.encode(text, add_special_tokens=False)[:n_tokens]  # kept from the start
            return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """Greedy answers to the raw prompts ``sample.text``, in order (images are not accepted)."""
        import torch

        out: list[Response] = []
        for start in range(0, len(samples), self.batch_size):
            batch = list(samples[start : start + self.batch_size])
            if any(s.images for s in batch):
                out += [Response(s.id, "", error="a text-only classifier got images") for s in batch]
                continue
            with self._lock:
                enc = self.tokenizer([s.text for s in batch], return_tensors="pt", padding=True)
            enc = enc.to(self.model.device)
            with torch.inference_mode():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=config.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            for s, row in zip(batch, gen[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
                with self._lock:
                    text = self.tokenizer.decode(row, skip_special_tokens=True).strip()
                out.append(Response(s.id, text, n_output_tokens=len(row)))
        return out


class CompletionsJudgeModel(Model):
    """An OpenAI-compatible ``/completions`` endpoint answering raw prompts (no chat template)."""

    name = "openai-completions"
    accepts_images = False

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0) -> None:  # fmt: skip
        super().__init__()
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self._served: str | None = None

    def info(self) -> dict[str, Any]:
        """Provenance: model name, the name the server reported, base URL."""
        return {"backend": self.name, "id": self.model_name, "revision": self._served or "unknown",
                "base_url": self.base_url}  # fmt: skip

    def _one(self, session: Any, sample: Sample, config: GenerationConfig) -> Response:
        import os

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": self.model_name, "prompt": sample.text, "max_tokens": config.max_new_tokens,
                "temperature": 0.0}  # fmt: skip
        try:
            r = session.post(
                f"{self.base_url}/completions", json=body, headers=headers, timeout=self.timeout_s
            )
            if r.status_code >= 400:
                return Response(sample.id, "", error=f"HTTP {r.status_code} from {self.base_url}/completions")
            data = r.json()
            text = data["choices"][0]["text"]
        except Exception as e:  # noqa: BLE001 - one failed request leaves its sample unjudged
            return Response(sample.id, "", error=f"completions: {type(e).__name__}: {str(e)[:200]}")
        self._served = self._served or data.get("model")
        return Response(sample.id, (text or "").strip())

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        """One request per sample, in order."""
        from baselines.http import new_session

        session = new_session()
        return [
            Response(s.id, "", error="a text-only classifier got images")
            if s.images
            else self._one(session, s, config)
            for s in samples
        ]
