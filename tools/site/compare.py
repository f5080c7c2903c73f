"""A paper's numbers: what it reports and what the project reproduced, side by side only on the same setup.

A reported number and a reproduced one are paired only when the model, the dataset, the judge and the
metric match (and the condition, when the paper names one). Everything else is shown separately, under
headings that say it is not comparable, so that a reader never reads two different setups as one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.catalog.schema import Estimate, Paper, ReportedResult, Result
from tools.site.ctx import Ctx, results_page
from tools.site.results import (
    INSTRUMENT_NOTE,
    breakable,
    fmt_est,
    is_instrument,
    model_label,
    reported_table,
    results_table,
)
from tools.site.util import esc, fmt_rate, href

# reported metric name -> the reproduced metric it is comparable with
_METRICS = {
    "asr": "asr",
    "attack_success_rate": "asr",
    "refusal_rate_benign": "refusal_rate_benign",
    "over_refusal": "refusal_rate_benign",
}


@dataclass(frozen=True)
class Pair:
    """A reported number and the reproduced estimate measured on the same model, dataset, judge, metric."""

    reported: ReportedResult
    result: Result
    condition: str
    judge: str
    estimate: Estimate


def _norm(s: object) -> str:
    return " ".join(str(s or "").lower().split())


def _names(vocab: str, term_id: str, ctx: Ctx) -> set[str]:
    """A vocabulary term's id, Hugging Face repo and aliases, normalised (what a result may call it)."""
    term = ctx.terms.get(vocab, {}).get(term_id)
    names = {term_id, getattr(term, "hf", None), *(getattr(term, "aliases", None) or [])}
    return {_norm(n) for n in names} - {""}


def same_model(rep: ReportedResult, r: Result, ctx: Ctx) -> bool:
    """The reported model (a vocabulary id) is the result's model (by id, HF repo or alias)."""
    names = _names("models", rep.model, ctx)
    return _norm(model_label(r)) in names or _norm(r.model.get("spec")) in {f"hf:{n}" for n in names}


def same_dataset(rep: ReportedResult, r: Result, ctx: Ctx) -> bool:
    """The reported dataset (a vocabulary id) is the result's dataset (by id or alias)."""
    return _norm(r.dataset.get("name")) in _names("datasets", rep.dataset, ctx)


def pairs(paper: Paper, results: list[Result], ctx: Ctx) -> list[Pair]:
    """Every (reported, reproduced) pair on the same model, dataset, judge, metric (and condition)."""
    out = []
    for rep in paper.reported_results:
        metric = _METRICS.get(_norm(rep.metric).replace(" ", "_"))
        if metric is None or not rep.judge:
            continue
        for r in results:
            if not same_dataset(rep, r, ctx) or not same_model(rep, r, ctx):
                continue
            for c in r.conditions:
                if rep.condition is not None and _norm(rep.condition) != _norm(c.condition):
                    continue
                for j in c.judges:
                    est = getattr(j, metric)
                    if est is not None and _norm(j.judge) == _norm(rep.judge):
                        out.append(Pair(rep, r, c.condition, j.judge, est))
    return out


def side_by_side_table(found: list[Pair], ctx: Ctx) -> str:
    """The paired numbers: setup, the paper's value, the project's value with its interval."""
    rows = "".join(
        f'<tr><td data-label="Model">{esc(ctx.term_name("models", p.reported.model))}</td>'
        f'<td data-label="Dataset">{esc(ctx.term_name("datasets", p.reported.dataset))}</td>'
        f'<td data-label="Judge">{esc(p.judge)}</td><td data-label="Condition">{breakable(p.condition)}</td>'
        f'<td data-label="Metric">{esc(p.reported.metric)}</td>'
        f'<td data-label="Paper reports">{fmt_rate(p.reported.value)}'
        + (f' <small class="atlas-muted">({esc(p.reported.where)})</small>' if p.reported.where else "")
        + f'</td><td data-label="Project measured">{fmt_est(p.estimate)}</td></tr>'
        for p in found
    )
    return (
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack"><thead><tr><th>Model</th>'
        "<th>Dataset</th><th>Judge</th><th>Condition</th><th>Metric</th><th>Paper reports</th>"
        f"<th>Project measured (95% CI)</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def render_paper_results(paper: Paper, ctx: Ctx, page: str) -> str:
    """The Results section of a paper page ('' when the paper has neither reported nor reproduced numbers)."""
    results = ctx.paper_results(paper)
    if not paper.reported_results and not results:
        return ""
    found = pairs(paper, results, ctx)
    paired_reps = {id(p.reported) for p in found}
    paired_runs = {id(p.result) for p in found}
    out = ["## Results\n"]
    if results and any(is_instrument(r) for r in results):
        out.append(INSTRUMENT_NOTE)
    if found:
        out.append("### Reported and reproduced on the same setup\n")
        out.append(
            "<p>Each row pairs a number the paper reports with the project's measurement on the same model, "
            "dataset, judge and metric.</p>\n"
        )
        out.append(side_by_side_table(found, ctx) + "\n")
    rest_reported = [x for x in paper.reported_results if id(x) not in paired_reps]
    rest_results = [r for r in results if id(r) not in paired_runs]
    if rest_reported:
        out.append(
            "### Reported by the paper, not reproduced on the same setup\n"
            if results
            else "### Reported by the paper\n"
        )
        if results:
            out.append(
                "<p>The project has no run on the same model, dataset and judge as these numbers, so they "
                "are not compared with the project's own.</p>\n"
            )
        out.append(reported_table(paper, ctx, rest_reported) + "\n")
    elif not paper.reported_results:
        out.append("### Reported by the paper\n")
        out.append("<p>No numbers from the paper are recorded in the catalog yet.</p>\n")
    if rest_results:
        out.append(
            "### Reproduced by the project on a different setup\n"
            if paper.reported_results
            else "### Reproduced by the project\n"
        )
        if paper.reported_results:
            out.append(
                "<p>Model, dataset or judge differ from every number the paper reports: read these on "
                "their own, not against the paper's.</p>\n"
            )
        out.append(results_table(rest_results, ctx, page) + "\n")
    if results:
        links = " · ".join(
            f'<a href="{href(page, results_page(b))}">all results of <code>{esc(b)}</code></a>'
            for b in sorted({r.baseline for r in results})
        )
        out.append(f"<p>{links}</p>\n")
    else:
        out.append("### Reproduced by the project\n")
        out.append("<p>Not reproduced yet.</p>\n")
    return "\n".join(out)
