"""A defense's cost beside its ASR: over-refusal on benign requests and utility, with and without the defense.

A defense that refuses everything has an ASR of zero; these two numbers say what it cost. For a run with a
defended condition (``mllm-safety run <defense>``, or an attack run with ``--defense``), :func:`add_cost` writes
into the Result, as separate parts of the defended condition and of its undefended reference (same attack):

- ``scores["over_refusal"]``: share of benign requests refused. Default: the run's own benign items (the bundled
  set's look-alikes, presented as the condition presents them: its ``refusal_rate_benign``, read from the judge
  that tells refusals). Option (:attr:`CostSettings.benign`): a MOSSBench-format folder (benign subset) or a
  VLGuard folder (``safe_safes``), run without attack, with and without the defense, refusal judge.
- ``scores["utility"]``: the mean MM-Vet-format score on a utility set (default: the packaged
  ``utility_bundled``; or ``mmvet:<path>``), run without attack, with and without the defense, graded by the
  ``mmvet`` judge -- ``grader=match`` (the offline proxy, labelled so) unless a grader model is given.

Each with its 95% interval: exact Clopper-Pearson for proportions, and for utility when every grade is 0 or 1
(else the mean with a seeded bootstrap interval, as ``mllm-safety eval mmvet``; a bootstrap of equal grades
would have zero width), and ``scored_by`` saying what measured it. The companion runs go through the harness
like any run (``runs/<run id>/``, resumable); their run ids and record hashes go into the Result's provenance
(``cost_runs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from baselines.params import StrictParams
from baselines.runconfig import Condition, RunConfig, RunConfigError

NO_DEFENSE = "no-defense"
BENIGN_SETS = {"mossbench": {"subset": "benign", "counts": "any"}, "vlguard": {"subsets": ["safe_safes"]}}
OWN_ITEMS = "this run's benign items"  # scored_by of the default over-refusal (the site reads it)
UTILITY_SETS = {"utility_bundled": {}, "mmvet": {"counts": "any"}}


class CostSettings(StrictParams):
    """How a defense's cost is measured (the defaults need nothing but the package)."""

    utility: str = Field("utility_bundled", description="utility set: utility_bundled[:path] or mmvet:<path>")
    utility_judge: str = Field(
        "match", description="match: the offline match proxy; else the MM-Vet grader model (grader=llm)"
    )
    judge_base_url: str | None = Field(None, description="endpoint of an openai:<model> grader")
    benign: str | None = Field(
        None, description="None: the run's own benign items; mossbench:<path> or vlguard:<path> (safe_safes)"
    )
    limit: int | None = Field(None, gt=0, description="only the first N items of each cost set")


@dataclass
class CostRun:
    """One companion run: which part it measures, its config, and the score key it yields."""

    part: str  # "utility" | "over_refusal"
    config: RunConfig
    label: str  # what scored_by says


def _split(spec: str, known: dict[str, dict[str, Any]], what: str) -> tuple[str, dict[str, Any]]:
    name, _, path = spec.partition(":")
    if name not in known:
        raise RunConfigError(f"{what} {spec!r}: expected one of {', '.join(known)} (as name or name:<path>)")
    params = dict(known[name])
    if path:
        params["path"] = path
    elif name != "utility_bundled":
        raise RunConfigError(f"{what} {spec!r}: {name} needs the folder of its official files ({name}:<path>)")
    return name, params


def defended_pairs(config: RunConfig) -> list[tuple[Condition, Condition | None]]:
    """Each defended condition of ``config`` with its undefended reference (same attack), if any."""
    out = []
    for c in config.conditions:
        if c.defense:
            ref = next((x for x in config.conditions if not x.defense and x.attack == c.attack), None)
            out.append((c, ref))
    return out


def cost_runs(config: RunConfig, settings: CostSettings) -> list[CostRun]:
    """The companion runs of ``config`` (none when it has no defended condition or is a shard)."""
    from baselines.runrequest import resolve_spec

    if not config.defense or not defended_pairs(config) or config.shard:
        return []
    defense = config.defense.name
    conditions = [Condition(name=NO_DEFENSE), Condition(name=defense, defense=defense)]
    common = dict(baseline=defense, baseline_kind="eval", defense=config.defense, model=config.model,
                  model_params=config.model_params, base_url=config.base_url, generation=config.generation,
                  batch_size=config.batch_size, limit=settings.limit, conditions=conditions)  # fmt: skip
    name, params = _split(settings.utility, UTILITY_SETS, "utility set")
    if settings.utility_judge == "match":
        grader: dict[str, Any] = {"grader": "match"}
        how = "mmvet grader=match (substring proxy of MM-Vet's GPT-4 grader)"
    else:
        grader = {"grader": "llm", "model": settings.utility_judge, "base_url": settings.judge_base_url}
        how = f"mmvet grader=llm ({settings.utility_judge})"
    runs = [CostRun("utility", RunConfig(dataset=resolve_spec("dataset", name, params),
                                         judges=[resolve_spec("judge", "mmvet", grader)], **common),
                    f"{how} · {name}, no attack")]  # fmt: skip
    if settings.benign:
        name, params = _split(settings.benign, BENIGN_SETS, "benign set")
        judge = resolve_spec("judge", "refusal", {"list": "vlguard"} if name == "vlguard" else {})
        official = " (proxy of MOSSBench's GPT-4 judge)" if name == "mossbench" else ""
        ds = resolve_spec("dataset", name, params)
        runs.append(CostRun("over_refusal", RunConfig(dataset=ds, judges=[judge], **common),
                            f"refusal{official} · {name} {'safe_safes' if name == 'vlguard' else 'benign'}, "
                            "no attack"))  # fmt: skip
    return runs


def _refusal_judge(cond: dict[str, Any]) -> dict[str, Any] | None:
    """The judge metrics that give this condition's over-refusal: ``refusal`` if run, else the first that tells."""
    judges = [j for j in cond.get("judges", []) if j.get("refusal_rate_benign")]
    return next((j for j in judges if j["judge"] == "refusal"), judges[0] if judges else None)


def part_scores(run: CostRun, records: list[dict[str, Any]], seed: int) -> dict[str, dict[str, Any]]:
    """Per condition of a companion run (``no-defense``, the defense), the estimate of its part."""
    from baselines.metrics import proportion_ci
    from baselines.scoring import mean_score

    out: dict[str, dict[str, Any]] = {}
    for cond in run.config.conditions:
        recs = [r for r in records if r["condition"] == cond.name and not r.get("error")]
        if run.part == "utility":
            verdicts = [r["verdicts"].get("mmvet") or {} for r in recs]
            scores = [float(v["score"]) for v in verdicts if v.get("score") is not None]
            if scores and all(x in (0.0, 1.0) for x in scores):  # all-or-nothing grades: a proportion, exact CI
                est = proportion_ci([x == 1.0 for x in scores])
            else:  # partial credit (<AND> parts, grader=llm): MM-Vet's mean with a seeded bootstrap interval
                est = mean_score(scores, seed)
        else:
            verdicts = [r["verdicts"].get("refusal") or {} for r in recs]
            told = [bool(v["refused"]) for v in verdicts if v.get("refused") is not None]
            est = proportion_ci(told) if told else None
        if est is not None:
            out[cond.name] = est
    return out


def apply_cost(result: dict[str, Any], config: RunConfig, measured: list[tuple[CostRun, dict]]) -> list[str]:
    """Write ``over_refusal`` and ``utility`` into the defended conditions of ``result`` and their references;
    returns one summary line per condition written."""
    by_name = {c["condition"]: c for c in result["conditions"]}
    parts = {run.part: (run, got) for run, got in measured}
    lines = []
    for defended, ref in defended_pairs(config):
        for cond, key in ((ref, NO_DEFENSE), (defended, config.defense.name if config.defense else "")):
            if cond is None or cond.name not in by_name:
                continue
            target = by_name[cond.name]
            scores, scored_by = dict(target.get("scores") or {}), dict(target.get("scored_by") or {})
            if "over_refusal" in parts:
                run, got = parts["over_refusal"]
                if key in got:
                    scores["over_refusal"], scored_by["over_refusal"] = got[key], run.label
            else:
                j = _refusal_judge(target)
                if j is not None:
                    scores["over_refusal"] = j["refusal_rate_benign"]
                    scored_by["over_refusal"] = f"{j['judge']} · {OWN_ITEMS}, as this condition presents them"
            if "utility" in parts:
                run, got = parts["utility"]
                if key in got:
                    scores["utility"], scored_by["utility"] = got[key], run.label
            target["scores"], target["scored_by"] = scores, scored_by
            shown = [f"{k} {v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}] (n={v['n']})"
                     for k, v in scores.items() if k in ("over_refusal", "utility")]  # fmt: skip
            if shown:
                lines.append(f"  {cond.name}: " + "  ".join(shown))
    return lines


def add_cost(
    result: dict[str, Any], config: RunConfig, runs_dir: Path, settings: CostSettings | None = None, *,
    components: Any = None, **kwargs: Any,
) -> list[str]:  # fmt: skip
    """Run the companion runs of ``config`` (harness, resumable) and write the cost into ``result``; returns
    the summary lines (empty when the run has no defended condition). ``components``: a callable
    ``RunConfig -> harness.Components`` to use instead of loading them (tests); ``kwargs`` go to the harness."""
    from baselines import harness
    from baselines.runstore import RunStore

    settings = settings or CostSettings()
    runs = cost_runs(config, settings)
    if not runs and not (config.defense and defended_pairs(config)):
        return []
    measured, prov = [], []
    for run in runs:
        if components is None:
            outcome = harness.run(run.config, runs_dir, **kwargs)
        else:
            outcome = harness.execute(run.config, components(run.config), runs_dir, **kwargs)
        records = RunStore(outcome.run_dir).load()
        measured.append((run, part_scores(run, records, config.generation.seed)))
        p = outcome.result["provenance"]
        ds = outcome.result["dataset"]
        prov.append({"part": run.part, "run_id": outcome.result["run_id"], "dataset": ds["name"],
                     "dataset_checksum": ds["checksum"], "config_sha256": p["config_sha256"],
                     "records_sha256": p["records_sha256"], "n_failed": p["n_failed"]})  # fmt: skip
    lines = apply_cost(result, config, measured)
    if prov:
        result["provenance"]["cost_runs"] = prov
    return lines
