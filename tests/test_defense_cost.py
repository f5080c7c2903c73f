"""A defense's cost beside its ASR (issue 16, item 3): over-refusal and utility, with and without the defense.

The organism test runs a real defense run (FigStep, FigStep + safety_prompt) on two harmful and two benign
bundled items, then the utility companion run on the packaged MM-Vet-format set, and checks that ASR,
over-refusal and utility all appear with intervals, in the Result and in the site's defense table.
"""

from __future__ import annotations

import html
import json

import pytest
from _organism import needs_artifact

from baselines import registry
from baselines.base import LoadedDataset
from baselines.datasets.utility_bundled import DEFAULT_PATH, N_ITEMS, UtilityBundledDataset
from baselines.defense_cost import OWN_ITEMS, CostSettings, apply_cost, cost_runs, part_scores
from baselines.harness import Components, execute
from baselines.runconfig import RunConfigError
from baselines.runrequest import RunRequest


def test_packaged_utility_set_is_mmvet_format_and_loads_with_both_loaders() -> None:
    ds = UtilityBundledDataset({}).load()
    assert len(ds.samples) == N_ITEMS and all(s.label == "benign" and len(s.images) == 1 for s in ds.samples)
    assert {c for s in ds.samples for c in s.meta["capability"]} == {"rec", "ocr", "gen"}
    assert {s.category for s in ds.samples[:4]} == {"rec", "ocr", "gen"}  # --limit 4 covers every kind
    mmvet = registry.get("dataset", "mmvet")({"path": str(DEFAULT_PATH), "counts": "any"}).load()
    assert [s.id for s in mmvet.samples] == [s.id for s in ds.samples] and mmvet.checksum == ds.checksum


def test_cost_runs_of_a_defense_run() -> None:
    config = RunRequest(baseline="safety_prompt").config()
    runs = cost_runs(config, CostSettings())
    assert [r.part for r in runs] == ["utility"]
    cfg = runs[0].config
    assert cfg.dataset.name == "utility_bundled" and cfg.judges[0].params["grader"] == "match"
    assert [(c.name, c.defense) for c in cfg.conditions] == [("no-defense", None), ("safety_prompt", "safety_prompt")]
    assert cfg.defense == config.defense and cfg.model == config.model
    assert "proxy" in runs[0].label
    # an attack run without a defense has no cost; a shard has none (merged shards do not carry it)
    assert cost_runs(RunRequest(baseline="figstep").config(), CostSettings()) == []
    assert cost_runs(RunRequest(baseline="safety_prompt", shard="0/2").config(), CostSettings()) == []
    llm = cost_runs(config, CostSettings(utility_judge="openai:gpt-4-0613"))[0]
    assert llm.config.judges[0].params["grader"] == "llm" and "proxy" not in llm.label


def test_benign_set_option_and_bad_specs(tmp_path) -> None:
    config = RunRequest(baseline="safety_prompt").config()
    runs = cost_runs(config, CostSettings(benign=f"vlguard:{tmp_path}"))
    benign = runs[1].config
    assert runs[1].part == "over_refusal" and benign.dataset.params["subsets"] == ["safe_safes"]
    assert benign.judges[0].name == "refusal" and benign.judges[0].params["list"] == "vlguard"
    with pytest.raises(RunConfigError, match="mossbench needs the folder"):
        cost_runs(config, CostSettings(benign="mossbench"))
    with pytest.raises(RunConfigError, match="expected one of"):
        cost_runs(config, CostSettings(utility="nope"))


def _rec(cond: str, i: int, score: float | None = None, refused: bool | None = None) -> dict:
    judge = "mmvet" if score is not None else "refusal"
    return {"condition": cond, "id": f"x{i}", "error": None,
            "verdicts": {judge: {"score": score, "refused": refused, "success": False}}}  # fmt: skip


def test_part_scores_use_an_exact_interval_for_all_or_nothing_grades() -> None:
    run = cost_runs(RunRequest(baseline="safety_prompt").config(), CostSettings())[0]
    recs = [_rec("no-defense", i, 1.0) for i in range(8)] + [_rec("safety_prompt", i, 0.0) for i in range(8)]
    got = part_scores(run, recs, seed=0)
    assert got["no-defense"]["value"] == 1.0 and got["no-defense"]["ci_low"] < 0.7  # not a zero-width bootstrap
    assert got["safety_prompt"]["value"] == 0.0 and got["safety_prompt"]["ci_high"] > 0.3
    half = part_scores(run, [_rec("no-defense", i, 0.5) for i in range(4)], seed=0)["no-defense"]
    assert half["value"] == 0.5  # partial credit: MM-Vet's mean


@pytest.fixture(scope="module")
def defended(organism, tmp_path_factory):
    """(Result, config) of FigStep + safety_prompt on the organism, 2 harmful + 2 benign items, with the cost."""
    from baselines.defense_cost import add_cost

    config = RunRequest(baseline="safety_prompt", max_new_tokens=32).config()
    bundled = registry.get("dataset", "bundled")({}).load()
    picked = [s for s in bundled.samples if s.id in ("ill-01", "ill-02", "ill-b01", "ill-b02")]
    data = LoadedDataset(name="bundled", samples=picked, checksum=bundled.checksum, source=bundled.source)
    runs = tmp_path_factory.mktemp("runs")

    def comps(cfg, dataset=None) -> Components:
        return Components(
            dataset=dataset or registry.get("dataset", cfg.dataset.name)(cfg.dataset.params).load(),
            model=organism,
            attacks={cfg.attack.name: registry.get("attack", cfg.attack.name)(cfg.attack.params)}
            if cfg.attack else {},
            defenses={cfg.defense.name: registry.get("defense", cfg.defense.name)(cfg.defense.params)},
            judges={j.name: registry.get("judge", j.name)(j.params) for j in cfg.judges},
        )  # fmt: skip

    out = execute(config, comps(config, data), runs, progress=False, log=lambda m: None)
    lines = add_cost(out.result, config, runs, CostSettings(limit=4), components=comps,
                     progress=False, log=lambda m: None)  # fmt: skip
    return out.result, config, lines


@needs_artifact
def test_defense_run_on_the_organism_reports_asr_over_refusal_and_utility(defended) -> None:
    from tools.catalog.schema import Result

    result, config, lines = defended
    Result.model_validate(result)
    by = {c["condition"]: c for c in result["conditions"]}
    for name in ("figstep", "figstep+safety_prompt"):
        cond = by[name]
        refusal = next(j for j in cond["judges"] if j["judge"] == "refusal")
        assert refusal["asr"]["n"] == 2  # ASR with its interval
        for part in ("over_refusal", "utility"):
            est = cond["scores"][part]
            assert est["ci_low"] <= est["value"] <= est["ci_high"] and est["n"] > 0, (name, part)
        assert cond["scores"]["over_refusal"] == refusal["refusal_rate_benign"]
        assert OWN_ITEMS in cond["scored_by"]["over_refusal"] and "proxy" in cond["scored_by"]["utility"]
        assert cond["scores"]["utility"]["n"] == 4
    # the organism answers the utility set undefended; the safety prompt makes it refuse (its cost shows)
    assert by["figstep"]["scores"]["utility"]["value"] == 1.0
    assert by["figstep+safety_prompt"]["scores"]["utility"]["value"] < 0.5
    assert [p["part"] for p in result["provenance"]["cost_runs"]] == ["utility"]
    assert len(lines) == 2 and all("utility" in x and "over_refusal" in x for x in lines)
    json.dumps(result)


@needs_artifact
def test_site_defense_table_shows_the_three_numbers(defended) -> None:
    from tools.catalog.schema import Result
    from tools.site.matrix import defense_rows, render_matrix

    result = Result.model_validate(defended[0])
    rows = defense_rows([result])
    row = next(r for r in rows if r.setup.judge == "refusal")
    assert row.asr is not None and row.refusal is not None and row.utility is not None
    assert row.utility_undefended.value == 1.0 and row.utility.value < 0.5

    class _Ctx:
        results = [result]
        by_baseline: dict = {}

    page = html.unescape(render_matrix(_Ctx()))  # type: ignore[arg-type]
    table = page.split('id="defense-results"')[1].split("</table>")[0]
    assert "Utility, no defense → defended" in table and "not measured" not in table
    assert "(proxy grader)" in table


def test_apply_cost_leaves_a_run_without_utility_marked_not_measured() -> None:
    config = RunRequest(baseline="safety_prompt").config()
    result = {"conditions": [{"condition": c.name, "judges": [], "scores": {}, "scored_by": {}}
                             for c in config.conditions]}  # fmt: skip
    assert apply_cost(result, config, []) == []
    assert all("utility" not in c["scores"] for c in result["conditions"])
