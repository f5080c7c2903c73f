"""The deviations ledger (issue 12): every registered component of every kind declares how it departs from the
official code (or ``[]``); the ledger of each component a run used is copied into its result's provenance and
shown on the baseline's section of the baselines page and on its paper's page.

The parametrisation is read from the registry at collection time, so a component is covered the day it lands.
"""

from __future__ import annotations

import pytest
from _site_catalog import write_catalog

from baselines import registry
from baselines.base import DEVIATION_KEYS
from baselines.ledger import run_ledger
from baselines.runconfig import build_run_config
from baselines.runresult import build_result
from tools.catalog.schema import Result
from tools.catalog.store import load_catalog
from tools.site.ctx import BaselineInfo
from tools.site.render import make_ctx, render_site

KINDS = ("attack", "defense", "judge", "model", "dataset")
COMPONENTS = [(kind, name) for kind in KINDS for name in registry.names(kind)]


@pytest.mark.parametrize(("kind", "name"), COMPONENTS, ids=[f"{k}:{n}" for k, n in COMPONENTS])
def test_every_component_has_a_ledger(kind: str, name: str) -> None:
    cls = registry.get(kind, name)
    ledger = cls.deviations
    assert ledger is not None, (
        f"{kind} {name!r} ({cls.__module__}) has no deviations ledger: declare `deviations = [...]` on "
        f"{cls.__qualname__}, one dict per departure from the official code with keys {DEVIATION_KEYS} "
        "(what, official behaviour, ours, why, expected effect), or `deviations = []` if it has none"
    )
    assert isinstance(ledger, list), f"{kind} {name!r}: deviations must be a list"
    for entry in ledger:
        assert isinstance(entry, dict) and tuple(entry) == DEVIATION_KEYS, (
            f"{kind} {name!r}: ledger entry keys {tuple(entry) if isinstance(entry, dict) else entry!r}, "
            f"expected {DEVIATION_KEYS} in that order"
        )
        empty = [k for k, v in entry.items() if not isinstance(v, str) or not v.strip()]
        assert not empty, f"{kind} {name!r}: ledger entry {entry.get('what')!r} has empty {empty}"
    whats = [e["what"] for e in ledger]
    assert len(set(whats)) == len(whats), f"{kind} {name!r}: two ledger entries share a 'what'"


def test_documented_departures_are_in_the_ledgers() -> None:
    """The departures the issue names are declared where they live."""
    whats = {n: " ".join(e["what"] for e in registry.get(k, n).deviations) for k, n in COMPONENTS}
    assert "FigStep-Pro" in whats["figstep"]
    assert "retrieval embedding" in whats["adashield_a"] and "bug fixed" in whats["adashield_a"]
    assert "feature space" in whats["jailbreak_in_pieces"]
    assert "target corpus" in whats["visual_adv"] and "double normalisation" in whats["hades"]


def test_a_result_carries_the_ledger_of_every_component_it_used() -> None:
    cfg = build_run_config("figstep", defense="adashield_a", limit=2).model_dump(mode="json")
    got = {(e["kind"], e["name"]): e["deviations"] for e in run_ledger(cfg)}
    assert list(got) == [
        ("model", "organism"),
        ("dataset", "bundled"),
        ("attack", "figstep"),
        ("defense", "adashield_a"),
        ("judge", "refusal"),
    ]
    assert got[("defense", "adashield_a")] == registry.get("defense", "adashield_a").deviations
    assert got[("judge", "refusal")] == []
    meta = {
        "config": cfg,
        "run_id": "run-ledger",
        "judges": [{"label": "refusal", "judge": "refusal", "params": {}}],
        "dataset": {
            "name": "bundled",
            "n_samples": 0,
            "n_samples_total": 160,
            "checksum": "x",
            "source": "x",
        },
    }
    result = build_result(meta, [], None)
    assert result["provenance"]["deviations"] == run_ledger(cfg)
    Result.model_validate(result)


def test_ledgers_show_on_the_baselines_page_and_the_paper_page(tmp_path) -> None:
    ledger = [
        {"what": "split rule", "official": "unpublished", "ours": "three pieces", "why": "w", "effect": "e"}
    ]
    baselines = [
        BaselineInfo(
            "attack", "figstep", "2023-gong-figstep", "Typographic jailbreak", [], deviations=ledger
        ),
        BaselineInfo("judge", "refusal", None, "Refusal keyword matching", []),
    ]
    ctx = make_ctx(load_catalog(write_catalog(tmp_path / "catalog"), check=False), baselines)
    site = render_site(ctx)
    page = site["baselines.md"]
    figstep = page.split("### `figstep`", 1)[1].split("### ", 1)[0]
    assert "Deviations from the official code" in figstep and "three pieces" in figstep
    refusal = page.split("### `refusal`", 1)[1]
    assert "No deviations from the official code declared." in refusal
    paper = site["papers/2023-gong-figstep.md"]
    assert "Deviations of the implementation" in paper and "three pieces" in paper and "unpublished" in paper
