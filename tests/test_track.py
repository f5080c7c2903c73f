"""`catalog add` and `catalog track` end to end against the local arXiv server (tmp copies of the fixture catalog)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from servers.arxiv_entries import (
    BENCH_ID,
    DEFENSE_ID,
    ENTRIES,
    LATEX_ID,
    NEAR_DUP_ID,
    OFFTOPIC_ID,
    OLD_ID,
    WITHDRAWN_ID,
)
from servers.arxiv_server import FakeArxivServer

from tools.catalog.schema import Paper
from tools.catalog.store import check_catalog, load_catalog
from tools.cli.main import main
from tools.track.tracker import TfidfIndex, TrackConfig, load_config, run_track

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"
TRACKING = {
    "queries": ["all:jailbreak", 'abs:"vision-language" AND abs:safety'],
    "keywords": [
        {"pattern": r"jailbr", "weight": 3, "label": "jailbreak"},
        {"pattern": r"vision.language|multimodal", "weight": 2, "label": "multimodal"},
        {"pattern": r"defen[cs]e|benchmark", "weight": 1},
    ],
    "required": [r"vision.language|multimodal|\bimages?\b"],
}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    dest = tmp_path / "catalog"
    shutil.copytree(FIXTURE, dest)
    (dest / "vocab" / "tracking.yaml").write_text(yaml.safe_dump(TRACKING), encoding="utf-8")
    return dest


@pytest.fixture()
def server(monkeypatch):
    with FakeArxivServer(ENTRIES) as srv:
        monkeypatch.setenv("MLLM_SAFETY_ARXIV_API", srv.api)
        monkeypatch.setenv("MLLM_SAFETY_ARXIV_DELAY", "0")
        yield srv


def errors_in(root: Path, path: Path) -> list[str]:
    return [
        str(i) for i in check_catalog(root, registry_names=set()) if i.severity == "error" and i.path == path
    ]


# ---------------------------------------------------------------------------------------------- catalog add


def test_add_writes_a_complete_valid_entry(root, server, capsys):
    assert main(["catalog", "add", "https://arxiv.org/abs/2405.01234v2", "--root", str(root)]) == 0
    path = root / "papers" / "2024-garcia-jailbreak.yaml"
    assert path.is_file(), capsys.readouterr()
    assert errors_in(root, path) == []
    paper = Paper.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert paper.arxiv == LATEX_ID and paper.date == "2024-05-02"
    assert paper.title.startswith("α-Jailbreak: Breaking the Safety of Vision-Language Models")
    assert paper.authors[0] == "José García" and paper.authors[2] == "Łukasz Nowak"
    assert paper.venue == "ECCV 2024"
    assert paper.links.paper == "https://arxiv.org/abs/2405.01234"
    assert paper.links.code == "https://github.com/example-lab/alpha-jailbreak"
    assert paper.links.project == "https://example-lab.github.io/alpha/"
    assert paper.abstract and "typographic images" in paper.abstract
    assert paper.category == "attack" and paper.suggested is True
    assert "typographic" in paper.attack.techniques and "black-box" in paper.attack.threat_model
    assert "suggested" in paper.notes
    out = capsys.readouterr().out
    assert "suggested category: attack" in out and str(path) in out


def test_add_suggests_defense_and_evaluation_and_takes_the_journal_reference(root, server):
    assert main(["catalog", "add", DEFENSE_ID, "--root", str(root)]) == 0
    assert main(["catalog", "add", f"arXiv:{BENCH_ID}", "--root", str(root)]) == 0
    catalog = load_catalog(root, check=False)
    defense = next(p for p in catalog.papers.values() if p.arxiv == DEFENSE_ID)
    bench = next(p for p in catalog.papers.values() if p.arxiv == BENCH_ID)
    assert defense.category == "defense" and defense.venue == "NeurIPS 2024" and defense.also == []
    assert defense.defense.stage == ["inference"] and "detection" in defense.defense.kind
    assert (
        bench.category == "evaluation" and bench.venue == "Transactions on Machine Learning Research (2025)"
    )
    assert bench.evaluation is not None and "jailbreak-robustness" in bench.evaluation.measures
    assert "image" in bench.evaluation.modalities


def test_add_refuses_a_known_arxiv_id_without_asking_arxiv(root, server, capsys):
    before = sorted(p.name for p in (root / "papers").iterdir())
    assert main(["catalog", "add", "2311.05608v3", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "already in the catalog" in err and "2023-gong-figstep.yaml" in err
    assert server.requests == []
    assert sorted(p.name for p in (root / "papers").iterdir()) == before


def test_add_refuses_a_near_identical_title(root, server, capsys):
    before = sorted(p.name for p in (root / "papers").iterdir())
    assert main(["catalog", "add", NEAR_DUP_ID, "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "2024-wang-adashield.yaml" in err and "near-identical title" in err
    assert sorted(p.name for p in (root / "papers").iterdir()) == before


@pytest.mark.parametrize(
    ("ref", "code", "message"),
    [
        (WITHDRAWN_ID, 1, "withdrawn"),
        ("2499.99999", 1, "no paper with id"),
        ("not-an-id", 2, "not an arXiv id"),
    ],
)
def test_add_rejects_withdrawn_unknown_and_bad_ids(root, server, capsys, ref, code, message):
    before = sorted(p.name for p in (root / "papers").iterdir())
    assert main(["catalog", "add", ref, "--root", str(root)]) == code
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in (root / "papers").iterdir()) == before


def test_add_reports_an_unreachable_arxiv(root, server, capsys):
    for _ in range(5):
        server.push("503", retry_after="0")
    assert main(["catalog", "add", LATEX_ID, "--root", str(root)]) == 1
    assert "HTTP 503; gave up" in capsys.readouterr().err
    assert not (root / "papers" / "2024-garcia-jailbreak.yaml").exists()


def test_add_removes_what_fails_the_catalog_check(root, server, capsys, monkeypatch):
    from tools.track import intake

    real = intake.entry_to_paper

    def with_unknown_term(entry, catalog, **kw):
        paper, sugg = real(entry, catalog, **kw)
        attack = {"techniques": ["no-such-technique"]}
        return Paper.model_validate({**paper.model_dump(), "attack": attack}), sugg

    monkeypatch.setattr(intake, "entry_to_paper", with_unknown_term)
    assert main(["catalog", "add", LATEX_ID, "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "no-such-technique" in err and "nothing was written" in err
    assert not (root / "papers" / "2024-garcia-jailbreak.yaml").exists()


# -------------------------------------------------------------------------------------------- catalog track


def test_track_reports_ranked_new_candidates_and_remembers_the_run(root, server, tmp_path, capsys):
    out = tmp_path / "tracking"
    args = [
        "catalog",
        "track",
        "--since",
        "2024-01-01",
        "--stubs",
        "2",
        "--out",
        str(out),
        "--root",
        str(root),
    ]
    assert main(args) == 0
    today = dt.date.today().isoformat()
    report = (out / f"candidates-{today}.md").read_text(encoding="utf-8")
    for present in (LATEX_ID, DEFENSE_ID, BENCH_ID, OFFTOPIC_ID):
        assert f"arXiv:{present}" in report
    for absent in ("2311.05608", WITHDRAWN_ID, NEAR_DUP_ID, OLD_ID):
        assert absent not in report
    rows = [line for line in report.splitlines() if line.startswith("| ") and "arXiv:" in line]
    assert len(rows) == 4
    assert f"arXiv:{OFFTOPIC_ID}" in rows[-1] and "no multimodal term" in rows[-1]
    scores = [float(r.split("|")[2]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert "keywords: jailbreak (+3)" in report and "closest catalog paper" in report
    assert "1 already in the catalog, 1 withdrawn" in report
    stubs = sorted((out / "stubs").glob("*.yaml"))
    assert len(stubs) == 2
    for stub in stubs:
        assert Paper.model_validate(yaml.safe_load(stub.read_text(encoding="utf-8"))).suggested
    state = yaml.safe_load((root / "tracking-state.yaml").read_text(encoding="utf-8"))
    assert state["last_run"] == today and state["last_candidates"] == 4
    queries = [r.params["search_query"] for r in server.requests]
    assert (
        queries[0] == "(all:jailbreak) AND submittedDate:[202401010000 TO " + today.replace("-", "") + "2359]"
    )

    server.requests.clear()  # the next run starts at the last run's date
    assert main(["catalog", "track", "--out", str(out), "--root", str(root)]) == 0
    assert all(
        f"submittedDate:[{today.replace('-', '')}0000" in r.params["search_query"] for r in server.requests
    )


def test_track_survives_a_503_and_fails_cleanly_on_malformed_xml(root, server, tmp_path, capsys):
    out = tmp_path / "tracking"
    server.push("503", retry_after="0")
    args = ["catalog", "track", "--since", "2024-01-01", "--out", str(out), "--root", str(root)]
    assert main(args) == 0
    (root / "tracking-state.yaml").unlink()
    shutil.rmtree(out)
    server.push("malformed")
    assert main(args) == 1
    assert "malformed XML" in capsys.readouterr().err
    assert not out.exists() and not (root / "tracking-state.yaml").exists()


def test_track_rejects_a_bad_date_and_a_bad_config(root, server, capsys):
    assert main(["catalog", "track", "--since", "last week", "--root", str(root)]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    (root / "vocab" / "tracking.yaml").write_text("queries: []\n", encoding="utf-8")
    assert main(["catalog", "track", "--root", str(root)]) == 2
    assert "tracking.yaml" in capsys.readouterr().err
    assert server.requests == []


def test_category_filter_and_min_score(root, server):
    from tools.track.arxiv import ArxivClient

    catalog = load_catalog(root, check=False)
    config = TrackConfig.model_validate({**TRACKING, "categories": ["cs.CV"], "min_score": 4})
    result = run_track(ArxivClient(), catalog, config, since="2024-01-01", today="2024-12-31")
    ids = {c.entry.arxiv_id for c in result.candidates}
    assert ids == {LATEX_ID, DEFENSE_ID}  # BENCH is cs.CL only, OFFTOPIC cs.CR
    assert result.counts["other arXiv category"] >= 2


def test_tfidf_nearest_paper_and_the_repository_config():
    index = TfidfIndex(
        {
            "typo": "typographic visual prompts jailbreak vision-language models",
            "guard": "guard model moderation of unsafe images and text",
        }
    )
    assert index.nearest("a jailbreak with typographic prompts")[0] == "typo"
    assert index.nearest("moderation guard for unsafe images")[0] == "guard"
    assert index.nearest("protein folding")[1] == 0.0
    config = load_config(Path(__file__).parent.parent / "catalog")  # the real tracking.yaml is valid
    assert config.queries and config.keywords and config.required
