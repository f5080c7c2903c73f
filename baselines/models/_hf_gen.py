"""Batched generation for the hf back-end (``HFModel.generate``).

- Prompts are rendered once per sample; samples are grouped by image count and sorted by prompt length.
- Batch k+1 is prepared (images resized exactly as the processor would, see ``_hf_inputs``; processor call)
  in one background thread while the model generates batch k. Tokenizer calls hold a lock (a fast
  tokenizer must not be used from two threads at once).
- One ``transformers.GenerationConfig`` per decoding setting is built once and reused.
- A leading BOS that the tokenizer would add again is stripped from the text (as ``apply_chat_template``
  with ``tokenize=True`` does), so templates that write ``<|begin_of_text|>``/``<bos>`` are not doubled.
- A failing batch is retried sample by sample; a failing sample becomes ``Response(error=...)``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from baselines.models._hf_inputs import pre_resize, resize_rule
from baselines.types import GenerationConfig, Response, Sample


def error_text(e: BaseException) -> str:
    """``Type: first line of the message``, at most 500 characters."""
    msg = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {msg}"[:500]


@dataclass
class FastState:
    """Per-model helpers, built once: image resize rule, tokenizer lock, generation configs."""

    ip: Any
    rule: Any
    bos: str | None
    eos_ids: set[int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    gen_configs: dict[tuple, Any] = field(default_factory=dict)


def _adds_bos(tok: Any) -> bool:
    if not tok.bos_token or tok.bos_token_id is None:
        return False
    with_special = tok("a")["input_ids"]
    plain = tok("a", add_special_tokens=False)["input_ids"]
    return bool(with_special) and with_special[0] == tok.bos_token_id and plain[:1] != [tok.bos_token_id]


def state(model: Any) -> FastState:
    """The model's FastState (created on first use)."""
    st = getattr(model, "_fast_state", None)
    if st is None:
        ip = getattr(model.processor, "image_processor", None)
        tok = model.processor.tokenizer
        eos = model.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if tok.eos_token_id is not None:
            eos_ids.add(tok.eos_token_id)
        st = FastState(
            ip=ip,
            rule=resize_rule(ip) if ip is not None else None,
            bos=tok.bos_token if _adds_bos(tok) else None,
            eos_ids=eos_ids,
        )
        model._fast_state = st
    return st


def _gen_config(model: Any, st: FastState, config: GenerationConfig) -> Any:
    key = (config.max_new_tokens, config.greedy, config.temperature, config.top_p)
    gc = st.gen_configs.get(key)
    if gc is None:
        gc = copy.deepcopy(model.model.generation_config)
        gc.max_new_tokens = config.max_new_tokens
        gc.pad_token_id = model.processor.tokenizer.pad_token_id
        if config.greedy:
            gc.do_sample, gc.temperature, gc.top_p, gc.top_k = False, None, None, None
        else:
            gc.do_sample, gc.temperature, gc.top_p, gc.top_k = True, config.temperature, config.top_p, None
        st.gen_configs[key] = gc
    return gc


def prepare(model: Any, samples: list[Sample], texts: list[str]) -> tuple[Any, float]:
    """(processor output on CPU, seconds): images resized exactly as the processor would, then one call."""
    t0 = time.perf_counter()
    st = state(model)
    images = [pre_resize(im, st.ip, st.rule) for s in samples for im in s.images]
    if st.bos:
        texts = [t[len(st.bos) :] if t.startswith(st.bos) else t for t in texts]
    kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
    if images:
        kwargs["images"] = images
    with st.lock:
        inputs = model.processor(**kwargs)
    return inputs, time.perf_counter() - t0


def run_batch(model: Any, samples: list[Sample], inputs: Any, config: GenerationConfig, prep_s: float):
    """Generate for one prepared batch; one Response per sample."""
    import torch

    t0 = time.perf_counter()
    st = state(model)
    inputs = inputs.to(model.device)
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(model.model.dtype)
    with torch.inference_mode():
        out = model.model.generate(**inputs, generation_config=_gen_config(model, st, config))
    new = out[:, inputs["input_ids"].shape[1] :].cpu().tolist()
    per = (prep_s + time.perf_counter() - t0) / len(samples)
    responses = []
    tok = model.processor.tokenizer
    for s, row in zip(samples, new, strict=True):
        n = next((j + 1 for j, t in enumerate(row) if t in st.eos_ids), len(row))
        with st.lock:
            text = tok.decode(row[:n], skip_special_tokens=True).strip()
        responses.append(Response(sample_id=s.id, text=text, latency_s=per, n_output_tokens=n))
    return responses


def _one(model: Any, sample: Sample, text: str, config: GenerationConfig) -> Response:
    try:
        inputs, prep_s = prepare(model, [sample], [text])
        return run_batch(model, [sample], inputs, config, prep_s)[0]
    except Exception as e:  # noqa: BLE001 - isolate the failing sample
        return Response(sample_id=sample.id, text="", error=error_text(e))


def generate_all(model: Any, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
    """``HFModel.generate``: batched, pipelined, order restored, errors per sample."""
    import torch

    results: list[Response | None] = [None] * len(samples)
    texts: list[str] = [""] * len(samples)
    for i, s in enumerate(samples):
        try:
            texts[i] = model.prompt_text(s)
        except Exception as e:  # noqa: BLE001 - a bad sample must not sink the batch
            results[i] = Response(sample_id=s.id, text="", error=f"chat template: {error_text(e)}")
    todo = [i for i in range(len(samples)) if results[i] is None]
    if not config.greedy:
        torch.manual_seed(config.seed)
    batches = [
        [todo[b] for b in batch]
        for batch in model._batches([samples[i] for i in todo], [texts[i] for i in todo])
    ]

    def prep(idx: list[int]) -> tuple[Any, float]:
        return prepare(model, [samples[i] for i in idx], [texts[i] for i in idx])

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-prep") if len(batches) > 1 else None
    try:
        pending = pool.submit(prep, batches[0]) if pool else None
        for k, idx in enumerate(batches):
            try:
                inputs, prep_s = pending.result() if pending is not None else prep(idx)
                failed = None
            except Exception as e:  # noqa: BLE001 - retried one by one below
                failed = e
            if pool is not None and k + 1 < len(batches):
                pending = pool.submit(prep, batches[k + 1])
            try:
                if failed is not None:
                    raise failed
                out = run_batch(model, [samples[i] for i in idx], inputs, config, prep_s)
                for i, r in zip(idx, out, strict=True):
                    results[i] = r
            except Exception as e:  # noqa: BLE001 - isolate the failing sample(s)
                if len(idx) == 1:
                    results[idx[0]] = Response(sample_id=samples[idx[0]].id, text="", error=error_text(e))
                    continue
                for i in idx:
                    results[i] = _one(model, samples[i], texts[i], config)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return [r for r in results if r is not None]
