"""ETA's aligning step: the shallow safety prefix and the deep, sentence-level best-of-N search
(``ETA.eta_generation`` and ``Base.accept_check`` of DripNowhy/ETA@3580833, spec 22-defenses.md §3.2 steps 5-7).

The search is written against a small *stepper* (``prefill()``, ``fork(cursor)``, ``feed(cursor, token)``) so
that the bookkeeping can be tested with a fake language model; :class:`HFStepper` drives a transformers
LLaVA-family back-end with its KV cache (every candidate restarts from a copy of the accepted prefix's cache,
and the winner's cache is kept).

One round (sentence index k = 1, 2, ...), repeated while fewer than ``max_new_tokens`` tokens are accepted:
N candidates, each sampled token by token from the top-``topk`` logits with softmax temperature ``beta``,
ending at the first ``stop_id`` ('.') token, at EOS, or after ``sentence_cap`` tokens (69 in the first round:
the official count includes its dummy start token); reward of each = reward(decode(prefix + accepted +
candidate)); score = reward in round 1, or when any candidate ended with EOS, or without an image; otherwise
score = (alpha / k) * clip(candidate sentence alone, image) + reward. The first argmax is accepted; the search
ends after accepting a candidate that ends with EOS. Output = decode(prefix + accepted), special tokens skipped,
stripped: the prefix is part of the answer.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Stepper(Protocol):
    """Token-level access to the protected model after the prompt (+ prefix)."""

    def prefill(self) -> Any:
        """A cursor whose ``logits`` are the next-token logits after the prompt."""

    def fork(self, cursor: Any) -> Any:
        """An independent copy of ``cursor`` (its cache copied)."""

    def feed(self, cursor: Any, token: int) -> Any:
        """``cursor`` advanced by ``token`` (may modify it in place); its ``logits`` updated."""


def sample_top_k(logits: Any, top_k: int, temperature: float, generator: Any) -> int:
    """The official ``from_logit_to_token``: multinomial over softmax(top-k values / temperature)."""
    import torch

    if top_k == 1:
        return int(torch.argmax(logits))
    val, idx = torch.topk(logits.float(), k=min(top_k, logits.shape[-1]))
    probs = torch.softmax(val / temperature, dim=-1)
    j = torch.multinomial(probs, num_samples=1, generator=generator)
    return int(idx[j])


@dataclass
class Candidate:
    """One sampled sentence: its tokens, how it ended, the cursor before its last token, and its scores."""

    tokens: list[int]
    ended: str  # "stop" ('.'), "eos", "cap"
    cursor: Any
    reward: float = 0.0
    clip: float | None = None
    score: float = 0.0


@dataclass
class SearchTrace:
    """What the search did: per round, the candidates' texts, rewards, clip terms, scores and the winner."""

    rounds: list[dict[str, Any]] = field(default_factory=list)


def score_candidates(
    rewards: Sequence[float], clips: Sequence[float] | None, k: int, alpha: float, any_eos: bool
) -> list[float]:
    """``accept_check``: reward alone in round 1, after an EOS candidate, or without clip scores; else
    (alpha / k) * clip + reward."""
    if k > 1 and not any_eos and clips is not None:
        return [(alpha / k) * c + r for c, r in zip(clips, rewards, strict=True)]
    return list(rewards)


def sample_candidate(
    stepper: Stepper,
    cursor: Any,
    *,
    cap: int,
    stop_id: int | None,
    eos_ids: set[int],
    topk: int,
    beta: float,
    generator: Any,
) -> Candidate:
    """One candidate from (a copy of) ``cursor``: sample until '.', EOS or ``cap`` tokens."""
    c = stepper.fork(cursor)
    tokens: list[int] = []
    while True:
        if tokens:
            c = stepper.feed(c, tokens[-1])
        t = sample_top_k(c.logits, topk, beta, generator)
        tokens.append(t)
        if t in eos_ids:
            return Candidate(tokens, "eos", c)
        if stop_id is not None and t == stop_id:
            return Candidate(tokens, "stop", c)
        if len(tokens) >= cap:
            return Candidate(tokens, "cap", c)


def best_of_n_search(
    stepper: Stepper,
    *,
    prefix_ids: Sequence[int],
    decode: Callable[[Sequence[int]], str],
    reward: Callable[[list[str]], list[float]],
    clip: Callable[[list[str]], list[float]] | None,
    eos_ids: set[int],
    stop_id: int | None,
    topk: int = 5,
    n: int = 5,
    beta: float = 1.5,
    alpha: float = 1.0,
    max_new_tokens: int = 1024,
    sentence_cap: int = 70,
    generator: Any = None,
) -> tuple[str, list[int], SearchTrace]:
    """(answer text, accepted token ids, trace) of the deep-alignment search (see the module doc)."""
    trace = SearchTrace()
    accepted: list[int] = []
    cursor = stepper.prefill()
    k = 1
    while len(accepted) < max_new_tokens:
        cap = sentence_cap - 1 if k == 1 else sentence_cap
        cands = [
            sample_candidate(
                stepper, cursor, cap=cap, stop_id=stop_id, eos_ids=eos_ids, topk=topk, beta=beta,
                generator=generator,
            )
            for _ in range(n)
        ]  # fmt: skip
        texts = [decode(list(prefix_ids) + accepted + c.tokens) for c in cands]
        rewards = reward(texts)
        any_eos = any(c.ended == "eos" for c in cands)
        clips = None
        if clip is not None and k > 1 and not any_eos:
            clips = clip([decode(c.tokens) for c in cands])
        scores = score_candidates(rewards, clips, k, alpha, any_eos)
        best = scores.index(max(scores))
        trace.rounds.append(
            {"k": k, "texts": texts, "rewards": rewards, "clips": clips, "scores": scores, "best": best}
        )
        win = cands[best]
        accepted += win.tokens
        if win.ended == "eos":
            break
        cursor = stepper.feed(win.cursor, win.tokens[-1])
        k += 1
    return decode(list(prefix_ids) + accepted), accepted, trace


@functools.cache
def _cache_arg(model_cls: type) -> str:
    """The forward() keyword of the KV cache: ``cache`` (transformers >= 5.x) or ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model_cls.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


@dataclass
class HFCursor:
    """KV cache after the tokens fed so far, and the next-token logits."""

    cache: Any
    logits: Any
    length: int


class HFStepper:
    """Token-level decoding of one sample on a transformers back-end (``hf``/``organism``), with KV cache.

    The prompt is the back-end's own chat-formatted prompt (``prompt_text`` + processor, image included),
    followed by ``prefix_ids`` (the shallow-alignment prefix, no BOS).
    """

    def __init__(self, backend: Any, sample: Any, prefix_ids: Sequence[int]) -> None:
        self.backend = backend
        self.sample = sample
        self.prefix_ids = list(prefix_ids)

    def prefill(self) -> HFCursor:
        """Forward the prompt + prefix once; the cache and the logits of the first free position."""
        import torch

        from baselines.defenses._whitebox_access import prefill_inputs

        inputs = prefill_inputs(self.backend, [self.sample])
        dev = inputs["input_ids"].device
        extra = torch.tensor([self.prefix_ids], dtype=inputs["input_ids"].dtype, device=dev)
        inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
        if "attention_mask" in inputs:
            ones = torch.ones_like(extra, dtype=inputs["attention_mask"].dtype)
            inputs["attention_mask"] = torch.cat([inputs["attention_mask"], ones], dim=1)
        with torch.inference_mode():
            out = self.backend.model(**inputs, use_cache=True, logits_to_keep=1)
        return HFCursor(_cache_of(out), out.logits[0, -1].float(), int(inputs["input_ids"].shape[1]))

    def fork(self, cursor: HFCursor) -> HFCursor:
        """A deep copy of the cache (the candidate restarts from the accepted prefix)."""
        return HFCursor(copy.deepcopy(cursor.cache), cursor.logits, cursor.length)

    def feed(self, cursor: HFCursor, token: int) -> HFCursor:
        """One cached forward step with ``token``."""
        import torch

        dev = self.backend.device
        ids = torch.tensor([[token]], device=dev)
        mask = torch.ones((1, cursor.length + 1), dtype=torch.long, device=dev)
        pos = torch.tensor([cursor.length], device=dev)
        with torch.inference_mode():
            out = self.backend.model(
                input_ids=ids, attention_mask=mask, cache_position=pos, use_cache=True,
                **{_cache_arg(type(self.backend.model)): cursor.cache},
            )  # fmt: skip
        return HFCursor(_cache_of(out), out.logits[0, -1].float(), cursor.length + 1)


def prefix_token_ids(tok: Any, prefix: str) -> tuple[list[int], str]:
    """(ids, form) of the shallow-alignment prefix, without BOS, as it follows ``ASSISTANT:``.

    Official: ``tokenizer(prefix).input_ids[1:]`` on LLaMA's SentencePiece, whose first piece is word-initial
    (``▁As``). A byte-level BPE tokenizer encodes ``As`` glued to the previous token; there the prefix is
    encoded with a leading space (``ĠAs``), the form the model's own answers start with (form ``word_initial``).
    """
    plain = tok(prefix, add_special_tokens=False).input_ids
    first = tok.convert_ids_to_tokens(plain[:1])
    if first and first[0].startswith("\u2581"):
        return list(plain), "as_is"
    return list(tok(" " + prefix, add_special_tokens=False).input_ids), "word_initial"


def stop_token_id(tok: Any) -> int | None:
    """The '.' token id (official: LLaMA's 29889; InternLM variant ``convert_tokens_to_ids('.')``)."""
    i = tok.convert_tokens_to_ids(".")
    return None if i is None or i == tok.unk_token_id else int(i)
