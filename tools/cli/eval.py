"""`mllm-safety eval <benchmark>`: a benchmark with no attack, scored by its official rule, written back.

Parse, call, print: the choices and defaults are :class:`baselines.evaluate.EvalRequest`, the run is the harness
(:func:`baselines.evaluate.evaluate`), the write-back is shared with `mllm-safety run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = "run a benchmark with no attack and its official scoring (siuo, mossbench, mssbench, vlsbench, ...)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `eval` to the `mllm-safety` parser."""
    p = subparsers.add_parser("eval", help=HELP, description=HELP)
    p.add_argument("benchmark", help="registered dataset (mllm-safety list datasets)")
    p.add_argument(
        "--path", help="folder holding the benchmark's official files (the loader names the layout)"
    )
    p.add_argument("--model", help="organism (default) | hf:<id or path>[@rev] | openai:<model>")
    p.add_argument("--base-url", dest="base_url", help="endpoint of an openai:<model>")
    p.add_argument(
        "--judge", dest="judges", action="append", help="a judge beside the official one(s); repeatable"
    )
    p.add_argument("--no-official", dest="official", action="store_false", default=None,
                   help="leave out the benchmark's official judge(s) (e.g. no API judge offline)")  # fmt: skip
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="samples per generate call")
    p.add_argument("--shard", help="i/n: partition i (0-based) of n")
    p.add_argument("--set", dest="sets", action="append", help="dataset.k=v, judge.<name>.k=v, model.k=v")
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, help="answer length")
    p.add_argument("--temperature", type=float, help="sampling temperature (0 = greedy)")
    p.add_argument("--seed", type=int, help="generation and bootstrap seed")
    p.add_argument(
        "--runs-dir", default=None, help="where run directories go (default $MLLM_SAFETY_RUNS or runs)"
    )
    p.add_argument("--no-write-back", action="store_true", help="do not write the result into the catalog")
    p.add_argument(
        "--fresh", action="store_true", help="discard earlier records of this run instead of resuming"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=cmd_eval)


def format_scores(result: dict[str, Any], counts: dict[str, int]) -> str:
    """The official scores of each condition, one per line, with intervals."""
    from tools.cli.report import fmt_estimate

    lines = []
    for cond in result["conditions"]:
        by = ", ".join(f"{k}: {v}" for k, v in (cond.get("scored_by") or {}).items())
        lines.append(f"official scores ({cond['condition']}; scored by {by or 'no judge in this run'}):")
        for key, est in (cond.get("scores") or {}).items():
            lines.append(f"  {key:<40} {fmt_estimate(est)}")
    lines += [f"  {k:<40} {v}" for k, v in counts.items()]
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    """Build the eval run, execute it, print the summary and the official scores, write the result back."""
    from baselines.evaluate import EvalRequest, evaluate
    from baselines.runrequest import default_runs_dir
    from tools.cli.report import format_summary
    from tools.cli.run import fail, user_errors, write_back

    choices = {k: getattr(args, k, None) for k in EvalRequest.model_fields}
    runs_dir = Path(args.runs_dir or default_runs_dir())
    try:
        request = EvalRequest(**{k: v for k, v in choices.items() if v is not None})
        config = request.config()
        got = evaluate(
            request, runs_dir, fresh=args.fresh, progress=not args.no_progress, threads=args.threads
        )
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the records written so far are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    except user_errors() as e:
        return fail(str(e))
    except ValueError as e:  # pydantic validation of the options
        return fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    out = got.outcome
    print(format_summary(got.result, run_dir=out.run_dir, n_new=out.n_new, n_resumed=out.n_resumed))
    print(format_scores(got.result, got.counts))
    for judge, error in out.first_errors.items():
        print(f"  unjudged by {judge}, first error: {' '.join(error.split())[:300]}")
    return write_back(got.result, config, args.no_write_back)
