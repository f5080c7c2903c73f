"""The judges page's measured sections: every judge x human-labelled set (``catalog/judges/``) with the published
figures beside ours, and for each baseline how far its ASR moves across judges (per-judge ASR with 95% intervals,
a figure, and the pairwise agreement of the judges over the same responses). Pure functions of the context.
"""

from __future__ import annotations

from typing import Any

from tools.site.results import fmt_est
from tools.site.svg import rate_bars_svg
from tools.site.util import esc, href


def _iv(x: Any, pct: bool = True) -> str:
    if x is None:
        return "—"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.2f}")
    return f'<span class="atlas-est">{f(x.value)} <small>[{f(x.ci_low)}–{f(x.ci_high)}]</small></span>'


def _published(v: Any) -> str:
    if not v.published:
        return "—"
    out = []
    for p in v.published:
        value = f"{100 * p.value:.1f}%" if p.metric in ("accuracy", "fpr", "fnr", "f1") else f"{p.value:g}"
        flag = "" if p.verified else " <small>(unverified)</small>"
        out.append(f'<span title="{esc(p.source)}">{esc(p.metric)} {value}{flag}</span>')
    return "<br>".join(out)


def validation_section(ctx: Any) -> str:
    """A table of every judge x validation set in ``ctx.judge_validations`` (empty string when none)."""
    vals = sorted(
        getattr(ctx, "judge_validations", None) or [], key=lambda v: (v.judge, v.label_set.get("name", ""))
    )
    if not vals:
        return (
            '<h2 id="validation">Judges against human labels</h2>\n<p>No judge has been validated yet: run '
            "<code>mllm-safety judges validate &lt;judge&gt; --labels jbb|harmbench_text|harmbench_multimodal "
            "--path &lt;file&gt;</code>.</p>\n"
        )
    rows = []
    for v in vals:
        m = v.metrics
        model = v.judge_model.get("id") or v.judge_config.get("params", {}).get("model") or "—"
        tags = "".join(f' <span class="atlas-badge">{esc(t)}</span>' for t in v.labels)
        rows.append(
            f'<tr><th scope="row" data-label="Judge"><code>{esc(v.judge)}</code>{tags}</th>'
            f'<td data-label="Label set">{esc(v.label_set.get("name", "?"))}</td>'
            f'<td data-label="Judge model"><code>{esc(str(model))}</code></td>'
            f'<td data-label="Judged / unjudged">{v.n_judged} / {v.unjudged}</td>'
            f'<td data-label="Accuracy">{_iv(m.accuracy)}</td><td data-label="FPR">{_iv(m.fpr)}</td>'
            f'<td data-label="FNR">{_iv(m.fnr)}</td><td data-label="F1">{_iv(m.f1)}</td>'
            f'<td data-label="Kappa">{_iv(m.kappa, pct=False)}</td>'
            f'<td data-label="Published">{_published(v)}</td></tr>'
        )
    return (
        '<h2 id="validation">Judges against human labels</h2>\n<p>Each row scores one judge against the majority of '
        "human annotators on a labelled set (positive = jailbroken). Proportions have Wilson 95% intervals, F1 and "
        "Cohen's kappa bootstrap ones; unjudged items are left out and counted. <em>stand-in</em> rows use a tiny "
        "or offline judge model or synthetic labels: they test the pipeline, not the judge.</p>\n"
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack" id="judge-validation"><thead><tr>'
        "<th>Judge</th><th>Label set</th><th>Judge model</th><th>Judged / unjudged</th><th>Accuracy</th><th>FPR</th>"
        "<th>FNR</th><th>F1</th><th>Kappa</th><th>Published</th></tr></thead><tbody>"
        f"{''.join(rows)}</tbody></table></div>\n"
    )


def sensitivity_rows(ctx: Any) -> dict[str, list[tuple[Any, Any, list[Any]]]]:
    """Baseline -> [(result, condition, judge metrics with an ASR)] for conditions scored by two or more judges."""
    out: dict[str, list[tuple[Any, Any, list[Any]]]] = {}
    for r in ctx.results:
        for c in r.conditions:
            judged = [j for j in c.judges if j.asr is not None]
            if len(judged) >= 2:
                out.setdefault(r.baseline, []).append((r, c, judged))
    return out


def sensitivity_section(ctx: Any, page: str) -> str:
    """Per baseline: ASR under every judge with intervals, its spread, a figure, and pairwise agreement."""
    from tools.site.ctx import results_page

    groups = sensitivity_rows(ctx)
    head = '<h2 id="judge-sensitivity">Judge sensitivity</h2>\n'
    if not groups:
        return (
            head
            + "<p>No result has been scored by two or more judges yet (<code>mllm-safety run ... --judge refusal --judge harmbench</code>, or <code>mllm-safety rejudge &lt;run&gt;</code>).</p>\n"
        )
    out = [head, "<p>The same responses, judged by different judges: how far a baseline's attack success rate "
           "moves with the judge alone. Spread = highest minus lowest ASR across judges.</p>\n"]  # fmt: skip
    for baseline, items in sorted(groups.items()):
        out.append(f'<h3 id="sensitivity-{esc(baseline)}"><a href="{href(page, results_page(baseline))}"><code>'
                   f"{esc(baseline)}</code></a></h3>\n")  # fmt: skip
        bars, rows = [], []
        for r, c, judged in items:
            model = r.model.get("id") or r.model.get("spec") or "?"
            values = [j.asr.value for j in judged]
            spread = max(values) - min(values)
            for j in judged:
                bars.append((f"{c.condition} · {j.judge}", j.asr.value, j.asr.ci_low, j.asr.ci_high))
            cells = "".join(f"<li><code>{esc(j.judge)}</code> {fmt_est(j.asr)}"
                            + (f" <small>({j.unjudged} unjudged)</small>" if j.unjudged else "") + "</li>"
                            for j in judged)  # fmt: skip
            kappas = ", ".join(
                f"{esc(a.judges[0])}–{esc(a.judges[1])} κ={'—' if a.kappa is None else f'{a.kappa:.2f}'} (n={a.n})"
                for a in r.agreement
            )
            rows.append(
                f'<tr><td data-label="Model"><code>{esc(str(model))}</code></td><td data-label="Dataset">'
                f'{esc(r.dataset.get("name", "?"))}</td><td data-label="Condition">{esc(c.condition)}</td>'
                f'<td data-label="ASR per judge"><ul class="atlas-plain">{cells}</ul></td>'
                f'<td data-label="Spread">{100 * spread:.1f} pts</td><td data-label="Agreement">{kappas or "—"}</td></tr>'
            )
        out.append(rate_bars_svg(bars, title=f"{baseline}: ASR by judge") + "\n")
        out.append(
            '<div class="atlas-scroll"><table class="atlas-results atlas-stack judge-sensitivity"><thead><tr>'
            "<th>Model</th><th>Dataset</th><th>Condition</th><th>ASR per judge (95% CI)</th><th>Spread</th>"
            f"<th>Pairwise agreement</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>\n"
        )
    return "".join(out)
