"""The readable summary of a run printed by `mllm-safety run`: condition x judge, ASR and benign refusal
rate with 95% CIs, unjudged counts, skipped dataset items, judge agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fmt_estimate(est: dict[str, Any] | None) -> str:
    """'12.5% [5.0, 21.3] n=80' or '-' when there is nothing to estimate."""
    if not est:
        return "-"
    return f"{100 * est['value']:5.1f}% [{100 * est['ci_low']:.1f}, {100 * est['ci_high']:.1f}] n={est['n']}"


def format_summary(
    result: dict[str, Any],
    *,
    run_dir: Path,
    n_new: int,
    n_resumed: int,
) -> str:
    """A plain-text table of a Result dict (metrics only), plus the defenses' decision counts per condition
    (``ConditionResult.decisions``)."""
    ds = result["dataset"]
    model = result["model"]
    labels = f" ({', '.join(result['labels'])})" if result.get("labels") else ""
    lines = [
        f"run {result['run_id']}",
        f"  model: {model.get('spec')}{labels}   dataset: {ds['name']} ({ds['n_samples']} samples, "
        f"{len(ds.get('skipped') or [])} skipped)",
        f"  records: {n_new} new, {n_resumed} resumed -> {Path(run_dir) / 'samples.jsonl'}",
        "",
    ]
    rows = [("condition", "judge", "ASR (harmful) [95% CI]", "refusal on benign [95% CI]", "unjudged")]
    for cond in result["conditions"]:
        for jm in cond["judges"]:
            rows.append(
                (
                    cond["condition"],
                    jm["judge"],
                    fmt_estimate(jm.get("asr")),
                    fmt_estimate(jm.get("refusal_rate_benign")),
                    str(jm.get("unjudged", 0)),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    for cond in result["conditions"]:
        if cond.get("decisions"):
            shown = ", ".join(f"{k} {t}/{n}" for k, (t, n) in cond["decisions"].items())
            lines.append(f"  decisions in {cond['condition']}: {shown}")
        if cond.get("queries"):
            q = cond["queries"]
            lines.append(
                f"  target queries per item in {cond['condition']}: mean {q['mean']:.2f}, max {q['max']:g}"
            )
    for sk in ds.get("skipped") or []:
        lines.append(f"  skipped {sk.get('id', '?')}: {sk.get('path', '?')}: {sk.get('error', '')}")
    for ag in result.get("agreement") or []:
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.3f}"
        lines.append(
            f"  agreement {ag['judges'][0]} vs {ag['judges'][1]}: Cohen's kappa {kappa} (n={ag['n']})"
        )
    return "\n".join(lines)


def format_generation(conditions: dict[str, Any]) -> str:
    """Per condition answered in this invocation: the back-end's mean latency per answer (from
    ``Response.latency_s``) and the generation throughput (answers per second of ``generate`` wall time).
    Printed only, never stored: timings differ from run to run, the records and the Result do not."""
    lines = []
    for name, st in conditions.items():
        if not st.n:
            continue
        latency = "-" if st.mean_latency_s is None else f"{st.mean_latency_s:.3f} s/answer"
        rate = "-" if st.samples_per_s is None else f"{st.samples_per_s:.1f} answers/s"
        lines.append(f"  generation in {name}: {st.n} answers, latency {latency}, throughput {rate}")
    return "\n".join(lines)
