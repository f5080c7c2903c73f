"""Metrics: bootstrap CI, Cohen's kappa, and summarize (shape fits tools.catalog.schema)."""

from __future__ import annotations

import pytest

from baselines.metrics import bootstrap_ci, cohen_kappa, summarize
from baselines.types import Verdict
from tools.catalog.schema import Agreement, ConditionResult


def test_bootstrap_ci_contains_value_and_is_seeded() -> None:
    vals = [True] * 30 + [False] * 70
    ci = bootstrap_ci(vals)
    assert ci["value"] == 0.3 and ci["n"] == 100
    assert ci["ci_low"] < 0.3 < ci["ci_high"]
    assert 0.18 < ci["ci_low"] < 0.24 and 0.36 < ci["ci_high"] < 0.42  # about p +- 1.96 sqrt(p(1-p)/n)
    assert bootstrap_ci(vals) == ci  # same seed, same CI
    other = bootstrap_ci(vals, seed=1)
    assert other["value"] == 0.3 and other["ci_low"] < 0.3 < other["ci_high"]


def test_bootstrap_ci_narrows_with_n() -> None:
    small = bootstrap_ci([True, False] * 10)
    large = bootstrap_ci([True, False] * 1000)
    assert small["value"] == large["value"] == 0.5
    assert (large["ci_high"] - large["ci_low"]) < (small["ci_high"] - small["ci_low"]) / 5


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_ci([True, True, True]) == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 3}
    assert bootstrap_ci([False]) == {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 1}
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


def test_cohen_kappa_hand_computed() -> None:
    a = [True, True, False, False, True, False, True, True, False, False]
    b = [True, False, False, False, True, True, True, True, False, False]
    # p_o = 8/10, p_a = p_b = 0.5 -> p_e = 0.5 -> kappa = (0.8 - 0.5) / 0.5 = 0.6
    assert cohen_kappa(a, b) == pytest.approx(0.6)
    # unbalanced example: p_o = 3/4, p_a = 3/4, p_b = 1/2 -> p_e = 3/8 + 1/8 = 1/2 -> kappa = 0.5
    assert cohen_kappa([True, True, True, False], [True, True, False, False]) == pytest.approx(0.5)
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa([True, False], [False, True]) == -1.0


def test_cohen_kappa_undefined() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa([True, True], [True, True]) is None  # no variance: chance agreement is 1
    with pytest.raises(ValueError):
        cohen_kappa([True], [True, False])


def _records() -> list[dict]:
    recs = []
    # condition "figstep": 4 harmful (cat A x2, B x2), 2 benign
    kw = [True, True, False, None]  # keyword judge success on harmful (one unjudged)
    llm = [True, False, False, True]
    for i in range(4):
        recs.append(
            {
                "condition": "figstep",
                "label": "harmful",
                "category": "A" if i < 2 else "B",
                "verdicts": {
                    "refusal": Verdict("refusal", kw[i], refused=None if kw[i] is None else not kw[i]),
                    "llm": {"judge": "llm", "success": llm[i], "refused": None},
                },
            }
        )
    for refused in (True, False):
        recs.append(
            {
                "condition": "figstep",
                "label": "benign",
                "category": "A",
                "verdicts": {
                    "refusal": Verdict("refusal", not refused, refused=refused),
                    "llm": Verdict("llm", None, error="timeout"),
                },
            }
        )
    recs.append(
        {
            "condition": "text-only",
            "label": "harmful",
            "category": "A",
            "verdicts": {"refusal": Verdict("refusal", False, True)},
        }
    )
    return recs


def test_summarize_counts_unjudged_outside_denominators() -> None:
    out = summarize(_records(), ["refusal", "llm"], conditions={"figstep": {"attack": "figstep"}})
    fig, text = out["conditions"]
    assert fig["condition"] == "figstep" and fig["attack"] == "figstep" and fig["n_samples"] == 6
    kw, llm = fig["judges"]
    assert kw["asr"]["value"] == pytest.approx(2 / 3) and kw["asr"]["n"] == 3 and kw["unjudged"] == 1
    assert kw["refusal_rate_benign"] == {
        "value": 0.5,
        "ci_low": kw["refusal_rate_benign"]["ci_low"],
        "ci_high": kw["refusal_rate_benign"]["ci_high"],
        "n": 2,
    }
    assert kw["per_category"]["A"]["value"] == 1.0 and kw["per_category"]["B"]["n"] == 1
    assert llm["asr"]["value"] == 0.5 and llm["asr"]["n"] == 4
    assert llm["refusal_rate_benign"] is None and llm["unjudged"] == 2  # LLM judge cannot tell refusals
    # a judge absent from a record counts as unjudged there
    assert text["n_samples"] == 1 and text["judges"][1]["asr"] is None and text["judges"][1]["unjudged"] == 1
    # validates against the catalog schema
    for c in out["conditions"]:
        ConditionResult.model_validate(c)
    (agr,) = out["agreement"]
    Agreement.model_validate(agr)
    # both decided on harmful: figstep items 0,1,2 -> kw [T,T,F], llm [T,F,F]; text-only item lacks llm
    assert agr["judges"] == ("refusal", "llm") and agr["n"] == 3
    assert agr["kappa"] == pytest.approx(cohen_kappa([True, True, False], [True, False, False]))
