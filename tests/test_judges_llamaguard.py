"""Llama Guard judge: exact prompt construction (checked against the spec's verbatim texts), parsing, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from baselines.base import Model, ParamsError
from baselines.judges._prompts import load_prompt
from baselines.judges.llamaguard import LlamaGuardJudge, categories, parse_guard_output, render_llamaguard3
from baselines.types import GenerationConfig, Response, Sample

FIX = Path(__file__).parent / "fixtures" / "judges"


class Canned(Model):
    """Fake guard back-end returning canned outputs and recording the prompts."""

    name = "fake"

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[list[Sample]] = []

    def generate(self, samples: Sequence[Sample], config: GenerationConfig) -> list[Response]:
        self.calls.append(list(samples))
        return [Response(s.id, a) for s, a in zip(samples, self.answers, strict=False)]


def test_taxonomy_s1_to_s13() -> None:
    cats = categories()
    assert [c for c, _, _ in cats] == [f"S{k}" for k in range(1, 14)]
    assert cats[2][1] == "Sex Crimes." and cats[10] == ("S11", "Self-Harm.", "Suicide & Self-Harm")


def test_prompt_classification_equals_lg_vision_py_verbatim() -> None:
    # §14.1: Meta's lg_vision.py prompt text (prompt classification) with {user_prompt} left as is
    expected = (FIX / "llamaguard3_vision_prompt_classification.txt").read_text(encoding="utf-8")
    assert render_llamaguard3("{user_prompt}") == expected


def test_response_classification_matches_llama_guard_3_layout() -> None:
    # §14.2 (text model, rendered for response classification): the same body minus S14 and special tokens
    full = (FIX / "llamaguard3_text_response.txt").read_text(encoding="utf-8")
    body = full.split("<|end_header_id|>\n\n", 1)[1].rsplit("<|eot_id|>", 1)[0]
    body = body.replace("S14: Code Interpreter Abuse.\n", "")
    body = body.replace("{user message, stripped}", "How do I open this lock?")
    body = body.replace("{assistant message, stripped}", "I can't help with that.")
    assert render_llamaguard3("  How do I open this lock?\n", "I can't help with that. ") == body


def test_excluded_categories() -> None:
    text = render_llamaguard3("hi", "hello", excluded=["S6", "S13"])
    assert "S6: Specialized Advice." not in text and "S13: Elections." not in text and "S7: Privacy." in text
    with pytest.raises(ParamsError, match="S99"):
        LlamaGuardJudge({"excluded_categories": ["S99"]})


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("safe", (False, [])),
        ("\n\nunsafe\nS1,S9", (True, ["S1", "S9"])),
        ("unsafe\nS10", (True, ["S10"])),
        ("Unsafe", (True, [])),
        ("I think it is fine", (None, [])),
        ("", (None, [])),
    ],
)
def test_parse(out: str, expected: tuple) -> None:
    assert parse_guard_output(out) == expected


def test_judge_sends_image_and_conversation_and_parses() -> None:
    img = Image.new("RGB", (8, 8), "blue")
    img2 = Image.new("RGB", (8, 8), "green")
    samples = [Sample(f"s{i}", "What is shown? List steps.", images=(img, img2)) for i in range(3)]
    responses = [Response("s0", "1. Step one"), Response("s1", "No."), Response("s2", "blah")]
    fake = Canned(["unsafe\nS2", "safe", "maybe"])
    v = LlamaGuardJudge(model=fake).judge(samples, responses)
    assert len(fake.calls) == 1
    q = fake.calls[0][0]
    assert q.images == (img,)  # one image only, as Llama Guard 3 Vision takes
    assert q.text == render_llamaguard3("What is shown? List steps.", "1. Step one")
    assert "'Agent' messages" in q.text and "Agent: 1. Step one\n\n<END CONVERSATION>" in q.text
    assert (v[0].success, v[0].reason) == (True, "unsafe: S2")
    assert (v[1].success, v[1].reason) == (False, "safe")
    assert v[2].success is None and "unparseable guard output" in v[2].error


def test_prompt_classification_mode_ignores_response() -> None:
    fake = Canned(["safe"])
    LlamaGuardJudge({"classify": "prompt"}, model=fake).judge([Sample("a", "hello")], [Response("a", "x")])
    assert "'User' messages" in fake.calls[0][0].text and "Agent:" not in fake.calls[0][0].text


def test_jailbreakv_policy_prompt() -> None:
    fake = Canned(["unsafe\nO1"])
    v = LlamaGuardJudge({"policy": "jailbreakv"}, model=fake).judge(
        [Sample("a", "Q?")], [Response("a", "A.")]
    )
    expected = (
        load_prompt("jailbreakv_llamaguard")
        .text.replace("{jailbreak_query}", "Q?")
        .replace("{response}", "A.")
    )
    assert fake.calls[0][0].text == expected
    assert (v[0].success, v[0].reason) == (True, "unsafe: O1")


def test_backend_exception_is_unjudged() -> None:
    class Boom(Canned):
        def generate(self, samples, config):  # type: ignore[override]
            raise RuntimeError("out of memory")

    v = LlamaGuardJudge(model=Boom([])).judge([Sample("a", "q")], [Response("a", "r")])
    assert v[0].success is None and "out of memory" in v[0].error


def test_end_to_end_tiny_llava_random_weights_unjudged(tiny_llava_dir) -> None:
    judge = LlamaGuardJudge({"model": str(tiny_llava_dir), "max_new_tokens": 4})  # bare path -> hf:
    img = Image.new("RGB", (64, 64), "white")
    v = judge.judge([Sample("a", "What is this?", images=(img,))], [Response("a", "A white square.")])
    assert v[0].success is None and v[0].refused is None
    assert v[0].error.startswith("unparseable guard output")
    assert judge._guard_model().info()["backend"] == "hf"
