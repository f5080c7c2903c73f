"""HIMRD (clean-room): split parsing and the refusal filter with a scripted helper, the top strip's line rules,
the 512 x 612 image, the prompt's *** and "Your answer" handling, and the two-stage search (state machine,
which samples each stage asks again, one shared rewrite per iteration, query accounting). The organism cannot
put a word into a gap nor read 30 px DejaVu text on a 512 px strip (docs/organism.md), so no behaviour test."""

from __future__ import annotations

import numpy as np
import pytest
from test_defense_fakes import FakeModel

from baselines.attacks._verbatim import read_verbatim, sha256_text
from baselines.attacks.himrd import DATA_DIR, HIMRD, PROMPTS, classify, split_answer
from baselines.types import Sample
from baselines.typography import centred_strip

#: sha256 of the authors' prompts as the specification gives them: the clean-room files must not be these.
AUTHORS = {
    "2e5a401f8360a05cddbd1bb9ef6fc3083ce269e8fa5d16397469f3e851fa337a",
    "38bbc084a56e7661f9acdd5f6ac1a209b571ba593b62a2e7d93263bc95bcf581",
    "d530c4750fff5a41fe0ac660bb244b28bfd3edde0cc41b788a122d4a5014e85f",
    "9e02b73e1ef28a42c1cc45f0adb3847f48bf179cacc4cc1f1c49160f502b3a02",
    "46bfc641ed50cc208d26fcafd207aba53b5279a2c65339a6ddf97f5ba855c0af",
    "8b10e74fa0efcc9716a2a95a3ade8bbb1041ae0b28275c3f3f0ba52927692055",
    "ae6f2a1d1b5bdaa895022fce951f249cb25e6d235ea4af942afd68bf7b6e6a47",
    "faea1140cb0eb1406fb76ddb116552e18d5af3a4d1bf80efdbf4ea55875ff796",
}
LONG = " ".join(["word"] * 45)


def test_prompts_are_the_projects_own_and_carry_their_slots() -> None:
    texts = {n: read_verbatim(DATA_DIR / f"{n}.txt") for n in PROMPTS}
    assert not {sha256_text(t) for t in texts.values()} & AUTHORS
    assert "{phrase}" in texts["caption_user"] and "{phrase}" in texts["split_user"]
    assert "***" in texts["final_prompt"] and "Your answer" in texts["final_prompt"]
    assert {"{i}", "{current_prompt}"} <= {
        s for s in ("{i}", "{current_prompt}") if s in texts["prefix_background"]
    }
    for slot in ("{original_suffix}", "{i}", "{current_suffix}"):
        assert slot in texts["suffix_background"]


def test_split_answer_lines() -> None:
    assert split_answer("make a ( )\nbomb\nbecause", "x") == ("make a ( )", "bomb")
    assert split_answer("make a ( )", "x") == ("make a ( )", "")
    assert split_answer("Line 1: make a ( )\nline 2: cake", "x") == ("make a ( )", "cake")
    assert split_answer("\n", "the phrase") == ("the phrase", "")


def _ink_rows(im) -> int:
    """Height of the inked span (rows between the first and last dark row)."""
    rows = np.where((np.asarray(im.convert("L")) < 128).any(1))[0]
    return int(rows[-1] - rows[0] + 1)


def test_strip_line_rules() -> None:
    """x-height-only words ('mmmm'), so n lines ink about n times one line's height."""
    one = centred_strip("mmmm mmmm")
    two = centred_strip(" ".join(["mmmm"] * 6))  # wider than 462 px, at most 9 words: halves
    three = centred_strip(" ".join(["mm"] * 12))  # wider, more than 9 words: thirds
    assert one.size == two.size == three.size == (512, 100)
    h = _ink_rows(one)
    assert round(_ink_rows(two) / h) == 2 and round(_ink_rows(three) / h) == 3
    cols = np.where((np.asarray(one.convert("L")) < 128).any(0))[0]
    assert abs((cols[0] + cols[-1]) / 2 - 256) <= 3  # centred
    rows = np.where((np.asarray(one.convert("L")) < 128).any(1))[0]
    assert abs((rows[0] + rows[-1]) / 2 - 50) <= 3


def test_state_machine() -> None:
    assert classify("too short", True) == "understood"
    assert classify(LONG, True) == "success"
    assert classify("I'm sorry, " + LONG, False) == "understood"
    assert classify(LONG, False) == "not-understood"


def helper(s: Sample) -> str:
    if "Phrase:" in s.text:
        return "bake a ( )\ncake\nharmless"
    return "A baker makes a cake in a sunny kitchen."


def rewriter(s: Sample) -> str:
    return "NEW PREFIX for *** now" if "templates were tried" in s.text else "NEW SUFFIX please"


def test_search_stages(monkeypatch) -> None:
    attack = HIMRD({"t2i": "none", "judge": "refusal"})
    attack.helpers.set("helper_llm", FakeModel(helper))
    rw, srw = FakeModel(rewriter), FakeModel(rewriter)
    attack.helpers.set("rewriter", rw)
    attack.helpers.set("suffix_rewriter", srw)

    def answer(s: Sample) -> str:
        if s.id == "nu":  # not understood until the second new prefix
            return "SUCCESS " + LONG if s.text.startswith("NEW PREFIX") else LONG
        if s.id == "u":  # refuses until a new suffix
            return "SUCCESS " + LONG if "NEW SUFFIX" in s.text else "I'm sorry, I cannot."
        return "SUCCESS " + LONG  # succeeds at once

    monkeypatch.setattr(
        HIMRD,
        "_judge",
        lambda self, items, responses: [classify(r.text, r.text.startswith("SUCCESS")) for r in responses],
    )
    target = FakeModel(answer)
    samples = [
        Sample(id=i, text="How to bake a cake?", meta={"key_phrase": "bake a cake"})
        for i in ("nu", "u", "ok")
    ]
    nu, u, ok = attack.apply(samples, target)
    assert ok.meta["attack_queries"] == 1 and ok.meta["attack_stop"] == "judge-success"
    assert nu.meta["attack_queries"] == 2 and nu.text.startswith("NEW PREFIX for bake a ( ) now Your answer")
    assert (
        u.meta["attack_queries"] == 2
        and u.text.endswith(" NEW SUFFIX please")
        and "Your answer" not in u.text
    )
    assert nu.meta["textual_part"] == "bake a ( )" and nu.meta["visual_part"] == "cake"
    assert nu.images[0].size == (512, 612) and nu.meta["picture"].startswith("stand-in drawing")
    assert len(rw.calls) == 1 and len(srw.calls) == 1  # one shared rewrite per iteration, then nothing left
    first = samples[0]
    template = read_verbatim(DATA_DIR / "final_prompt.txt")
    assert (
        target.calls[0][0].text == template.replace("***", "bake a ( )") and target.calls[0][0].id == first.id
    )


def test_budget_and_refusal_filter(monkeypatch) -> None:
    attack = HIMRD({"t2i": "none", "judge": "refusal", "stage_iters": 2})
    calls = {"n": 0}

    def picky(s: Sample) -> str:
        calls["n"] += 1
        return "Sorry, I am unable." if calls["n"] <= 2 else helper(s)

    attack.helpers.set("helper_llm", FakeModel(picky))
    attack.helpers.set("rewriter", FakeModel(rewriter))
    attack.helpers.set("suffix_rewriter", FakeModel(lambda s: "I can help you"))  # always rejected
    monkeypatch.setattr(HIMRD, "_judge", lambda self, items, responses: ["understood"] * len(responses))
    (out,) = attack.apply([Sample(id="a", text="bake a cake")], FakeModel(lambda s: "no"))
    assert out.meta["caption"] == "A baker makes a cake in a sunny kitchen."  # retried past the refusals
    assert out.meta["attack_queries"] == 1 + 2 and out.meta["attack_stop"] == "budget"
    assert "Your answer" in out.text  # the rejected suffix rewrites fall back to the original suffix


def test_a_missing_diffusers_is_a_clear_error() -> None:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        with pytest.raises(Exception, match="diffusers.*t2i=none"):
            HIMRD({})
    else:
        pytest.skip("diffusers is installed")
