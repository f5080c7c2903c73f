"""Exports: BibTeX (keys, escaping, entry types), CSV, JSON (reloads to the same catalog), JSON Schema."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from tools.catalog.bibtex import bibtex_key, catalog_bibtex, latex_escape, paper_bibtex
from tools.catalog.export import from_json, paper_json_schema, to_csv
from tools.catalog.schema import Paper
from tools.catalog.store import load_catalog
from tools.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the valid fixture catalog."""
    dest = tmp_path / "catalog"
    shutil.copytree(FIXTURE, dest)
    return dest


def paper(**kw: object) -> Paper:
    """A minimal valid paper with overrides."""
    data: dict = {"id": "2024-doe-example", "title": "An Example", "date": "2024-05", "category": "attack"}
    data.update(kw)
    return Paper.model_validate(data)


def test_keys_are_stable_and_unique() -> None:
    assert bibtex_key("2023-gong-figstep") == "gong2023figstep"
    assert bibtex_key("2023-liu-mm-safetybench") == "liu2023mm-safetybench"
    assert bibtex_key("2023-liu-mm-safetybench") != bibtex_key("2023-liu-mmsafetybench")
    twins = [paper(id="2024-doe-ab"), paper(id="2024-doe-ab", title="Other")]
    keys = [
        line.split("{")[1].rstrip(",") for line in catalog_bibtex(twins).splitlines() if line.startswith("@")
    ]
    assert keys == ["doe2024ab", "doe2024abb"]


def test_latex_escaping() -> None:
    assert latex_escape(r"50% & $5 #1 a_b {c} ~d ^e \f") == (
        r"50\% \& \$5 \#1 a\_b \{c\} \textasciitilde{}d \textasciicircum{}e \textbackslash{}f"
    )
    assert latex_escape("Müller, Jérôme, Łukasz, Groß, Nuño") == (
        r"M{\"{u}}ller, J{\'{e}}r{\^{o}}me, {\L}ukasz, Gro{\ss}, Nu{\~{n}}o"
    )
    assert latex_escape("王小明 – test") == "王小明 -- test"  # CJK kept as UTF-8


def test_preprint_keeps_year_and_month_of_first_version() -> None:
    text = paper_bibtex(paper(title="Some attack", venue=None, arxiv="2402.02309", date="2024-02-04"))
    assert text.startswith("@misc{") and "  year          = {2024},\n  month         = feb,\n" in text


def test_inproceedings_with_booktitle() -> None:
    p = paper(
        title="FigStep: Jailbreaking LVLMs via 100% Typographic Prompts",
        authors=["Yichen Gong", "Zoë Ré"],
        venue="AAAI 2025",
        arxiv="2311.05608",
        date="2023-11-09",
    )
    text = paper_bibtex(p, key="gong2023figstep")
    assert text.startswith("@inproceedings{gong2023figstep,\n")
    assert "  booktitle     = {AAAI 2025},\n" in text
    assert "  title         = {{FigStep:} Jailbreaking {LVLMs} via 100\\% Typographic Prompts},\n" in text
    assert "  author        = {Yichen Gong and Zo{\\\"{e}} R{\\'{e}}},\n" in text
    # a published entry takes the venue's year, not the first arXiv version's
    assert "  year          = {2025},\n  eprint" in text and "month" not in text
    assert "  eprint        = {2311.05608},\n  archivePrefix = {arXiv},\n" in text
    assert text.endswith("}\n") and text.count("{") == text.count("}")


def test_misc_for_arxiv_only_and_article_for_journals() -> None:
    misc = paper_bibtex(paper(arxiv="2402.00357", venue="arXiv"))
    assert misc.startswith("@misc{doe2024example,")
    assert "booktitle" not in misc and "eprint        = {2402.00357}" in misc
    assert "url           = {https://arxiv.org/abs/2402.00357}" in misc
    article = paper_bibtex(paper(venue="IEEE Transactions on Information Forensics and Security"))
    assert article.startswith("@article{") and "journal" in article


def test_json_export_reloads_to_the_same_catalog(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    assert main(["catalog", "export", "--format", "json", "--root", str(root), "--output", str(out)]) == 0
    papers = load_catalog(root, check=False).papers
    reloaded = from_json(out.read_text(encoding="utf-8"))
    assert {p.id: p for p in reloaded} == papers
    assert [p.id for p in reloaded] == list(papers)
    assert "Café" in out.read_text(encoding="utf-8")


def test_csv_export(root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["catalog", "export", "--format", "csv", "--root", str(root)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == ["2023-gong-figstep", "2024-luo-jailbreakv-28k", "2024-wang-adashield"]
    fig = rows[0]
    assert fig["authors"] == "Yichen Gong; Delong Ran; Jinyuan Liu"
    assert fig["attack.techniques"] == "typographic"
    assert fig["links.code"] == "https://github.com/ThuCCSLab/FigStep"
    assert fig["reported_results"] == "llava-1.5-7b/safebench/asr=0.84 (figstep)"
    assert rows[1]["evaluation.size"] == "28000" and rows[1]["evaluation.dataset_released"] == "true"


def test_csv_neutralizes_formulas() -> None:
    text = to_csv([paper(title="=HYPERLINK(1) is a title")])
    assert "'=HYPERLINK(1) is a title" in text


def test_bibtex_export_via_cli(root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["catalog", "export", "--format", "bibtex", "--root", str(root)]) == 0
    text = capsys.readouterr().out
    assert text.count("\n@") + text.startswith("@") == 3
    assert "@inproceedings{gong2023figstep," in text and "@misc{luo2024jailbreakv-28k," in text
    assert r"Caf{\'{e}}" not in text  # notes are not exported to BibTeX


def test_export_refuses_a_broken_catalog(root: Path, capsys: pytest.CaptureFixture) -> None:
    (root / "papers" / "2024-wang-adashield.yaml").write_text("- a list\n")
    assert main(["catalog", "export", "--format", "json", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "2024-wang-adashield.yaml:1: the file is a list, not a mapping" in err


def test_schema_has_vocabulary_enums(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "paper.schema.json"
    assert main(["catalog", "schema", "--root", str(root), "--output", str(out)]) == 0
    schema = json.loads(out.read_text())
    defs = schema["$defs"]
    techniques = defs["AttackFacets"]["properties"]["techniques"]["items"]
    assert techniques["enum"] == ["typographic", "adversarial-perturbation", "query-relevant-image"]
    assert techniques["markdownEnumDescriptions"][0].startswith("**Typographic / visual prompt**")
    assert defs["ReportedResult"]["properties"]["dataset"]["enum"] == ["safebench", "mm-safetybench"]
    assert schema["properties"]["models"]["items"]["enum"] == ["llava-1.5", "llava-1.5-7b", "gpt-4v"]
    assert schema["properties"]["category"]["enum"] == ["evaluation", "attack", "defense", "survey", "other"]
    assert schema["additionalProperties"] is False
    # without vocabularies the schema still works, just without enums
    plain = paper_json_schema({})
    assert "enum" not in plain["$defs"]["AttackFacets"]["properties"]["techniques"]["items"]
