"""Results tables and pages (reproduced numbers beside reported ones) and the baselines page.

Only metrics are published: a Result carries no model response, and nothing here reads samples.jsonl.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tools.catalog.schema import Estimate, Paper, ReportedResult, Result
from tools.site.ctx import (
    BASELINES_PAGE,
    RESULTS_INDEX,
    BaselineInfo,
    Ctx,
    component_anchor,
    paper_page,
    results_page,
)
from tools.site.svg import rate_bars_svg
from tools.site.util import breakable_path, esc, fmt_rate, front_matter, href

INSTRUMENT_NOTE = (
    '!!! warning "Test-instrument numbers: model organism"\n'
    "    Rows labelled **smoke-test model** or **model organism** come from the project's offline model\n"
    "    organism, a test instrument that checks the pipeline end to end. They are **not** a proxy for any\n"
    "    real model's safety and must not be compared with the numbers papers report.\n\n"
)


def model_label(r: Result) -> str:
    """A short name of the model a result was measured on."""
    m = r.model
    return str(m.get("id") or m.get("name") or m.get("backend") or "?")


def result_labels(r: Result) -> list[str]:
    """The result's labels plus the model's own labels, without duplicates."""
    extra = r.model.get("labels") or []
    out: list[str] = []
    for lab in [*r.labels, *(extra if isinstance(extra, list) else [extra])]:
        if str(lab) not in out:
            out.append(str(lab))
    return out


def is_instrument(r: Result) -> bool:
    """True for results of the smoke-test model / model organism (a test instrument)."""
    text = " ".join(result_labels(r)).lower()
    return "smoke" in text or "organism" in text or r.model.get("backend") == "organism"


def instrument_label(r: Result) -> str:
    """'model organism' or 'smoke-test model' (what the result's own labels say), for captions."""
    return "smoke-test model" if "smoke" in " ".join(result_labels(r)).lower() else "model organism"


def fmt_est(e: Estimate | None) -> str:
    """'41.0% [33.2–48.5]' for an estimate with its 95% CI."""
    if e is None:
        return "—"
    return (
        f'<span class="atlas-est">{fmt_rate(e.value)} '
        f"<small>[{100 * e.ci_low:.1f}–{100 * e.ci_high:.1f}]</small></span>"
    )


def breakable(name: str) -> str:
    """``name`` escaped, with a line-break opportunity after each ``+`` and ``_`` (``figstep+adashield_a``)."""
    return esc(name).replace("+", "+<wbr>").replace("&#95;", "&#95;<wbr>")  # esc writes _ as &#95;


def _label_badges(r: Result) -> str:
    badges = []
    for lab in result_labels(r):
        cls = "atlas-badge atlas-badge--warn" if is_instrument(r) else "atlas-badge"
        badges.append(f'<span class="{cls}">{esc(lab)}</span>')
    return " ".join(badges)


def results_table(results: list[Result], ctx: Ctx, page: str) -> str:
    """One HTML table row per (result file, condition, judge) with 95% CIs (cards on a phone screen)."""
    head = (
        "<tr><th>Model</th><th>Dataset</th><th>Condition</th><th>Defense</th><th>Judge</th>"
        "<th>ASR (95% CI)</th><th>n</th><th>Benign refusal (95% CI)</th></tr>"
    )
    rows = []
    for r in results:
        inst = " atlas-row--instrument" if is_instrument(r) else ""
        for c in r.conditions:
            for j in c.judges:
                n = j.asr.n if j.asr else c.n_samples
                rows.append(
                    f'<tr class="atlas-result{inst}"><td data-label="Model">{esc(model_label(r))}<br>{_label_badges(r)}</td>'
                    f'<td data-label="Dataset">{esc(r.dataset.get("name", "?"))}</td>'
                    f'<td data-label="Condition">{breakable(c.condition)}</td>'
                    f'<td data-label="Defense">{breakable(c.defense or r.defense or "—")}</td>'
                    f'<td data-label="Judge">{esc(j.judge)}</td>'
                    f'<td data-label="ASR (95% CI)">{fmt_est(j.asr)}'
                    + (f'<br><span class="atlas-muted">mean score {fmt_est(j.mean_score)}</span>' if j.mean_score else "")
                    + f'</td><td data-label="n">{n}</td>'
                    f'<td data-label="Benign refusal">{fmt_est(j.refusal_rate_benign)}</td></tr>'
                )
    return (
        f'<div class="atlas-scroll"><table class="atlas-results atlas-stack"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def reported_table(paper: Paper, ctx: Ctx, rows_of: list[ReportedResult] | None = None) -> str:
    """The numbers a paper reports (all of them, or ``rows_of``), as an HTML table."""
    rows = "".join(
        f'<tr><td data-label="Model">{esc(ctx.term_name("models", x.model))}</td>'
        f'<td data-label="Dataset">{esc(ctx.term_name("datasets", x.dataset))}</td>'
        f'<td data-label="Condition">{breakable(x.condition or "—")}</td><td data-label="Metric">{esc(x.metric)}</td>'
        f'<td data-label="Value">{fmt_rate(x.value)}</td><td data-label="Judge">{esc(x.judge or "—")}</td>'
        f'<td data-label="Where">{esc(x.where or "")}</td><td data-label="Notes">{esc(x.notes or "")}</td></tr>'
        for x in (paper.reported_results if rows_of is None else rows_of)
    )
    return (
        '<div class="atlas-scroll"><table class="atlas-reported atlas-stack"><thead><tr><th>Model</th>'
        "<th>Dataset</th><th>Condition</th><th>Metric</th><th>Value</th><th>Judge</th><th>Where</th>"
        f"<th>Notes</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def result_chart(r: Result) -> str:
    """An SVG of ASR per condition and judge, with CI whiskers."""
    rows = [
        (f"{c.condition} · {j.judge}", j.asr.value, j.asr.ci_low, j.asr.ci_high)
        for c in r.conditions
        for j in c.judges
        if j.asr is not None
    ]
    title = f"ASR on {model_label(r)} / {r.dataset.get('name', '?')}" + (
        f" ({instrument_label(r)})" if is_instrument(r) else ""
    )
    return rate_bars_svg(rows, title=title)


def render_results_pages(ctx: Ctx) -> dict[str, str]:
    """results/index.md and one page per baseline that has results."""
    pages: dict[str, str] = {}
    lines = [front_matter("Reproduced results"), "# Reproduced results\n"]
    lines.append(
        "Numbers the project measured by running its baselines (`mllm-safety run ...`). Each result is "
        "written back into `catalog/results/` with the full configuration and provenance needed to rerun "
        "it. See [Methodology](../methodology.md) for how to read them.\n"
    )
    if not ctx.by_baseline:
        lines.append("No results yet: run a baseline to produce one.\n")
    if any(is_instrument(r) for r in ctx.results):
        lines.append(INSTRUMENT_NOTE)
    from tools.site.matrix import render_matrix  # the matrix builds on this module's helpers

    lines.append(render_matrix(ctx, RESULTS_INDEX))
    rows = []
    for baseline, results in ctx.by_baseline.items():
        page = results_page(baseline)
        for r in results:
            rows.append(_summary_row(baseline, r, ctx, href(RESULTS_INDEX, page)))
        pages[page] = _baseline_results_page(baseline, results, ctx, page)
    if rows:
        lines.append('<h2 id="files">Every result file</h2>\n')
        lines.append(
            "One row per result file: the attack success rate of each condition (first judge), harmful "
            "requests; the baseline's page has every judge, the confidence intervals and the paper's numbers.\n"
        )
        lines.append(
            '<div class="atlas-scroll"><table class="atlas-results atlas-stack"><thead><tr><th>Baseline</th>'
            "<th>Paper</th><th>Model</th><th>Dataset</th><th>ASR by condition</th><th>Benign refusal by condition</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>\n"
        )
    pages[RESULTS_INDEX] = "\n".join(lines)
    return pages


def short_title(title: str) -> str:
    """A paper's name before its subtitle (``FigStep: Jailbreaking ...`` -> ``FigStep``) when it has a short one."""
    head = title.split(":")[0].strip()
    return head if ":" in title and 0 < len(head) <= 40 else title


def _summary_row(baseline: str, r: Result, ctx: Ctx, link: str) -> str:
    """A results-index row: baseline, paper, model (with its labels), dataset, per-condition rates."""
    paper = ctx.papers.get(r.paper_id or "")
    title = (
        f'<a href="{href(RESULTS_INDEX, paper_page(paper.id))}" title="{esc(paper.title)}">'
        f"{esc(short_title(paper.title))}</a>"
        if paper
        else "—"
    )

    def rates(metric: str) -> str:
        parts = []
        for c in r.conditions:
            est = getattr(c.judges[0], metric) if c.judges else None
            parts.append(f"{breakable(c.condition)}: {fmt_rate(est.value) if est else '—'}")
        return "<br>".join(parts)

    inst = " atlas-row--instrument" if is_instrument(r) else ""
    return (
        f'<tr class="atlas-result{inst}"><td data-label="Baseline"><a href="{link}"><code>{breakable(baseline)}</code></a></td>'
        f'<td data-label="Paper">{title}</td><td data-label="Model">{esc(model_label(r))}<br>{_label_badges(r)}</td>'
        f'<td data-label="Dataset">{esc(r.dataset.get("name", "?"))}</td><td data-label="ASR">{rates("asr")}</td>'
        f'<td data-label="Benign refusal">{rates("refusal_rate_benign")}</td></tr>'
    )


def _baseline_results_page(baseline: str, results: list[Result], ctx: Ctx, page: str) -> str:
    out = [front_matter(f"Results: {baseline}"), f"<h1>Results: <code>{esc(baseline)}</code></h1>\n"]
    paper_ids = sorted({r.paper_id for r in results if r.paper_id})
    for pid in paper_ids:
        p = ctx.papers.get(pid)
        if p is not None:
            out.append(f'<p>Paper: <a href="{href(page, paper_page(pid))}">{esc(p.title)}</a></p>\n')
    if any(is_instrument(r) for r in results):
        out.append(INSTRUMENT_NOTE)
    out.append("## Table\n")
    out.append(results_table(results, ctx, page) + "\n")
    out.append("## Charts\n")
    for r in results:
        out.append(f'<div class="atlas-figure">{result_chart(r)}</div>\n')
    from tools.site.compare import pairs, side_by_side_table  # compare builds on this module

    for pid in paper_ids:
        p = ctx.papers.get(pid)
        if p is not None and p.reported_results:
            found = pairs(p, results, ctx)
            if found:
                out.append("## Reported and reproduced on the same setup\n")
                out.append(side_by_side_table(found, ctx) + "\n")
            out.append("## Reported by the paper\n")
            out.append(
                "<p>Every number the paper reports; only the rows above share model, dataset and judge "
                "with a run of the project.</p>\n"
            )
            out.append(reported_table(p, ctx) + "\n")
    out.append("## Provenance\n")
    for r in results:
        path = ctx.result_files.get(r.run_id)
        where = f" — file <code>{esc(path)}</code>" if path else ""
        prov = r.provenance
        out.append(
            f"<p><code>{esc(r.run_id)}</code>{where}: created {esc(r.created)}, "
            f"package {esc(prov.get('package_version', '?'))}, commit <code>{esc(str(prov.get('git_commit', '?'))[:12])}</code>, "
            f"dataset checksum <code>{esc(str(r.dataset.get('checksum', '?'))[:16])}</code></p>\n"
        )
    return "\n".join(out)


def _code_name(name: str) -> str:
    """A registry name restricted to identifier characters (it is printed inside Markdown code)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "", name) or "?"


def command_for(b: BaselineInfo) -> str:
    """The exact command that runs (or uses) a component."""
    name = _code_name(b.name)
    if b.kind in ("attack", "defense"):
        return f"mllm-safety run {name}"
    if b.kind == "judge":
        return f"mllm-safety run figstep --judge {name}"
    if b.kind == "dataset":
        return f"mllm-safety run figstep --dataset {name}"
    return f"mllm-safety run figstep --model {name}"


def _fmt_default(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


DEVIATION_FIELDS = (("what", "What"), ("official", "Official code"), ("ours", "Here"), ("why", "Why"),
                    ("effect", "Expected effect"))  # fmt: skip


def deviations_table(deviations: list[dict[str, Any]]) -> str:
    """A component's declared deviations from the official code, as a table (cards on a phone)."""
    rows = "".join(
        "<tr>"
        + "".join(f'<td data-label="{lab}">{esc(d.get(k, ""))}</td>' for k, lab in DEVIATION_FIELDS)
        + "</tr>"
        for d in deviations
    )
    head = "".join(f"<th>{lab}</th>" for _k, lab in DEVIATION_FIELDS)
    return (
        '<p><strong>Deviations from the official code</strong></p><div class="atlas-scroll">'
        f'<table class="atlas-params atlas-stack"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    )


def _breakable_value(text: str) -> str:
    """A default value escaped, with line-break opportunities after ``/``, ``:``, ``_``, ``-`` and before ``@``
    (model ids such as ``stabilityai/stable-diffusion-xl-refiner-1.0`` wrap on a phone between parts, never
    inside one)."""
    return breakable_path(text).replace("&#95;", "&#95;<wbr>").replace("-", "-<wbr>")


def params_table(params: list[dict[str, Any]]) -> str:
    """A component's parameters (name, type, default, description) as a table, or a line saying none."""
    if not params:
        return "<p>No parameters.</p>"
    rows = "".join(
        f'<tr><td data-label="Parameter"><code>{esc(f["name"])}</code></td>'
        f'<td data-label="Type"><code>{esc(f.get("type", ""))}</code></td>'
        f'<td data-label="Default"><code>{_breakable_value(_fmt_default(f.get("default")))}</code></td>'
        f'<td data-label="Description">{esc(f.get("doc", ""))}</td></tr>'
        for f in params
    )
    return (
        '<div class="atlas-scroll"><table class="atlas-params atlas-stack"><thead><tr><th>Parameter</th>'
        f"<th>Type</th><th>Default</th><th>Description</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def render_baselines_page(ctx: Ctx) -> str:
    """Every registered component: its paper, parameters with defaults and docs, the command to run it."""
    page = BASELINES_PAGE
    out = [front_matter("Baselines"), "# Baselines\n"]
    out.append(
        "Every attack, defense and judge the project implements, with its paper, its parameters (defaults "
        "from the paper) and the command that runs it. Override a parameter with `--set key=value`; "
        "`mllm-safety list` prints the same registry.\n"
    )
    titles = {
        "attack": "Attacks",
        "defense": "Defenses",
        "judge": "Judges",
        "dataset": "Datasets",
        "model": "Models",
    }
    for kind, title in titles.items():
        comps = [b for b in ctx.baselines if b.kind == kind]
        if not comps:
            continue
        out.append(f"## {title} {{#{title.lower()}}}\n")
        for b in comps:
            name = _code_name(b.name)
            out.append(f"### `{name}` {{#{component_anchor(kind, b.name)}}}\n")
            parts = [f"<p>{esc(b.summary) or '<em>no summary</em>'}</p>"]
            p = ctx.papers.get(b.paper_id or "")
            if p is not None:
                parts.append(f'<p>Paper: <a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a></p>')
            elif b.paper_id:
                parts.append(f"<p>Paper id: <code>{esc(b.paper_id)}</code> (not in the catalog)</p>")
            if b.needs_white_box:
                parts.append('<p><span class="atlas-badge">needs white-box (gradient) access</span></p>')
            if b.name in ctx.by_baseline:
                parts.append(f'<p><a href="{href(page, results_page(b.name))}">Reproduced results</a></p>')
            if b.deviations:
                parts.append(deviations_table(b.deviations))
            else:
                parts.append("<p>No deviations from the official code declared.</p>")
            parts.append(params_table(b.params))
            out.append("".join(parts) + "\n")
            out.append(f"```bash\n{command_for(b)}\n```\n")
    return "\n".join(out)
