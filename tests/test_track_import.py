"""`catalog import-list`, `catalog fill-metadata` and the tracker's pull-request body, offline on fixtures
(tmp copies of the fixture catalog; list, record and digest files under tests/fixtures/track)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from servers.arxiv_entries import ENTRIES
from servers.arxiv_server import FakeArxivServer

from tools.catalog.schema import Paper
from tools.catalog.store import check_catalog, load_catalog
from tools.cli.main import main
from tools.track.listimport import import_path, parse_markdown_tables
from tools.track.metadata import digest_records, feed_records, merge, partial_authors, read_records

FIXTURES = Path(__file__).parent / "fixtures"
TRACK = FIXTURES / "track"
TRACKING = {
    "queries": ["all:jailbreak"],
    "keywords": [
        {"pattern": r"jailbr", "weight": 3, "label": "jailbreak"},
        {"pattern": r"vision.language|multimodal|\bmllms?\b|\bvlms?\b", "weight": 2, "label": "multimodal"},
        {"pattern": r"guard|safety|harmful", "weight": 1.5},
    ],
    "required": [r"vision.language|multimodal|\bmllms?\b|\bvlms?\b|\bimages?\b"],
    "min_score": 2,
}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    dest = tmp_path / "catalog"
    shutil.copytree(FIXTURES / "catalog", dest)
    (dest / "vocab" / "tracking.yaml").write_text(yaml.safe_dump(TRACKING), encoding="utf-8")
    return dest


def errors(root: Path) -> list[str]:
    return [str(i) for i in check_catalog(root, registry_names=set()) if i.severity == "error"]


def paper(root: Path, paper_id: str) -> dict:
    return yaml.safe_load((root / "papers" / f"{paper_id}.yaml").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------------
# Parsing the two list layouts


def test_markdown_tables_of_both_list_layouts_are_parsed():
    rows = parse_markdown_tables((TRACK / "list_ydyjya.md").read_text(encoding="utf-8"))
    assert [r.arxiv for r in rows] == [
        "2311.05608",
        "2502.00001",
        "2503.00002",
        "2503.00003",
        None,
        "2502.00001",
    ]
    first = rows[0]
    assert first.date == "2023-11" and first.venue == "AAAI 2025" and first.section.endswith("Papers")
    assert first.keywords == "Jailbreak, Typography" and first.line == 7
    assert rows[1].venue is None  # 'arxiv' is no venue
    assert rows[2].venue == "ICML 2025" and rows[2].arxiv == "2503.00002"  # pdf link with version
    rows = parse_markdown_tables((TRACK / "list_xiaoyaoyou9.md").read_text(encoding="utf-8"))
    visjail = rows[0]
    assert visjail.title == "Visual Jailbreak Images for Multimodal Large Language Models"  # subtitle dropped
    assert visjail.code == "https://github.com/example/visjail" and visjail.method == "VisJail"
    assert visjail.date == "2025" and visjail.venue == "NeurIPS 2025"
    assert visjail.section == "Awesome VLM Adversarial Robustness / Attacks on MLLMs"


def test_import_list_markdown_keeps_new_relevant_rows_and_says_why_others_were_left_out(root):
    result = import_path(
        TRACK / "list_ydyjya.md", load_catalog(root, check=False), "ydyjya/Awesome-LLM-Safety", "abc1234"
    )
    assert [p.arxiv for p in result.papers] == ["2502.00001", "2503.00002"]
    assert result.skipped == {
        "already in the catalog": 1,
        "not about multimodal safety (tracker rules)": 1,
        "no arXiv link": 1,
        "repeated in the file": 1,
    }
    bench, guard = result.papers
    assert bench.suggested and bench.verified is False and bench.authors_status == "unknown"
    assert bench.sources == ["ydyjya/Awesome-LLM-Safety"] and bench.date == "2025-02"
    assert bench.field_sources.title == "list:ydyjya/Awesome-LLM-Safety" and bench.venue is None
    assert guard.venue == "ICML 2025" and guard.field_sources.venue == "list:ydyjya/Awesome-LLM-Safety"
    assert guard.category == "defense" and bench.category == "attack" and bench.also == ["evaluation"]
    assert "list_ydyjya.md@abc1234 line 8" in (bench.notes or "")


def test_import_list_cli_writes_valid_papers_and_a_pr_body(root, tmp_path, capsys):
    body_path = tmp_path / "pr.md"
    args = ["catalog", "import-list", str(TRACK / "list_ydyjya.md"), "--list", "ydyjya/Awesome-LLM-Safety"]
    assert main([*args, "--write", "--pr-body", str(body_path), "--root", str(root)]) == 0
    body = body_path.read_text(encoding="utf-8")
    assert body.strip() in capsys.readouterr().out
    assert "## New candidate papers: 2" in body and "suggested by keyword rules" in body
    assert "https://arxiv.org/abs/2502.00001" in body and "ydyjya/Awesome-LLM-Safety" in body
    assert "| no |" in body  # not verified
    assert "evaluation" in body and "defense" in body
    assert errors(root) == []
    assert len(list((root / "papers").glob("*.yaml"))) == 5
    # a second run finds nothing new: the papers are in the catalog now
    assert main([*args, "--root", str(root)]) == 0
    assert "## New candidate papers: 0" in capsys.readouterr().out


def test_import_list_markdown_needs_the_list_name(root, capsys):
    assert main(["catalog", "import-list", str(TRACK / "list_ydyjya.md"), "--root", str(root)]) == 2
    assert "--list <owner>/<repo>" in capsys.readouterr().err


def test_import_reviewed_candidates_takes_judged_rows_and_never_a_doubtful_id(root):
    result = import_path(TRACK / "candidates.json", load_catalog(root, check=False))
    assert [p.arxiv for p in result.papers] == ["2507.00005", "2508.00006"]
    assert result.skipped == {"judged out of scope": 1, "already in the catalog": 1}
    guard, bench = result.papers
    assert guard.category == "defense" and guard.suggested and guard.verified is True
    assert guard.verified_by == ["cross-list agreement"]
    assert guard.authors == ["Hal Guard", "Ivy Safe"] and guard.authors_status == "partial"
    assert guard.field_sources.authors == "list:wonderNefelibata/Awesome-LRM-Safety"
    assert guard.venue == "CVPR 2026" and guard.field_sources.venue == "list:ydyjya/Awesome-LLM-Safety"
    assert (
        guard.scope == "borderline"
        and guard.scope_reason == "video modality: guard model for image+text inputs"
    )
    assert guard.links.code == "https://github.com/example/safeguard-v"
    assert bench.authors == [] and bench.authors_status == "unknown" and bench.verified is False
    assert bench.category == "evaluation" and bench.id.startswith("2025-")
    assert "nnnsss999/llmattacks docs/x.md:3" in (bench.notes or "")


# ------------------------------------------------------------------------------------------------------
# Metadata records


def test_records_of_all_three_formats():
    api = read_records(TRACK / "records_api.json", "arxiv-api-mirror:o/r/articles/article.json@abc")
    assert [r.arxiv for r in api][:2] == ["2502.00001", "2502.00001"] and api[0].version == 2
    assert api[0].abstract == "We introduce a benchmark. It measures jailbreaks of vision-language models."
    assert api[0].first_date == "2025-02-03" and api[0].primary_category == "cs.CV"
    digest = list(digest_records((TRACK / "digest.md").read_text(encoding="utf-8"), "arxiv-digest:o/r/d.md"))
    assert [(r.arxiv, r.version, r.first_date) for r in digest] == [
        ("2503.00002", 1, "2025-03-02"),
        ("2505.00004", 2, None),  # SubmitDate of v2 is not the first version's date
    ]
    assert digest[0].authors == ("Dee Guard", "Eve Shield") and digest[0].primary_category == "cs.CR"
    feed = list(feed_records((TRACK / "feed.md").read_text(encoding="utf-8"), "arxiv-digest:o/r/README.md"))
    assert feed[0].first_date == "2025-05-01" and partial_authors(feed[0].authors) == (
        ("Fay Vis", "Gus Jail"),
        True,
    )
    merged = merge([*digest, *feed])["2505.00004"]
    assert merged.latest.version == 2 and merged.first_date == ("2025-05-01", "arxiv-digest:o/r/README.md")


def test_records_need_a_named_source(tmp_path):
    with pytest.raises(ValueError, match="--source"):
        read_records(TRACK / "records_api.json")
    with pytest.raises(ValueError, match="--source"):
        read_records(TRACK / "digest.md", "manual")


def test_fill_metadata_fills_missing_fields_with_their_sources_and_is_rerunnable(root, capsys):
    assert (
        main(
            [
                "catalog",
                "import-list",
                str(TRACK / "list_ydyjya.md"),
                "--list",
                "o/list",
                "--write",
                "--root",
                str(root),
            ]
        )
        == 0
    )
    capsys.readouterr()
    src = "arxiv-api-mirror:o/r/articles/article.json@abc"
    args = ["catalog", "fill-metadata", str(TRACK / "records_api.json"), "--source", src, "--root", str(root)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (
        "abstract: 1" in out and "not filled (title differs)" in out
    )  # 2503.00002's record is another paper
    ids = {yaml.safe_load(p.read_text())["arxiv"]: p.stem for p in (root / "papers").glob("*.yaml")}
    bench = paper(root, ids["2502.00001"])
    assert bench["authors"] == ["Ada Example", "Bo Sample", "Cy Test"] and "authors_status" not in bench
    assert bench["abstract"].startswith("We introduce a benchmark. It measures jailbreaks")  # latest version
    assert bench["title"].endswith("(v2 title)") and bench["date"] == "2025-02-03"
    assert bench["arxiv_class"] == "cs.CV" and bench["verified"] is True
    assert bench["field_sources"] == {k: src for k in ("title", "authors", "abstract", "date", "arxiv_class")}
    assert "same id and title in the arXiv API record" in bench["verified_by"][0]
    guard = paper(root, ids["2503.00002"])
    assert "abstract" not in guard and guard["authors_status"] == "unknown"
    assert errors(root) == []
    before = {p.name: p.read_text() for p in (root / "papers").glob("*.yaml")}
    assert main(args) == 0  # a second run changes nothing
    assert "0 files changed" in capsys.readouterr().out
    assert before == {p.name: p.read_text() for p in (root / "papers").glob("*.yaml")}


def test_fill_metadata_without_a_matching_record_changes_nothing_and_needs_a_source(root, capsys):
    digest = TRACK / "digest.md"
    figstep = paper(root, "2023-gong-figstep")
    assert (
        main(
            [
                "catalog",
                "fill-metadata",
                str(digest),
                "--source",
                "arxiv-digest:o/r/d.md",
                "--root",
                str(root),
            ]
        )
        == 0
    )
    after = paper(root, "2023-gong-figstep")
    assert after == figstep  # no record for it
    assert main(["catalog", "fill-metadata", str(digest), "--root", str(root)]) == 2
    assert "--source" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------
# Schema rules of the provenance fields


def test_authors_need_a_source_or_an_explicit_unknown(root):
    path = root / "papers" / "2023-gong-figstep.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.pop("field_sources")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert any("the authors have no source" in e for e in errors(root))
    data["authors"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert any("lists no authors" in e and "authors_status: unknown" in e for e in errors(root))
    data["authors_status"] = "unknown"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert errors(root) == []


def test_schema_rejects_an_unsourced_abstract_and_bad_source_kinds():
    base = {"id": "2024-x-y", "title": "A Paper", "date": "2024-01", "category": "attack"}
    with pytest.raises(ValueError, match="abstract has no source"):
        Paper.model_validate({**base, "abstract": "Text."})
    with pytest.raises(ValueError, match="field_sources"):
        Paper.model_validate({**base, "field_sources": {"authors": "my memory"}})
    with pytest.raises(ValueError, match="authors_status is 'unknown'"):
        Paper.model_validate({**base, "authors": ["A B"], "authors_status": "unknown"})
    with pytest.raises(ValueError, match="verified_by"):
        Paper.model_validate({**base, "verified": False, "verified_by": ["x"]})
    ok = Paper.model_validate({**base, "abstract": "Text.", "field_sources": {"abstract": "arxiv-api"}})
    assert ok.venue is None and ok.evaluated_on == [] and ok.implemented_in == []


# ------------------------------------------------------------------------------------------------------
# The tracker's pull-request body


def test_track_writes_a_reviewable_pr_body(root, tmp_path, monkeypatch):
    out = tmp_path / "tracking"
    with FakeArxivServer(ENTRIES) as srv:
        monkeypatch.setenv("MLLM_SAFETY_ARXIV_API", srv.api)
        monkeypatch.setenv("MLLM_SAFETY_ARXIV_DELAY", "0")
        assert (
            main(["catalog", "track", "--since", "2024-01-01", "--out", str(out), "--root", str(root)]) == 0
        )
    body = (out / "pr-body.md").read_text(encoding="utf-8")
    assert (out / f"candidates-{dt.date.today().isoformat()}.md").is_file()
    rows = [line for line in body.splitlines() if line.startswith("| ") and "arXiv:" in line]
    assert rows and "## New candidate papers:" in body and "Source: the arXiv API" in body
    assert all("https://arxiv.org/abs/" in r for r in rows)
    assert any(" — " in r and ("attack (" in r or "defense (" in r) for r in rows)  # suggested facets
    assert "2311.05608" not in body  # already in the catalog
