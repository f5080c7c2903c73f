"""The judges page: every registered judge, its paper, parameters, declared deviations, the results it
scored, and how far it agrees with human labels and with other judges, from the results present.

Agreement comes from the results themselves: each result's ``agreement`` entries (Cohen's kappa between two
judges over the samples both decided). A judge-validation run (a judge scored against a human-labelled set)
is a result whose ``baseline`` is the judge's name or that carries a ``judge-validation`` label; the page fills
in as such results land, and says "not measured yet" until then.
"""

from __future__ import annotations

from tools.catalog.schema import Result
from tools.site.ctx import (
    BASELINES_PAGE,
    JUDGES_PAGE,
    BaselineInfo,
    Ctx,
    component_anchor,
    paper_page,
    results_page,
)
from tools.site.results import deviations_table, fmt_est, params_table
from tools.site.util import esc, front_matter, href


def is_validation(r: Result, judge: str) -> bool:
    """A result that validates ``judge`` against human labels."""
    return r.baseline == judge or (
        "judge-validation" in [str(x).lower() for x in r.labels]
        and any(j.get("judge") == judge for j in r.judges)
    )


def _human(name: str) -> bool:
    return "human" in name.lower()


def _kappa(k: float | None) -> str:
    return "—" if k is None else f"{k:.2f}"


def judge_rows(ctx: Ctx, judge: str) -> tuple[list[tuple], list[tuple], list[Result]]:
    """(agreement with human labels, agreement with other judges, results scored) for one judge.

    Agreement rows are (other party, kappa, n, result); human labels are a party whose name says 'human'."""
    human, others, scored = [], [], []
    for r in ctx.results:
        if any(j.get("judge") == judge for j in r.judges) or is_validation(r, judge):
            scored.append(r)
        for a in r.agreement:
            if judge not in a.judges:
                continue
            other = a.judges[1] if a.judges[0] == judge else a.judges[0]
            (human if _human(other) else others).append((other, a.kappa, a.n, r))
    return human, others, scored


def _agreement_table(rows: list[tuple], page: str, who: str) -> str:
    body = "".join(
        f'<tr><td data-label="{who}">{esc(other)}</td><td data-label="Cohen\'s kappa">{_kappa(k)}</td>'
        f'<td data-label="n">{n}</td><td data-label="Dataset">{esc(r.dataset.get("name", "?"))}</td>'
        f'<td data-label="Run"><a href="{href(page, results_page(r.baseline))}"><code>{esc(r.baseline)}</code></a></td></tr>'
        for other, k, n, r in rows
    )
    return (
        f'<div class="atlas-scroll"><table class="atlas-results atlas-stack"><thead><tr><th>{who}</th>'
        f"<th>Cohen's kappa</th><th>n</th><th>Dataset</th><th>Run</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _validation_rows(ctx: Ctx, judge: str, page: str) -> str:
    runs = [r for r in ctx.results if is_validation(r, judge)]
    if not runs:
        return ""
    body = []
    for r in runs:
        for c in r.conditions:
            for j in c.judges:
                body.append(
                    f'<tr><td data-label="Label set">{esc(r.dataset.get("name", "?"))}</td>'
                    f'<td data-label="Condition">{esc(c.condition)}</td><td data-label="Judge">{esc(j.judge)}</td>'
                    f'<td data-label="Positive rate">{fmt_est(j.asr)}</td><td data-label="n">{c.n_samples}</td></tr>'
                )
    return (
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack"><thead><tr><th>Label set</th>'
        f"<th>Condition</th><th>Judge</th><th>Positive rate</th><th>n</th></tr></thead><tbody>{''.join(body)}"
        "</tbody></table></div>"
    )


def _judge_section(b: BaselineInfo, ctx: Ctx, page: str) -> str:
    human, others, scored = judge_rows(ctx, b.name)
    out = [f'<h2 id="{component_anchor("judge", b.name)}"><code>{esc(b.name)}</code></h2>\n']
    parts = [f"<p>{esc(b.summary) or '<em>no summary</em>'}</p>"]
    p = ctx.papers.get(b.paper_id or "")
    if p is not None:
        parts.append(f'<p>Paper: <a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a></p>')
    elif b.paper_id:
        parts.append(f"<p>Paper id: <code>{esc(b.paper_id)}</code> (not in the catalog)</p>")
    else:
        parts.append("<p>Not tied to one paper: the project's own plumbing or a shared protocol.</p>")
    parts.append(f'<p><a href="{href(page, BASELINES_PAGE, component_anchor("judge", b.name))}">'
                 "Parameters and command on the baselines page</a></p>")  # fmt: skip
    out.append("".join(parts) + "\n")
    out.append("<h3>Parameters</h3>\n" + params_table(b.params) + "\n")
    if b.deviations:
        out.append(deviations_table(b.deviations) + "\n")
    out.append("<h3>Agreement with human labels</h3>\n")
    validation = _validation_rows(ctx, b.name, page)
    if human:
        out.append(_agreement_table(human, page, "Human labels") + "\n")
    if validation:
        out.append(validation + "\n")
    if not human and not validation:
        out.append(
            "<p>Not measured yet: no result in the catalog scores this judge against human-labelled "
            "responses. Read its verdicts as the judge's, not as ground truth.</p>\n"
        )
    out.append("<h3>Agreement with other judges</h3>\n")
    out.append(
        _agreement_table(others, page, "Other judge") + "\n"
        if others
        else "<p>No run has scored the same responses with this judge and another one yet.</p>\n"
    )
    out.append("<h3>Results it scored</h3>\n")
    if scored:
        links = ", ".join(
            f'<a href="{href(page, results_page(b2))}"><code>{esc(b2)}</code></a>'
            for b2 in sorted({r.baseline for r in scored})
        )
        out.append(f"<p>{len(scored)} result file{'s' if len(scored) != 1 else ''}: {links}</p>\n")
    else:
        out.append("<p>None yet.</p>\n")
    return "\n".join(out)


def render_judges_page(ctx: Ctx) -> str:
    """judges.md: a summary table of the registered judges, then one section per judge."""
    page = JUDGES_PAGE
    judges = [b for b in ctx.baselines if b.kind == "judge"]
    out = [front_matter("Judges"), "# Judges\n"]
    out.append(
        "<p>A judge decides whether a model's answer counts as a successful attack (and, where it can, whether "
        "the model refused). Every attack success rate on this site is a judge's verdict, so it is only as "
        "good as the judge; results name the judge they used, and a number is comparable with another only "
        "under the same judge.</p>\n"
    )
    if not judges:
        out.append("<p>No judge is registered.</p>\n")
        return "\n".join(out)
    rows = []
    for b in judges:
        human, others, scored = judge_rows(ctx, b.name)
        validated = bool(human) or any(is_validation(r, b.name) for r in ctx.results)
        validated = validated or any(v.judge == b.name for v in getattr(ctx, "judge_validations", []))
        p = ctx.papers.get(b.paper_id or "")
        paper = f'<a href="{href(page, paper_page(p.id))}">{esc(p.title)}</a>' if p else "—"
        rows.append(
            f'<tr><th scope="row" data-label="Judge"><a href="#{component_anchor("judge", b.name)}">'
            f'<code>{esc(b.name)}</code></a></th><td data-label="What it does">{esc(b.summary)}</td>'
            f'<td data-label="Paper">{paper}</td><td data-label="Results scored">{len(scored)}</td>'
            f'<td data-label="Human agreement">{"measured" if validated else "not measured yet"}</td></tr>'
        )
    out.append(
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack" id="judges-summary"><thead><tr>'
        "<th>Judge</th><th>What it does</th><th>Paper</th><th>Results scored</th><th>Human agreement</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>\n"
    )
    from tools.site.judge_tables import sensitivity_section, validation_section  # issue 14: measured tables

    out.append(validation_section(ctx) + sensitivity_section(ctx, page))
    for b in judges:
        out.append(_judge_section(b, ctx, page))
    return "\n".join(out)
