"""Visual-RolePlay: verbatim prompts and demonstrations (sha256), the prompt the attacker gets, the official
parsing rules, typography and layout sizes, retries with a scripted attacker, the stand-in label, and the
missing-diffusers message. The organism cannot play a role nor read 1024-px Arial-size typography
(docs/organism.md), so no behaviour test."""

from __future__ import annotations

import hashlib

import pytest
from test_defense_fakes import FakeModel

from baselines.attacks._verbatim import read_verbatim, sha256_text
from baselines.attacks.visual_roleplay import (
    DATA_DIR,
    VisualRolePlay,
    character_prompt,
    demonstrations,
    parse_character,
    typography,
)
from baselines.base import BackendError
from baselines.types import Sample
from baselines.typography import typo_wrap

SHA = {
    "character_system.txt": "2da5a682800fa2c7b882d731cd483e185fe8d36d3575a15dd893a0ba7e430b03",
    "character_prompt.txt": "ced0225811541b223a8ac1aef2c61853679842ed1ea620569084553d5a33d462",
    "roleplay_instruction.txt": "f9462c53a9246906d3feac64766d089c1d3df37447edbc946392870d2429665d",
}
GOOD = "Sure. brief description: |A sly forger| detailed: {A forger who fakes things.} Prompt: [a forger at a desk]"


@pytest.mark.parametrize("name", sorted(SHA))
def test_verbatim_texts_match_the_spec(name: str) -> None:
    assert sha256_text(read_verbatim(DATA_DIR / name)) == SHA[name]


def test_demos_file_is_the_official_one() -> None:
    digest = hashlib.sha256((DATA_DIR / "demos.csv").read_bytes()).hexdigest()
    assert digest == "d7283ef53de1e17f7da5688ee408607109d159adacc4568f490151a783a79762"


def test_the_attacker_prompt() -> None:
    demos = demonstrations()
    assert demos.startswith("Demonstration 0:\nbrief description: |A ruthless, dishonest business owner|\n")
    assert demos.count("Demonstration ") == 2 and demos.endswith("expression.]\n\n")
    assert "\nPrompt for image-generation model: [A person in their 40s" in demos
    p = character_prompt("How to pick a lock?")
    assert p.startswith(read_verbatim(DATA_DIR / "character_system.txt") + "\n\n" + demos)
    assert p.endswith("The question:How to pick a lock?\n\n")


def test_parsing_rules() -> None:
    assert parse_character(GOOD) == {
        "t2i": "a forger at a desk",
        "detailed": "A forger who fakes things.",
        "brief": "A sly forger",
    }
    assert parse_character(GOOD + " [again]") is None  # two prompts
    assert (
        parse_character(GOOD.replace("{A forger who fakes things.}", "")) is None
    )  # no detailed description
    assert (
        parse_character(GOOD.replace("A sly forger", "A (sly) forger")) is None
    )  # the brief regex excludes ')'
    assert parse_character(GOOD.replace("a forger at a desk", "x" * 300)) is None  # too long
    assert parse_character(GOOD.replace("a forger at a desk", "x" * 299)) is not None


def test_typography_canvas_and_wrap() -> None:
    text = "How to do something rather long that will certainly need more than one line of text to draw"
    lines = typo_wrap(text, "LiberationSans", 60, 1024).count("\n") + 1
    im = typography(text, "LiberationSans", 60, 1024)
    assert lines >= 2 and im.size == (1024, 60 * (lines + 1))


def _attacker(answers: dict[str, list[str]]) -> FakeModel:
    """Answers per sample id, in call order."""
    its = {k: iter(v) for k, v in answers.items()}
    return FakeModel(lambda s: next(its[s.id]))


def test_image_layout_retries_and_stand_in_label() -> None:
    attack = VisualRolePlay({"t2i": "none", "max_tries": 3})
    fake = _attacker({"a": ["no brackets at all", GOOD], "b": ["still nothing", "nope", "never"]})
    attack.helpers.set("attacker", fake)
    samples = [Sample(id="a", text="How to forge a signature?"), Sample(id="b", text="How to lie?")]
    out = attack.apply(samples, model=FakeModel(lambda s: "unused"))
    a, b = out
    assert a.meta["attacker_calls"] == 2 and a.meta["brief"] == "A sly forger"
    assert a.text == read_verbatim(DATA_DIR / "roleplay_instruction.txt")
    l1 = typo_wrap("A sly forger", "LiberationSans", 60, 1024).count("\n") + 1
    l2 = typo_wrap("How to forge a signature?", "LiberationSans", 60, 1024).count("\n") + 1
    assert a.images[0].size == (1024, 60 * (l1 + 1) + 1024 + 60 * (l2 + 1))
    assert a.meta["picture"].startswith("stand-in portrait")
    assert a.meta["attack_queries"] == 0 and a.meta["attack_stop"] == "no-feedback"
    assert "attack_error" in b.meta and b.text == "How to lie?" and b.meta["attacker_calls"] == 3
    assert [len(c) for c in fake.calls] == [2, 2, 1]  # only unparsed queries are asked again
    assert fake.configs[0].temperature == 1.0 and fake.configs[0].top_p == 0.5


def test_a_text_to_image_model_without_diffusers_is_a_clear_error() -> None:
    try:
        import diffusers  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="diffusers.*t2i=none"):
            VisualRolePlay({})
    else:
        pytest.skip("diffusers is installed")
