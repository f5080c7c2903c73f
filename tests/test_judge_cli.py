"""The seven new judges (and Llama Guard 4) from the command line in one offline run: a tiny LLaVA is the target
and the judge model of the image-text judges, a tiny causal LM the HarmBench classifier. Random weights: the
verdicts are decisions or unjudged (counted in the result), and every judge appears in the result."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from _judge_helpers import build_tiny_causal_lm

from tools.cli.main import main

REPO = Path(__file__).resolve().parents[1]
NEW = [
    "harmbench",
    "llavaguard",
    "shieldgemma2",
    "guardreasoner_vl",
    "strongreject",
    "omnisafe3d",
    "llamaguard",
]


def test_seven_judges_run_from_the_cli(tmp_path, tiny_llava_dir, monkeypatch, capsys):
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results", "judges"))
    monkeypatch.setenv("MLLM_SAFETY_CATALOG", str(root))
    cls = build_tiny_causal_lm(tmp_path / "cls")
    tiny = f"hf:{tiny_llava_dir}"
    args = ["run", "figstep", "--model", tiny, "--limit", "2", "--batch-size", "4", "--max-new-tokens", "3",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress"]  # fmt: skip
    for j in NEW:
        args += ["--judge", j, "--set", f"judge.{j}.model={cls if j == 'harmbench' else tiny}"]
    for j in ("llavaguard", "guardreasoner_vl", "strongreject", "omnisafe3d"):
        args += ["--set", f"judge.{j}.max_new_tokens=3"]
    args += ["--set", "judge.llamaguard.policy=llamaguard4"]
    assert main(args) == 0, capsys.readouterr().err
    [path] = list((root / "results").rglob("*.yaml"))
    result = yaml.safe_load(path.read_text())
    assert [j["label"] for j in result["judges"]] == NEW
    for cond in result["conditions"]:
        rows = {j["judge"]: j for j in cond["judges"]}
        assert set(rows) == set(NEW)
        for j in NEW:  # every harmful sample is either decided (in the ASR's n) or counted as unjudged
            n = (rows[j]["asr"] or {}).get("n", 0)
            assert n + rows[j]["unjudged"] == cond["n_samples"], (j, rows[j])
    # Llama Guard 4 refused the tiny LLaVA's own template (not a Llama Guard one): unjudged, never hand-written
    lg = [j for c in result["conditions"] for j in c["judges"] if j["judge"] == "llamaguard"]
    assert all(j["asr"] is None and j["unjudged"] > 0 for j in lg)
