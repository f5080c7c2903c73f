"""`mllm-safety run | list | merge | rerun`: run a baseline through the harness and write its result back.

Errors a person can cause (unknown names, bad --set, bad --shard, missing data, unreachable endpoint) print
one line and exit 2. Ctrl-C keeps the records written so far (rerun the same command to resume) and never
writes a catalog file.

Commands only (parse, call, print): the run's choices and defaults are :mod:`baselines.runrequest`, a rerun's
config and the write-back decision :mod:`baselines.rerun`, the run itself :mod:`baselines.harness`; the write
into the catalog is :func:`tools.catalog.store.write_result`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from tools.cli.report import format_generation, format_summary

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


#: The commands of this module with their one-line help (all that ``mllm-safety --help`` needs).
COMMANDS = {
    "run": "run an attack or defense baseline through the harness",
    "list": "list registered attacks, defenses, judges, models, datasets",
    "merge": "combine the shard runs of one configuration into one result",
    "rerun": "repeat a run from a result file's recorded config",
}


def register(subparsers: argparse._SubParsersAction, *, detailed: bool = True) -> None:
    """Add run, list, merge and rerun to the `mllm-safety` parser (run's defaults and help come from
    :class:`baselines.runrequest.RunRequest`). With ``detailed=False`` only their names and one-line help are
    added: enough for ``mllm-safety --help`` and for parsing any other command, without importing pydantic and
    the registry (the entry point builds the detailed parsers when one of these commands is used)."""
    if not detailed:
        for name, text in COMMANDS.items():
            subparsers.add_parser(name, help=text)
        return
    from baselines.runrequest import RunRequest, default_runs_dir, field_help

    p = subparsers.add_parser("run", help=COMMANDS["run"])
    p.add_argument(
        "baseline",
        nargs="+",
        help=RunRequest.model_fields["baseline"].description
        + "; several baselines or a plan .yaml file run in sequence in one process, the model loaded once",
    )
    for name in ("model", "base_url", "dataset", "defense", "attack", "device"):
        p.add_argument(f"--{name.replace('_', '-')}", help=field_help(RunRequest, name))
    p.add_argument(
        "--judge", dest="judges", metavar="JUDGE", action="append", help=field_help(RunRequest, "judges")
    )
    p.add_argument("--limit", type=int, help=field_help(RunRequest, "limit"))
    p.add_argument("--batch-size", type=int, help=field_help(RunRequest, "batch_size"))
    p.add_argument(
        "--shard",
        help="i/n: run partition i (0-based) of n; combine with `mllm-safety merge`. Universal attacks "
        "(e.g. imgjp, which optimise one image over all prompts) then see only this shard's samples, so "
        "their image differs per shard and from an unsharded run",
    )
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        metavar="KEY=VALUE",
        help="Params override: key (the baseline), model.k, dataset.k, defense.k, attack.k, judge.<name>.k",
    )
    p.add_argument("--max-new-tokens", type=int, help=field_help(RunRequest, "max_new_tokens"))
    p.add_argument("--temperature", type=float, help=field_help(RunRequest, "temperature"))
    p.add_argument("--seed", type=int, help=field_help(RunRequest, "seed"))
    from tools.cli.cost import add_arguments as add_cost_arguments

    add_cost_arguments(p)
    add_common(p, default_runs_dir())
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("list", help=COMMANDS["list"])
    p.add_argument(
        "kind",
        nargs="?",
        type=lambda k: k if k in LIST_KINDS else f"{k}s" if f"{k}s" in LIST_KINDS else k,  # 'defense' too
        choices=sorted(LIST_KINDS),
        help="only this kind",
    )
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("merge", help=COMMANDS["merge"])
    p.add_argument("run_dirs", nargs="+", type=Path, help="run directories (runs/<run id>)")
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="merge shards that were cut short; the result is labelled partial (and named so)",
    )
    add_cost_arguments(p)
    add_common(p, default_runs_dir(), fresh=False)
    p.set_defaults(func=cmd_merge)

    p = subparsers.add_parser("rerun", help=COMMANDS["rerun"])
    p.add_argument("result_file", type=Path, help="catalog/results/<baseline>/<...>.yaml")
    p.add_argument("--batch-size", type=int, help="override the recorded batch size")
    add_common(p, default_runs_dir())
    p.set_defaults(func=cmd_rerun)


def add_common(p: argparse.ArgumentParser, runs_dir: str, *, fresh: bool = True) -> None:
    """Options shared by run, merge and rerun."""
    p.add_argument("--runs-dir", default=runs_dir, help=f"where run directories go (default {runs_dir})")
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
    """Print each registered component with its paper id and one-line summary (defenses: their default
    evaluation attack)."""
    from baselines import registry

    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for plural in kinds:
        comps = registry.all_components(LIST_KINDS[plural])
        print(f"{plural} ({len(comps)}):")
        width = max((len(n) for n in comps), default=0)
        pwidth = max((len(c.paper_id or "-") for c in comps.values()), default=0)
        for name, cls in comps.items():
            attack = getattr(cls, "default_attack", None) if plural == "defenses" else None
            against = f" [--attack default: {attack}]" if attack else ""
            print(f"  {name:<{width}}  {cls.paper_id or '-':<{pwidth}}  {cls.summary}{against}")
    return 0


def run_request(args: argparse.Namespace) -> Any:
    """The RunRequest of the parsed `run` arguments (options not given keep RunRequest's defaults)."""
    from baselines.runrequest import RunRequest

    choices = {name: getattr(args, name, None) for name in RunRequest.model_fields}
    if isinstance(choices["baseline"], list) and len(choices["baseline"]) == 1:  # `run` takes several names
        choices["baseline"] = choices["baseline"][0]
    return RunRequest.parse(**choices)


def cmd_run(args: argparse.Namespace) -> int:
    """Build the RunConfig from the arguments and execute it (several runs: :mod:`tools.cli.multirun`)."""
    from baselines.multirun import is_plan

    names = args.baseline if isinstance(args.baseline, list) else [args.baseline]
    if len(names) > 1 or is_plan(names[0]):
        from tools.cli.multirun import cmd_run_many

        return cmd_run_many(args)
    args.baseline = names[0]
    try:
        request = run_request(args)
        config = request.config()
    except user_errors() as e:
        return fail(str(e))
    hint = request.command_line(runs_dir=args.runs_dir, no_write_back=args.no_write_back)
    return execute_and_report(config, args, resume_hint=hint)


def execute_and_report(config: Any, args: argparse.Namespace, *, resume_hint: str) -> int:
    """Run ``config``; print the summary; write the result back unless told not to (or a shard). A run in
    which no sample was judged exits 1 and writes nothing; an interrupted or stopped run says how to resume."""
    from baselines.base import BackendError
    from baselines.harness import run
    from baselines.http import redact_urls

    runs_dir = Path(args.runs_dir)
    hint = redact_urls(resume_hint)
    kept = f"the records written so far are kept in {runs_dir / config.run_id()}/samples.jsonl"
    try:
        outcome = run(config, runs_dir, fresh=args.fresh, progress=not args.no_progress, threads=args.threads)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {kept}; no result was written. Resume with:\n  {hint}", file=sys.stderr)
        return 130
    except OSError as e:
        return fail(
            f"cannot write the run's records: {e.strerror or type(e).__name__}: {e.filename or runs_dir}; "
            "choose a writable folder with --runs-dir (or $MLLM_SAFETY_RUNS)"
        )
    except user_errors() as e:
        code = fail(str(e))
        if isinstance(e, BackendError):  # stopped mid-run (endpoint down, bad key): say how to go on
            has_records = (runs_dir / config.run_id() / "samples.jsonl").is_file()
            print(
                f"{kept if has_records else 'no record written'}; once fixed, resume with:\n  {hint}",
                file=sys.stderr,
            )
        return code
    summary = format_summary(
        outcome.result, run_dir=outcome.run_dir, n_new=outcome.n_new, n_resumed=outcome.n_resumed
    )
    print(summary)
    if outcome.n_retried:
        print(f"  retried {outcome.n_retried} record(s) that had failed in an earlier invocation")
    print(format_generation(outcome.conditions))
    for judge, error in outcome.first_errors.items():
        print(f"  unjudged by {judge}, first error: {' '.join(error.split())[:300]}")
    from tools.cli.cost import measure as measure_cost

    measure_cost(outcome.result, config, args)  # over-refusal and utility beside ASR (defended runs)
    return write_back(outcome.result, config, args.no_write_back)


def write_back(result: dict[str, Any], config: Any, no_write_back: bool) -> int:
    """Validate and write the result into the catalog (atomic), printing where; or say why not. A result
    with no judged sample is an error (exit 1, nothing written); a partial one is written under its variant
    name (never over the complete result) and says why it is partial."""
    from baselines.rerun import write_back_skipped
    from baselines.runresult import unpublishable
    from tools.catalog.store import CatalogError, write_result

    empty = unpublishable(result)
    if empty:
        print(f"error: {empty}", file=sys.stderr)
        return 1
    for reason in result.get("partial") or []:
        print(f"  partial: {reason}")
    skipped = write_back_skipped(config, no_write_back)
    if skipped:
        print(skipped)
        return 0
    from tools.catalog.schema import Result
    from tools.catalog.store import result_path, superseded_partial

    stale = None
    try:
        res = Result.model_validate(result)
        if not res.partial:
            stale = superseded_partial(result_path(res), res.variant)
            stale = stale if stale.is_file() else None
    except Exception:  # noqa: BLE001 - write_result reports an invalid result with its location
        stale = None
    try:
        path = write_result(result)
    except CatalogError as e:
        return fail(f"result not written: {'; '.join(str(i) for i in e.issues)}")
    print(f"result: {path}" + (" (partial: its name says so)" if result.get("partial") else ""))
    if stale is not None and not stale.exists():
        print(f"  removed the partial result this complete run supersedes: {stale}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Combine shard runs into one run directory and one result."""
    from baselines.runresult import merge_runs

    try:
        result, out_dir = merge_runs(
            list(args.run_dirs), Path(args.runs_dir), allow_partial=args.allow_partial
        )
    except OSError as e:
        return fail(f"cannot merge: {e.strerror or type(e).__name__}: {e.filename or args.runs_dir}")
    except user_errors() as e:
        return fail(str(e))
    n = result["provenance"]["n_records"]
    print(format_summary(result, run_dir=out_dir, n_new=0, n_resumed=n))
    if result["config"].get("defense"):  # shards skip the cost step: the merged defense run measures it once
        from baselines.runconfig import RunConfig
        from tools.cli.cost import measure as measure_cost

        measure_cost(result, RunConfig.model_validate(result["config"]), args)
    return write_back(result, None, args.no_write_back)


def cmd_rerun(args: argparse.Namespace) -> int:
    """Repeat a run from the ``config`` recorded in a result file."""
    from baselines.rerun import rerun_config
    from tools.catalog.yamlio import YamlProblem, decode_utf8, parse_yaml

    def read(path: Path) -> Any:  # the catalog's hardened loader: no aliases (billion laughs), no tags
        try:
            return parse_yaml(decode_utf8(path.read_bytes())).data
        except YamlProblem as e:
            raise ValueError(f"line {e.line}: {e.message}") from None

    try:
        config = rerun_config(args.result_file, Path(args.runs_dir), batch_size=args.batch_size, read=read)
    except user_errors() as e:
        return fail(str(e))
    hint = f"mllm-safety rerun {shlex.quote(str(args.result_file))}"
    return execute_and_report(config, args, resume_hint=hint)
