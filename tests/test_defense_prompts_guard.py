"""safety_prompt places the Llama 2 safety prompt; guard_filter refuses what a (fake) guard judge flags."""

from __future__ import annotations

import pytest
from test_defense_fakes import FakeModel, sample

from baselines import registry
from baselines.base import Judge
from baselines.defenses.guard_filter import GuardFilter
from baselines.defenses.safety_prompt import SafetyPrompt
from baselines.types import GenerationConfig, Verdict

LLAMA2_START = "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe."


def test_safety_prompt_system_and_prefix() -> None:
    """Default: the Llama 2 prompt becomes the system turn, before an existing system prompt."""
    fake = FakeModel(lambda s: "ok")
    text = SafetyPrompt().prompt_text()
    assert text.startswith(LLAMA2_START) and text.endswith("please don't share false information.")
    SafetyPrompt().wrap(fake).generate([sample(0), sample(1, system="Be brief.")], GenerationConfig())
    a, b = fake.calls[0]
    assert a.system == text and a.text == "How do I do X?"
    assert b.system == text + "\n\nBe brief."
    SafetyPrompt({"placement": "prefix", "text": "SAFE."}).wrap(fake).generate(
        [sample(2)], GenerationConfig()
    )
    assert fake.calls[1][0].text == "SAFE.\n\nHow do I do X?" and fake.calls[1][0].system is None


class FakeGuard(Judge):
    """Flags answers (or requests, when the answer is empty) containing 'BAD'; 'ERR' -> undecided."""

    name = "fake_guard"
    seen: list = []

    def judge(self, samples, responses):
        """Keyword decision, recorded."""
        FakeGuard.seen.append([(s.text, r.text) for s, r in zip(samples, responses, strict=True)])
        out = []
        for s, r in zip(samples, responses, strict=True):
            text = r.text or s.text
            if "ERR" in text:
                out.append(Verdict("fake_guard", None, error="cannot decide"))
            else:
                out.append(Verdict("fake_guard", "BAD" in text, reason="kw"))
        return out


@pytest.fixture
def fake_guard(monkeypatch: pytest.MonkeyPatch) -> type[FakeGuard]:
    """Make registry.get('judge', 'fake_guard') return FakeGuard for the test."""
    real = registry.get
    monkeypatch.setattr(
        registry, "get", lambda k, n: FakeGuard if (k, n) == ("judge", "fake_guard") else real(k, n)
    )
    FakeGuard.seen = []
    return FakeGuard


def test_output_filter_replaces_flagged_answers(fake_guard) -> None:
    """Flagged answers become the refusal; others pass with their verdict in meta."""
    fake = FakeModel(lambda s: "BAD answer" if "evil" in s.text else ("ERR" if "odd" in s.text else "fine"))
    model = GuardFilter({"judge": "fake_guard", "judge_params": {}}).wrap(fake)
    out = model.generate([sample(0, "evil"), sample(1, "nice"), sample(2, "odd")], GenerationConfig())
    assert [r.text for r in out] == ["I'm sorry, but I cannot assist with that request.", "fine", "ERR"]
    assert out[0].meta["guard_filter"]["output"]["flagged"] is True
    assert out[1].meta["guard_filter"]["output"]["verdict"] is False
    assert out[2].meta["guard_filter"]["output"]["error"] == "cannot decide"
    strict = GuardFilter({"judge": "fake_guard", "judge_params": {}, "on_error": "refuse"}).wrap(fake)
    assert strict.generate([sample(2, "odd")], GenerationConfig())[0].text.startswith("I'm sorry")


def test_input_filter_blocks_before_the_model(fake_guard) -> None:
    """Flagged requests never reach the model."""
    fake = FakeModel(lambda s: "answer")
    model = GuardFilter({"judge": "fake_guard", "judge_params": {}, "stage": "input"}).wrap(fake)
    out = model.generate([sample(0, "BAD request"), sample(1, "good request")], GenerationConfig())
    assert [s.id for s in fake.calls[0]] == ["s1"]
    assert out[0].text.startswith("I'm sorry") and out[0].meta["guard_filter"]["input"]["flagged"] is True
    assert out[1].text == "answer"
    assert len(fake_guard.seen) == 1  # input stage only


def test_default_guard_is_the_llm_judge_on_the_model_itself() -> None:
    """Without a judge model, the llm judge is answered by the protected model (JailbreakBench prompt)."""
    fake = FakeModel(lambda s: "unsafe" if s.text.startswith("Please carefully read") else "Sure")
    wrapped = GuardFilter().wrap(fake)
    out = wrapped.generate([sample(0, "q")], GenerationConfig())
    assert len(fake.calls) == 2 and "<BEGIN RESPONSE>Sure<END RESPONSE>" in fake.calls[1][0].text
    assert out[0].text.startswith("I'm sorry") and out[0].meta["guard_filter"]["output"]["verdict"] is True
    assert wrapped.info()["defenses"][-1]["judge"]["judge"] == "llm"
