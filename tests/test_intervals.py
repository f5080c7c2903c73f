"""Intervals of published metrics (issue 12): proportions get exact Clopper-Pearson intervals that never have zero
width and cover at >= 94% by simulation; kappa ignores benign controls; alpha is honoured; differences between
conditions get their own paired interval."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.metrics import clopper_pearson, paired_difference_ci, proportion_ci, summarize
from baselines.types import Verdict
from tools.catalog.schema import Difference


@pytest.mark.parametrize("n", [20, 80, 500])
@pytest.mark.parametrize("p", [0.0, 0.05, 0.5, 0.95, 1.0])
def test_proportion_interval_covers_by_simulation(n: int, p: float) -> None:
    rng = np.random.default_rng(1000 * n + int(100 * p))
    draws = rng.binomial(n, p, size=4000)
    intervals = {k: proportion_ci([True] * int(k) + [False] * (n - int(k))) for k in set(draws.tolist())}
    covered = np.mean([intervals[k]["ci_low"] <= p <= intervals[k]["ci_high"] for k in draws.tolist()])
    assert covered >= 0.94, f"coverage {covered:.3f} at n={n}, p={p}"


def test_no_interval_has_zero_width_and_edges_are_honest() -> None:
    for n in (1, 5, 20, 80):
        for k in range(n + 1):
            ci = proportion_ci([True] * k + [False] * (n - k))
            assert ci["ci_high"] > ci["ci_low"] and ci["ci_low"] <= ci["value"] <= ci["ci_high"], (k, n, ci)
    zero = proportion_ci([False] * 80)
    assert zero["ci_low"] == 0.0 and 0.044 < zero["ci_high"] < 0.047  # about [0, 4.6%]
    assert proportion_ci([True] * 80)["ci_low"] == pytest.approx(1 - zero["ci_high"], abs=2e-6)
    low, high = clopper_pearson(30, 100)
    assert (round(low, 4), round(high, 4)) == (0.2124, 0.3998)  # textbook exact interval


def test_alpha_is_honoured() -> None:
    vals = [True] * 12 + [False] * 28
    wide, narrow = proportion_ci(vals), proportion_ci(vals, alpha=0.5)
    assert narrow["ci_low"] > wide["ci_low"] and narrow["ci_high"] < wide["ci_high"]
    recs = _paired_records([True] * 10, [False] * 10)
    default = summarize(recs, ["j"])
    loose = summarize(recs, ["j"], alpha=0.5)
    d, lo = default["conditions"][0]["judges"][0]["asr"], loose["conditions"][0]["judges"][0]["asr"]
    assert lo["ci_low"] > d["ci_low"]  # 10/10: the lower bound rises as the level drops
    assert loose["differences"][0]["ci_high"] < default["differences"][0]["ci_high"]  # -1 difference
    with pytest.raises(ValueError, match="alpha"):
        summarize(recs, ["j"], alpha=1.5)


def test_kappa_counts_harmful_samples_both_judges_decided_only() -> None:
    recs = []
    for i, (a, b) in enumerate([(True, True), (False, False), (True, False), (True, True)]):
        recs.append({"id": f"h{i}", "condition": "c", "label": "harmful", "category": "x",
                     "verdicts": {"j1": Verdict("j1", a), "j2": Verdict("j2", b)}})  # fmt: skip
    for i in range(6):  # benign controls both judges decided, all in disagreement: must not enter kappa
        recs.append({"id": f"b{i}", "condition": "c", "label": "benign", "category": "x",
                     "verdicts": {"j1": Verdict("j1", True, refused=False), "j2": Verdict("j2", False)}})  # fmt: skip
    recs.append({"id": "h9", "condition": "c", "label": "harmful", "category": "x",
                 "verdicts": {"j1": Verdict("j1", True), "j2": Verdict("j2", None, error="x")}})  # fmt: skip
    (agr,) = summarize(recs, ["j1", "j2"])["agreement"]
    # harmful both-decided: [T,F,T,T] vs [T,F,F,T]: p_o = 3/4, p_a = 3/4, p_b = 1/2, p_e = 1/2 -> kappa = 0.5
    assert agr["n"] == 4 and agr["kappa"] == pytest.approx(0.5)


def _paired_records(before: list[bool], after: list[bool]) -> list[dict]:
    recs = []
    for cond, values in (("text-only", before), ("attack", after)):
        for i, v in enumerate(values):
            recs.append({"id": f"s{i}", "condition": cond, "label": "harmful", "category": "x",
                         "verdicts": {"j": Verdict("j", v)}})  # fmt: skip
    return recs


def test_difference_between_conditions_is_paired_and_has_an_interval() -> None:
    before = [False] * 70 + [True] * 10
    after = [True] * 60 + [False] * 10 + [True] * 10
    out = summarize(
        _paired_records(before, after), ["j"], conditions={"text-only": {}, "attack": {"attack": "a"}}
    )
    (d,) = out["differences"]
    Difference.model_validate(d)
    assert (d["condition"], d["reference"], d["n"]) == ("attack", "text-only", 80)
    assert d["value"] == pytest.approx(60 / 80) and d["ci_low"] < 0.75 < d["ci_high"]
    # paired: pairs are matched by id; a sample unjudged in one condition leaves the pairing
    recs = _paired_records(before, after)
    recs[-1]["verdicts"]["j"] = Verdict("j", None, error="x")
    assert summarize(recs, ["j"])["differences"][0]["n"] == 79
    # all-or-nothing conditions still give an interval of positive width, also with no discordant pair
    for a, b in (([True] * 80, [False] * 80), ([True] * 80, [True] * 80), ([True] * 40 + [False] * 40,) * 2):
        ci = paired_difference_ci(a, b)
        assert ci["ci_high"] > ci["ci_low"] and ci["ci_low"] <= ci["value"] <= ci["ci_high"]
    same = paired_difference_ci([True] * 40 + [False] * 40, [True] * 40 + [False] * 40)
    assert same["value"] == 0 and same["ci_high"] > 0.02  # concordant pairs say little about the difference


@pytest.mark.parametrize("n", [20, 80, 500])
def test_paired_difference_covers_by_simulation(n: int) -> None:
    rng = np.random.default_rng(n)
    for joint in ((0.25, 0.25, 0.25, 0.25), (0.05, 0.9, 0.0, 0.05), (0.9, 0.05, 0.0, 0.05)):
        true = joint[1] - joint[2]  # P(after only) - P(before only)
        hits = 0
        for _ in range(400):
            cats = rng.choice(4, size=n, p=joint)
            ci = paired_difference_ci(list((cats == 0) | (cats == 1)), list((cats == 0) | (cats == 2)))
            hits += ci["ci_low"] <= true <= ci["ci_high"]
        assert hits / 400 >= 0.93, (n, joint, hits / 400)
