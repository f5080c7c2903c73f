"""`mllm-safety run | list | merge | rerun`: run a baseline through the harness and write its result back.

Errors a person can cause (unknown names, bad --set, bad --shard, missing data, unreachable endpoint) print
one line and exit 2. Ctrl-C keeps the records written so far (rerun the same command to resume) and never
writes a catalog file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from tools.cli.report import format_summary

LIST_KINDS = {
    "attacks": "attack",
    "defenses": "defense",
    "judges": "judge",
    "models": "model",
    "datasets": "dataset",
}


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean a bad input (reported in one line, exit 2), not a bug."""
    from baselines.base import BackendError, DatasetError, ParamsError, WhiteBoxRequiredError
    from baselines.imaging import ImageLoadError
    from baselines.registry import UnknownComponentError
    from baselines.runconfig import RunConfigError
    from baselines.runstore import RunStoreError
    from tools.catalog.store import CatalogError

    return (
        UnknownComponentError,
        ParamsError,
        RunConfigError,
        RunStoreError,
        DatasetError,
        BackendError,
        WhiteBoxRequiredError,
        ImageLoadError,
        CatalogError,
    )


def fail(message: str) -> int:
    """Print one clear error line and return exit code 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def default_runs_dir() -> str:
    """Where run directories go: $MLLM_SAFETY_RUNS or ./runs."""
    return os.environ.get("MLLM_SAFETY_RUNS", "runs")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add run, list, merge and rerun to the `mllm-safety` parser."""
    p = subparsers.add_parser("run", help="run an attack or defense baseline through the harness")
    p.add_argument("baseline", help="registered attack or defense (see `mllm-safety list`)")
    p.add_argument(
        "--model", default="organism", help="organism (default) | hf:<id or path>[@rev] | openai:<model>"
    )
    p.add_argument("--base-url", help="OpenAI-compatible endpoint for openai:<model>")
    p.add_argument(
        "--dataset", default="bundled", help="dataset name, optionally name:path (default bundled)"
    )
    p.add_argument("--defense", help="defense to add as a third condition (attack baselines)")
    p.add_argument(
        "--attack",
        help="evaluation attack of a defense baseline (default: the defense's own `attack` Params field, "
        "e.g. visual_adv for cider, figstep for most)",
    )
    p.add_argument("--judge", action="append", help="judge(s), repeatable (default refusal)")
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--batch-size", type=int, default=8, help="samples per model.generate call (default 8)")
    p.add_argument(
        "--shard",
        help="i/n: run partition i (0-based) of n; combine with `mllm-safety merge`. Universal attacks "
        "(e.g. imgjp, which optimise one image over all prompts) then see only this shard's samples, so "
        "their image differs per shard and from an unsharded run",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="Params override: key (the baseline), model.k, dataset.k, defense.k, attack.k, judge.<name>.k",
    )
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    add_common(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("list", help="list registered attacks, defenses, judges, models, datasets")
    p.add_argument("kind", nargs="?", choices=sorted(LIST_KINDS), help="only this kind")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("merge", help="combine the shard runs of one configuration into one result")
    p.add_argument("run_dirs", nargs="+", type=Path, help="run directories (runs/<run id>)")
    add_common(p, fresh=False)
    p.set_defaults(func=cmd_merge)

    p = subparsers.add_parser("rerun", help="repeat a run from a result file's recorded config")
    p.add_argument("result_file", type=Path, help="catalog/results/<baseline>/<...>.yaml")
    p.add_argument("--batch-size", type=int, help="override the recorded batch size")
    add_common(p)
    p.set_defaults(func=cmd_rerun)


def add_common(p: argparse.ArgumentParser, *, fresh: bool = True) -> None:
    """Options shared by run, merge and rerun."""
    p.add_argument("--runs-dir", default=default_runs_dir(), help="where run directories go (default ./runs)")
    p.add_argument("--no-write-back", action="store_true", help="do not write the result into the catalog")
    if fresh:
        p.add_argument(
            "--fresh", action="store_true", help="discard earlier records of this run instead of resuming"
        )
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.add_argument(
            "--threads", type=int, help="torch CPU threads (default: 1 for small models on CPU, else torch's)"
        )


def cmd_list(args: argparse.Namespace) -> int:
    """Print each registered component with its paper id and one-line summary."""
    from baselines import registry

    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for plural in kinds:
        comps = registry.all_components(LIST_KINDS[plural])
        print(f"{plural} ({len(comps)}):")
        width = max((len(n) for n in comps), default=0)
        pwidth = max((len(c.paper_id or "-") for c in comps.values()), default=0)
        for name, cls in comps.items():
            print(f"  {name:<{width}}  {cls.paper_id or '-':<{pwidth}}  {cls.summary}")
    return 0


def command_line(args: argparse.Namespace) -> str:
    """The `mllm-safety run ...` command that reproduces ``args`` (printed to resume an interrupted run)."""
    parts = ["mllm-safety", "run", args.baseline]
    for flag in ("model", "base_url", "dataset", "defense", "attack", "limit", "shard"):
        value = getattr(args, flag)
        if value is not None and not (flag == "model" and value == "organism"):
            if not (flag == "dataset" and value == "bundled"):
                parts += [f"--{flag.replace('_', '-')}", str(value)]
    for j in args.judge or []:
        parts += ["--judge", j]
    for s in args.set or []:
        parts += ["--set", s]
    for flag, default in (("batch_size", 8), ("max_new_tokens", 128), ("temperature", 0.0), ("seed", 0)):
        if getattr(args, flag) != default:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    if args.runs_dir != default_runs_dir():
        parts += ["--runs-dir", str(args.runs_dir)]
    if args.no_write_back:
        parts.append("--no-write-back")
    return shlex.join(parts)


def cmd_run(args: argparse.Namespace) -> int:
    """Build the RunConfig from the arguments and execute it."""
    from baselines.runconfig import build_run_config

    try:
        config = build_run_config(
            args.baseline,
            model=args.model,
            base_url=args.base_url,
            dataset=args.dataset,
            defense=args.defense,
            attack=args.attack,
            judges=args.judge,
            limit=args.limit,
            batch_size=args.batch_size,
            shard=args.shard,
            sets=args.set,
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            temperature=args.temperature,
        )
    except user_errors() as e:
        return fail(str(e))
    return execute_and_report(config, args, resume_hint=command_line(args))


def execute_and_report(config: Any, args: argparse.Namespace, *, resume_hint: str) -> int:
    """Run ``config``; print the summary; write the result back unless told not to (or a shard)."""
    from baselines.harness import run

    runs_dir = Path(args.runs_dir)
    try:
        outcome = run(config, runs_dir, fresh=args.fresh, progress=not args.no_progress, threads=args.threads)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the records written so far are kept in {runs_dir / config.run_id()}/samples.jsonl; "
            f"no result was written. Resume with:\n  {resume_hint}",
            file=sys.stderr,
        )
        return 130
    except user_errors() as e:
        return fail(str(e))
    print(
        format_summary(
            outcome.result,
            run_dir=outcome.run_dir,
            n_new=outcome.n_new,
            n_resumed=outcome.n_resumed,
        )
    )
    for judge, error in outcome.first_errors.items():
        print(f"  unjudged by {judge}, first error: {' '.join(error.split())[:300]}")
    if config.shard:
        print(
            f"shard {config.shard[0]}/{config.shard[1]}: no result written; combine shards with `mllm-safety merge`"
        )
        return 0
    return write_back(outcome.result, args.no_write_back)


def write_back(result: dict[str, Any], skip: bool) -> int:
    """Validate and write the result into the catalog (atomic), printing where; or say it was skipped."""
    if skip:
        print("result not written (--no-write-back)")
        return 0
    from tools.catalog.store import CatalogError, write_result

    try:
        path = write_result(result)
    except CatalogError as e:
        return fail(f"result not written: {'; '.join(str(i) for i in e.issues)}")
    print(f"result: {path}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Combine shard runs into one run directory and one result."""
    from baselines.runresult import merge_runs

    try:
        result, out_dir = merge_runs(list(args.run_dirs), Path(args.runs_dir))
    except user_errors() as e:
        return fail(str(e))
    n = result["provenance"]["n_records"]
    print(format_summary(result, run_dir=out_dir, n_new=0, n_resumed=n))
    return write_back(result, args.no_write_back)


def hidden_paths(value: Any, where: str = "config") -> list[str]:
    """Where a recorded config holds a hidden local path ("<local>/name", see baselines.runresult)."""
    from baselines.runresult import LOCAL

    if isinstance(value, dict):
        return [h for k, v in value.items() for h in hidden_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [h for i, v in enumerate(value) for h in hidden_paths(v, f"{where}[{i}]")]
    return [f"{where}={value}"] if isinstance(value, str) and LOCAL in value else []


def local_config(data: dict[str, Any], runs_dir: Path) -> Any:
    """The full RunConfig of a published result whose local paths are hidden, from the original run's
    run.json under ``runs_dir`` (only when it is the same run: same config once paths are hidden); else None."""
    from baselines.runconfig import RunConfig
    from baselines.runresult import public_paths
    from baselines.runstore import RunStore, RunStoreError

    try:
        cfg = RunStore(runs_dir / str(data.get("run_id"))).read_meta()["config"]
    except (RunStoreError, OSError, KeyError, TypeError, ValueError):
        return None
    return RunConfig.model_validate(cfg) if public_paths(cfg) == data["config"] else None


def cmd_rerun(args: argparse.Namespace) -> int:
    """Repeat a run from the ``config`` recorded in a result file."""
    import yaml
    from pydantic import ValidationError

    from baselines.runconfig import RunConfig

    try:
        data = yaml.safe_load(args.result_file.read_text(encoding="utf-8"))
        config = RunConfig.model_validate(data["config"])
    except FileNotFoundError:
        return fail(f"result file not found: {args.result_file}")
    except (yaml.YAMLError, TypeError, KeyError) as e:
        return fail(
            f"{args.result_file}: not a result file with a 'config' mapping ({type(e).__name__}: {e})"
        )
    except ValidationError as e:
        return fail(f"{args.result_file}: recorded config is invalid: {e.errors()[0]['msg']}")
    hidden = hidden_paths(data["config"])
    if hidden:
        config = local_config(data, Path(args.runs_dir))
        if config is None:
            return fail(
                f"{args.result_file}: the recorded config hides local paths ({', '.join(hidden)}; results "
                f"never publish local folders) and {Path(args.runs_dir) / str(data.get('run_id'))}/run.json "
                "is not here to restore them; use --runs-dir <the runs folder of the original run>, or "
                "repeat it with `mllm-safety run` giving those paths"
            )
    if args.batch_size:
        config = config.model_copy(update={"batch_size": args.batch_size})
    hint = f"mllm-safety rerun {shlex.quote(str(args.result_file))}"
    return execute_and_report(config, args, resume_hint=hint)
