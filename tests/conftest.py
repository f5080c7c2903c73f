"""Shared pytest fixtures (keep this file small).

- ``tiny_llava_dir``: a session-scoped folder holding a seeded tiny LLaVA (model + processor), built by
  ``baselines.models.tiny.build_tiny_llava`` in a temporary directory (~0.1 s, 2 MB). Load it with
  ``baselines.models.load_model(f"hf:{tiny_llava_dir}")`` or AutoProcessor/AutoModelForImageTextToText.
- ``tiny_qwen2vl_dir``: the same for a tiny Qwen2-VL (image-only processor; load it through the hf
  back-end, since AutoProcessor returns only its tokenizer).
- ``organism``: the trained model organism through its back-end (batch 32), loaded once per session; tests
  that use it skip with ``tests/_organism.needs_artifact`` until the artifact exists.

Tests never reach the network: the hub is put in offline mode for the whole session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def tiny_llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a seeded tiny LLaVA folder (seed 0), built once per test session."""
    from baselines.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_qwen2vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a seeded tiny Qwen2-VL folder (seed 0, 56 px images), built once per test session."""
    from baselines.models.tiny import build_tiny_qwen2vl

    return build_tiny_qwen2vl(tmp_path_factory.mktemp("tiny-qwen2vl") / "model", seed=0)


@pytest.fixture(scope="session")
def organism():
    from baselines.models import load_model

    return load_model("organism", params={"batch_size": 32})
