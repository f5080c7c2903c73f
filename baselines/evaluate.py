"""Evaluation-only runs: a benchmark, no attack, its official scoring (``mllm-safety eval <benchmark>``).

An :class:`EvalRequest` becomes a :class:`~baselines.runconfig.RunConfig` of kind ``eval`` with one condition
(``no-attack``), the benchmark's dataset and its official judge(s) (:data:`DEFAULT_JUDGES`, plus any judge asked
for beside them). The harness runs it like any run (batched, resumable, records in ``runs/<run id>/``); then
:func:`baselines.scoring.official_scores` turns the records into the benchmark's own metric, written into the
Result's condition as ``scores`` (each with its interval) and ``scored_by`` (which judge, and whether it is a
proxy). The Result is written back like an attack's, under ``catalog/results/<benchmark>/``, and the paper page of
the benchmark shows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from baselines import registry
from baselines.params import StrictParams
from baselines.runconfig import Condition, GenerationSettings, RunConfig, RunConfigError
from baselines.runrequest import field_default, parse_sets, parse_shard, resolve_spec

CONDITION = "no-attack"
#: The official judge(s) of each benchmark and the judge settings its scoring assumes (``--judge`` adds more).
DEFAULT_JUDGES: dict[str, list[str]] = {
    "siuo": ["siuo"],
    "mossbench": ["mossbench"],
    "mssbench": ["mssbench"],
    "vlsbench": ["vlsbench"],
    "mmvet": ["mmvet"],
    "vlguard": ["refusal"],
    "harmbench_mm": ["harmbench"],
    "msts": ["refusal"],
}
JUDGE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "vlguard": {"refusal": {"list": "vlguard"}},  # VLGuard's own keyword list (check_success_attack)
}
#: SIUO's multiple-choice answer length (``eval/generation-gpt4o-mcqa.py``: ``max_tokens=5``).
SIUO_MC_MAX_TOKENS = 5
#: Judges whose verdicts can stand in for a benchmark's official judge, labelled "(proxy)" in the result.
PROXIES: dict[str, tuple[str, ...]] = {"mossbench": ("refusal",), "vlguard": ("refusal",)}


class EvalRequest(StrictParams):
    """The choices of one `mllm-safety eval` command; :meth:`config` validates them into a RunConfig."""

    benchmark: str = Field(description="registered dataset (see `mllm-safety list datasets`)")
    path: str | None = Field(None, description="where the benchmark's official files are (dataset path)")
    model: str = Field(
        field_default(RunConfig, "model"), description=RunConfig.model_fields["model"].description
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint for openai:<model>")
    judges: list[str] = Field(default_factory=list, description="judges beside the benchmark's official ones")
    official: bool = Field(True, description="include the benchmark's official judge(s)")
    limit: int | None = Field(None, gt=0, description=RunConfig.model_fields["limit"].description)
    batch_size: int = Field(
        field_default(RunConfig, "batch_size"), gt=0, description="samples per generate call"
    )
    shard: str | None = Field(None, description="i/n: partition i (0-based) of n")
    sets: list[str] = Field(
        default_factory=list, description="Params overrides: dataset.k=v, judge.<name>.k=v, model.k=v"
    )
    max_new_tokens: int = Field(
        field_default(GenerationSettings, "max_new_tokens"), gt=0, description="answer length"
    )
    temperature: float = Field(
        field_default(GenerationSettings, "temperature"), ge=0, description="temperature"
    )
    seed: int = Field(field_default(GenerationSettings, "seed"), description="generation and bootstrap seed")

    def judge_names(self, dataset_params: dict[str, Any]) -> list[str]:
        """The official judge(s) (SIUO's multiple choice has none: its rule reads the answers) then the extras."""
        official = list(DEFAULT_JUDGES.get(self.benchmark, [])) if self.official else []
        if self.benchmark == "siuo" and dataset_params.get("task") == "mcqa":
            official = []
        names = official + [j for j in self.judges if j not in official]
        if not names:
            names = ["refusal"]  # a run needs one judge; SIUO-MC is scored from the answers
        return names

    def answer_length(self, dataset_params: dict[str, Any]) -> int:
        """``max_new_tokens``, or where it was not chosen the benchmark's own: SIUO's multiple choice asks for
        the option's letter with ``max_tokens=5`` (``eval/generation-gpt4o-mcqa.py``), and the letter parser
        reads the whole answer, so a longer one could name other letters."""
        if "max_new_tokens" not in self.model_fields_set:
            if self.benchmark == "siuo" and dataset_params.get("task") == "mcqa":
                return SIUO_MC_MAX_TOKENS
        return self.max_new_tokens

    def config(self) -> RunConfig:
        """Validate into a RunConfig of kind ``eval`` (unknown names and bad --set raise clear errors)."""
        from baselines.runrequest import RunRequest

        if self.benchmark not in registry.names("dataset"):
            raise RunConfigError(
                f"unknown benchmark {self.benchmark!r}; valid: {', '.join(registry.names('dataset'))}"
            )
        overrides = parse_sets(self.sets)
        ds_values = dict(overrides.pop("dataset", {}))
        if self.path:
            ds_values.setdefault("path", self.path)
        dataset = resolve_spec("dataset", self.benchmark, ds_values)
        judges = []
        for j in self.judge_names(dataset.params):
            values = {**JUDGE_DEFAULTS.get(self.benchmark, {}).get(j, {}), **overrides.pop(f"judge.{j}", {})}
            judges.append(resolve_spec("judge", j, values))
        backend = RunRequest(
            baseline=self.benchmark, model=self.model, base_url=self.base_url, batch_size=self.batch_size
        )
        model_params = backend.model_params(overrides.pop("model", {}))  # the run command's own rules
        if overrides:
            raise RunConfigError(f"--set targets {', '.join(k or '(none)' for k in overrides)} match no component "
                                 "of an eval run (use dataset.k=v, judge.<name>.k=v, model.k=v)")  # fmt: skip
        return RunConfig(
            baseline=self.benchmark,
            baseline_kind="eval",
            model=self.model,
            model_params=model_params,
            base_url=self.base_url,
            dataset=dataset,
            judges=judges,
            generation=GenerationSettings(
                max_new_tokens=self.answer_length(dataset.params),
                temperature=self.temperature,
                seed=self.seed,
            ),
            batch_size=self.batch_size,
            limit=self.limit,
            shard=parse_shard(self.shard),
            conditions=[Condition(name=CONDITION)],
        )


def default_eval_config(cfg: dict[str, Any]) -> RunConfig | None:
    """The RunConfig `mllm-safety eval` builds for the same benchmark, path, model and endpoint with every other
    choice at its default (:func:`baselines.runresult.scope` compares a result's config with it)."""
    try:
        config = RunConfig.model_validate(cfg)
        return EvalRequest(
            benchmark=config.baseline,
            path=config.dataset.params.get("path"),
            model=config.model,
            base_url=config.base_url,
            batch_size=config.batch_size,
        ).config()
    except Exception:  # noqa: BLE001 - an unbuildable default only means "not the default run"
        return None


def scorer(benchmark: str, judges: list[str]) -> tuple[str | None, bool]:
    """The judge the official scores read (None: none in the run) and whether it is a proxy."""
    from baselines.scoring import OFFICIAL_JUDGE

    official = OFFICIAL_JUDGE.get(benchmark)
    if official in judges:
        return official, False
    proxy = next((j for j in PROXIES.get(benchmark, ()) if j in judges), None)
    return proxy, proxy is not None


def add_scores(
    result: dict[str, Any], records: Iterable[dict[str, Any]], benchmark: str, seed: int
) -> dict[str, int]:
    """Write the official scores into each condition of ``result`` (``scores``, ``scored_by``); returns the
    counts that are not rates (unjudged items, unparsed MC answers) for the summary."""
    from baselines.scoring import OFFICIAL_JUDGE, official_scores

    judges = [j["label"] for j in result["judges"]]
    judge, proxy = scorer(benchmark, judges)
    counts: dict[str, int] = {}
    # a benchmark without scoring of its own (JailBreakV, MSTS, ...): no score to compute, no record to read
    unscored = judge is None and OFFICIAL_JUDGE.get(benchmark) is None and benchmark != "siuo"
    for cond in result["conditions"]:
        if unscored:
            cond["scores"] = {}
            continue
        recs = [r for r in records if r["condition"] == cond["condition"]]
        got = official_scores(benchmark, recs, seed=seed, judge=judge or "")
        cond["scores"] = {k: v for k, v in got.items() if isinstance(v, dict)}
        counts.update({k: v for k, v in got.items() if isinstance(v, int)})
        if cond["scores"]:
            mc = benchmark == "siuo" and any(k.endswith("mc_accuracy") for k in got)
            cond["scored_by"] = {
                benchmark: "answer letter rule" if mc else f"{judge}{' (proxy)' if proxy else ''}"
            }
    return counts


@dataclass
class EvalOutcome:
    """What an eval run produced: the harness's outcome with the scores added, and the non-rate counts."""

    outcome: Any  # baselines.harness.RunOutcome
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def result(self) -> dict[str, Any]:
        """The Result dict (with ``scores``)."""
        return self.outcome.result


def evaluate(request: EvalRequest, runs_dir: Path, *, components: Any = None, **kwargs: Any) -> EvalOutcome:
    """Run the benchmark through the harness and add its official scores to the Result. ``components``: the
    live objects to use instead of loading them (tests pass a fake model; see ``harness.Components``)."""
    from baselines import harness
    from baselines.runresult import StoredRecords
    from baselines.runstore import RunStore

    config = request.config()
    if components is None:
        outcome = harness.run(config, runs_dir, **kwargs)
    else:
        outcome = harness.execute(config, components, runs_dir, **kwargs)
    records = StoredRecords(RunStore(outcome.run_dir))  # read per condition, only where a benchmark scores
    counts = add_scores(outcome.result, records, request.benchmark, config.generation.seed)
    return EvalOutcome(outcome, counts)
