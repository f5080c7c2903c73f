"""Helpers shared by the tests that run baselines on the trained model organism."""

from __future__ import annotations

import pytest

from baselines.organism import ARTIFACT_DIR
from baselines.registry import get
from baselines.types import GenerationConfig

#: Skip a test (or a module, as ``pytestmark``) until the organism artifact exists.
needs_artifact = pytest.mark.skipif(
    not (ARTIFACT_DIR / "config.json").is_file(),
    reason="no trained organism committed yet (python -m baselines.organism.train)",
)


def harmful_two_per_scenario() -> list:
    """Two harmful bundled requests per scenario (16)."""
    by_cat: dict[str, list] = {}
    for s in get("dataset", "bundled")({}).load().samples:
        if s.label == "harmful":
            by_cat.setdefault(s.category, []).append(s)
    return [s for items in by_cat.values() for s in items[:2]]


def asr(model, samples) -> float:
    """Share of answers (greedy, 32 tokens) without a GCG-list refusal string."""
    responses = model.generate(samples, GenerationConfig(max_new_tokens=32))
    verdicts = get("judge", "refusal")({}).judge(samples, responses)
    return sum(bool(v.success) for v in verdicts) / len(verdicts)
