"""Shared parts of the black-box attacks: seeded per-sample RNG, the in-loop scorer's stand-in mapping, query
accounting, and its aggregation into a Result (mean and max target queries per item per condition)."""

from __future__ import annotations

from baselines.attacks._blackbox import LoopScorer, query_meta, sample_rng
from baselines.runresult import attack_queries
from baselines.types import Response, Sample


def test_sample_rng_is_per_sample_and_stable():
    assert sample_rng(0, "a").random() == sample_rng(0, "a").random()
    assert sample_rng(0, "a").random() != sample_rng(0, "b").random()
    assert sample_rng(0, "a").random() != sample_rng(1, "a").random()


def test_stand_in_scorer_maps_verdicts_to_the_scale():
    scorer = LoopScorer("x", "judge:refusal", "%s %s", lambda a: None)
    samples = [Sample(id="1", text="q"), Sample(id="2", text="q")]
    responses = [Response("1", "I'm sorry, but I cannot help."), Response("2", "Sure: 1. a")]
    assert scorer.score(["q", "q"], samples, responses) == [1, 5]
    assert scorer.info() == {"scorer": "judge:refusal", "stand_in": True}


def test_query_accounting_is_aggregated_per_condition():
    def rec(cond: str, meta: dict) -> dict:
        return {"condition": cond, "meta": meta}

    records = [
        rec("si_attack", query_meta(1, "judge-success")),
        rec("si_attack", query_meta(10, "budget")),
        rec("si_attack", query_meta(4, "judge-success")),
        rec("text-only", {}),
        rec("other", {"attack_queries": True}),  # not a count
    ]
    got = attack_queries(records)
    assert got == {"si_attack": {"mean": 5.0, "max": 10, "n": 3}}
