"""The harness: dataset -> attack -> defense(model) -> judges -> records -> metrics -> Result dict.

Batched end to end: each condition's pending samples go through ``attack.apply``, the (wrapped) model's
``generate`` and every judge in chunks of 1, 2, then up to ``BATCHES_PER_CALL`` batches of ``config.batch_size``
(the back-end splits a chunk into batches, sorted by length and prepared one ahead); after each chunk the records are
appended to ``runs/<run id>/samples.jsonl`` (flushed + fsynced). Rerunning the same config finds the same run directory
and skips the (condition, sample id) pairs already recorded, so a killed run resumes without redoing or
losing a sample. ``--shard i/n`` keeps the samples whose sha256(id) mod n == i; ``merge_runs`` combines shards.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines import registry
from baselines.base import Attack, Defense, Judge, LoadedDataset, Model
from baselines.runchecks import require_white_box
from baselines.runconfig import Condition, RunConfig
from baselines.runresult import build_result, json_safe
from baselines.runstore import RunStore, RunStoreError, record_key
from baselines.types import Response, Sample, Verdict


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


def shard_of(sample_id: str, n: int) -> int:
    """The shard (0..n-1) a sample id belongs to: sha256(id) mod n (stable across machines and runs)."""
    return int(hashlib.sha256(sample_id.encode("utf-8")).hexdigest(), 16) % n


def select_samples(samples: Sequence[Sample], config: RunConfig) -> list[Sample]:
    """Apply ``limit`` (first N in dataset order) and then ``shard``."""
    out = list(samples)[: config.limit] if config.limit else list(samples)
    if config.shard:
        i, n = config.shard
        out = [s for s in out if shard_of(s.id, n) == i]
    return out


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


def condition_model(cond: Condition, comps: Components) -> Model:
    """The model queried in a condition: the plain model or the defense wrapped around it."""
    return comps.defenses[cond.defense].wrap(comps.model) if cond.defense else comps.model


def prefetch_safe(attack: Attack | None) -> bool:
    """Whether ``attack.apply`` may run in the background while the model generates: not for attacks that
    use the model (white-box attacks, or any attack class that sets ``queries_model = True``)."""
    if attack is None:
        return True
    return not (attack.needs_white_box or attack.queries_model)


def prepare(
    attack: Attack | None, batch: list[Sample], model: Model
) -> tuple[list[Sample], list[list[str]], float]:
    """Attack a batch and hash its images: (attacked samples, image sha256s, seconds spent)."""
    t0 = time.perf_counter()
    attacked = attack.apply(batch, model) if attack else list(batch)
    if len(attacked) != len(batch) or any(a.id != b.id for a, b in zip(attacked, batch, strict=False)):
        raise RuntimeError(f"attack {attack.name!r} must return one sample per input with the same id")
    return attacked, [s.image_hashes() for s in attacked], time.perf_counter() - t0


#: Batches of ``config.batch_size`` per ``generate`` call (and per append to samples.jsonl).
BATCHES_PER_CALL = 4


def chunks(todo: list, batch_size: int, most: int) -> list[list]:
    """``todo`` in chunks of 1, 2, 4, ... up to ``most`` batches: the first answer comes after one batch, while
    the next, larger chunk is attacked in the background."""
    out, i, k = [], 0, 1
    while i < len(todo):
        out.append(todo[i : i + batch_size * k])
        i += batch_size * k
        k = min(2 * k, most)
    return out


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

    Pipelined: while the model answers chunk k, a worker thread attacks and hashes chunk k+1 (for attacks
    that do not use the model) and writes the records of chunk k-1; the worker is drained before returning
    or raising, so every answered chunk is on disk. Chunks grow from one batch of ``config.batch_size`` to
    ``batches_per_call`` (default ``BATCHES_PER_CALL``) batches: one ``generate`` call over several batches lets
    the back-end sort them by length and prepare the next while the model runs. ``after_batch(k)`` is called
    after the k-th chunk has been judged (tests inject interruptions there).
    """
    from tqdm import tqdm

    t_start = time.perf_counter()
    run_dir = Path(runs_dir) / config.run_id()
    store = RunStore(run_dir)
    if fresh:
        store.reset()
    samples = select_samples(comps.dataset.samples, config)
    for sk in comps.dataset.skipped:
        log(f"skipped {sk.get('id', '?')}: {sk.get('path', '?')}: {sk.get('error', '')}")
    require_white_box(
        config, comps.model, comps.attacks
    )  # before any condition runs (and before run.json is written)
    meta = run_meta(config, comps, n_selected=len(samples))
    check_resumable(store, meta)
    store.write_meta(meta)
    done = {record_key(r) for r in store.load()}
    n_resumed = len(done)
    if n_resumed:
        log(f"resuming {config.run_id()}: {n_resumed} records already in {store.samples_path}")
    gen = config.generation_config()
    stats = {"attack_s": 0.0, "generate_s": 0.0, "judge_s": 0.0}
    n_new, n_batches = 0, 0
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness")
    writes: list[Future] = []
    # defenses wrap the model before any condition runs: one missing a local model fails before any work
    pending_conds = [c for c in config.conditions if any((c.name, s.id) not in done for s in samples)]
    models = {c.name: condition_model(c, comps) for c in pending_conds}
    try:
        for cond in pending_conds:
            todo = [s for s in samples if (cond.name, s.id) not in done]
            model = models[cond.name]
            attack = comps.attacks[cond.attack] if cond.attack else None
            batches = chunks(todo, config.batch_size, batches_per_call or BATCHES_PER_CALL)
            if attack:  # universal attacks optimise here, over all selected samples (same result on resume)
                attack.prepare(samples, comps.model)
            ahead = prefetch_safe(attack)
            pending = worker.submit(prepare, attack, batches[0], comps.model) if ahead else None
            bar = tqdm(total=len(todo), desc=cond.name, unit="sample", file=sys.stderr, disable=not progress)
            for b, batch in enumerate(batches):
                attacked, hashes, t_attack = (
                    pending.result() if ahead else prepare(attack, batch, comps.model)
                )
                if ahead and b + 1 < len(batches):
                    pending = worker.submit(prepare, attack, batches[b + 1], comps.model)
                t1 = time.perf_counter()
                responses = model.generate(attacked, gen)
                t2 = time.perf_counter()
                verdicts = judge_batch(comps.judges, attacked, responses)
                t3 = time.perf_counter()
                k = len(batch)
                timings = {"attack_s": t_attack / k, "generate_s": (t2 - t1) / k, "judge_s": (t3 - t2) / k}
                recs = [
                    make_record(cond.name, s, hashes[i], r, {j: vs[i] for j, vs in verdicts.items()}, timings)
                    for i, (s, r) in enumerate(zip(attacked, responses, strict=True))
                ]
                writes.append(worker.submit(store.append, recs))
                stats["attack_s"] += t_attack
                stats["generate_s"] += t2 - t1
                stats["judge_s"] += t3 - t2
                n_new += k
                n_batches += 1
                bar.update(k)
                if after_batch:
                    after_batch(n_batches)
            bar.close()
    finally:
        worker.shutdown(wait=True)  # every answered batch reaches the disk, even on Ctrl-C or an error
    for w in writes:
        w.result()  # surface a failed write
    records = [r for r in store.load() if r["id"] in {s.id for s in samples}]
    result = build_result(store.read_meta(), records, store.sha256())
    stats["total_s"] = time.perf_counter() - t_start
    errors: dict[str, str] = {}
    for r in records:
        for j, v in r["verdicts"].items():
            if v.get("error") and j not in errors:
                errors[j] = v["error"]
    return RunOutcome(result, run_dir, n_new, n_resumed, stats, errors)


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


def run_meta(config: RunConfig, comps: Components, *, n_selected: int) -> dict[str, Any]:
    """What run.json records: config, run id, model info, dataset provenance, judge configs."""
    ds = comps.dataset
    baseline_cls = (comps.attacks if config.baseline_kind == "attack" else comps.defenses)[config.baseline]
    return {
        "run_id": config.run_id(),
        "config": config.model_dump(mode="json"),
        "paper_id": type(baseline_cls).paper_id,
        "model_info": json_safe(comps.model.info()),
        "dataset": {
            "name": ds.name,
            "checksum": ds.checksum,
            "source": ds.source,
            "n_samples_total": len(ds.samples),
            "n_samples": n_selected,
            "skipped": json_safe(list(ds.skipped)),
        },
        "judges": [json_safe({"label": name, **j.config()}) for name, j in comps.judges.items()],
    }


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
