"""Compare at a glance: an attack x (model, dataset, judge) matrix of ASR and a defense table, from every
reproduced result (``catalog/results/``), each number with its 95% interval.

A column is one setup (model, dataset, judge); numbers in different columns come from different setups.
When several result files measured the same attack on the same setup (the undefended reference of every
defense run repeats its attack), the cell shows the attack's own run when there is one, else the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.catalog.schema import ConditionResult, Estimate, Result
from tools.site.ctx import BASELINES_PAGE, RESULTS_INDEX, Ctx, results_page
from tools.site.results import breakable, fmt_est, instrument_label, is_instrument, model_label
from tools.site.util import esc, href

NO_ATTACK = "(no attack: text only)"


@dataclass(frozen=True)
class Setup:
    """A column of the matrix: what was attacked, on which data, judged how."""

    model: str
    dataset: str
    judge: str
    instrument: str  # '' for a real model, else 'model organism' / 'smoke-test model'

    def label(self) -> str:
        """Plain-text name of the setup (for data-label on a phone)."""
        return f"{self.model} · {self.dataset} · {self.judge}"


@dataclass(frozen=True)
class DefenseRow:
    """One defense measured against one attack on one setup, with the undefended reference of the same run."""

    defense: str
    attack: str
    setup: Setup
    asr: Estimate | None
    asr_undefended: Estimate | None
    refusal: Estimate | None
    refusal_undefended: Estimate | None
    baseline: str
    utility: Estimate | None = None
    utility_undefended: Estimate | None = None
    utility_by: str = ""  # how utility was measured (scored_by), shown on hover
    over_refusal_by: str = ""  # the benign set, when over-refusal comes from one other than the run's own items


def _setup(r: Result, judge: str) -> Setup:
    return Setup(model_label(r), str(r.dataset.get("name", "?")), judge,
                 instrument_label(r) if is_instrument(r) else "")  # fmt: skip


def attack_matrix(results: list[Result]) -> tuple[list[str], list[Setup], dict[tuple[str, Setup], tuple]]:
    """(attacks, setups, cells): cell (attack, setup) -> (ASR estimate, baseline that measured it)."""
    cells: dict[tuple[str, Setup], tuple] = {}
    for r in results:
        for c in r.conditions:
            if c.defense is not None:
                continue
            attack = c.attack or NO_ATTACK
            for j in c.judges:
                if j.asr is None:
                    continue
                key = (attack, _setup(r, j.judge))
                if key not in cells or r.baseline == attack:  # the attack's own run wins
                    cells[key] = (j.asr, r.baseline)
    attacks = sorted({a for a, _ in cells}, key=lambda a: (a == NO_ATTACK, a))
    setups = sorted({s for _, s in cells}, key=lambda s: (s.instrument != "", s.model, s.dataset, s.judge))
    return attacks, setups, cells


def defense_rows(results: list[Result]) -> list[DefenseRow]:
    """Every defended condition with the same run's undefended condition of the same attack."""
    out = []
    for r in results:
        for c in r.conditions:
            if c.defense is None:
                continue
            ref = next((x for x in r.conditions if x.defense is None and x.attack == c.attack), None)
            cost = _cost(c, ref)
            for j in c.judges:
                rj = next((x for x in ref.judges if x.judge == j.judge), None) if ref else None
                refusal = (j.refusal_rate_benign, rj.refusal_rate_benign if rj else None)
                if cost["over_refusal_by"]:  # a separate benign set (MOSSBench, VLGuard safe_safes): run-level
                    refusal = (cost["over_refusal"], cost["over_refusal_undefended"])
                out.append(DefenseRow(
                    c.defense, c.attack or NO_ATTACK, _setup(r, j.judge), j.asr, rj.asr if rj else None,
                    *refusal, r.baseline, cost["utility"], cost["utility_undefended"], cost["utility_by"],
                    cost["over_refusal_by"]))  # fmt: skip
    return sorted(out, key=lambda d: (d.defense, d.attack, d.setup.model, d.setup.judge))


def _cost(c: ConditionResult, ref: ConditionResult | None) -> dict:
    """The cost parts a run measured (``scores``: baselines.defense_cost) for a defended condition and its
    reference; over-refusal only when it comes from a benign set other than the run's own items."""
    from baselines.defense_cost import OWN_ITEMS

    ref_scores = ref.scores if ref else {}
    by = c.scored_by.get("over_refusal", "")
    own = not by or OWN_ITEMS in by
    return {"utility": c.scores.get("utility"), "utility_undefended": ref_scores.get("utility"),
            "utility_by": c.scored_by.get("utility", ""), "over_refusal_by": "" if own else by,
            "over_refusal": c.scores.get("over_refusal"),
            "over_refusal_undefended": ref_scores.get("over_refusal")}  # fmt: skip


def _utility_cell(d: DefenseRow) -> str:
    if d.utility is None and d.utility_undefended is None:
        return '<span class="atlas-muted">not measured</span>'
    return (f'<span title="{esc(d.utility_by)}">{fmt_est(d.utility_undefended)} → {fmt_est(d.utility)}</span>'
            + (' <small class="atlas-muted">(proxy grader)</small>' if "proxy" in d.utility_by else ""))  # fmt: skip


def _setup_head(s: Setup) -> str:
    badge = (
        f'<br><span class="atlas-badge atlas-badge--warn">{esc(s.instrument)}</span>' if s.instrument else ""
    )
    return f"{esc(s.model)}{badge}<br><small>{esc(s.dataset)} · judge {esc(s.judge)}</small>"


def render_matrix(ctx: Ctx, page: str = RESULTS_INDEX) -> str:
    """The two comparison tables, as HTML with headings (Markdown), or a line saying there are none."""
    attacks, setups, cells = attack_matrix(ctx.results)
    out = ['<h2 id="attack-matrix">Attacks × model × judge</h2>\n']
    if not cells:
        out.append("<p>No attack has been run yet.</p>\n")
    else:
        out.append(
            "<p>Attack success rate (harmful requests answered, per the judge) with its exact 95% (Clopper–Pearson) "
            "interval. One column per setup: model, dataset and judge. Click an attack for its runs.</p>\n"
        )
        head = "".join(f"<th>{_setup_head(s)}</th>" for s in setups)
        rows = []
        for a in attacks:
            name = (
                f'<a href="{href(page, results_page(a))}"><code>{breakable(a)}</code></a>'
                if a in ctx.by_baseline
                else (f"<code>{breakable(a)}</code>" if a != NO_ATTACK else esc(a))
            )
            tds = "".join(
                f'<td data-label="{esc(s.label())}">{fmt_est(cells[(a, s)][0]) if (a, s) in cells else "—"}</td>'
                for s in setups
            )
            rows.append(f'<tr><th scope="row" data-label="Attack">{name}</th>{tds}</tr>')
        out.append(
            '<div class="atlas-scroll"><table class="atlas-results atlas-matrix atlas-stack" id="matrix-attacks">'
            f"<thead><tr><th>Attack</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>\n"
        )
    drows = defense_rows(ctx.results)
    out.append('<h2 id="defense-table">Defenses</h2>\n')
    if not drows:
        out.append("<p>No defense has been run yet.</p>\n")
        return "\n".join(out)
    out.append(
        "<p>Each defense against an attack, beside the same run without the defense: attack success rate "
        "(lower is better), refusals of benign requests, i.e. over-refusal (lower is better; the run's benign "
        "items, or the benign set named on hover), and utility, the mean MM-Vet-format score on a utility set "
        "without attack (no defense → defended; higher is better; hover for the set and grader). A run that did "
        "not measure utility says so.</p>\n"
    )
    body = []
    for d in drows:
        name = (
            f'<a href="{href(page, results_page(d.baseline))}"><code>{breakable(d.defense)}</code></a>'
            if d.baseline in ctx.by_baseline
            else f"<code>{breakable(d.defense)}</code>"
        )
        inst = " atlas-row--instrument" if d.setup.instrument else ""
        body.append(
            f'<tr class="atlas-result{inst}"><th scope="row" data-label="Defense">{name}</th>'
            f'<td data-label="Attack"><code>{breakable(d.attack)}</code></td>'
            f'<td data-label="Setup">{_setup_head(d.setup)}</td>'
            f'<td data-label="ASR, no defense">{fmt_est(d.asr_undefended)}</td>'
            f'<td data-label="ASR, defended">{fmt_est(d.asr)}</td>'
            f'<td data-label="Over-refusal, no defense">{fmt_est(d.refusal_undefended)}</td>'
            f'<td data-label="Over-refusal, defended"><span title="{esc(d.over_refusal_by)}">{fmt_est(d.refusal)}'
            f'</span></td><td data-label="Utility, no defense → defended">{_utility_cell(d)}</td></tr>'
        )
    out.append(
        '<div class="atlas-scroll"><table class="atlas-results atlas-stack" id="defense-results"><thead><tr>'
        "<th>Defense</th><th>Attack</th><th>Setup</th><th>ASR, no defense</th><th>ASR, defended</th>"
        "<th>Over-refusal, no defense</th><th>Over-refusal, defended</th><th>Utility, no defense → defended</th>"
        "</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>\n"
    )
    out.append(
        f'<p class="atlas-muted">What each defense does and its parameters: '
        f'<a href="{href(page, BASELINES_PAGE, "defenses")}">baselines</a>.</p>\n'
    )
    return "\n".join(out)
