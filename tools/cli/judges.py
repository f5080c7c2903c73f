"""`mllm-safety judges validate` (a judge's error rates against human labels) and `mllm-safety rejudge` (new
judges' verdicts for a finished run's responses, without generating). Parse, call, print; the logic lives in
``baselines.judgeval``, ``baselines.labels``, ``baselines.rejudge`` and ``tools.catalog.judges_schema``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import Any

PUBLISHED = Path(__file__).resolve().parents[2] / "baselines" / "judges" / "data" / "published_agreement.yaml"
STAND_IN_BACKENDS = ("organism",)


def register(sub: Any) -> None:
    """Add the ``judges`` command group and the ``rejudge`` command."""
    judges = sub.add_parser("judges", help="measure judges against human labels")
    jsub = judges.add_subparsers(dest="judges_command", metavar="SUBCOMMAND", required=True)
    v = jsub.add_parser(
        "validate", help="a judge's accuracy, FPR, FNR, kappa (with intervals) vs human labels"
    )
    v.add_argument("judge", help="registered judge name (see `mllm-safety list judges`)")
    v.add_argument("--labels", required=True, help="label set: jbb | harmbench_text | harmbench_multimodal")
    v.add_argument("--path", required=True, help="the set's file in its official format (local path)")
    v.add_argument(
        "--behaviors", help="HarmBench behaviours CSV (default: the official layout next to the file)"
    )
    v.add_argument("--images", help="folder the multimodal set's image paths are relative to (optional)")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="judge Params override")
    v.add_argument("--limit", type=int, help="first N items only")
    v.add_argument("--batch-size", type=int, default=16, help="items per judge call (default 16)")
    v.add_argument("--catalog", help="catalog folder to write into (default: the repository's catalog/)")
    v.add_argument("--no-write", action="store_true", help="print the metrics only")
    v.set_defaults(func=cmd_validate)
    r = sub.add_parser("rejudge", help="add judges to a finished run without regenerating")
    r.add_argument("run", help="run directory (or its id under --runs-dir)")
    r.add_argument("--judge", action="append", required=True, help="judge to add (repeatable)")
    r.add_argument(
        "--set", action="append", default=[], metavar="judge.NAME.FIELD=VALUE", help="judge Params"
    )
    r.add_argument("--runs-dir", default="runs", help="where run directories are (default runs)")
    r.add_argument("--replace", action="store_true", help="judge again with a judge the run already has")
    r.add_argument(
        "--no-write-back", action="store_true", help="do not write the updated result to the catalog"
    )
    r.set_defaults(func=cmd_rejudge)


def _fmt(est: dict[str, Any] | None, pct: bool = True) -> str:
    if not est:
        return "—"
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.2f}")
    return f"{f(est['value'])} [{f(est['ci_low'])}, {f(est['ci_high'])}]"


def published_for(judge: str, label_set: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Published figures of ``judge`` on ``label_set`` whose ``params`` match the judge's Params."""
    import yaml

    table = yaml.safe_load(PUBLISHED.read_text(encoding="utf-8")) or {}
    out = []
    for fig in (table.get(judge) or {}).get(label_set) or []:
        if all(params.get(k) == v for k, v in (fig.get("params") or {}).items()):
            out.append({k: v for k, v in fig.items() if k != "params"})
    return out


def _stand_in_labels(judge: Any, set_name: str, source: str) -> list[str]:
    labels = []
    spec = str(getattr(judge.params, "model", "") or "")
    info = judge.model_info() if hasattr(judge, "model_info") else {}
    if (
        spec in STAND_IN_BACKENDS
        or info.get("smoke_test")
        or (info.get("n_parameters") or 10**9) < 50_000_000
    ):
        labels.append("stand-in judge model")
    if "fixture" in source.lower() or "stand-in" in source.lower():
        labels.append("stand-in labels")
    return labels


def cmd_validate(args: argparse.Namespace) -> int:
    """Score a judge against a human-labelled set; print and (unless --no-write) write catalog/judges/."""
    from baselines import registry
    from baselines.judgeval import judge_label_set, validation_metrics
    from baselines.labels import LabelSetError, load_label_set
    from baselines.runrequest import parse_value, resolve_spec
    from baselines.runresult import config_sha256, git_commit, library_versions, public_paths
    from tools.cli.run import fail, user_errors

    try:
        values = {}
        for item in args.set:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                return fail(
                    f"bad --set {item!r}: expected FIELD=VALUE (e.g. --set model=hf:cais/HarmBench-Llama-2-13b-cls)"
                )
            values[key.strip()] = parse_value(value)
        spec = resolve_spec("judge", args.judge, values)
        judge = registry.get("judge", args.judge)(spec.params)
        extra = {
            "behaviors_csv": args.behaviors and Path(args.behaviors),
            "images_root": args.images and Path(args.images),
        }
        label_set = load_label_set(args.labels, Path(args.path), **extra)
        if args.limit:
            label_set.items = label_set.items[: args.limit]
        print(f"judging {len(label_set.items)} items of {args.labels} with {args.judge} ...", file=sys.stderr)
        verdicts = judge_label_set(judge, label_set, batch_size=args.batch_size)
        summary = validation_metrics(label_set, verdicts)
    except (LabelSetError, *user_errors()) as e:
        return fail(str(e))
    cfg = judge.config()
    m = summary["metrics"]
    print(
        f"{args.judge} on {args.labels} ({summary['n_judged']} judged, {summary['unjudged']} unjudged of {summary['n_items']})"
    )
    for key in ("accuracy", "precision", "recall", "f1", "fpr", "fnr"):
        print(f"  {key:9s} {_fmt(m[key])}")
    print(f"  kappa     {_fmt(m['kappa'], pct=False)}")
    print(f"  confusion {m['confusion']}")
    if summary["unjudged_errors"]:
        print(f"  unjudged: {summary['unjudged_errors']}")
    for name, sm in summary["stored_judges"].items():
        print(f"  stored {name}: accuracy {_fmt(sm['accuracy'])}, kappa {_fmt(sm['kappa'], pct=False)}")
    if args.no_write:
        return 0
    from tools.catalog.judges_schema import write_validation
    from tools.catalog.model import CatalogError, default_root

    data = {
        "judge": args.judge,
        "judge_config": public_paths(cfg),
        "judge_config_sha256": config_sha256(cfg),
        "judge_model": public_paths(judge.model_info() if hasattr(judge, "model_info") else {}),
        "label_set": {"name": label_set.name, "format": label_set.format, "source": label_set.source,
                      "checksum": label_set.checksum, "n_items": len(label_set.items), "limit": args.limit},
        **summary,
        "published": published_for(args.judge, label_set.name, cfg.get("params", {})),
        "labels": _stand_in_labels(judge, label_set.name, str(args.path)),
        "notes": label_set.notes,
        "provenance": {**git_commit(), "libraries": library_versions(), "batch_size": args.batch_size},
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    try:
        path = write_validation(data, Path(args.catalog) if args.catalog else default_root())
    except CatalogError as e:
        return fail("; ".join(str(i) for i in e.issues))
    print(f"wrote {path}")
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    """Add judges to a finished run; print per-judge ASR; write the result back unless asked not to."""
    from baselines.rejudge import rejudge
    from baselines.runconfig import RunConfig
    from baselines.runrequest import parse_sets
    from tools.cli.run import fail, user_errors

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        run_dir = Path(args.runs_dir) / args.run
    try:
        sets = parse_sets(args.set)
        unknown = [k for k in sets if k and k.removeprefix("judge.") not in args.judge]
        if unknown or "" in sets:
            return fail(
                f"rejudge takes only judge.<name>.<field>=value for the judges given; got {sorted(sets)}"
            )
        outcome = rejudge(run_dir, {j: sets.get(f"judge.{j}", {}) for j in args.judge}, replace=args.replace)
    except user_errors() as e:
        return fail(str(e))
    for name in args.judge:
        print(f"{name}: {outcome.judged[name]} records judged, {outcome.unjudged[name]} unjudged")
    if outcome.images_missing:
        print(
            f"note: {outcome.images_missing} records' images could not be rebuilt; judges saw their text only"
        )
    for c in outcome.result["conditions"]:
        for j in c["judges"]:
            if j["judge"] in args.judge:
                print(
                    f"  {c['condition']:24s} {j['judge']:16s} ASR {_fmt(j['asr'])} (unjudged {j['unjudged']})"
                )
    from baselines.runstore import RunStore
    from tools.cli.run import write_back

    meta_cfg = RunConfig.model_validate(RunStore(outcome.run_dir).read_meta()["config"])
    return write_back(outcome.result, meta_cfg, args.no_write_back)
