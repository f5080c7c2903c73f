"""The datasets page: a card per benchmark (licence, gating, official judge, harnesses, loader status) and the
eval results on it with their official scores."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from _site_catalog import estimate, result

from baselines.datasets.cards import CARDS
from tools.catalog.schema import Result
from tools.site.ctx import BaselineInfo
from tools.site.datasets import DATASETS_PAGE, render_datasets_page
from tools.site.render import make_ctx, render_site


def eval_result() -> Result:
    r = copy.deepcopy(result())
    r["baseline"] = "mossbench"
    r["conditions"] = [r["conditions"][0]]
    r["conditions"][0]["scores"] = {"mossbench.refusal_rate": estimate(0.25, 300)}
    r["conditions"][0]["scored_by"] = {"mossbench": "refusal (proxy)"}
    return Result.model_validate(r)


def test_datasets_page_cards_status_and_scores() -> None:
    info = [BaselineInfo(kind="dataset", name="mossbench", paper_id="2024-li-mossbench", summary="m",
                         params=[{"name": "counts", "doc": "d"}])]  # fmt: skip
    cat = SimpleNamespace(papers={}, vocab={}, results=[eval_result()], root=None)
    ctx = make_ctx(cat, info, repo_url="https://example.org/repo")
    page = render_datasets_page(ctx)
    for card in CARDS.values():
        assert card["title"].replace("&", "&amp;") in page
    assert "CC BY-SA 4.0" in page and "gated on HF" in page and "PyRIT (benign set only)" in page
    assert page.count("registered loader: reads the official files") == 1 and "checks the release" in page
    assert page.count("no loader registered") == len(CARDS) - 1  # only mossbench is in this ctx
    assert "refusal&#95;rate" in page and "25.0%" in page
    assert "refusal (proxy)" in page
    assert DATASETS_PAGE in render_site(ctx)


def test_utility_bundled_card_is_listed_with_its_own_loader_status() -> None:
    from baselines.datasets.utility_bundled import N_ITEMS, UtilityBundledDataset

    card = CARDS["utility_bundled"]
    assert card["official_counts"] == {"total": N_ITEMS} and "Apache-2.0" in card["licence"]
    assert len(UtilityBundledDataset({}).load().samples) == N_ITEMS
    info = [BaselineInfo(kind="dataset", name="utility_bundled", paper_id=None, summary="u", params=[])]
    cat = SimpleNamespace(papers={}, vocab={}, results=[], root=None)
    page = render_datasets_page(make_ctx(cat, info, repo_url="https://example.org/repo"))
    assert '<h2 id="utility&#95;bundled">Bundled utility set' in page
    assert "the packaged set, no download" in page and "reads the official files" not in page
    assert "grader=match, the substring proxy" in page
