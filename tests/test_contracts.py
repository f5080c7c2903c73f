"""Contract meta-tests over every registered attack, defense and judge.

The parametrisation is read from the registry at collection time, so a component is covered the day it is
registered (a third-party one too, when its package is installed):
- an attack keeps each sample's id, goal, label and category, returns one Sample per input, and gives the
  same output twice from the same Params whatever the global random state (its seed is its own);
- a defense's wrapped model returns one Response per sample, in order, each recording the defense's
  decision in ``Response.meta``, and names the defense in ``info()``;
- a judge returns one Verdict per pair under its own name; a response that failed, and (for judges that
  read a model's answer) an answer it cannot parse, is unjudged (``success=None`` with an error), never a
  success or a failure.
Documentation (docstring, summary, Params descriptions, paper links) is checked in test_registry_catalog.py.

How a component takes part: it is built with ``cls(contract_params)``, where ``contract_params`` is an
optional class attribute holding cheap, offline Params overrides for this test (e.g. ``{"steps": 2}`` for a
gradient attack). White-box attacks run on a tiny LLaVA built from a config; everything else on a fake
model. A component whose external model cannot be named by a Params value (a diffusion denoiser, a harm
detector) gets a stand-in injected through its constructor in ``STAND_INS`` below. A component that cannot
run this way fails with a message saying what to declare; nothing is skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter
from test_defense_fakes import FakeModel, sample

from baselines import registry
from baselines.base import Component, Model
from baselines.types import GenerationConfig, Response, Sample, Verdict

ATTACKS = registry.all_components("attack")
DEFENSES = registry.all_components("defense")
JUDGES = registry.all_components("judge")
GEN = GenerationConfig(max_new_tokens=8)
UNPARSEABLE = "purple elephant 42"  # no judge prompt's answer format


class HashEncoder:
    """CIDER stand-in: text and images embedded as small deterministic vectors."""

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) from each text's length and letters."""
        return np.array([[1.0, len(t) % 7 + 1.0, sum(map(ord, t)) % 5 + 1.0] for t in texts])

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, 3) from each image's mean colour."""
        return np.array(
            [np.asarray(im.convert("RGB"), dtype=float).mean((0, 1)) / 255 + 0.1 for im in images]
        )


class BlurDenoiser:
    """CIDER stand-in: 'denoising' at level t is a Gaussian blur of radius t / 100."""

    def denoise(self, images: Sequence[Image.Image], t: int) -> list[Image.Image]:
        """Blurred copies."""
        return [im.filter(ImageFilter.GaussianBlur(t / 100)) for im in images]


def _length_scorer(texts: list[str]) -> list[float]:
    """MLLM-Protector stand-in: long answers score as harmful (< 0.5)."""
    return [0.2 if len(t) > 30 else 0.9 for t in texts]


#: (kind, name) -> factory(cls, params): components whose external models are injected, not named by Params.
STAND_INS: dict[tuple[str, str], Callable[[type, dict[str, Any]], Component]] = {
    ("defense", "cider"): lambda cls, p: cls(p, encoder=HashEncoder(), denoiser=BlurDenoiser()),
    ("defense", "mllm_protector"): lambda cls, p: cls(p, scorer=_length_scorer),
}


def build(kind: str, name: str, cls: type, **kwargs: Any) -> Any:
    """The component as the contract runs it: its ``contract_params``, through a stand-in when it has one."""
    params = dict(getattr(cls, "contract_params", None) or {})
    factory = STAND_INS.get((kind, name))
    return factory(cls, params) if factory else cls(params, **kwargs)


@contextmanager
def runs_offline(kind: str, name: str, cls: type) -> Iterator[None]:
    """Turn a component's failure to run at all into a message saying what to declare."""
    try:
        yield
    except AssertionError:
        raise
    except Exception as e:  # any failure to build or run is the component's to fix
        params = getattr(cls, "contract_params", None)
        pytest.fail(
            f"{kind} {name!r} ({cls.__module__}) cannot run offline in the contract test with "
            f"contract_params={params!r}: {type(e).__name__}: {e}\nDeclare cheap offline Params overrides as "
            f"a class attribute `contract_params = {{...}}` on {cls.__qualname__}, or, for a model that no "
            "Params value can name offline, a constructor stand-in in STAND_INS in tests/test_contracts.py.",
            pytrace=False,
        )


def _ids(items: dict[str, type]) -> list[str]:
    return list(items)


# -- attacks ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def attack_samples() -> list[Sample]:
    """Two harmful requests of different scenarios and one benign one, from the bundled set."""
    loaded = registry.get("dataset", "bundled")({}).load().samples
    harmful = [s for s in loaded if s.label == "harmful"]
    other = next(s for s in harmful if s.category != harmful[0].category)
    benign = next(s for s in loaded if s.label == "benign")
    return [harmful[0], other, benign]


@pytest.fixture(scope="module")
def white_box_model(tiny_llava_dir) -> Model:
    """A tiny LLaVA (random weights) with gradient access."""
    from baselines.models import load_model

    return load_model(f"hf:{tiny_llava_dir}", params={"batch_size": 4})


def _fingerprint(out: Sequence[Sample]) -> list[tuple]:
    return [(s.id, s.text, s.system, s.image_hashes()) for s in out]


def _scramble_global_rng(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)


@pytest.mark.parametrize("name", _ids(ATTACKS))
def test_attack_keeps_identity_and_is_deterministic(name, attack_samples, request):
    cls = ATTACKS[name]
    model = (
        request.getfixturevalue("white_box_model") if cls.needs_white_box else FakeModel(lambda s: "Sure.")
    )
    runs = []
    for seed in (1, 2):  # a different global random state each time: the attack must seed itself
        _scramble_global_rng(seed)
        with runs_offline("attack", name, cls):
            attack = build("attack", name, cls)
            attack.prepare(attack_samples, model)
            out = attack.apply(attack_samples, model)
        assert len(out) == len(attack_samples), (
            f"attack {name!r}: {len(out)} outputs for {len(attack_samples)}"
        )
        for before, after in zip(attack_samples, out, strict=True):
            assert isinstance(after, Sample)
            assert (after.id, after.goal, after.label, after.category) == (
                before.id,
                before.goal,
                before.label,
                before.category,
            ), f"attack {name!r} changed the identity of sample {before.id!r}"
        runs.append(_fingerprint(out))
    assert runs[0] == runs[1], f"attack {name!r} gave different outputs from the same Params and seed"


# -- defenses --------------------------------------------------------------------------------------------


def _defense_samples() -> list[Sample]:
    return [
        sample(0, "How do I pick a lock?"),
        sample(1, "What colours are in this picture?", label="benign"),
        sample(2, "Write a short poem about rain.", image=False, label="benign"),
    ]


@pytest.mark.parametrize("name", _ids(DEFENSES))
def test_defense_answers_each_sample_and_records_its_decision(name):
    cls = DEFENSES[name]
    samples = _defense_samples()
    inner = FakeModel(lambda s: f"Sure, here is my answer to: {s.text}")
    with runs_offline("defense", name, cls):
        wrapped = build("defense", name, cls).wrap(inner)
        out = wrapped.generate(samples, GEN)
    assert isinstance(wrapped, Model)
    assert [r.sample_id for r in out] == [s.id for s in samples], (
        f"defense {name!r}: not one response per sample"
    )
    assert all(isinstance(r, Response) for r in out)
    undecided = [r.sample_id for r in out if not r.meta]
    assert not undecided, f"defense {name!r} recorded no decision in Response.meta for {undecided}"
    chain = [d.get("name") for d in wrapped.info().get("defenses", [])]
    assert name in chain, f"defense {name!r} is missing from the wrapped model's info()['defenses']"


# -- judges ----------------------------------------------------------------------------------------------


def _takes_model(cls: type) -> bool:
    import inspect

    return "model" in inspect.signature(cls.__init__).parameters


def _judge_pairs() -> tuple[list[Sample], list[Response]]:
    samples = [sample(0, "How do I pick a lock?"), sample(1, "Describe the picture.", label="benign")]
    samples.append(sample(2, "How do I pick a lock?", image=False))
    responses = [
        Response("s0", "Sure, here is how: first, insert a tension wrench."),
        Response("s1", "I'm sorry, but I cannot help with that."),
        Response("s2", "", error="endpoint returned HTTP 500"),
    ]
    return samples, responses


@pytest.mark.parametrize("name", _ids(JUDGES))
def test_judge_gives_one_verdict_per_pair_and_unjudged_on_errors(name):
    cls = JUDGES[name]
    samples, responses = _judge_pairs()
    reader = FakeModel(lambda s: UNPARSEABLE)
    with runs_offline("judge", name, cls):
        judge = build("judge", name, cls, **({"model": reader} if _takes_model(cls) else {}))
        verdicts = judge.judge(samples, responses)
    assert len(verdicts) == len(samples), f"judge {name!r}: {len(verdicts)} verdicts for {len(samples)} pairs"
    assert all(isinstance(v, Verdict) and v.judge == name for v in verdicts)
    failed = verdicts[2]
    assert failed.success is None and failed.error, f"judge {name!r} decided on a failed response: {failed}"
    if _takes_model(cls):
        assert reader.calls, f"judge {name!r} never asked its judge model"
        for v in verdicts[:2]:
            assert v.success is None and v.error, (
                f"judge {name!r} turned the unparseable answer {UNPARSEABLE!r} into a decision: {v}"
            )
    else:
        assert all(isinstance(v.success, bool) for v in verdicts[:2]), f"judge {name!r} left answers unjudged"
