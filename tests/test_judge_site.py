"""The judges page's measured sections: the judge x label-set table with published figures beside ours (from
catalog/judges/ files written by `judges validate`), and the judge-sensitivity figure and per-judge ASR /
agreement tables of results scored by several judges."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

from _site_catalog import estimate, result

from baselines.judgeval import judge_label_set, validation_metrics
from baselines.labels import load_jbb
from baselines.registry import get
from tools.catalog.judges_schema import JudgeValidation
from tools.catalog.schema import Result
from tools.site.ctx import BaselineInfo
from tools.site.judges import render_judges_page
from tools.site.render import make_ctx

JBB = Path(__file__).parent / "fixtures" / "judges" / "labels" / "jbb" / "judge-comparison.csv"


def validation() -> JudgeValidation:
    """A real validation of the refusal judge on the stand-in JBB file (what `judges validate` writes)."""
    ls = load_jbb(JBB)
    judge = get("judge", "refusal")({})
    s = validation_metrics(ls, judge_label_set(judge, ls))
    return JudgeValidation.model_validate({
        "judge": "refusal", "judge_config": judge.config(), "judge_config_sha256": "0" * 64,
        "label_set": {"name": "jbb", "source": JBB.name}, **s,
        "published": [{"metric": "accuracy", "value": 0.5, "source": "a paper", "verified": False}],
        "labels": ["stand-in labels"], "provenance": {}, "created": "2026-01-01T00:00:00Z",
    })  # fmt: skip


def two_judge_result() -> Result:
    r = copy.deepcopy(result())
    for c in r["conditions"]:
        c["judges"].append({"judge": "harmbench", "asr": estimate(0.25), "unjudged": 2})
    r["judges"].append({"judge": "harmbench", "hash": "h2"})
    r["agreement"] = [{"judges": ["refusal", "harmbench"], "kappa": 0.31, "n": 36}]
    return Result.model_validate(r)


def ctx_with(results, validations):
    cat = SimpleNamespace(papers={}, vocab={}, results=results, judge_validations=validations, root=None)
    judges = [BaselineInfo(kind="judge", name=n, paper_id=None, summary=n) for n in ("refusal", "harmbench")]
    return make_ctx(cat, judges, repo_url="https://example.org/repo")


def test_judges_page_shows_validation_table_with_published_figures():
    page = render_judges_page(ctx_with([], [validation()]))
    table = page.split('id="judge-validation"')[1].split("</table>")[0]
    assert "<code>refusal</code>" in table and ">jbb<" in table and "stand-in labels" in table
    assert "91.7%" in table and "[64.6%–98.5%]" in table  # accuracy 11/12 with its Wilson interval
    assert "12 / 0" in table and "accuracy 50.0% <small>(unverified)</small>" in table
    summary = page.split('id="judges-summary"')[1].split("</table>")[0]
    assert summary.count("not measured yet") == 1  # refusal is measured now, harmbench is not


def test_judges_page_shows_judge_sensitivity_per_baseline():
    page = render_judges_page(ctx_with([two_judge_result()], []))
    section = page.split('id="judge-sensitivity"')[1]
    assert '<svg class="atlas-chart"' in section and "figstep: ASR by judge" in section
    assert "figstep · harmbench" in section and "figstep · refusal" in section
    assert "35.0 pts" in section  # 0.60 (refusal) - 0.25 (harmbench) in the figstep condition
    assert "refusal–harmbench κ=0.31 (n=36)" in section and "(2 unjudged)" in section
    assert "No judge has been validated yet" in page


def test_judges_page_says_when_nothing_is_measured():
    page = render_judges_page(ctx_with([Result.model_validate(result())], []))
    assert "No result has been scored by two or more judges yet" in page
