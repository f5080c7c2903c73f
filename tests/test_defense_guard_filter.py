"""guard_filter over the guard family: each stage gets the guard's own mode (prompt vs response), image guards
guard the input only, a guard model that cannot load stops the run (exit 2)."""

from __future__ import annotations

import pytest
from test_defense_fakes import FakeModel, sample

from baselines.base import BackendError
from baselines.defenses.guard_filter import GUARDS, GuardFilter
from baselines.params import ParamsError
from baselines.types import GenerationConfig

REFUSAL = "I'm sorry, but I cannot assist with that request."


def _llamaguard_answer(s) -> str:
    """A fake Llama Guard: unsafe when the rendered conversation mentions 'evil' (request or answer)."""
    return "unsafe\nS2" if "evil" in s.text else "safe"


def test_llamaguard_both_stages_prompt_then_response() -> None:
    """stage=both: the input judge classifies the request (no Agent turn), the output judge the answer; one
    guard model serves both; flagged requests never reach the protected model."""
    guard = FakeModel(_llamaguard_answer)
    model = FakeModel(lambda s: "an evil answer" if "sneaky" in s.text else "a fine answer")
    wrapped = GuardFilter(
        {"judge": "llamaguard", "judge_params": {}, "stage": "both"}, guard_model=guard
    ).wrap(model)
    assert {st: j.params.classify for st, j in wrapped.judges.items()} == {
        "input": "prompt",
        "output": "response",
    }
    assert wrapped.judges["input"]._model is wrapped.judges["output"]._model is guard
    out = wrapped.generate(
        [sample(0, "an evil request"), sample(1, "a sneaky request"), sample(2, "a nice request")],
        GenerationConfig(max_new_tokens=8),
    )
    assert [r.text for r in out] == [REFUSAL, REFUSAL, "a fine answer"]
    assert [s.id for s in model.calls[0]] == ["s1", "s2"]  # s0 blocked on input
    assert (
        out[0].meta["guard_filter"]["input"]["flagged"] is True
        and "output" not in out[0].meta["guard_filter"]
    )
    assert out[1].meta["guard_filter"]["input"]["flagged"] is False
    assert out[1].meta["guard_filter"]["output"]["reason"].startswith("unsafe")
    first, second = guard.calls[0], guard.calls[1]
    assert "Agent:" not in first[0].text and "an evil answer" in second[0].text  # prompt vs response mode
    info = wrapped.info()["defenses"][-1]
    assert info["judges"]["input"]["params"]["classify"] == "prompt"


def test_image_guards_are_input_only() -> None:
    """LlavaGuard and ShieldGemma 2 rate images: an output stage is refused before anything loads."""
    assert set(GUARDS["llavaguard"]) == set(GUARDS["shieldgemma2"]) == {"input"}
    for judge in ("llavaguard", "shieldgemma2"):
        for stage in ("output", "both"):
            with pytest.raises(ParamsError, match="stage=input"):
                GuardFilter({"judge": judge, "stage": stage})


def test_shieldgemma2_input_filter_blocks_flagged_images() -> None:
    """ShieldGemma 2 (generate mode on a back-end without logits): 'Yes' on a policy blocks the request;
    a request without an image is undecided and passes (on_error=pass)."""
    guard = FakeModel(lambda s: "Yes" if s.id == "s0::dangerous" else "No")
    model = FakeModel(lambda s: "answer")
    params = {"judge": "shieldgemma2", "judge_params": {"scoring": "generate"}, "stage": "input"}
    wrapped = GuardFilter(params, guard_model=guard).wrap(model)
    out = wrapped.generate(
        [sample(0, "q"), sample(1, "q"), sample(2, "q", image=False)], GenerationConfig(max_new_tokens=8)
    )
    assert [r.text for r in out] == [REFUSAL, "answer", "answer"]
    assert out[2].meta["guard_filter"]["input"]["verdict"] is None
    # undecided is its own recorded decision (the result counts it), apart from flagged
    assert [r.meta["guard_filter"]["input"]["undecided"] for r in out] == [False, False, True]
    assert [s.id for s in model.calls[0]] == ["s1", "s2"]


def test_guardreasoner_input_reads_request_label() -> None:
    """GuardReasoner-VL on the input stage decides from 'Request: harmful|unharmful'."""

    def answer(s) -> str:
        harmful = "evil" in s.text
        return f"<think>x</think><result>Request: {'harmful' if harmful else 'unharmful'}\nResponse: None</result>"

    guard = FakeModel(answer)
    model = FakeModel(lambda s: "answer")
    wrapped = GuardFilter({"judge": "guardreasoner_vl", "stage": "input"}, guard_model=guard).wrap(model)
    out = wrapped.generate([sample(0, "evil plan"), sample(1, "picnic plan")], GenerationConfig())
    assert [r.text for r in out] == [REFUSAL, "answer"]


def test_guard_without_a_model_stops_the_run() -> None:
    """A guard whose model cannot load fails at wrap time (BackendError: the CLI's exit 2), naming it."""
    with pytest.raises(BackendError, match="llamaguard"):
        GuardFilter({"judge": "llamaguard", "judge_params": {}, "stage": "input"}).wrap(
            FakeModel(lambda s: "")
        )
