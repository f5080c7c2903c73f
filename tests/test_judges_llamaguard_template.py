"""Llama Guard judge through the hf back-end on a tiny LLaVA: the prompt reaching the tokenizer is the judge's
prompt exactly once — built by a guard-style chat template from the conversation, or sent as one user turn
through a plain template — never wrapped twice."""

from __future__ import annotations

import pytest
from PIL import Image

from baselines.judges._prompts import load_prompt
from baselines.judges.llamaguard import LlamaGuardJudge, categories
from baselines.models import load_model
from baselines.types import Response, Sample


def guard_template() -> str:
    """A Llama-Guard-3-Vision-style chat template for the tiny model (its image token is ``<image>``).

    Built from the judge's own verbatim task text: header, ``<image> `` when the conversation has an image,
    the task with ``{role}``, categories (minus ``excluded_category_keys``) and the conversation filled in by
    Jinja, then the assistant header — the structure of the official template."""
    cats = ", ".join(f"({c!r}, {t!r})" for c, t, _ in categories())
    body = load_prompt("llamaguard3_vision").text
    body = body.replace("{role}", "{{ role }}")
    body = body.replace(
        "{categories}",
        "{% for k, t in cats if k not in excluded_category_keys %}{{ k + ': ' + t + '\\n' }}{% endfor %}",
    )
    body = body.replace(
        "{conversation}",
        "{% for m in messages %}{% for c in m['content'] if c['type'] == 'text' %}"
        "{{ ('User' if m['role'] == 'user' else 'Agent') + ': ' + c['text'] | trim + '\\n\\n' }}"
        "{% endfor %}{% endfor %}",
    )
    return (
        "{%- set role = 'Agent' if messages | length % 2 == 0 else 'User' -%}"
        "{%- if excluded_category_keys is not defined -%}{%- set excluded_category_keys = [] -%}{%- endif -%}"
        f"{{%- set cats = [{cats}] -%}}"
        "<s>[GUARD-USER]\n\n"
        "{% for m in messages %}{% for c in m['content'] if c['type'] == 'image' %}{{ '<image> ' }}"
        "{% endfor %}{% endfor %}" + body + "[GUARD-END]"
    )


class Recorder:
    """Wraps a processor and records the texts it tokenises."""

    def __init__(self, processor) -> None:
        self._p = processor
        self.texts: list[str] = []

    def __call__(self, *args, **kwargs):
        self.texts.extend(kwargs.get("text") or [])
        return self._p(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._p, name)


def _guard(tiny_llava_dir, template: str | None):
    model = load_model(f"hf:{tiny_llava_dir}")
    if template is not None:
        model.processor.chat_template = template
    rec = Recorder(model.processor)
    model.processor = rec
    return model, rec


PAIR = (
    Sample("a", "  How do I pick this lock?\n", images=(Image.new("RGB", (64, 64), "white"),)),
    Response("a", "I can't help with that. "),
)


@pytest.mark.parametrize("classify", ["response", "prompt"])
def test_guard_template_builds_the_judges_prompt_from_the_conversation(tiny_llava_dir, classify) -> None:
    model, rec = _guard(tiny_llava_dir, guard_template())
    judge = LlamaGuardJudge({"classify": classify, "excluded_categories": ["S6"]}, model=model)
    assert judge.uses_chat_template(model)  # auto: the template builds the task itself
    verdict = judge.judge([PAIR[0]], [PAIR[1]])[0]
    assert verdict.success is None  # random weights: unparseable, but the call went through
    expected = "[GUARD-USER]\n\n<image> " + judge.build_prompt(*PAIR) + "[GUARD-END]"  # <s>: added once
    assert rec.texts == [expected]
    assert expected.count("Task: Check if there is unsafe content") == 1
    assert "S6:" not in expected and "S7: Privacy." in expected
    assert ("Agent: I can't help with that.\n\n" in expected) == (classify == "response")


def test_plain_template_gets_the_prompt_as_one_user_turn(tiny_llava_dir) -> None:
    model, rec = _guard(tiny_llava_dir, None)
    judge = LlamaGuardJudge(model=model)
    assert not judge.uses_chat_template(model)
    judge.judge([PAIR[0]], [PAIR[1]])
    assert rec.texts == ["USER: <image>\n" + judge.build_prompt(*PAIR) + " ASSISTANT:"]
    assert rec.texts[0].count("Task: Check if there is unsafe content") == 1


def test_forced_formats(tiny_llava_dir) -> None:
    model, _ = _guard(tiny_llava_dir, guard_template())
    assert not LlamaGuardJudge({"prompt_format": "user_turn"}, model=model).uses_chat_template(model)
    assert not LlamaGuardJudge({"policy": "jailbreakv"}, model=model).uses_chat_template(model)
    plain, _ = _guard(tiny_llava_dir, None)
    forced = LlamaGuardJudge({"prompt_format": "chat_template"}, model=plain)
    assert forced.uses_chat_template(plain)
    q = forced.build_query(*PAIR, conversation=True)
    assert q.text == forced.build_prompt(*PAIR) and q.meta["messages"][0]["content"][0] == {"type": "image"}
    assert q.meta["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": PAIR[1].text}]}
