"""The organism back-end: the trained artifact when present, else a cached seeded smoke-test model."""

from __future__ import annotations

import pytest
from PIL import Image

import baselines.models.organism as organism
from baselines.models import load_model
from baselines.models.tiny import build_tiny_llava
from baselines.types import GenerationConfig, Sample

CFG = GenerationConfig(max_new_tokens=8)


@pytest.fixture
def no_artifact(tmp_path, monkeypatch):
    monkeypatch.setattr(organism, "ARTIFACT_DIR", tmp_path / "no-artifact")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_smoke_model_is_built_once_into_the_cache(no_artifact) -> None:
    m = load_model("organism")
    folder = no_artifact / "cache" / "mllm-safety-atlas" / f"smoke-organism-{organism.SMOKE_VERSION}"
    assert m.folder == folder and (folder / "config.json").is_file()
    info = m.info()
    assert info["backend"] == "organism" and info["labels"] == ["smoke-test model"] and info["smoke_test"]
    assert len(info["weights_sha256"]) == 64 and info["revision"].startswith("local:")
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    again = load_model("organism")
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime  # not rebuilt
    assert again.info()["weights_sha256"] == info["weights_sha256"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".smoke-build-")]  # no temp left


def test_smoke_model_is_deterministic_across_caches(no_artifact, tmp_path, monkeypatch) -> None:
    a = load_model("organism").info()["weights_sha256"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    assert load_model("organism").info()["weights_sha256"] == a


def test_smoke_model_generates_and_has_a_white_box(no_artifact) -> None:
    m = load_model("organism", params={"batch_size": 2})
    samples = [
        Sample(id="t", text="Hello"),
        Sample(id="i", text="What is this?", images=(Image.new("RGB", (64, 64)),)),
    ]
    out = m.generate(samples, CFG)
    assert [r.sample_id for r in out] == ["t", "i"] and all(
        r.error is None and r.n_output_tokens for r in out
    )
    assert m.white_box is not None and m.white_box.image_size == (64, 64)


def test_trained_artifact_is_preferred(tmp_path, monkeypatch) -> None:
    artifact = build_tiny_llava(tmp_path / "artifact", seed=7)
    monkeypatch.setattr(organism, "ARTIFACT_DIR", artifact)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    m = load_model("organism")
    info = m.info()
    assert m.folder == artifact and info["labels"] == ["model organism"] and not info["smoke_test"]
    assert info["weights_sha256"] == organism.weights_sha256(artifact)
    assert not (tmp_path / "cache").exists()  # no smoke model was built
    smoke = organism.weights_sha256(organism.ensure_smoke_model())
    assert smoke != info["weights_sha256"]


def test_organism_params_are_validated() -> None:
    from baselines.base import ParamsError

    with pytest.raises(ParamsError, match="batch_size"):
        load_model("organism", params={"id": "x"})
