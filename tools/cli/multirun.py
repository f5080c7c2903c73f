"""`mllm-safety run A B C ...` and `mllm-safety run plan.yaml`: several runs in one process, the model loaded
once (:mod:`baselines.multirun`). Each run prints its summary and is written back as if run alone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tools.cli.run import execute_and_report, fail, user_errors


def entries_of(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The runs named on the command line: baseline names and plan files, in order."""
    from baselines.multirun import is_plan, read_plan
    from tools.catalog.yamlio import YamlProblem, decode_utf8, parse_yaml

    def read(path: Path) -> Any:  # the catalog's hardened loader: no aliases, no tags
        try:
            return parse_yaml(decode_utf8(path.read_bytes())).data
        except YamlProblem as e:
            raise ValueError(f"line {e.line}: {e.message}") from None

    out: list[dict[str, Any]] = []
    for name in args.baseline:
        out += read_plan(Path(name), read) if is_plan(name) else [{"baseline": name}]
    return out


def cmd_run_many(args: argparse.Namespace) -> int:
    """Validate every run first, then run them in sequence; exit with the first non-zero code (0 if none)."""
    from baselines.multirun import build_requests, configs_of, run_sequence
    from baselines.runrequest import RunRequest

    try:
        shared = {name: getattr(args, name, None) for name in RunRequest.model_fields}
        requests = build_requests(entries_of(args), shared)
        configs = configs_of(requests)
    except user_errors() as e:
        return fail(str(e))
    n = len(configs)

    def run_one(i: int, config: Any) -> int:
        print(f"\n== run {i + 1}/{n}: {requests[i].baseline}", file=sys.stderr)
        hint = requests[i].command_line(runs_dir=args.runs_dir, no_write_back=args.no_write_back)
        return execute_and_report(config, args, resume_hint=hint)

    codes, loads = run_sequence(configs, run_one)
    done = sum(1 for c in codes if c == 0)
    print(f"\n{done} of {n} runs succeeded in one process; models loaded: {loads}")
    if len(codes) < n:
        print(f"stopped before run {len(codes) + 1}; rerun the same command to resume", file=sys.stderr)
    return next((c for c in codes if c != 0), 0)
