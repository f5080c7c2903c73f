"""Loading transformers image-text-to-text models for the hf back-end: processor, model, revision.

Heavy imports stay inside functions (this module is imported by ``baselines.models.hf``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from baselines.base import BackendError

# Weight files up to this total size are hashed in full for a local model's revision; above it, only their
# names, sizes and safetensors headers (shapes, dtypes, offsets) are hashed, to keep loading fast.
FULL_HASH_LIMIT_BYTES = 2 * 1024**3
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def is_local(model_id: str) -> bool:
    """Whether ``model_id`` names an existing local folder (rather than a hub repo id)."""
    return Path(model_id).expanduser().is_dir()


def weights_checksum(folder: str | Path) -> str:
    """SHA-256 over ``config.json``, any weights index and the weight files of a local model folder."""
    folder = Path(folder)
    h = hashlib.sha256()
    cfg = folder / "config.json"
    if cfg.is_file():
        h.update(b"config.json\0" + cfg.read_bytes())
    for idx in sorted(folder.glob("*.index.json")):
        h.update(idx.name.encode() + b"\0" + idx.read_bytes())
    weights = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    full = sum(p.stat().st_size for p in weights) <= FULL_HASH_LIMIT_BYTES
    for p in weights:
        h.update(f"{p.name}\0{p.stat().st_size}\0".encode())
        if full:
            with p.open("rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(chunk)
        elif p.suffix == ".safetensors":
            with p.open("rb") as f:
                n = int.from_bytes(f.read(8), "little")
                h.update(f.read(min(n, 100_000_000)))
    return h.hexdigest()


def resolve_revision(model: Any, model_id: str, requested: str | None) -> str:
    """The commit hash a hub model was loaded from, or ``local:<sha256>`` for a local folder."""
    if is_local(model_id):
        return f"local:{weights_checksum(Path(model_id).expanduser())}"
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    if commit:
        return str(commit)
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(model_id, revision=requested, local_files_only=True)
        return Path(snap).name
    except Exception:  # noqa: BLE001 - provenance best effort; say what was asked for
        return f"unresolved:{requested or 'main'}"


HUB_PROBE_S = 3.0  # how long to wait for the hub before saying it cannot be reached


def in_hub_cache(model_id: str, revision: str | None) -> bool:
    """Whether the hub repo's config.json is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except Exception:  # noqa: BLE001 - a malformed repo id is reported by the load itself
        return False
    return isinstance(found, str)


def hub_reachable(timeout_s: float = HUB_PROBE_S) -> tuple[bool, str]:
    """(whether the hub's host accepts a TCP connection within ``timeout_s``, the endpoint). Name resolution
    runs in a daemon thread so that a resolver without network cannot hold the caller either."""
    import os
    import socket
    import threading
    from urllib.parse import urlsplit

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    u = urlsplit(endpoint)
    port = u.port or (443 if u.scheme == "https" else 80)
    ok: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((u.hostname or "", port), timeout=timeout_s).close()
            ok.append(True)
        except OSError:
            ok.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout_s + 0.5)
    return bool(ok and ok[0]), endpoint


def check_hub_access(model_id: str, revision: str | None, local_files_only: bool) -> None:
    """Fail in seconds, saying what to do, when a hub repo is neither cached nor downloadable (offline mode, or
    the hub unreachable), instead of letting the hub client retry for minutes."""
    import os

    if is_local(model_id) or in_hub_cache(model_id, revision):
        return
    fixes = (
        "run from a local folder (--model hf:/path/to/folder, saved with save_pretrained), or fill the "
        f"Hugging Face cache on a machine with network (`huggingface-cli download {model_id}`) and copy it here"
    )
    offline = local_files_only or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        raise BackendError(
            f"hf model {model_id!r} is not in the local Hugging Face cache (offline mode): {fixes}"
        )
    reachable, endpoint = hub_reachable()
    if not reachable:
        raise BackendError(
            f"hf model {model_id!r} is not in the local Hugging Face cache and the hub ({endpoint}) cannot be "
            f"reached: {fixes}; set HF_HUB_OFFLINE=1 to use the cache only"
        )


def torch_dtype(name: str) -> Any:
    """Map a Params dtype name to what ``from_pretrained(dtype=...)`` takes."""
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        name
    ]


def load_processor(model_id: str, *, revision: str | None, trust_remote_code: bool, local_files_only: bool):
    """AutoProcessor, or the image-only Qwen2-VL processor when AutoProcessor returns a bare tokenizer."""
    from transformers import AutoConfig, AutoProcessor
    from transformers.processing_utils import ProcessorMixin

    kw = {"revision": revision, "trust_remote_code": trust_remote_code, "local_files_only": local_files_only}
    proc = AutoProcessor.from_pretrained(model_id, **kw)
    if isinstance(proc, ProcessorMixin):
        return proc
    model_type = AutoConfig.from_pretrained(model_id, **kw).model_type
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        from baselines.models._qwen_processor import load_qwen2vl_processor

        return load_qwen2vl_processor(model_id, revision=revision, local_files_only=local_files_only)
    raise BackendError(
        f"{model_id}: AutoProcessor returned {type(proc).__name__}, not a multimodal processor; "
        "the hf back-end needs a folder with an image processor and a chat template"
    )


def load_model_and_processor(params: Any) -> tuple[Any, Any]:
    """Load (model, processor) per the hf Params; failures become a BackendError saying how to fix them."""
    import torch
    from transformers import AutoModelForImageTextToText

    model_id = str(Path(params.id).expanduser()) if is_local(params.id) else params.id
    local_only = params.local_files_only or is_local(model_id)
    check_hub_access(model_id, params.revision, local_only)
    try:
        processor = load_processor(
            model_id,
            revision=params.revision,
            trust_remote_code=params.trust_remote_code,
            local_files_only=local_only,
        )
        kwargs: dict[str, Any] = {
            "revision": params.revision,
            "dtype": torch_dtype(params.dtype),
            "trust_remote_code": params.trust_remote_code,
            "local_files_only": local_only,
        }
        if params.device_map:
            kwargs["device_map"] = params.device_map
        if params.attn_implementation:
            kwargs["attn_implementation"] = params.attn_implementation
        model = AutoModelForImageTextToText.from_pretrained(model_id, **kwargs)
    except BackendError:
        raise
    except (OSError, ValueError, KeyError) as e:
        where = "local folder" if is_local(model_id) else "hub repo (or its local cache when offline)"
        raise BackendError(
            f"cannot load hf model {model_id!r} ({where}): {str(e).splitlines()[0] if str(e) else type(e).__name__}. "
            "Give an existing local folder saved with save_pretrained, or a hub repo id that is in the "
            "Hugging Face cache (nothing is downloaded when HF_HUB_OFFLINE=1)."
        ) from None
    if not params.device_map:
        model.to(getattr(params, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    if not hasattr(processor, "tokenizer"):
        raise BackendError(f"{model_id}: its processor has no tokenizer")
    tok = processor.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return model, processor
