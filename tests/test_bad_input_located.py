"""Issue 13, point 5 (catalog and data side): untrusted arXiv metadata, arXiv references, CSV rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from baselines.base import DatasetError
from baselines.datasets._common import Checksum, read_csv
from tools.catalog.store import load_catalog, write_paper
from tools.cli.main import main
from tools.track.arxiv import ArxivEntry, parse_arxiv_id
from tools.track.intake import MAX_ID, entry_to_paper

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("ref", ["2401.00001/../../x", "2401.00001/x", "../2401.00001", "2401.00001 extra"])
def test_an_arxiv_reference_with_anything_else_is_rejected(ref, tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="not an arXiv id or URL"):
        parse_arxiv_id(ref)
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results"))
    monkeypatch.setenv("MLLM_SAFETY_ARXIV_API", "http://127.0.0.1:9/never-contacted")
    assert main(["catalog", "add", ref, "--root", str(root)]) == 2
    assert "not an arXiv id or URL" in capsys.readouterr().err
    assert sorted(p.name for p in (root / "papers").iterdir()) == sorted(
        p.name for p in (REPO / "catalog" / "papers").iterdir()
    )


@pytest.mark.parametrize(
    "ref", ["2405.01234", "arXiv:2405.01234v2", "https://arxiv.org/pdf/2405.01234v2.pdf", "hep-th/9901001"]
)
def test_plain_references_still_parse(ref):
    assert parse_arxiv_id(ref) in ("2405.01234", "hep-th/9901001")


def test_a_3000_character_author_name_gives_a_short_id_and_a_writable_file(tmp_path):
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "catalog", root, ignore=shutil.ignore_patterns("results"))
    entry = ArxivEntry(
        arxiv_id="2499.00001",
        version=1,
        title="A Study of Very Long Author Names in Multimodal Safety",
        authors=["A " + "x" * 3000, "B. Other"],
        published="2024-05-02",
        updated="2024-05-02",
        abstract="Jailbreak attacks on vision-language models.",
    )
    paper, _ = entry_to_paper(entry, load_catalog(root, check=False))
    assert len(paper.id) <= MAX_ID and paper.id.startswith(entry.published[:4] + "-")
    path = write_paper(paper, root)
    assert path.is_file() and path.stem == paper.id


def test_a_short_csv_row_says_which_field_is_missing(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,d,e,f\n1,2,3,4,5,6\n1,2,3,4,5\n")
    with pytest.raises(DatasetError) as e:
        read_csv(path, ["a"], "test", Checksum(tmp_path))
    assert str(e.value) == f"{path}:3: row has 5 fields, expected 6: no value for f"


def test_a_long_csv_row_says_it_has_extra_fields(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,d,e,f\n1,2,3,4,5,6,7,8\n")
    with pytest.raises(DatasetError, match=r":2: row has 8 fields, expected 6: 2 extra \(an unquoted comma"):
        read_csv(path, ["a"], "test", Checksum(tmp_path))
