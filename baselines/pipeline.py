"""One condition of a run, as a pipeline whose steps read in order: attack -> defend/generate -> judge -> record.

:class:`ConditionRunner` takes a condition's pending samples (selected by the harness) in chunks of 1, 2, then
up to ``BATCHES_PER_CALL`` batches; while the model answers chunk k, a background worker attacks and hashes
chunk k+1 (for attacks that do not use the model) and writes the records of chunk k-1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from baselines.base import Attack, Judge, Model
from baselines.runconfig import Condition
from baselines.runresult import json_safe
from baselines.types import GenerationConfig, Response, Sample, Verdict

#: Batches of ``config.batch_size`` per ``generate`` call (and per append to samples.jsonl).
BATCHES_PER_CALL = 4


class Chunks(Sequence[list]):
    """The chunks of :func:`chunks`: each slice of ``todo`` is taken when it is asked for, so a lazily built
    sequence of samples (:class:`~baselines.datasets._lazy.LazySamples`) is built one chunk at a time."""

    def __init__(self, todo: Sequence, bounds: list[tuple[int, int]]) -> None:
        self.todo = todo
        self.bounds = bounds

    def __len__(self) -> int:
        return len(self.bounds)

    def __getitem__(self, i: int) -> list:  # type: ignore[override]
        start, end = self.bounds[i]
        return list(self.todo[start:end])

    def __iter__(self) -> Iterator[list]:
        for i in range(len(self.bounds)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        return list(self) == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


def chunks(todo: Sequence, batch_size: int, most: int) -> Chunks:
    """``todo`` in chunks of 1, 2, 4, ... up to ``most`` batches: the first answer comes after one batch, while
    the next, larger chunk is attacked in the background. Each chunk is sliced from ``todo`` when used."""
    bounds, i, k = [], 0, 1
    n = len(todo)
    while i < n:
        bounds.append((i, min(n, i + batch_size * k)))
        i += batch_size * k
        k = min(2 * k, most)
    return Chunks(todo, bounds)


def prefetch_safe(attack: Attack | None) -> bool:
    """Whether ``attack.apply`` may run in the background while the model generates: not for attacks that
    use the model (white-box attacks, or any attack class that sets ``queries_model = True``)."""
    if attack is None:
        return True
    return not (attack.needs_white_box or attack.queries_model)


def attack_batch(
    attack: Attack | None, batch: list[Sample], target: Model
) -> tuple[list[Sample], list[list[str]], float]:
    """Attack a batch and hash its images: (attacked samples, image sha256s, seconds spent)."""
    t0 = time.perf_counter()
    attacked = attack.apply(batch, target) if attack else list(batch)
    if len(attacked) != len(batch) or any(a.id != b.id for a, b in zip(attacked, batch, strict=False)):
        raise RuntimeError(f"attack {attack.name!r} must return one sample per input with the same id")
    return attacked, [s.image_hashes() for s in attacked], time.perf_counter() - t0


def judge_batch(
    judges: dict[str, Judge], samples: list[Sample], responses: list[Response]
) -> dict[str, list]:
    """Every judge's verdicts for a batch. A judge that raises gives unjudged verdicts carrying the error;
    failed generations are unjudged by every judge (never judged as an empty answer)."""
    ok = [i for i, r in enumerate(responses) if r.error is None]
    out: dict[str, list[Verdict]] = {}
    for name, judge in judges.items():
        verdicts: list[Verdict] = [
            Verdict(judge=name, success=None, error=f"generation failed: {r.error}") for r in responses
        ]
        if ok:
            try:
                got = judge.judge([samples[i] for i in ok], [responses[i] for i in ok])
                if len(got) != len(ok):
                    raise RuntimeError(f"returned {len(got)} verdicts for {len(ok)} samples")
            except Exception as e:  # noqa: BLE001 - a judge error is recorded, never a fallback
                got = [Verdict(judge=name, success=None, error=f"{type(e).__name__}: {e}") for _ in ok]
            for i, v in zip(ok, got, strict=True):
                verdicts[i] = v
        out[name] = verdicts
    return out


def make_record(
    condition: str,
    sample: Sample,
    image_hashes: list[str],
    response: Response,
    verdicts: dict[str, Verdict],
    timings: dict[str, float],
) -> dict[str, Any]:
    """One line of samples.jsonl."""
    return {
        "condition": condition,
        "id": sample.id,
        "label": sample.label,
        "category": sample.category,
        "prompt": sample.text,
        "system": sample.system,
        "images": image_hashes,
        "meta": json_safe(dict(sample.meta)),
        "response": response.text,
        "response_meta": json_safe(dict(response.meta)),  # defense decisions (JailGuard, ECSO, guards, ...)
        "error": response.error,
        "n_output_tokens": response.n_output_tokens,
        "verdicts": {
            name: {
                "success": v.success,
                "refused": v.refused,
                "score": v.score,
                "reason": v.reason,
                "error": v.error,
            }
            for name, v in verdicts.items()
        },
        "timings": timings,
    }


@dataclass
class ConditionStats:
    """Where one condition's time went in this invocation (new records only; never written to a result).

    ``latency_s`` sums the back-end's own ``Response.latency_s`` (per answer, batch time shared out); the
    ``*_s`` wall times are the harness's measurements around each step."""

    n: int = 0
    attack_s: float = 0.0
    generate_s: float = 0.0
    judge_s: float = 0.0
    latency_s: float = 0.0

    @property
    def samples_per_s(self) -> float | None:
        """Generation throughput (answers per second of ``generate`` wall time)."""
        return self.n / self.generate_s if self.generate_s > 0 else None

    @property
    def mean_latency_s(self) -> float | None:
        """Mean back-end latency per answer."""
        return self.latency_s / self.n if self.n else None


@dataclass
class ConditionRunner:
    """Runs one condition over its pending samples, chunk by chunk: attack -> defend/generate -> judge ->
    record. ``model`` is what the condition queries (the defense wrapped around the model, or the model);
    ``target`` is the undefended model attacks optimise against. Record writes go to ``worker``; their
    futures collect in ``writes`` (the caller drains the worker and surfaces failed writes)."""

    cond: Condition
    model: Model
    target: Model
    attack: Attack | None
    judges: dict[str, Judge]
    gen: GenerationConfig
    write: Callable[[list[dict[str, Any]]], None]
    worker: ThreadPoolExecutor
    writes: list[Future] = field(default_factory=list)
    stats: ConditionStats = field(default_factory=ConditionStats)

    def run(
        self,
        todo: Sequence[Sample],
        selected: Sequence[Sample],
        *,
        batch_size: int,
        batches_per_call: int = BATCHES_PER_CALL,
        progress: bool = True,
        after_chunk: Callable[[], None] | None = None,
    ) -> ConditionStats:
        """Answer, judge and record every sample of ``todo``. A universal attack first optimises over all
        ``selected`` samples (the same on resume). ``after_chunk`` runs after each chunk is judged."""
        from tqdm import tqdm

        from baselines.requestpool import run_streaming, streams

        if streams(self.model) and prefetch_safe(self.attack):  # an endpoint: one window for the condition
            return run_streaming(
                self, todo, selected, batch_size=batch_size, batches_per_call=batches_per_call,
                progress=progress, after_chunk=after_chunk,
            )  # fmt: skip
        if self.attack:
            self.attack.prepare(selected, self.target)
        bar = tqdm(total=len(todo), desc=self.cond.name, unit="sample", file=sys.stderr, disable=not progress)
        for attacked, hashes, t_attack in self.attacked(chunks(todo, batch_size, batches_per_call)):
            responses, t_generate = self.generate(attacked)
            verdicts, t_judge = self.judge(attacked, responses)
            self.record(attacked, hashes, responses, verdicts, (t_attack, t_generate, t_judge))
            bar.update(len(attacked))
            if after_chunk:
                after_chunk()
        bar.close()
        return self.stats

    def attacked(
        self, batches: Sequence[list[Sample]]
    ) -> Iterator[tuple[list[Sample], list[list[str]], float]]:
        """Each chunk attacked and hashed, in order; the next chunk is attacked in the background meanwhile
        when the attack does not use the model."""
        if not prefetch_safe(self.attack):
            for batch in batches:
                yield attack_batch(self.attack, batch, self.target)
            return
        pending = self.worker.submit(attack_batch, self.attack, batches[0], self.target) if batches else None
        for b in range(len(batches)):
            done = pending.result()
            if b + 1 < len(batches):
                pending = self.worker.submit(attack_batch, self.attack, batches[b + 1], self.target)
            yield done

    def generate(self, attacked: list[Sample]) -> tuple[list[Response], float]:
        """The (defended) model's answers and the seconds they took."""
        t0 = time.perf_counter()
        responses = self.model.generate(attacked, self.gen)
        return responses, time.perf_counter() - t0

    def judge(self, attacked: list[Sample], responses: list[Response]) -> tuple[dict[str, list], float]:
        """Every judge's verdicts and the seconds they took."""
        t0 = time.perf_counter()
        verdicts = judge_batch(self.judges, attacked, responses)
        return verdicts, time.perf_counter() - t0

    def record(
        self,
        attacked: list[Sample],
        hashes: list[list[str]],
        responses: list[Response],
        verdicts: dict[str, list],
        seconds: tuple[float, float, float],
    ) -> None:
        """Queue the chunk's records for appending to samples.jsonl and count its time."""
        t_attack, t_generate, t_judge = seconds
        k = len(attacked)
        timings = {"attack_s": t_attack / k, "generate_s": t_generate / k, "judge_s": t_judge / k}
        recs = [
            make_record(self.cond.name, s, hashes[i], r, {j: vs[i] for j, vs in verdicts.items()}, timings)
            for i, (s, r) in enumerate(zip(attacked, responses, strict=True))
        ]
        # finished writes are dropped as the run goes (one future per chunk would grow with the dataset); a failed
        # one is kept: the caller raises it
        self.writes[:] = [w for w in self.writes if not w.done() or w.exception() is not None]
        self.writes.append(self.worker.submit(self.write, recs))
        st = self.stats
        st.n += k
        st.attack_s += t_attack
        st.generate_s += t_generate
        st.judge_s += t_judge
        st.latency_s += sum(r.latency_s for r in responses)
