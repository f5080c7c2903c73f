"""The options of `mllm-safety run` that say how a defense's cost is measured, and the step that measures it.

After a run with a defended condition, :func:`measure` runs the companion runs of
:mod:`baselines.defense_cost` (utility set, and a benign set when asked) and writes ``over_refusal`` and
``utility`` into the Result before it is written back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--utility``, ``--utility-judge``, ``--judge-base-url``, ``--benign-set``, ``--no-cost``."""
    g = p.add_argument_group("a defense's cost (over-refusal and utility, with and without the defense)")
    g.add_argument("--utility", help="utility set: utility_bundled (default, packaged) or mmvet:<path>")
    g.add_argument(
        "--utility-judge",
        help="match (default: the MM-Vet grader's offline substring proxy) or the grader model (grader=llm), "
        "e.g. openai:gpt-4-0613",
    )
    g.add_argument("--judge-base-url", help="endpoint of an openai:<model> utility grader")
    g.add_argument(
        "--benign-set",
        help="over-refusal set: mossbench:<path> or vlguard:<path> (safe_safes); default: the run's benign items",
    )
    g.add_argument("--no-cost", action="store_true", help="do not measure the cost of the defense")


def measure(result: dict[str, Any], config: Any, args: argparse.Namespace) -> None:
    """Measure the cost of the run's defense (if any) into ``result`` and print it; a failure is printed, and the
    result keeps its ASR without the cost parts (the site then says "not measured")."""
    from baselines.defense_cost import CostSettings, add_cost

    if getattr(args, "no_cost", False) or not getattr(config, "defense", None):
        return
    settings = CostSettings(
        **{
            k: v
            for k, v in {
                "utility": getattr(args, "utility", None),
                "utility_judge": getattr(args, "utility_judge", None),
                "judge_base_url": getattr(args, "judge_base_url", None),
                "benign": getattr(args, "benign_set", None),
                "limit": config.limit,
            }.items()
            if v is not None
        }
    )
    try:
        lines = add_cost(
            result, config, Path(args.runs_dir), settings,
            progress=not getattr(args, "no_progress", False), threads=getattr(args, "threads", None),
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - the cost is reported as not measured, with the reason, never faked
        print(f"  cost of the defense not measured: {type(e).__name__}: {e}", file=sys.stderr)
        return
    if lines:
        print("cost of the defense (over-refusal: lower is better; utility: higher is better):")
        print("\n".join(lines))
