"""The datasets page: one card per benchmark the project loads (what it measures, size, categories, licence,
gating, official judge, which harnesses also carry it, our loader's status) and the project's eval results on it.

The cards are data in :mod:`baselines.datasets.cards` (facts from the benchmarks' official repositories); the
loader status comes from the registry (``ctx.baselines`` of kind ``dataset``); the results are the catalog's
results whose ``baseline`` is the benchmark (``mllm-safety eval <benchmark>``), with their official scores.
"""

from __future__ import annotations

from typing import Any

from tools.site.ctx import Ctx, paper_page
from tools.site.results import fmt_est, model_label
from tools.site.util import esc, front_matter, href

DATASETS_PAGE = "datasets.md"


def loader_status(name: str, ctx: Ctx, card: dict[str, Any] | None = None) -> str:
    """How far the project's loader goes for ``name`` (a card's own ``loader`` text when it has one: a set
    packaged with the project is not read from a local path)."""
    info = next((b for b in ctx.baselines if b.kind == "dataset" and b.name == name), None)
    if info is None:
        return "no loader registered"
    if card and card.get("loader"):
        return str(card["loader"])
    counts = any(p.get("name") == "counts" for p in info.params)
    checks = ", checks the release's counts" if counts else ""
    return f"registered loader: reads the official files from a local path{checks}, names the expected layout, decodes images lazily"


def _results(name: str, ctx: Ctx, page: str) -> str:
    results = [r for r in ctx.results if r.baseline == name]
    if not results:
        return (
            '<p class="atlas-muted">No evaluation run in the catalog yet (<code>mllm-safety eval '
            + esc(name)
            + "</code>).</p>"
        )
    rows = []
    for r in results:
        for c in r.conditions:
            scores = "; ".join(f"{esc(k)} {fmt_est(v)}" for k, v in c.scores.items()) or "—"
            by = ", ".join(f"{esc(v)}" for v in c.scored_by.values()) or "—"
            partial = " (partial)" if r.partial else ""
            rows.append(f"<tr><td>{esc(model_label(r))}{partial}</td><td>{esc(c.condition)}</td>"
                        f"<td>{scores}</td><td>{by}</td></tr>")  # fmt: skip
    return ("<table><thead><tr><th>Model</th><th>Condition</th><th>Official scores [95% CI]</th>"
            "<th>Scored by</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")  # fmt: skip


def render_card(name: str, card: dict[str, Any], ctx: Ctx, page: str) -> str:
    """One benchmark's card as HTML."""
    pid = card.get("paper_id")
    paper = ctx.papers.get(pid or "")
    paper_link = (f'<a href="{href(page, paper_page(pid))}">{esc(paper.title)}</a>' if paper
                  else esc(pid or "not in the catalog"))  # fmt: skip
    harnesses = ", ".join(esc(h) for h in card.get("harnesses", [])) or "none known"
    rows = [
        ("Measures", esc(card["measures"])),
        ("Size", esc(card["size"])),
        ("Categories", esc(card["categories"])),
        ("Licence", esc(card["licence"])),
        ("Gating", esc(card["gating"])),
        ("Official judge", esc(card["official_judge"])),
        ("Also in", harnesses),
        ("Paper", paper_link),
        ("Our loader", esc(loader_status(name, ctx, card))),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (f'<h2 id="{esc(name)}">{esc(card["title"])}</h2>\n\n<table class="atlas-card">{body}</table>\n\n'
            f"<h3>Evaluation runs</h3>\n\n{_results(name, ctx, page)}\n")  # fmt: skip


def render_datasets_page(ctx: Ctx, cards: dict[str, dict[str, Any]] | None = None) -> str:
    """The whole page (``cards`` default: :data:`baselines.datasets.cards.CARDS`)."""
    if cards is None:
        from baselines.datasets.cards import CARDS as cards  # noqa: N811 - data, not a constant here
    out = [front_matter("Datasets"), "# Datasets\n",
           "<p>The benchmarks the project loads from their official files, what each measures and under which "
           "terms, and the project's evaluation runs on them (<code>mllm-safety eval &lt;benchmark&gt;</code>, "
           "no attack, the benchmark's own scoring). A score marked <em>proxy</em> was not computed with the "
           "benchmark's official judge.</p>\n"]  # fmt: skip
    out += [render_card(name, card, ctx, DATASETS_PAGE) for name, card in cards.items()]
    return "\n".join(out)
