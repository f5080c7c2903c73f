"""The harness: dataset -> attack -> defense(model) -> judges -> records -> metrics -> Result dict.

Batched end to end: each condition's pending samples go through ``attack.apply``, the (wrapped) model's
``generate`` and every judge (:mod:`baselines.pipeline`) in chunks of 1, 2, then up to ``BATCHES_PER_CALL``
batches of ``config.batch_size`` (the back-end splits a chunk into batches, sorted by length and prepared one
ahead); after each chunk the records are appended to ``runs/<run id>/samples.jsonl`` (flushed + fsynced).
Rerunning the same config finds the same run directory and skips the (condition, sample id) pairs already
recorded, so a killed run resumes without redoing or losing a sample; records whose generation failed are run
again (the endpoint may be back, the key fixed). ``--shard i/n`` keeps the samples whose sha256(id) mod n == i; ``merge_runs`` combines shards.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines import registry
from baselines.base import Attack, Defense, Judge, LoadedDataset, Model
from baselines.datasets._lazy import SampleView
from baselines.judgeval import JudgeErrors
from baselines.pipeline import (  # noqa: F401 - judge_batch, chunks, ... are the harness's public names too
    BATCHES_PER_CALL,
    ConditionRunner,
    ConditionStats,
    attack_batch,
    chunks,
    judge_batch,
    make_record,
    prefetch_safe,
)
from baselines.runchecks import require_white_box
from baselines.runconfig import Condition, RunConfig
from baselines.runresult import StoredRecords, build_result, json_safe
from baselines.runstore import RunStore, RunStoreError, record_key
from baselines.types import Sample


@dataclass
class Components:
    """The live objects of a run (built by :func:`load_components`; tests may pass fakes)."""

    dataset: LoadedDataset
    model: Model
    attacks: dict[str, Attack] = field(default_factory=dict)
    defenses: dict[str, Defense] = field(default_factory=dict)
    judges: dict[str, Judge] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What a finished run produced: the Result dict, where its records are, and where time went."""

    result: dict[str, Any]
    run_dir: Path
    n_new: int
    n_resumed: int
    stats: dict[str, float]
    first_errors: dict[str, str] = field(default_factory=dict)  # judge -> first error seen (for the summary)
    conditions: dict[str, ConditionStats] = field(
        default_factory=dict
    )  # this invocation's time per condition
    n_retried: int = 0  # failed records of an earlier invocation that this one ran again


def shard_of(sample_id: str, n: int) -> int:
    """The shard (0..n-1) a sample id belongs to: sha256(id) mod n (stable across machines and runs)."""
    return int(hashlib.sha256(sample_id.encode("utf-8")).hexdigest(), 16) % n


def select_samples(samples: Sequence[Sample], config: RunConfig) -> Sequence[Sample]:
    """Apply ``limit`` (first N in dataset order) and then ``shard``. A list gives a list; a lazily built
    sequence (:class:`~baselines.datasets._lazy.LazySamples`) gives a view that keeps positions only."""
    if isinstance(samples, list):
        out = samples[: config.limit] if config.limit else list(samples)
        if config.shard:
            i, n = config.shard
            out = [s for s in out if shard_of(s.id, n) == i]
        return out
    view = SampleView(samples, range(min(len(samples), config.limit or len(samples))))
    if config.shard:
        i, n = config.shard
        view = view.subset(lambda s: shard_of(s.id, n) == i)
    return view


class KeySet:
    """A set of strings (sample ids, or condition/id pairs) as sorted 64-bit hashes: 8 bytes a member, for
    what a run must remember per sample (which are done, which are selected). Add everything, then test. Two
    different keys share a hash with probability about n^2 / 2^65 (1e-10 for 56,000 keys)."""

    def __init__(self) -> None:
        self._hashes = array("Q")
        self._sorted = True

    @staticmethod
    def hash(*parts: object) -> int:
        data = json.dumps([str(p) for p in parts], ensure_ascii=False).encode("utf-8")
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    def add(self, *parts: object) -> None:
        self._hashes.append(self.hash(*parts))
        self._sorted = False

    def _freeze(self) -> None:
        """Sort and deduplicate the hashes (after adds; membership is then a binary search)."""
        if not self._sorted:
            import numpy as np

            self._hashes = array("Q", np.unique(np.frombuffer(self._hashes, dtype=np.uint64)).tobytes())
            self._sorted = True

    def __contains__(self, parts: tuple) -> bool:
        self._freeze()
        h = self.hash(*parts)
        i = bisect.bisect_left(self._hashes, h)
        return i < len(self._hashes) and self._hashes[i] == h

    def __len__(self) -> int:
        self._freeze()
        return len(self._hashes)


def pending(samples: Sequence[Sample], condition: str, done: KeySet) -> Sequence[Sample]:
    """The samples of ``samples`` that ``condition`` has no record of yet."""
    if not len(done):
        return samples
    keep = lambda s: (condition, s.id) not in done  # noqa: E731
    if isinstance(samples, SampleView):
        return samples.subset(keep)
    if isinstance(samples, list):
        return [s for s in samples if keep(s)]
    return SampleView(samples, range(len(samples))).subset(keep)


def load_components(config: RunConfig) -> Components:
    """Instantiate the dataset (and load it), the model, the attack, the defense and the judges."""
    from baselines.models import load_model

    ds_cls = registry.get("dataset", config.dataset.name)
    dataset = ds_cls(config.dataset.params).load()
    model = load_model(config.model, base_url=config.base_url, params=config.model_params)
    comps = Components(dataset=dataset, model=model)
    if config.attack:
        comps.attacks[config.attack.name] = registry.get("attack", config.attack.name)(config.attack.params)
    if config.defense:
        d = registry.get("defense", config.defense.name)(config.defense.params)
        comps.defenses[config.defense.name] = d
    for spec in config.judges:
        comps.judges[spec.name] = registry.get("judge", spec.name)(spec.params)
    return comps


def condition_model(cond: Condition, comps: Components) -> Model:
    """The model queried in a condition: the plain model or the defense wrapped around it."""
    return comps.defenses[cond.defense].wrap(comps.model) if cond.defense else comps.model


def execute(
    config: RunConfig,
    comps: Components,
    runs_dir: Path,
    *,
    fresh: bool = False,
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    batches_per_call: int = 0,
) -> RunOutcome:
    """Run every condition over the selected samples, appending records; return the Result dict.

    Steps: select the samples, open (or resume) the run directory, run each condition's pending samples through
    a :class:`~baselines.pipeline.ConditionRunner`, then compute the Result from the records on disk. The
    background worker is drained before returning or raising, so every answered chunk is on disk. Chunks grow
    from one batch of ``config.batch_size`` to ``batches_per_call`` (default ``BATCHES_PER_CALL``) batches.
    ``after_batch(k)`` is called after the k-th chunk has been judged (tests inject interruptions there).
    """
    t_start = time.perf_counter()
    store = RunStore(Path(runs_dir) / config.run_id())
    if fresh:
        store.reset()
    samples = select_samples(comps.dataset.samples, config)
    for sk in comps.dataset.skipped:
        log(f"skipped {sk.get('id', '?')}: {sk.get('path', '?')}: {sk.get('error', '')}")
    require_white_box(config, comps.model, comps.attacks)  # before any condition runs and before run.json
    meta = run_meta(config, comps, n_selected=len(samples))
    check_resumable(store, meta)
    earlier = store.read_meta() if store.meta_path.is_file() else {}
    if earlier.get("defense_info"):  # what the defenses said when they were wrapped (kept on a resume)
        meta["defense_info"] = earlier["defense_info"]
    store.write_meta(meta)
    # what earlier invocations recorded, streamed: 8 bytes per record kept (which pairs are done)
    done, failed, n_earlier = KeySet(), KeySet(), 0
    for r in store.iter_records():
        n_earlier += 1
        (failed if r.get("error") else done).add(*record_key(r))  # failed generations are retried
    selected = KeySet()
    for s in samples:
        selected.add(s.id)
    n_retry = 0
    if len(failed):
        names = {c.name for c in config.conditions}
        n_retry = sum(
            1
            for r in store.iter_records(repair=False)
            if r.get("error") and r["condition"] in names and (r["id"],) in selected
        )
    if n_earlier:
        log(
            f"resuming {config.run_id()}: {len(done)} records kept from {store.samples_path}"
            + (f", {n_retry} failed record(s) retried" if n_retry else "")
        )
    plan = [(c, pending(samples, c.name, done)) for c in config.conditions]
    plan = [(c, todo) for c, todo in plan if len(todo)]
    defended = {c.name for c in config.conditions if c.defense}
    # defenses wrap the model before any condition runs: one missing a local model fails before any work
    models = {c.name: condition_model(c, comps) for c, _ in plan}
    wrapped = {name: defense_info(m) for name, m in models.items() if name in defended}
    if wrapped:  # each defended condition's defense, as wrapped: evaluators used, a tuned model's provenance
        meta["defense_info"] = {**(meta.get("defense_info") or {}), **wrapped}
        store.write_meta(meta)
    counter = itertools.count(1)
    after_chunk = (lambda: after_batch(next(counter))) if after_batch else None
    per_condition: dict[str, ConditionStats] = {}
    writes: list[Future] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness") as worker:
        # leaving the block drains the worker: every answered chunk reaches the disk, even on Ctrl-C or an error
        for cond, todo in plan:
            runner = ConditionRunner(
                cond=cond,
                model=models[cond.name],
                target=comps.model,
                attack=comps.attacks[cond.attack] if cond.attack else None,
                judges=comps.judges,
                gen=config.generation_config(),
                write=store.append,
                worker=worker,
                writes=writes,
            )
            per_condition[cond.name] = runner.stats
            runner.run(
                todo,
                samples,
                batch_size=config.batch_size,
                batches_per_call=batches_per_call or BATCHES_PER_CALL,
                progress=progress,
                after_chunk=after_chunk,
            )
    for w in writes:
        w.result()  # surface a failed write
    if n_retry:
        store.write_all(store.iter_records())  # compaction: one record per (condition, id), the retried one
    records = StoredRecords(store, keep=lambda r: (r["id"],) in selected)  # streamed, never held
    meta = store.read_meta()
    errors = JudgeErrors([j["label"] for j in meta["judges"]])  # counted in build_result's pass
    result = build_result(meta, records, store.sha256(), errors=errors)
    stats = {
        k: sum(getattr(s, k) for s in per_condition.values()) for k in ("attack_s", "generate_s", "judge_s")
    }
    stats["total_s"] = time.perf_counter() - t_start
    n_new = sum(s.n for s in per_condition.values())
    return RunOutcome(result, store.dir, n_new, len(done), stats, errors.first, per_condition, n_retry)


IDENTITY_KEYS = ("revision", "weights_sha256")


def check_resumable(store: RunStore, meta: dict[str, Any]) -> None:
    """Refuse to resume records that another model (weights / revision) or other data produced: the run id
    comes from the configuration, which names a model (``organism``, ``hf:x``) but not its weights."""
    if not store.samples_path.is_file() or not store.meta_path.is_file():
        return
    old = store.read_meta()
    changed = [
        f"model {k}: {old['model_info'][k]} -> {meta['model_info'][k]}"
        for k in IDENTITY_KEYS
        if k in (old.get("model_info") or {}) and old["model_info"][k] != meta["model_info"].get(k)
    ]
    if (old.get("dataset") or {}).get("checksum") != meta["dataset"]["checksum"]:
        changed.append("dataset checksum")
    if changed:
        raise RunStoreError(
            f"cannot resume {store.dir}: its records were made with different inputs ({'; '.join(changed)}). "
            "Rerun with --fresh to discard them, or move that folder away."
        )


def defense_info(model: Model) -> dict[str, Any]:
    """The outermost defense's entry of a wrapped model's ``info()`` (its name, params and whatever it adds:
    the evaluators ETA used, the tuned model VLGuard fine-tuning produced), JSON-safe, credentials stripped."""
    from baselines.http import redact_urls

    chain = model.info().get("defenses") or [{}]
    return redact_urls(json_safe(chain[-1]))


def run_meta(config: RunConfig, comps: Components, *, n_selected: int) -> dict[str, Any]:
    """What run.json records: config, run id, model info, dataset provenance, judge configs (credentials in
    any URL stripped: ``http://user:pw@host`` is recorded as ``http://***@host``)."""
    from baselines.datasets.cards import terms
    from baselines.http import redact_urls

    ds = comps.dataset
    if config.baseline_kind == "eval":  # `mllm-safety eval <benchmark>`: the benchmark's paper
        paper_id = registry.get("dataset", config.dataset.name).paper_id
    else:
        owners = comps.attacks if config.baseline_kind == "attack" else comps.defenses
        paper_id = type(owners[config.baseline]).paper_id
    return redact_urls(
        {
            "run_id": config.run_id(),
            "config": config.model_dump(mode="json"),
            "paper_id": paper_id,
            "model_info": json_safe(comps.model.info()),
            "dataset": {
                "name": ds.name,
                "checksum": ds.checksum,
                "source": ds.source,
                "n_samples_total": len(ds.samples),
                "n_samples": n_selected,
                "skipped": json_safe(list(ds.skipped)),
                **terms(ds.name),  # licence and gating (baselines/datasets/cards.py)
            },
            "judges": [json_safe({"label": name, **j.config()}) for name, j in comps.judges.items()],
        }
    )


SMALL_MODEL_PARAMS = 50_000_000


def cpu_threads(model: Model, requested: int | None) -> int | None:
    """Set torch's CPU thread count: ``requested`` when given; else 1 for a small model on CPU (intra-op
    threads only add synchronisation there, and on a shared machine each op then waits for a descheduled
    thread: 30x slower seen on 2 busy cores); else leave torch's default. Returns the count set (or None)."""
    info = model.info()
    small = (
        str(info.get("device", "cpu")).startswith("cpu")
        and 0 < int(info.get("n_parameters") or SMALL_MODEL_PARAMS) < SMALL_MODEL_PARAMS
    )
    n = requested or (1 if small else None)
    if n:
        import torch

        torch.set_num_threads(n)
    return n


def run(config: RunConfig, runs_dir: Path, *, threads: int | None = None, **kwargs: Any) -> RunOutcome:
    """Load the components of ``config`` and execute it (see :func:`execute` for the keyword arguments).

    ``threads``: torch CPU threads (default: see :func:`cpu_threads`)."""
    from baselines.models import parse_spec

    require_white_box(config, registry.get("model", parse_spec(config.model)[0]))
    comps = load_components(config)
    n = cpu_threads(comps.model, threads)
    outcome = execute(config, comps, runs_dir, **kwargs)
    outcome.stats["torch_threads"] = float(n or 0)
    return outcome
