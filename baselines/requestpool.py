"""A request pipeline that keeps an endpoint full: one bounded pool for a whole condition, not one per chunk.

For back-ends that answer one request at a time over the network (``per_request = True``: the ``openai``
back-end), :func:`run_streaming` replaces the chunked attack -> generate -> judge -> record loop of
:class:`~baselines.pipeline.ConditionRunner`:

- a feeder thread attacks and hashes the samples batch by batch, a few batches at once (attacks that do not
  query the model; the others keep the chunked loop), and hands them over one by one, in order, at most
  ``window + lookahead`` ahead of the answers;
- a :class:`RequestPool` of ``window`` (= the back-end's ``concurrency``) daemon threads keeps exactly that many
  requests in flight while samples remain: a sliding window over the whole condition, independent of
  ``--batch-size``;
- answers are judged and their records appended (flushed + fsynced, as before) as they arrive, in groups of at
  most ``batch_size`` or every ``flush_s`` seconds, so a killed run resumes from what was answered.

Records are the chunked loop's records (same fields); their order in samples.jsonl is the order of arrival.
A record's ``generate_s`` is its own request's latency; ``attack_s`` its share of its batch's attack time
(rendering; the hashing runs on other threads).
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from baselines.imagecache import CACHE
from baselines.pipeline import chunks, judge_batch, make_record
from baselines.types import Response, Sample

#: Records are appended at least this often (seconds) while answers arrive.
FLUSH_S = 1.0
#: Threads attacking (thread-safe attacks) and hashing (every attack) batches ahead of the requests.
WORKERS = 4


def streams(model: Any) -> bool:
    """Whether ``model`` takes requests one at a time through :func:`run_streaming` (``per_request``)."""
    return bool(getattr(model, "per_request", False)) and callable(getattr(model, "answer", None))


class RequestPool:
    """``workers`` daemon threads that run ``fn(item)`` for submitted items and put ``(key, result)`` (or
    ``(key, exception)``) on ``done``. The caller bounds what is in flight; threads exit when ``stop`` is set."""

    def __init__(
        self, fn: Callable[[Any], Any], workers: int, done: queue.Queue, stop: threading.Event
    ) -> None:
        self.fn, self.done, self.stop = fn, done, stop
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [
            threading.Thread(target=self._work, daemon=True, name=f"request-{i}")
            for i in range(max(1, workers))
        ]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        while not self.stop.is_set():
            try:
                job = self.jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            if job is None:
                return
            key, item = job
            try:
                result: Any = self.fn(item)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                result = e
            self.done.put(("done", key, result))

    def submit(self, key: Any, item: Any) -> None:
        """Queue one request (the caller keeps at most ``workers`` in flight)."""
        self.jobs.put((key, item))

    def close(self) -> None:
        """Stop the threads (requests in flight are abandoned: daemon threads never hold the process)."""
        self.stop.set()
        for _ in self.threads:
            self.jobs.put(None)


def run_streaming(
    runner: Any,
    todo: Sequence[Sample],
    selected: Sequence[Sample],
    *,
    batch_size: int,
    batches_per_call: int,
    progress: bool = True,
    after_chunk: Callable[[], None] | None = None,
    flush_s: float = FLUSH_S,
) -> Any:
    """:meth:`ConditionRunner.run` for a per-request back-end: every sample of ``todo`` answered through one
    window of ``runner.model.params.concurrency`` requests, judged and recorded as answers arrive.
    ``after_chunk`` runs after each group of records is queued for writing."""
    from tqdm import tqdm

    model = runner.model
    window = int(getattr(model.params, "concurrency", 8))
    if runner.attack:
        runner.attack.prepare(selected, runner.target)
    bar = tqdm(total=len(todo), desc=runner.cond.name, unit="sample", file=sys.stderr, disable=not progress)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    ahead = threading.Semaphore(window + batch_size * batches_per_call)
    feeder = threading.Thread(
        target=_feed,
        args=(runner, chunks(todo, batch_size, 1), events, ahead, stop),
        daemon=True,
        name="request-feeder",
    )
    pool = RequestPool(lambda s: model.answer(s, runner.gen, stop), window, events, stop)
    t0 = time.perf_counter()
    waiting: deque = deque()  # attacked, not yet sent: (sample, hashes, attack seconds)
    in_flight: dict[int, tuple[Sample, list[str], float]] = {}
    arrived: list[tuple[Sample, list[str], float, Response]] = []
    judge_s, ended, key, last_flush = 0.0, False, 0, time.perf_counter()

    def flush() -> None:
        nonlocal judge_s, last_flush
        group = [a for a in arrived if a[3].error != STOPPED]
        arrived.clear()
        last_flush = time.perf_counter()
        if not group:
            return
        samples, responses = [g[0] for g in group], [g[3] for g in group]
        t = time.perf_counter()
        verdicts = judge_batch(runner.judges, samples, responses)
        dt = time.perf_counter() - t
        judge_s += dt
        recs = [
            make_record(
                runner.cond.name,
                s,
                h,
                r,
                {j: vs[i] for j, vs in verdicts.items()},
                {"attack_s": ta, "generate_s": r.latency_s, "judge_s": dt / len(group)},
            )
            for i, (s, h, ta, r) in enumerate(group)
        ]
        runner.writes.append(runner.worker.submit(runner.write, recs))
        st = runner.stats
        st.n += len(group)
        st.attack_s += sum(g[2] for g in group)
        st.latency_s += sum(r.latency_s for r in responses)
        bar.update(len(group))
        if after_chunk:
            after_chunk()

    feeder.start()
    try:
        while not (ended and not waiting and not in_flight):
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                event = None
            while event is not None:
                kind = event[0]
                if kind == "ready":
                    waiting.append(event[1:])
                elif kind == "done":
                    s, h, ta = in_flight.pop(event[1])
                    if isinstance(event[2], BaseException):
                        raise event[2]
                    arrived.append((s, h, ta, event[2]))
                    ahead.release()
                elif kind == "end":
                    ended = True
                elif kind == "error":
                    raise event[1]
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    event = None
            while waiting and len(in_flight) < window:  # keep the window full
                s, h, ta = waiting.popleft()
                key += 1
                in_flight[key] = (s, h, ta)
                pool.submit(key, s)
            if getattr(model, "endpoint_down", lambda: False)():
                arrived[:] = [a for a in arrived if a[3].error is None]  # the chunked loop drops them too
                flush()
                model.check_endpoint()  # raises EndpointDown with the breaker's reason
            done = ended and not waiting and not in_flight
            if len(arrived) >= batch_size or (
                arrived and (done or time.perf_counter() - last_flush >= flush_s)
            ):
                flush()
    finally:
        stop.set()
        pool.close()
        bar.close()
    runner.stats.generate_s += time.perf_counter() - t0 - judge_s
    runner.stats.judge_s += judge_s
    return runner.stats


STOPPED = "not answered: the run was stopped"


def _apply(runner: Any, batch: list[Sample]) -> tuple[list[Sample], float]:
    """The runner's attack on one batch (the same checks as ``pipeline.attack_batch``, without hashing)."""
    t0 = time.perf_counter()
    attacked = runner.attack.apply(batch, runner.target) if runner.attack else list(batch)
    if len(attacked) != len(batch) or any(a.id != b.id for a, b in zip(attacked, batch, strict=False)):
        raise RuntimeError(f"attack {runner.attack.name!r} must return one sample per input with the same id")
    return attacked, time.perf_counter() - t0


def _feed(runner: Any, batches: Iterable[list[Sample]], events: queue.Queue, ahead: threading.Semaphore,
          stop: threading.Event) -> None:  # fmt: skip
    """Attack and hash batch by batch off the main thread (not on the runner's worker, which writes the records)
    and hand samples over one by one, in order, at most ``ahead`` of the answers (bounded memory).

    Images are hashed on :data:`WORKERS` threads (hashlib runs without the GIL) while the next batch is
    attacked; an attack that declares ``thread_safe = True`` (a pure function of its samples, e.g. FigStep's
    rendering) is also applied to several batches at once."""
    parallel = bool(getattr(runner.attack, "thread_safe", False))

    def hashed(attacked: list[Sample], t_attack: float) -> tuple[list[Sample], list[list[str]], float]:
        return attacked, [s.image_hashes() for s in attacked], t_attack

    try:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="attack-hash") as pool:
            jobs: deque = deque()
            for batch in itertools.chain(batches, [None]):  # chunks sliced when reached (lazy datasets)
                if batch is not None:
                    if parallel:
                        jobs.append(pool.submit(lambda b=batch: hashed(*_apply(runner, b))))
                    else:
                        jobs.append(pool.submit(hashed, *_apply(runner, batch)))
                while jobs and (batch is None or len(jobs) > WORKERS or jobs[0].done()):
                    attacked, hashes, t_attack = jobs.popleft().result()
                    share = t_attack / max(1, len(attacked))
                    for s, h in zip(attacked, hashes, strict=True):
                        for im, sha in zip(s.images, h, strict=True):
                            CACHE.remember(im, sha)  # the back-end's data-URL cache will not hash it again
                        while not ahead.acquire(timeout=0.1):
                            if stop.is_set():
                                return
                        if stop.is_set():
                            return
                        events.put(("ready", s, h, share))
        events.put(("end",))
    except BaseException as e:  # noqa: BLE001 - raised again in the calling thread
        events.put(("error", e))
