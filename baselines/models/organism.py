"""The ``organism`` back-end: the offline default model.

If the trained model organism exists (``baselines/organism/artifact/config.json``), it is loaded as a local
LLaVA through the hf back-end and labelled ``"model organism"``. Otherwise a seeded tiny smoke-test LLaVA
(``baselines.models.tiny.build_tiny_llava``) is built once into the user cache directory
(``<user cache>/mllm-safety-atlas/smoke-organism-<SMOKE_VERSION>``) and labelled ``"smoke-test model"`` — its
answers are random text, so results on it only show that the pipeline runs. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from baselines.base import Component
from baselines.models.hf import HFModel, HFParams
from baselines.params import StrictParams
from baselines.registry import register

log = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parents[1] / "organism" / "artifact"
ARTIFACT_PUBLIC = "baselines/organism/artifact"  # how results name it (never a local absolute path)
SMOKE_VERSION = "1"  # bump when the smoke-test recipe (tiny.py defaults or the seed) changes
SMOKE_SEED = 0
LABEL_ORGANISM = "model organism"
LABEL_SMOKE = "smoke-test model"


class OrganismParams(StrictParams):
    """Parameters of the organism back-end (the model itself is fixed)."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("float32", description="weights dtype")
    device_map: str | None = Field(None, description="accelerate device map (None: one GPU if any, else CPU)")
    device: str | None = Field(
        None,
        pattern=r"^(cpu|mps|(cuda|xpu)(:[0-9]+)?)$",
        description="torch device of the whole model, e.g. cuda:1 (None: cuda if any, else cpu); "
        "ignored with device_map; not part of the run's identity (shards on different GPUs merge)",
    )
    attn_implementation: str | None = Field(None, description="eager | sdpa (None: default)")
    batch_size: int = Field(8, ge=1, description="samples per generate call")


def smoke_dir() -> Path:
    """Where the smoke-test model is cached (user cache dir; follows XDG_CACHE_HOME on Linux)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mllm-safety-atlas")) / f"smoke-organism-{SMOKE_VERSION}"


def ensure_smoke_model() -> Path:
    """Build the seeded smoke-test model once (atomically: temp folder + rename) and return its folder."""
    from baselines.models.tiny import build_tiny_llava

    target = smoke_dir()
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smoke-build-", dir=target.parent))
    try:
        build_tiny_llava(tmp, seed=SMOKE_SEED)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first (target exists and is not empty)
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("built the smoke-test organism in %s", target)
    return target


def resolve_organism() -> tuple[Path, str]:
    """(folder, label): the trained organism if its artifact exists, else the cached smoke-test model."""
    if (ARTIFACT_DIR / "config.json").is_file():
        return ARTIFACT_DIR, LABEL_ORGANISM
    return ensure_smoke_model(), LABEL_SMOKE


def weights_sha256(folder: Path) -> str:
    """SHA-256 over the safetensors weight files of ``folder`` (names and contents, sorted)."""
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.safetensors")):
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@register("model")
class OrganismModel(HFModel):
    """The offline default model: the trained organism, or a smoke-test model until it exists."""

    summary = "offline default: the trained model organism, or a seeded smoke-test LLaVA until it exists"
    Params = OrganismParams

    deviations: ClassVar[list[dict[str, str]]] = []  # none: the project's own model

    def __init__(self, params: BaseModel | dict[str, Any] | None = None) -> None:
        Component.__init__(self, params)
        self.folder, self.label = resolve_organism()
        p = self.params
        self.hf_params = HFParams(
            id=str(self.folder),
            dtype=p.dtype,
            device_map=p.device_map,
            device=p.device,
            attn_implementation=p.attn_implementation,
            batch_size=p.batch_size,
            local_files_only=True,
        )
        self._load()
        self._weights_sha256 = weights_sha256(self.folder)

    def public_path(self) -> str:
        """Where the weights are, without any local absolute path (results are published): the shipped
        artifact relative to the repository, or "user cache" for the smoke-test model (``weights_sha256``
        is the identity either way)."""
        if self.label == LABEL_ORGANISM:
            return ARTIFACT_PUBLIC
        return "user cache"

    def info(self) -> dict[str, Any]:
        """hf provenance plus which organism this is (label) and a checksum of its weights."""
        info = super().info()
        info.update(
            backend=self.name,
            id="organism",
            path=self.public_path(),
            labels=[self.label],
            smoke_test=self.label == LABEL_SMOKE,
            weights_sha256=self._weights_sha256,
        )
        if self.label == LABEL_SMOKE:
            info["smoke_version"] = SMOKE_VERSION
        return info
