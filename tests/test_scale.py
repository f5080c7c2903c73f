"""Scale-out recipes of docs/scale.md, run as written: shards in two processes + merge (equal to the unsharded
run), the Slurm array script, a served model through the openai back-end, several runs in one process (the
model loaded once), and the --device / device_map options.

The blocks marked ``<!-- tested: NAME -->`` in docs/scale.md are read from the page; only the run's arguments
are made small (``--limit``, ``--max-new-tokens``) and the URL pointed at a local fake server.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _organism import needs_artifact

from baselines.runstore import RunStore, records_sha256
from tools.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--limit", "6", "--max-new-tokens", "12", "--batch-size", "4"]


def doc_block(name: str) -> str:
    """The fenced code block that follows ``<!-- tested: name -->`` in docs/scale.md."""
    text = (REPO / "docs" / "scale.md").read_text()
    m = re.search(rf"<!-- tested: {re.escape(name)} -->\n```bash\n(.*?)```", text, re.S)
    assert m, f"docs/scale.md has no tested block {name!r}"
    return m.group(1)


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> Path:
    """A copy of the catalog without results, used by every write-back of the test."""
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results"))
    monkeypatch.setenv("MLLM_SAFETY_CATALOG", str(root))
    return root


def shim(folder: Path) -> Path:
    """A ``mllm-safety`` executable that runs this checkout's CLI with this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "mllm-safety"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tools.cli.main "$@"\n')
    exe.chmod(0o755)
    return folder


def env_with(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    env.pop("MLLM_SAFETY_RUNS", None)
    return env


@needs_artifact
def test_sharded_recipe_two_processes_merge_equals_unsharded(tmp_path, catalog, capsys):
    block = doc_block("sharded-recipe")
    run_line = re.search(r'^RUN="([^"]*)"', block, re.M)
    assert run_line and "--shard $i/$N" in block and "mllm-safety merge" in block
    small = f"figstep --model organism {' '.join(SMALL)}"
    script = block.replace(run_line.group(1), small, 1)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env_with(shim(tmp_path / "bin"), MLLM_SAFETY_CATALOG=str(catalog)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shards = sorted((work / "runs").glob("figstep__*__shard*of2"))
    assert [p.name[-len("shard0of2") :] for p in shards] == ["shard0of2", "shard1of2"]
    merged = [p for p in (work / "runs").iterdir() if "shard" not in p.name]
    assert len(merged) == 1
    [result_file] = sorted((catalog / "results").rglob("*.yaml"))  # the merge wrote the result back
    result = yaml.safe_load(result_file.read_text())
    assert result["config"]["shard"] is None

    assert main(["run", *shlex.split(small), "--runs-dir", str(tmp_path / "single"), "--no-write-back",
                 "--no-progress"]) == 0  # fmt: skip
    [single] = list((tmp_path / "single").iterdir())
    assert single.name == merged[0].name  # same configuration, same run id
    one, both = RunStore(single).load(), RunStore(merged[0]).load()
    assert len(one) == len(both) == 12  # 6 samples x (text-only, figstep)
    assert records_sha256(both) == records_sha256(one)
    assert result["provenance"]["records_sha256"] == records_sha256(one)
    part = [len(RunStore(p).load()) for p in shards]
    assert sum(part) == 12 and all(n > 0 for n in part)  # each process did part of the work


def test_slurm_script_submits_array_and_merge_then_runs_one_shard(tmp_path):
    """The Slurm example: on a login node it submits the array and a dependent merge job; in an array task it
    runs shard SLURM_ARRAY_TASK_ID/SHARDS; in the merge job it merges this run's shard folders."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    for name, out in (("sbatch", "4242;cluster"), ("mllm-safety", "")):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\necho "{out}"\n')
        (bin_dir / name).chmod(0o755)
    script = str(REPO / "examples" / "slurm_array.sh")
    base = env_with(bin_dir, RUN="figstep --model organism --batch-size 16", SHARDS="3", RUNS=str(tmp_path))
    for var in ("SLURM_ARRAY_TASK_ID", "MERGE"):
        base.pop(var, None)
    subprocess.run(["bash", script], env=base, check=True, capture_output=True, timeout=60)
    subprocess.run(["bash", script], env={**base, "SLURM_ARRAY_TASK_ID": "2"}, check=True, timeout=60)
    for i in range(3):
        (tmp_path / f"figstep__organism__bundled__abc__shard{i}of3").mkdir()
    (tmp_path / "figstep__organism__bundled__abc__shard0of2").mkdir()  # another split: not merged
    subprocess.run(["bash", script], env={**base, "MERGE": "1"}, check=True, timeout=60)
    calls = log.read_text().splitlines()
    assert calls[0].startswith("sbatch --parsable --export=ALL --array=0-2 ")
    assert "--dependency=afterok:4242" in calls[1] and "MERGE=1" in calls[1]
    run = shlex.split(calls[2])
    assert run[:6] == ["mllm-safety", "run", "figstep", "--model", "organism", "--batch-size"]
    assert "--shard" in run and run[run.index("--shard") + 1] == "2/3" and "--no-write-back" in run
    merge = shlex.split(calls[3])
    assert merge[:2] == ["mllm-safety", "merge"]
    assert sorted(Path(p).name[-9:] for p in merge[2:5]) == ["shard0of3", "shard1of3", "shard2of3"]
    assert not any("of2" in a for a in merge)


def test_served_run_line_against_a_local_endpoint(tmp_path, catalog):
    """The page's `mllm-safety run ... --base-url` line for a vLLM server, against a local fake endpoint."""
    from servers.openai_server import FakeOpenAIServer

    [line] = [ln for ln in doc_block("served-run").splitlines() if ln.startswith("mllm-safety run")]
    argv = shlex.split(line)[1:]
    assert "--base-url" in argv and "model.concurrency=64" in argv
    with FakeOpenAIServer() as srv:
        argv[argv.index("--base-url") + 1] = srv.url
        code = main([*argv, "--limit", "8", "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
        n_requests = len(srv.requests)
    assert code == 0
    [run_dir] = list((tmp_path / "runs").iterdir())
    records = RunStore(run_dir).load()
    assert len(records) == 16 and not any(r["error"] for r in records)
    assert n_requests == 16
    assert all(r["response"].startswith("echo:") for r in records)
    assert len(list((catalog / "results").rglob("*.yaml"))) == 1


@needs_artifact
def test_multi_run_loads_the_model_once(tmp_path, catalog, monkeypatch, capsys):
    from baselines.models.hf import HFModel

    loads = []
    real = HFModel._load
    monkeypatch.setattr(HFModel, "_load", lambda self: (loads.append(self.hf_params.id), real(self))[1])
    [line] = doc_block("multi-run").strip().splitlines()
    argv = shlex.split(line)[1:]
    assert argv[:3] == ["run", "figstep", "ecso"]
    extra = ["--limit", "2", "--max-new-tokens", "8", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert main([*argv, *extra]) == 0
    out = capsys.readouterr().out
    assert len(loads) == 1, loads
    assert "2 of 2 runs succeeded in one process; models loaded: 1" in out
    run_dirs = {p.name.split("__")[0] for p in (tmp_path / "runs").iterdir()}
    assert run_dirs == {"ecso", "figstep"}
    written = {p.parent.name for p in (catalog / "results").rglob("*.yaml")}
    assert written == {"ecso", "figstep"}  # each written back as if run alone


def test_plan_file_entries_and_errors(tmp_path, capsys):
    from baselines.multirun import build_requests, configs_of, model_keys, read_plan
    from baselines.runconfig import RunConfigError

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "runs:\n  - figstep\n  - baseline: figstep\n    sets: [variant=figstep_pro]\n"
        "  - baseline: ecso\n    attack: hades\n    limit: 3\n"
    )
    entries = read_plan(plan, lambda p: yaml.safe_load(p.read_text()))
    shared = {"model": "organism", "sets": ["model.dtype=float32"], "limit": 5, "baseline": None}
    reqs = build_requests(entries, shared)
    assert [r.baseline for r in reqs] == ["figstep", "figstep", "ecso"]
    assert reqs[1].sets == ["model.dtype=float32", "variant=figstep_pro"]  # sets add up
    assert [r.limit for r in reqs] == [5, 5, 3] and reqs[2].attack == "hades"
    configs = configs_of(reqs)
    assert configs[1].attack.params["variant"] == "figstep_pro"
    assert len(set(model_keys(configs))) == 1  # one model for the three runs

    for text, needle in (
        ("runs: []\n", "non-empty list"),
        ("runs:\n  - {attack: figstep}\n", "mapping with 'baseline:'"),
        ("runs:\n  - {baseline: figstep, limt: 3}\n", "unknown option(s) limt"),
        ("runs: [figstep]\nextra: 1\n", "unknown top-level key(s) extra"),
    ):
        plan.write_text(text)
        with pytest.raises(RunConfigError, match=re.escape(needle)):
            read_plan(plan, lambda p: yaml.safe_load(p.read_text()))
    plan.write_text("runs:\n  - figstep\n  - {baseline: figstep, sets: [fontsize=3]}\n")
    assert main(["run", str(plan), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "run 2 (figstep)" in err and not (tmp_path / "runs").exists()  # nothing ran


def test_device_is_not_part_of_the_run_identity():
    from baselines.runconfig import RunConfigError
    from baselines.runrequest import RunRequest

    plain = RunRequest(baseline="figstep", shard="0/2").config()
    on_gpu1 = RunRequest(baseline="figstep", shard="1/2", device="cuda:1").config()
    assert on_gpu1.model_params["device"] == "cuda:1"
    assert plain.hash(without_shard=True) == on_gpu1.hash(without_shard=True)  # shards on any device merge
    assert "--device cuda:1" in RunRequest(baseline="figstep", device="cuda:1").command_line()
    with pytest.raises(RunConfigError, match="--device applies to hf: and organism"):
        RunRequest(
            baseline="figstep", model="openai:x", base_url="http://127.0.0.1:9/v1", device="cuda:0"
        ).config()
    with pytest.raises(Exception, match="device"):
        RunRequest(baseline="figstep", device="gpu0").config()


def test_device_places_an_hf_model(tiny_llava_dir):
    from baselines.models import load_model

    model = load_model(f"hf:{tiny_llava_dir}", params={"device": "cpu"})
    assert model.info()["device"] == "cpu"


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is not None, reason="accelerate is installed")
def test_device_map_without_accelerate_says_how_to_get_it(tiny_llava_dir):
    from baselines.base import BackendError
    from baselines.models import load_model

    with pytest.raises(BackendError, match=re.escape("pip install -e '.[accelerate]'")) as e:
        load_model(f"hf:{tiny_llava_dir}", params={"device_map": "auto"})
    assert "--device cuda:<i>" in str(e.value)


@needs_artifact
def test_merged_defense_shards_carry_the_defense_cost(tmp_path, catalog, capsys):
    """Shards skip the cost step (each would measure it again); the merge measures it once, so a sharded
    defense result carries the utility cost like an unsharded one (before: merged results had none)."""
    runs = tmp_path / "runs"
    small = ["safety_prompt", "--model", "organism", "--limit", "4", "--max-new-tokens", "8", "--no-progress"]
    for i in range(2):
        assert main(["run", *small, "--shard", f"{i}/2", "--runs-dir", str(runs)]) == 0
    assert not list((catalog / "results").rglob("*.yaml"))  # shards write nothing back
    shards = sorted(runs.iterdir())
    assert main(["merge", *map(str, shards), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "cost of the defense" in out
    [result_file] = sorted((catalog / "results").rglob("*.yaml"))
    result = yaml.safe_load(result_file.read_text())
    defended = next(c for c in result["conditions"] if c["condition"] == "figstep+safety_prompt")
    est = defended["scores"]["utility"]  # (over-refusal needs benign items: the first 4 are all harmful)
    assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n"] > 0
    assert [p["part"] for p in result["provenance"]["cost_runs"]] == ["utility"]
