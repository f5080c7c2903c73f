"""The GPU benchmark script runs end to end on CPU with tiny configs (it is the prepared device check)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_gpu_tiny_prints_every_figure(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu

    code = bench_gpu.main(
        [
            "--tiny",
            "--n",
            "4",
            "--batch-size",
            "2",
            "--bare-n",
            "1",
            "--max-new-tokens",
            "3",
            "--pgd-steps",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    for which in ("llava", "qwen2vl"):
        assert f"== {which}: 7b-tiny-shape" in out
    figures = {
        name: [float(x) for x in re.findall(rf"{re.escape(name)}[^:]*:\s+([0-9.]+) s", out)]
        for name in (
            "bare one-at-a-time loop",
            "harness, batch 2",
            "plain batched loop, b2",
            "PGD step, batch 1",
            "PGD step, batch 8",
        )
    }
    assert len(figures["bare one-at-a-time loop"]) == 2  # one per model
    assert len(figures["harness, batch 2"]) == 2 and len(figures["plain batched loop, b2"]) == 2
    assert len(figures["PGD step, batch 1"]) == 1 and len(figures["PGD step, batch 8"]) == 1  # LLaVA only
    assert all(v > 0 for vs in figures.values() for v in vs)
    assert "white-box access is implemented for LLaVA-family models only" in out


def test_bench_gpu_refuses_7b_without_cuda(capsys, monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert bench_gpu.main(["--models", "llava"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_forced_length_answers_have_exactly_max_new_tokens(monkeypatch, tmp_path):
    """The anchors are measured at exactly 128 new tokens; the harness path honours the forced length."""
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu
    from bench_harness import harness_run, make_samples

    from baselines.runstore import RunStore

    model, proc, _, _ = bench_gpu.build_llava("7b-tiny-shape", tmp_path / "m")
    bench_gpu.force_length(model, 5, proc.tokenizer)
    hf = bench_gpu.as_backend(model, proc, "random-llava", 2)
    out = harness_run(hf, "hf:random-llava", make_samples(3), 2, 5, tmp_path / "runs")
    records = RunStore(out.run_dir).load()
    assert len(records) == 3 and {r["n_output_tokens"] for r in records} == {5}


@pytest.mark.gpu
def test_bench_gpu_on_cuda_and_device_option(capsys, monkeypatch, tiny_llava_dir):
    """On a GPU machine (`pytest -m gpu`): the 7B-shaped LLaVA path runs, with peak memory; --device cuda:0
    places an hf model on that GPU."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_gpu

    from baselines.models import load_model

    assert load_model(f"hf:{tiny_llava_dir}", params={"device": "cuda:0"}).info()["device"] == "cuda:0"
    args = ["--models", "llava", "--n", "8", "--batch-size", "8", "--bare-n", "1", "--max-new-tokens", "8"]
    assert bench_gpu.main([*args, "--pgd-steps", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"harness, batch 8\s+:\s+[0-9.]+ s/sample .* peak\s+[0-9.]+ GiB", out)
    assert "anchors (H200)" in out


def test_bench_merge_memory_runs_and_both_merges_agree(capsys, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCH))
    import bench_merge_memory as bm

    from baselines.runresult import merge_runs
    from baselines.runstore import RunStore, normalise

    dirs = bm.make_shards(tmp_path, 40, 3)
    assert bm.plain_merge(dirs, tmp_path / "plain") == 2 * 40 * 3
    result, merged = merge_runs(dirs, tmp_path / "merged")
    assert normalise(RunStore(merged).load()) == normalise(RunStore(tmp_path / "plain").load())
    assert result["provenance"]["n_records"] == 240
    assert bm.main(["--per-shard", "20"]) == 0
    out = capsys.readouterr().out
    assert "120 records in 3 shards" in out
    assert re.search(r"merge_runs \(streamed\)\s*:\s*[\d.]+ s, Python memory peak\s+[\d.]+ MiB", out)
