"""`mllm-safety rejudge`: a finished organism run gets new judges without a single new generate call; the new
verdicts sit beside the old ones, the attack images are rebuilt (hash-checked) for image judges, and the Result
and catalog write-back include the new judges."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from _judge_helpers import build_tiny_causal_lm

from baselines.models.organism import OrganismModel
from baselines.runstore import RunStore
from tools.cli.main import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def catalog(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results", "judges"))
    monkeypatch.setenv("MLLM_SAFETY_CATALOG", str(root))
    return root


@pytest.fixture
def organism_calls(monkeypatch) -> dict[str, int]:
    """Counts the organism's generate calls (the target model; judge models are other classes)."""
    calls = {"n": 0}
    real = OrganismModel.generate

    def counting(self, samples, config):
        calls["n"] += 1
        return real(self, samples, config)

    monkeypatch.setattr(OrganismModel, "generate", counting)
    return calls


def test_rejudge_adds_judges_without_generating(tmp_path, catalog, organism_calls, tiny_llava_dir, capsys):
    runs = tmp_path / "runs"
    args = ["run", "figstep", "--limit", "3", "--batch-size", "4", "--max-new-tokens", "3", "--judge", "refusal",
            "--runs-dir", str(runs), "--no-progress"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    generated = organism_calls["n"]
    assert generated > 0
    [run_dir] = list(runs.iterdir())
    before = RunStore(run_dir).load()
    [result_file] = list((catalog / "results").rglob("*.yaml"))
    capsys.readouterr()

    tiny_cls = build_tiny_causal_lm(tmp_path / "cls")
    code = main([
        "rejudge", str(run_dir), "--judge", "harmbench", "--judge", "llavaguard",
        "--set", f"judge.harmbench.model=hf:{tiny_cls}",
        "--set", f"judge.llavaguard.model=hf:{tiny_llava_dir}", "--set", "judge.llavaguard.max_new_tokens=3",
    ])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert organism_calls["n"] == generated  # not one generate call of the target model
    after = RunStore(run_dir).load()
    assert len(after) == len(before)
    for b, a in zip(before, after, strict=True):
        assert a["response"] == b["response"] and a["verdicts"]["refusal"] == b["verdicts"]["refusal"]
        assert set(a["verdicts"]) == {"refusal", "harmbench", "llavaguard"}
        if a["images"]:  # the typographic image was rebuilt: LlavaGuard saw it (no 'no image' error)
            assert "no image" not in (a["verdicts"]["llavaguard"]["error"] or "")
    assert "could not be rebuilt" not in out.out
    meta = RunStore(run_dir).read_meta()
    assert [j["label"] for j in meta["judges"]] == ["refusal", "harmbench", "llavaguard"]
    assert meta["rejudged"][0]["judges"] == ["harmbench", "llavaguard"]
    written = yaml.safe_load(result_file.read_text())
    assert {j["judge"] for c in written["conditions"] for j in c["judges"]} == {
        "refusal",
        "harmbench",
        "llavaguard",
    }
    assert {tuple(a["judges"]) for a in written["agreement"]} >= {("refusal", "harmbench")}
    assert written["provenance"]["rejudged"][0]["judges"] == ["harmbench", "llavaguard"]
    errors = written["provenance"]["judge_errors"]
    assert errors["refusal"]["unjudged"] == 0 and errors["harmbench"]["verdicts"] == len(after)
    unjudged = sum(a["verdicts"]["harmbench"]["success"] is None for a in after)
    assert errors["harmbench"]["unjudged"] == unjudged == sum(errors["harmbench"]["errors"].values())

    # adding a judge the run already has is refused unless --replace
    assert main(["rejudge", str(run_dir), "--judge", "refusal", "--no-write-back"]) == 2
    assert "--replace" in capsys.readouterr().err
    assert main(["rejudge", str(run_dir), "--judge", "refusal", "--replace", "--no-write-back"]) == 0
    assert organism_calls["n"] == generated
