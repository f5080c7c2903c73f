"""`mllm-safety judges validate`: the label-set loaders on stand-in files in the official formats
(tests/fixtures/judges/labels, written by make_fixtures.py), the metrics (Wilson intervals honest at 0% and 100%),
and the command end to end with the keyword judge, a tiny HarmBench-shaped classifier and the organism as judges,
writing schema-valid files that `catalog check` reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from _judge_helpers import build_tiny_causal_lm

from baselines.judgeval import binary_metrics, proportion, validation_metrics, wilson
from baselines.labels import LabelSetError, load_harmbench_multimodal, load_harmbench_text, load_jbb
from baselines.types import Verdict
from tools.catalog.judges_schema import JudgeValidation
from tools.cli.main import main

LABELS = Path(__file__).parent / "fixtures" / "judges" / "labels"
JBB = LABELS / "jbb" / "judge-comparison.csv"
HB_TEXT = LABELS / "harmbench" / "data" / "classifier_val_sets" / "text_behaviors_val_set.json"
HB_MM = LABELS / "harmbench" / "data" / "classifier_val_sets" / "multimodal_behaviors_val_set.json"
HB_IMAGES = LABELS / "harmbench" / "images"


def test_wilson_is_never_zero_width_and_matches_the_formula():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 0) is None and proportion(0, 0) is None


def test_binary_metrics_from_a_known_confusion():
    pred = [True] * 6 + [False] * 4
    truth = [True, True, True, True, False, False, True, False, False, False]
    m = binary_metrics(pred, truth)
    assert m["confusion"] == {"tp": 4, "fp": 2, "tn": 3, "fn": 1}
    assert m["accuracy"]["value"] == 0.7 and m["precision"]["value"] == pytest.approx(4 / 6, abs=1e-6)
    assert m["recall"]["value"] == 0.8 and m["fpr"]["value"] == 0.4 and m["fnr"]["value"] == 0.2
    assert m["f1"]["value"] == pytest.approx(8 / 11, abs=1e-6)
    assert m["kappa"]["value"] == pytest.approx(0.4, abs=1e-6)  # po 0.7, pe 0.5
    assert m["kappa"]["ci_low"] <= 0.4 <= m["kappa"]["ci_high"]


def test_jbb_loader_reads_the_official_columns():
    ls = load_jbb(JBB)
    assert len(ls.items) == 12 and ls.format == "jailbreakbench-judge-comparison-csv"
    it = ls.items[4]
    assert it.sample.goal == it.sample.text and it.annotators == [1, 0, 1] and it.human is True
    assert set(it.stored) == {"harmbench-llama2-cls", "gpt-4", "llama-guard-2", "jbb-llama-3-70b"}
    assert ls.items[10].human is False  # a complying answer the humans did not count


def test_jbb_loader_rejects_other_layouts(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text(JBB.read_text().replace("human_majority", "majority"))
    with pytest.raises(LabelSetError, match="columns"):
        load_jbb(bad)
    wrong = tmp_path / "y.csv"
    lines = JBB.read_text().splitlines()
    lines[1] = lines[1].replace(",0,0,0,0,0,0,0,0", ",0,0,0,1,0,0,0,0")
    wrong.write_text("\n".join(lines) + "\n")
    with pytest.raises(LabelSetError, match="not the majority"):
        load_jbb(wrong)


def test_harmbench_loaders_resolve_behaviours_context_and_images():
    text = load_harmbench_text(HB_TEXT)
    assert len(text.items) == 12 and {it.category for it in text.items} == {"harassment_bullying", "illegal"}
    ctx = [it for it in text.items if it.sample.meta.get("context")]
    assert ctx and all(it.sample.goal == "Explain how to cheat at a board game" for it in ctx)
    mm = load_harmbench_multimodal(HB_MM, images_root=HB_IMAGES)
    with_image = [it for it in mm.items if it.sample.images]
    assert len(mm.items) == 9 and len(with_image) == 3  # only m0's image exists in the fixture
    assert all(it.sample.meta["image_description"].startswith("a drawing") for it in mm.items)
    assert mm.notes and "6 of 9" in mm.notes[0]
    assert mm.items[0].stored["gpt-4v"] is not None


def test_unjudged_items_are_left_out_and_counted():
    ls = load_jbb(JBB)
    verdicts = [Verdict("x", None, error="unparseable answer: 'zz'") if i < 3 else Verdict("x", it.human)
                for i, it in enumerate(ls.items)]  # fmt: skip
    s = validation_metrics(ls, verdicts)
    assert s["unjudged"] == 3 and s["n_judged"] == 9 and s["unjudged_errors"] == {"unparseable answer": 3}
    assert s["metrics"]["accuracy"]["value"] == 1.0 and s["metrics"]["accuracy"]["ci_low"] < 1.0


def _run(args: list[str], capsys) -> str:
    code = main(args)
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def _check_catalog(root: Path) -> list[JudgeValidation]:
    from tools.catalog.checks import scan

    files = sorted((root / "judges").rglob("*.yaml"))
    out = [JudgeValidation.model_validate(yaml.safe_load(p.read_text())) for p in files]
    result = scan(root, full=True, check_registry=False)
    assert not [i for i in result.issues if "judges" in str(i.path)], result.issues
    assert len(result.catalog.judge_validations) == len(files)
    return out


def test_validate_cli_on_the_three_stand_in_sets(tmp_path, capsys):
    cat = tmp_path / "catalog"
    out = _run(
        ["judges", "validate", "refusal", "--labels", "jbb", "--path", str(JBB), "--catalog", str(cat)],
        capsys,
    )
    assert "accuracy  91.7%" in out and "confusion {'tp': 7, 'fp': 1, 'tn': 4, 'fn': 0}" in out
    _run(["judges", "validate", "refusal", "--labels", "harmbench_text", "--path", str(HB_TEXT), "--catalog",
          str(cat)], capsys)  # fmt: skip
    _run(["judges", "validate", "refusal", "--labels", "harmbench_multimodal", "--path", str(HB_MM), "--images",
          str(HB_IMAGES), "--catalog", str(cat)], capsys)  # fmt: skip
    vals = {v.label_set["name"]: v for v in _check_catalog(cat)}
    assert set(vals) == {"jbb", "harmbench_text", "harmbench_multimodal"}
    jbb = vals["jbb"]
    assert jbb.metrics.confusion.tp == 7 and jbb.metrics.fnr.value == 0 and jbb.metrics.fnr.ci_high > 0
    assert jbb.labels == ["stand-in labels"]  # a fixture path: never shown as a real validation
    assert vals["harmbench_text"].per_category and vals["harmbench_text"].stored_judges


def test_validate_cli_with_tiny_harmbench_classifier_and_organism(tmp_path, capsys):
    cat = tmp_path / "catalog"
    tiny = build_tiny_causal_lm(tmp_path / "cls")
    _run(["judges", "validate", "harmbench", "--labels", "harmbench_text", "--path", str(HB_TEXT),
          "--set", f"model=hf:{tiny}", "--catalog", str(cat)], capsys)  # fmt: skip
    _run(["judges", "validate", "llm", "--labels", "jbb", "--path", str(JBB), "--limit", "3",
          "--set", "model=organism", "--set", "max_new_tokens=4", "--catalog", str(cat)], capsys)  # fmt: skip
    vals = {v.judge: v for v in _check_catalog(cat)}
    hb = vals["harmbench"]
    assert hb.n_items == 12 and hb.n_judged + hb.unjudged == 12
    assert "stand-in judge model" in hb.labels and hb.judge_model["backend"] == "hf-causal"
    assert [p.value for p in hb.published] == [0.9319]  # HarmBench Table 1, shown beside ours
    org = vals["llm"]
    assert org.n_items == 3 and org.judge_config["params"]["model"] == "organism"
    assert "stand-in judge model" in org.labels


def test_validate_cli_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "j.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["judges", "validate", "refusal", "--labels", "jbb", "--path", str(bad), "--no-write"]) == 2
    assert "columns" in capsys.readouterr().err
    copy = tmp_path / "val.json"
    shutil.copy(HB_TEXT, copy)
    assert (
        main(
            ["judges", "validate", "refusal", "--labels", "harmbench_text", "--path", str(copy), "--no-write"]
        )
        == 2
    )
    assert "behaviours CSV" in capsys.readouterr().err
