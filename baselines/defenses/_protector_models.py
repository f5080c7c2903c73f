"""MLLM-Protector's models from local folders: the harm detector (scores) and the detoxifier (rewrites)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from baselines.base import BackendError


def _folder(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BackendError(f"mllm_protector: {what} folder {str(p)!r} does not exist (nothing is downloaded)")
    return p


def _device(device: str):  # noqa: ANN202 - torch.device
    import torch

    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)


def load_detector(
    path: str, *, device: str = "auto", dtype: str = "bfloat16"
) -> Callable[[list[str]], list[float]]:
    """``texts -> sigmoid(logit)`` of a 1-label sequence classifier (pad = eos, truncation on), batched."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = _folder(path, "detector_path")
    dev = _device(device)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, local_files_only=True, torch_dtype=getattr(torch, dtype)
    ).to(dev)
    model.config.pad_token_id = tok.pad_token_id
    model.eval()

    def score(texts: list[str]) -> list[float]:
        enc = tok(texts, return_tensors="pt", padding=True, truncation=True).to(dev)
        with torch.no_grad():
            logits = model(**enc).logits[:, 0].float()
        return torch.sigmoid(logits).cpu().tolist()

    return score


def load_detoxifier(
    path: str, *, device: str = "auto", dtype: str = "bfloat16", max_length: int = 1024
) -> Callable[[list[str]], list[str]]:
    """``prompts -> continuations`` of a causal LM, greedy, ``max_length`` total tokens, left-padded batch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _folder(path, "detoxifier_path")
    dev = _device(device)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, torch_dtype=getattr(torch, dtype)
    )
    model = model.to(dev).eval()

    def rewrite(prompts: list[str]) -> list[str]:
        enc = tok(prompts, return_tensors="pt", padding=True).to(dev)
        n = enc.input_ids.shape[1]
        with torch.no_grad():
            out = model.generate(
                **enc, do_sample=False, max_length=max(max_length, n + 1), pad_token_id=tok.pad_token_id
            )
        return [t.strip() for t in tok.batch_decode(out[:, n:], skip_special_tokens=True)]

    return rewrite
