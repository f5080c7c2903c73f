"""Issue 13, points 1, 2, 5, 6: what a run publishes (partial, empty, failed), retries of failed samples, bad
inputs answered in one line, nothing leaked. End to end through ``tools.cli.main.main`` on the organism (a
3-sample bundled file) and the project's fault-injecting OpenAI-compatible server; temporary catalog and runs.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
import yaml
from servers.openai_server import FakeOpenAIServer

from baselines.datasets.bundled import DEFAULT_PATH
from baselines.runstore import RunStore
from tools.catalog.schema import Result
from tools.cli.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> Path:
    """A copy of the repository's catalog without results, as MLLM_SAFETY_CATALOG."""
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results"))
    monkeypatch.setenv("MLLM_SAFETY_CATALOG", str(root))
    return root


@pytest.fixture
def small(tmp_path) -> Path:
    """A bundled-format file of 3 samples (2 harmful, 1 benign)."""
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    harmful = [x for x in lines if '"harmful"' in x][:2]
    benign = [x for x in lines if '"benign"' in x][:1]
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(harmful + benign) + "\n", encoding="utf-8")
    return path


def results(root: Path) -> dict[str, dict]:
    """Result files by name."""
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((root / "results").rglob("*.yaml"))}


def organism_run(small: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "run",
        "figstep",
        "--dataset",
        f"bundled:{small}",
        "--runs-dir",
        str(runs),
        "--no-progress",
        *extra,
    ]


def api_run(url: str, small: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "run", "figstep", "--model", "openai:fake-vlm", "--base-url", url, "--dataset", f"bundled:{small}",
        "--runs-dir", str(runs), "--no-progress", "--set", "model.api_key_env=ATLAS_NO_KEY",
        "--set", "model.backoff_base_s=0.01", *extra,
    ]  # fmt: skip


# -- 1. partial, empty and failed results -----------------------------------------------------------------


def test_a_limited_run_is_named_partial_and_never_replaces_the_full_result(small, tmp_path, catalog, capsys):
    runs = tmp_path / "runs"
    assert main(organism_run(small, runs)) == 0
    [(full_name, full)] = results(catalog).items()
    assert full_name == "organism__bundled__none.yaml" and full["partial"] == [] and full["variant"] is None
    assert sum(c["n_samples"] for c in full["conditions"]) == 6
    full_text = (catalog / "results" / "figstep" / full_name).read_text()
    capsys.readouterr()
    assert main(organism_run(small, runs, "--limit", "2")) == 0
    out = capsys.readouterr().out
    assert "partial: --limit 2: the first 2 of 3 samples" in out
    got = results(catalog)
    assert (catalog / "results" / "figstep" / full_name).read_text() == full_text  # untouched
    [limited] = [v for k, v in got.items() if k != full_name]
    assert limited["variant"] == "partial-limit2" and "--limit 2" in limited["partial"][0]
    assert Result.model_validate(limited).partial
    # a dataset subset (--set dataset.labels=...) is partial too, under its own name
    assert main(organism_run(small, runs, "--set", "dataset.labels=harmful")) == 0
    subset = [v for k, v in results(catalog).items() if "partial-set-" in k]
    assert len(subset) == 1 and "labels='harmful'" in subset[0]["partial"][0]
    assert (catalog / "results" / "figstep" / full_name).read_text() == full_text


def test_a_dataset_that_yields_no_sample_exits_non_zero_and_writes_nothing(small, tmp_path, catalog, capsys):
    benign_only = tmp_path / "benign.jsonl"
    benign_only.write_text(small.read_text().splitlines()[-1] + "\n")
    args = organism_run(benign_only, tmp_path / "runs", "--set", "dataset.labels=harmful")
    assert main(args) == 1
    assert "dataset yielded 0 samples" in capsys.readouterr().err
    assert results(catalog) == {} if (catalog / "results").exists() else True


@pytest.mark.parametrize(
    "fault,needle",
    [
        ("401", "HTTP 401"),  # a wrong key: stopped at the first answer
        ("404", "HTTP 404"),  # a wrong URL
        ("503", "request(s) in a row (circuit breaker"),  # an endpoint that is down: the circuit breaker
    ],
)
def test_a_run_whose_requests_all_fail_stops_and_writes_nothing(
    fault, needle, small, tmp_path, catalog, capsys
):
    kw = {"api_key": "sk-right"} if fault == "401" else {}
    with FakeOpenAIServer(**kw) as srv:
        srv.always("404" if fault == "404" else "503")
        args = api_run(srv.url, small, tmp_path / "runs", "--set", "model.max_retries=1")
        code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "once fixed, resume with" in err
    assert not (catalog / "results").exists()
    assert len(srv.chat_requests) <= 12  # at most what was in flight when the breaker opened


def test_a_run_with_no_judged_sample_exits_1_and_writes_nothing(small, tmp_path, catalog, capsys):
    with FakeOpenAIServer() as srv:
        srv.always("503")
        extra = ("--set", "model.max_retries=0", "--set", "model.breaker_after=0")
        assert main(api_run(srv.url, small, tmp_path / "runs", *extra)) == 1
    err = capsys.readouterr().err
    assert "none of the 6 records was judged (6 failed generations)" in err
    assert not (catalog / "results").exists()


def test_merge_refuses_a_shard_cut_short_unless_allowed(small, tmp_path, catalog, capsys):
    runs = tmp_path / "runs"
    for i in range(2):
        assert main(organism_run(small, runs, "--shard", f"{i}/2")) == 0
    dirs = sorted(runs.iterdir())
    cut = max(dirs, key=lambda d: len(RunStore(d).load()))
    lines = (cut / "samples.jsonl").read_text().splitlines(keepends=True)
    (cut / "samples.jsonl").write_text("".join(lines[:-1]))  # a shard cut short
    capsys.readouterr()
    assert main(["merge", *map(str, dirs), "--runs-dir", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert "incomplete shards" in err and f"{len(lines) - 1} of {len(lines)} records" in err
    assert not (catalog / "results").exists()
    merged = ["merge", *map(str, dirs), "--runs-dir", str(tmp_path / "merged"), "--allow-partial"]
    assert main(merged) == 0
    [(name, res)] = results(catalog).items()
    assert name.endswith("__partial.yaml") and "1 of 6 records missing" in res["partial"][0]


# -- 2. failed samples are retried --------------------------------------------------------------------------


def test_resume_retries_failed_samples_and_then_publishes_the_complete_result(
    small, tmp_path, catalog, capsys
):
    runs = tmp_path / "runs"
    extra = ("--set", "model.max_retries=0", "--set", "model.breaker_after=0", "--batch-size", "1")
    with FakeOpenAIServer() as srv:
        for _ in range(2):
            srv.push("503")  # the first two requests fail: 2 of 6 records
        assert main(api_run(srv.url, small, runs, *extra, "--set", "model.concurrency=1")) == 0
        out = capsys.readouterr().out
        [(name, first)] = results(catalog).items()
        assert name.startswith("fake-vlm__bundled__none__partial-set-")
        assert "2 of 6 records failed" in first["partial"][0]
        assert main(api_run(srv.url, small, runs, *extra, "--set", "model.concurrency=1")) == 0
    out, err = capsys.readouterr()
    assert "2 new, 4 resumed" in out and "2 failed record(s) retried" in err and "retried 2 record(s)" in out
    # the complete result replaces the partial one of the same run: no stale partial stays published
    [(name2, res)] = results(catalog).items()
    assert name2 == name.replace("__partial-set-", "__set-") and res["partial"] == []
    assert "removed the partial result this complete run supersedes: " in out and name in out
    [run_dir] = runs.iterdir()
    records = RunStore(run_dir).load()
    assert len(records) == 6 and not any(r["error"] for r in records)
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 6  # compacted


# -- 5. bad input: one located line, never a traceback ----------------------------------------------------


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--limit", "0"], "--limit 0: Input should be greater than 0"),
        (["--limit", "-1"], "--limit -1: Input should be greater than 0"),
        (["--max-new-tokens", "0"], "--max-new-tokens 0: Input should be greater than 0"),
        (["--temperature", "-1"], "--temperature -1.0: Input should be greater than or equal to 0"),
        (["--batch-size", "0"], "--batch-size 0: Input should be greater than 0"),
        (["--set", "max_new_tokens=0"], "max_new_tokens: Extra inputs are not permitted"),
        (["--set", "temperature=-1"], "temperature: Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_one_located_line(extra, needle, tmp_path, catalog, capsys):
    assert main(["run", "figstep", "--runs-dir", str(tmp_path / "runs"), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_unwritable_runs_dir_or_catalog_is_one_line(small, tmp_path, catalog, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(organism_run(small, blocker / "runs", "--limit", "1")) == 2
    err = capsys.readouterr().err
    assert "cannot write the run's records" in err and "--runs-dir" in err and "Traceback" not in err
    (catalog / "results").write_text("not a folder")  # catalog/results cannot be written
    assert main(organism_run(small, tmp_path / "runs", "--limit", "1")) == 2
    err = capsys.readouterr().err
    assert "cannot write the result" in err and "--no-write-back" in err


# -- 6. nothing leaks, nothing wanders ------------------------------------------------------------------


def test_credentials_in_the_base_url_are_never_recorded(small, tmp_path, catalog, capsys):
    runs = tmp_path / "runs"
    with FakeOpenAIServer() as srv:
        url = srv.url.replace("http://", "http://alice:hunter2@")
        assert main(api_run(url, small, runs, "--limit", "1")) == 0
    out, err = capsys.readouterr()
    [run_dir] = runs.iterdir()
    written = [p.read_text() for p in run_dir.iterdir()] + [
        p.read_text() for p in (catalog / "results").rglob("*.yaml")
    ]
    assert len(written) == 3 and "***@127.0.0.1" in written[-1]
    assert not any("hunter2" in t or "alice" in t for t in [*written, out, err, run_dir.name])


def test_rerun_refuses_a_billion_laughs_result_at_once(tmp_path, catalog, capsys):
    bomb = tmp_path / "bomb.yaml"
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "a" if i == 0 else "bcdefghi"[i - 1]
        rows.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    rows.append("config: *i")
    bomb.write_text("\n".join(rows) + "\n")
    assert main(["rerun", str(bomb), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "alias" in err.lower() and len(err.strip().splitlines()) == 1


def test_result_files_are_world_readable(small, tmp_path, catalog):
    import os

    old = os.umask(0o022)
    try:
        assert main(organism_run(small, tmp_path / "runs", "--limit", "1")) == 0
    finally:
        os.umask(old)
    [path] = (catalog / "results").rglob("*.yaml")
    [run_dir] = (tmp_path / "runs").iterdir()
    for p in (path, run_dir / "run.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_dir.name


@pytest.mark.parametrize(
    "name,variant,stale",
    [
        ("m__d__none.yaml", None, "m__d__none__partial.yaml"),
        ("m__d__none__set-ab12cd34.yaml", "set-ab12cd34", "m__d__none__partial-set-ab12cd34.yaml"),
    ],
)
def test_a_complete_result_supersedes_only_the_partial_of_the_same_run(tmp_path, name, variant, stale):
    from tools.catalog.store import superseded_partial

    assert superseded_partial(tmp_path / name, variant) == tmp_path / stale
