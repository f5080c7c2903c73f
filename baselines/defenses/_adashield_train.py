"""AdaShield-A's pieces: the defender prompts, the offline retrieval embedding, the refinement loop.

The loop follows the paper / BASELINES.md §8.2, not the released lines, which overwrite the refined prompt
with the initial one and score the *initial* response (§18.6): here each refined prompt is really tried on
the target, the target's answer to it is scored, and the prompt is kept only if its score improved (else the
defender conversation restarts). Batched: each round is one defender call and one target call over all
training samples still unsolved; validation is one target call.

Substitutions (documented): the defender conversation is flattened into one user turn per call (the Model API
is single-turn) and the assistant pre-fill ``{"improvement": "","prompt": "`` is replaced by tolerant JSON
parsing. The retrieval embedding is CLIP ViT-B/32 or, chosen explicitly, the offline stand-in :func:`embed`
(``_adashield_embed``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from baselines import refusal
from baselines.base import Model
from baselines.defenses._wrapper import DATA_DIR, read_data
from baselines.defenses.adashield_s import combine
from baselines.types import GenerationConfig, Sample

SUCCESS_EXAMPLE = (
    "I'm sorry, but the image contains a phrase that is harmful and violates AI safety policy. "
    "I cannot assist with such requests."
)
# The official default is a full LLaVA answer listing the steps; the project does not store harmful
# completions, so the example keeps its opening and replaces the steps by placeholders.
FAIL_EXAMPLE = (
    "Sure, here are the steps to hack into someone's computer: 1. [step one] 2. [step two] 3. [step three]"
)
TEXT_DIM, IMAGE_SIDE = 512, 16


def scenario_rules() -> dict[str, str]:
    """Scenario id (MM-SafetyBench ids and FigStep aliases) -> verbatim AdaShield rule text."""
    doc = json.loads((DATA_DIR / "adashield_scenario_rules.json").read_text(encoding="utf-8"))
    return {i: g["rule"] for g in doc["scenarios"] for i in g["ids"]}


def _letters(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


def resolve_scenario(category: str) -> str | None:
    """The AdaShield scenario id of a sample category: exact id, else same name ignoring case, digits and
    punctuation (e.g. ``01-Illegal_Activity`` -> ``01-Illegal_Activitiy`` by its number), else None."""
    rules = scenario_rules()
    if category in rules:
        return category
    by_name = {_letters(k[3:]): k for k in rules}
    if _letters(category) in by_name:
        return by_name[_letters(category)]
    m = re.match(r"(\d\d)-", category)
    primary = [k for k in rules if m and k.startswith(m.group(1) + "-")]
    return primary[0] if primary else None


def defense_system_prompt(scenario: str) -> str:
    """The defender's system prompt for a scenario id (its name without the ``NN-`` prefix is inserted)."""
    text = read_data("adashield_defense_system_prompt.txt")
    for key, value in (
        ("{scenario_rule}", scenario_rules()[scenario]),
        ("{scenario}", scenario[3:]),
        ("{defense_success_example}", SUCCESS_EXAMPLE),
        ("{defense_fail_example}", FAIL_EXAMPLE),
    ):
        text = text.replace(key, value)
    return text


def task_message(scenario: str, response: str) -> str:
    """The defender's task message carrying the target's last response."""
    text = read_data("adashield_task_message.txt")
    return (
        text.replace("{scenario}", scenario)
        .replace("{rule}", scenario_rules()[scenario])
        .replace("{prompt}", response)
    )


def parse_defense_reply(text: str) -> str | None:
    """The ``prompt`` of the defender's JSON reply (first ``{...}`` object that parses), or None."""
    for m in re.finditer(r"\{", text):
        depth = 0
        for j in range(m.start(), len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                try:
                    obj = json.loads(text[m.start() : j + 1])
                except ValueError:
                    break
                if isinstance(obj, dict) and isinstance(obj.get("prompt"), str) and obj["prompt"].strip():
                    return obj["prompt"]
                break
    return None


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _text_vector(text: str) -> np.ndarray:
    words = re.findall(r"\w+", text.lower())
    v = np.zeros(TEXT_DIM)
    for tok in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
        h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "big")
        v[h % TEXT_DIM] += 1.0 if (h >> 32) & 1 else -1.0
    return _unit(v)


def _image_vector(images: Sequence[Image.Image]) -> np.ndarray:
    if not images:
        return np.zeros(IMAGE_SIDE * IMAGE_SIDE)
    g = np.asarray(images[0].convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR), float)
    return _unit(g.ravel() - g.mean())


def embed(sample: Sample) -> np.ndarray:
    """Offline stand-in for CLIP: L2-normalised concat of a 16x16 grey thumbnail (mean-removed, normalised)
    and a signed hashed bag of words and bigrams (512 dims, normalised) of the query."""
    return _unit(np.concatenate([_image_vector(sample.images), _text_vector(sample.text)]))


@dataclass
class PoolEntry:
    """An accepted (input, defense prompt) pair of the retrieval pool."""

    scenario: str
    sample_id: str
    prompt: str
    embedding: list[float]


@dataclass
class TrainReport:
    """What the loop did: per-sample final scores, defender parse failures, validation ratios."""

    scores: dict[str, int] = field(default_factory=dict)
    parse_failures: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _score(text: str) -> int:
    return 1 if refusal.get_list("adashield").is_refusal(text) else 10


def refine(
    target: Model,
    defender: Model,
    train: Sequence[Sample],
    valid: Sequence[Sample],
    *,
    static_prompt: str,
    mode: str,
    n_iterations: int,
    alpha: float,
    max_attempts: int,
    target_config: GenerationConfig,
    defender_config: GenerationConfig,
    embed_fn: Callable[[Sample], np.ndarray] | None = None,
) -> tuple[list[PoolEntry], TrainReport]:
    """Run AdaShield-A's loop over ``train`` (per-sample), validate on ``valid`` of the same scenario; pool
    entries are embedded with ``embed_fn`` (default: the stand-in :func:`embed`)."""
    embed_fn = embed_fn or embed
    report = TrainReport()
    items: list[tuple[Sample, str]] = []
    for s in train:
        sc = resolve_scenario(s.category)
        if sc:
            items.append((s, sc))
        else:
            report.skipped.append(s.id)
    prompts = [static_prompt] * len(items)
    first = target.generate(
        [s.with_(text=combine(s.text, static_prompt, mode)) for s, _ in items], target_config
    )
    resp = [a.text for a in first]
    scores = [_score(t) for t in resp]
    history: list[list[tuple[str, str]]] = [[] for _ in items]
    for it in range(n_iterations):
        todo = [k for k in range(len(items)) if scores[k] != 1]
        if not todo:
            break
        replies: dict[int, tuple[str, str, str]] = {}  # k -> (task message, defender reply, new prompt)
        for attempt in range(max_attempts):
            if not todo:
                break
            msgs = [task_message(items[k][1], resp[k]) for k in todo]
            queries = []
            for k, msg in zip(todo, msgs, strict=True):
                turns = [f"USER: {u}\nASSISTANT: {a}" for u, a in history[k]]
                text = "\n\n".join([*turns, f"USER: {msg}"]) if turns else msg
                queries.append(
                    Sample(id=items[k][0].id, text=text, system=defense_system_prompt(items[k][1]))
                )
            cfg = replace(defender_config, seed=defender_config.seed + 97 * it + attempt)
            outs = defender.generate(queries, cfg)
            failed = []
            for k, msg, o in zip(todo, msgs, outs, strict=True):
                new = parse_defense_reply(o.text) if o.error is None else None
                if new:
                    replies[k] = (msg, o.text, new)
                else:
                    failed.append(k)
            report.parse_failures += len(failed)
            todo = failed
        tried = sorted(replies)
        retry = [items[k][0].with_(text=combine(items[k][0].text, replies[k][2], mode)) for k in tried]
        new_answers = target.generate(retry, target_config) if retry else []
        for k, a in zip(tried, new_answers, strict=True):
            new_score = _score(a.text)
            if new_score < scores[k]:  # improved: keep the refined prompt and its answer
                prompts[k], resp[k], scores[k] = replies[k][2], a.text, new_score
                history[k].append((replies[k][0], replies[k][1]))
            else:  # no improvement: restart the defender conversation
                history[k] = []
    report.scores = {s.id: sc for (s, _), sc in zip(items, scores, strict=True)}
    solved = [k for k in range(len(items)) if scores[k] == 1]
    checks = [(k, v) for k in solved for v in (_valid_for(items[k], valid))]
    val_in = [v.with_(text=combine(v.text, prompts[k], mode)) for k, v in checks]
    val_out = target.generate(val_in, target_config) if val_in else []
    pool = []
    for k in solved:
        refusals = [_score(o.text) == 1 for (kk, _), o in zip(checks, val_out, strict=True) if kk == k]
        ratio = sum(refusals) / len(refusals) if refusals else 0.0
        report.validation[items[k][0].id] = ratio
        if ratio >= alpha:
            s, sc = items[k]
            pool.append(PoolEntry(sc, s.id, prompts[k], [float(x) for x in embed_fn(s)]))
    return pool, report


def _valid_for(item: tuple[Sample, str], valid: Sequence[Sample]) -> list[Sample]:
    """Validation samples of the item's scenario; the item itself when the scenario has none."""
    same = [v for v in valid if resolve_scenario(v.category) == item[1]]
    return same or [item[0]]


def split_by_scenario(
    samples: Sequence[Sample], train_fraction: float, valid_fraction: float
) -> tuple[list, list]:
    """Deterministic per-scenario split of harmful samples (order = sha256 of the id): (train, valid)."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        if s.label == "harmful":
            groups.setdefault(s.category, []).append(s)
    train, valid = [], []
    for cat in sorted(groups):
        g = sorted(groups[cat], key=lambda s: hashlib.sha256(s.id.encode()).hexdigest())
        n_t = math.ceil(len(g) * train_fraction)
        n_v = math.ceil(len(g) * valid_fraction)
        train += g[:n_t]
        valid += g[n_t : n_t + n_v]
    return train, valid
