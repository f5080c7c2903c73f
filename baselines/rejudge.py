"""Re-judging a finished run: new judges' verdicts for the responses already in ``samples.jsonl``, no generation.

What a judge needs per record is rebuilt without the target model: the sample (goal, category, label, images)
from the run's dataset — whose checksum must match the one recorded in run.json — with the text, system prompt
and meta the model actually saw (recorded); the response and its error (recorded). Images: the dataset's when
their hashes match the record; else the attack is re-applied (only attacks that query no model: deterministic
by contract) and used when the hashes match; otherwise the judge sees no image and the count is reported.
The verdicts are written beside the old ones (``verdicts[<judge>]``; an existing judge is replaced only when
asked), run.json lists the new judges (``judges``) and the re-judging (``rejudged``) while its ``config`` — the
run's identity — stays as generated, and the Result is rebuilt from the records (``provenance.rejudged``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baselines import registry
from baselines.judgeval import judge_errors
from baselines.pipeline import judge_batch
from baselines.runresult import build_result, json_safe
from baselines.runstore import RunStore, RunStoreError
from baselines.types import Response, Sample, Verdict


@dataclass
class RejudgeOutcome:
    """The rebuilt Result and what re-judging did."""

    result: dict[str, Any]
    run_dir: Path
    judged: dict[str, int] = field(default_factory=dict)  # judge -> records decided
    unjudged: dict[str, int] = field(default_factory=dict)  # judge -> records left unjudged
    images_missing: int = 0


def _attacked_images(config: Any, base: dict[str, Sample], records: list[dict[str, Any]]) -> dict[tuple, Any]:
    """(condition, id) -> images, for records whose images the dataset or a re-applied attack reproduces."""
    out: dict[tuple, Any] = {}
    by_cond: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        s = base.get(r["id"])
        if s is not None and list(r.get("images") or []) == s.image_hashes():
            out[(r["condition"], r["id"])] = s.images
        else:
            by_cond.setdefault(r["condition"], []).append(r)
    for cond in config.conditions:
        todo = [r for r in by_cond.get(cond.name, []) if r["id"] in base]
        if not todo or not cond.attack or config.attack is None or config.attack.name != cond.attack:
            continue
        cls = registry.get("attack", cond.attack)
        if cls.needs_white_box or cls.queries_model:
            continue
        try:
            attack = cls(config.attack.params)
            samples = [base[r["id"]] for r in todo]
            attack.prepare(samples, None)  # type: ignore[arg-type] - these attacks never touch the model
            attacked = attack.apply(samples, None)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - images then stay unavailable (counted)
            continue
        for r, a in zip(todo, attacked, strict=True):
            if list(r.get("images") or []) == a.image_hashes():
                out[(r["condition"], r["id"])] = a.images
    return out


def rejudge(
    run_dir: Path, judges: dict[str, dict[str, Any]], *, replace: bool = False, batch_size: int = 32,
    injected: dict[str, Any] | None = None,
) -> RejudgeOutcome:  # fmt: skip
    """Add ``judges`` (name -> Params values) to the run in ``run_dir``; returns the rebuilt Result.

    ``injected``: judge name -> an already built Judge (tests, or a judge model loaded once for many runs)."""
    from baselines.runconfig import RunConfig
    from baselines.runrequest import resolve_spec

    store = RunStore(Path(run_dir))
    meta = store.read_meta()
    records = store.load(repair=False)
    if not records:
        raise RunStoreError(f"{run_dir}: no records to re-judge")
    config = RunConfig.model_validate(meta["config"])
    existing = {j["label"] for j in meta.get("judges", [])}
    clash = sorted(set(judges) & existing)
    if clash and not replace:
        raise RunStoreError(f"{run_dir} already has verdicts of {clash}; pass --replace to judge them again")
    built = {}
    for name, values in judges.items():
        if injected and name in injected:
            built[name] = injected[name]
        else:
            spec = resolve_spec("judge", name, values)
            built[name] = registry.get("judge", name)(spec.params)
    dataset = registry.get("dataset", config.dataset.name)(config.dataset.params).load()
    if dataset.checksum != meta["dataset"]["checksum"]:
        raise RunStoreError(
            f"the dataset {config.dataset.name!r} has changed since {run_dir} ran (checksum "
            f"{dataset.checksum[:12]} vs {meta['dataset']['checksum'][:12]}); the goals the judges need cannot be trusted"
        )
    base = {s.id: s for s in dataset.samples}
    images = _attacked_images(config, base, records)
    missing = sum(1 for r in records if r.get("images") and (r["condition"], r["id"]) not in images)
    samples, responses = [], []
    for r in records:
        b = base.get(r["id"]) or Sample(
            id=r["id"], text=r["prompt"], label=r["label"], category=r["category"]
        )
        samples.append(b.with_(text=r["prompt"], system=r.get("system"), meta=r.get("meta") or {},
                               images=images.get((r["condition"], r["id"]), ())))  # fmt: skip
        responses.append(Response(r["id"], r.get("response") or "", error=r.get("error")))
    outcome = RejudgeOutcome(result={}, run_dir=store.dir, images_missing=missing)
    for start in range(0, len(records), batch_size):
        sl = slice(start, start + batch_size)
        got = judge_batch(built, samples[sl], responses[sl])
        for name, verdicts in got.items():
            for rec, v in zip(records[sl], verdicts, strict=True):
                rec["verdicts"][name] = _as_dict(v)
    for name in built:
        outcome.judged[name] = sum(r["verdicts"][name]["success"] is not None for r in records)
        outcome.unjudged[name] = len(records) - outcome.judged[name]
    store.write_all(records)
    configs = {name: json_safe({"label": name, **j.config()}) for name, j in built.items()}
    meta["judges"] = [j for j in meta.get("judges", []) if j["label"] not in built] + list(configs.values())
    meta.setdefault("rejudged", []).append({
        "judges": sorted(built), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "records": len(records), "images_missing": missing,
    })  # fmt: skip
    store.write_meta(meta)
    outcome.result = build_result(meta, records, store.sha256())
    outcome.result["provenance"]["rejudged"] = meta["rejudged"]
    outcome.result["provenance"]["judge_errors"] = judge_errors(records, [j["label"] for j in meta["judges"]])
    return outcome


def _as_dict(v: Verdict) -> dict[str, Any]:
    return {
        "success": v.success,
        "refused": v.refused,
        "score": v.score,
        "reason": v.reason,
        "error": v.error,
    }
