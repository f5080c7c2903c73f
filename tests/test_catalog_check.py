"""The Catalog API (tools.catalog.store): loading, checking, dumping papers and the atomic result write-back."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tools.catalog import checks
from tools.catalog import store as cat
from tools.catalog.schema import Paper, Result
from tools.catalog.store import (
    CatalogError,
    CatalogIssue,
    check_catalog,
    default_root,
    dump_paper,
    load_catalog,
    write_paper,
    write_result,
)
from tools.catalog.yamlio import parse_yaml
from tools.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the valid fixture catalog."""
    dest = tmp_path / "catalog"
    shutil.copytree(FIXTURE, dest)
    return dest


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """A fixed baseline registry, so the tests do not depend on which baselines exist today."""
    names = {"figstep", "adashield_s", "ecso"}
    monkeypatch.setattr(checks, "registry_names", lambda: (names, None))
    return names


def result_dict(**changes: Any) -> dict[str, Any]:
    """A valid Result as the harness produces it."""
    data: dict[str, Any] = {
        "baseline": "figstep",
        "paper_id": "2023-gong-figstep",
        "model": {"backend": "organism", "id": "organism", "labels": ["model organism"]},
        "dataset": {"name": "bundled", "checksum": "sha256:00", "n_samples": 4},
        "defense": None,
        "judges": [{"name": "refusal", "list": "gcg", "hash": "abc"}],
        "conditions": [
            {
                "condition": "figstep",
                "attack": "figstep",
                "n_samples": 4,
                "judges": [
                    {"judge": "refusal", "asr": {"value": 0.5, "ci_low": 0.0, "ci_high": 1.0, "n": 4}}
                ],
            }
        ],
        "config": {"baseline": "figstep", "limit": 4},
        "provenance": {"git_commit": "0" * 40, "seed": 0},
        "labels": ["model organism"],
        "run_id": "run-1",
        "created": "2026-11-29T12:00:00Z",
    }
    data.update(changes)
    return data


def test_load_catalog(root: Path, registry: set[str]) -> None:
    c = load_catalog(root)
    assert list(c.papers) == ["2023-gong-figstep", "2024-luo-jailbreakv-28k", "2024-wang-adashield"]
    assert "attack_techniques" in c.vocab and "tracking" not in c.vocab
    assert c.paper_path("2023-gong-figstep") == root / "papers" / "2023-gong-figstep.yaml"
    figstep = c.papers["2023-gong-figstep"]
    assert figstep.date == "2023-11-09" and figstep.arxiv == "2311.05608"  # dates stay strings
    assert figstep.reported_results[0].value == 0.84
    assert check_catalog(root) == []


def test_load_catalog_raises_located_errors(root: Path, registry: set[str]) -> None:
    (root / "papers" / "2024-wang-adashield.yaml").write_text(
        "id: 2024-wang-adashield\ntitle: AdaShield\ndate: 2024-03\ncategory: defence\n"
    )
    with pytest.raises(CatalogError) as err:
        load_catalog(root)
    (issue,) = err.value.issues
    assert issue.line == 4 and issue.path.name == "2024-wang-adashield.yaml"
    assert "'defence' is not allowed" in str(issue) and "did you mean 'defense'?" in str(issue)
    # check=False skips broken files instead of raising
    assert "2024-wang-adashield" not in load_catalog(root, check=False).papers


def test_issue_format() -> None:
    issue = CatalogIssue(Path("papers/x.yaml"), 3, "unknown field 'venu'", "did you mean 'venue'?")
    assert str(issue) == "papers/x.yaml:3: unknown field 'venu' (did you mean 'venue'?)"
    assert str(CatalogIssue(Path("a.yaml"), None, "empty")) == "a.yaml: empty"


def test_baseline_names_checked_against_registry(root: Path) -> None:
    path = root / "papers" / "2023-gong-figstep.yaml"
    path.write_text(path.read_text() + "baseline: [figstep, fig_step2]\n")
    issues = check_catalog(root, registry_names={"figstep", "ecso"})
    assert [str(i).split(": ", 1)[1] for i in issues] == [
        "baseline 'fig_step2' is not a registered attack, defense or judge (did you mean 'figstep'?)"
    ]
    assert issues[0].line == path.read_text().count("\n")  # the appended last line
    assert check_catalog(root, registry_names={"figstep", "fig_step2"}) == []


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLLM_SAFETY_CATALOG", raising=False)
    assert default_root() == Path(cat.__file__).resolve().parents[2] / "catalog"
    monkeypatch.setenv("MLLM_SAFETY_CATALOG", str(tmp_path))
    assert default_root() == tmp_path


def test_dump_paper_round_trip(root: Path) -> None:
    for paper in load_catalog(root, check=False).papers.values():
        text = dump_paper(paper)
        assert Paper.model_validate(parse_yaml(text).data) == paper
        assert text.startswith(f"id: {paper.id}\ntitle: ")
        assert "suggested:" not in text and "scope:" not in text and "abstract:" not in text


def test_write_paper(root: Path) -> None:
    paper = Paper(id="2024-doe-example", title="An Example", date="2024-05", category="other")
    path = write_paper(paper, root)
    assert path == root / "papers" / "2024-doe-example.yaml"
    assert load_catalog(root, check=False).papers["2024-doe-example"] == paper
    with pytest.raises(CatalogError, match="already exists"):
        write_paper(paper, root)
    write_paper(paper.model_copy(update={"title": "Changed Title"}), root, overwrite=True)
    assert "Changed Title" in path.read_text()


def test_write_result_round_trip(root: Path, registry: set[str]) -> None:
    path = write_result(result_dict(), root)
    assert path == root / "results" / "figstep" / "organism__bundled__none.yaml"
    c = load_catalog(root)
    assert c.results == [Result.model_validate(result_dict())]
    assert c.result_paths == {"run-1": path}
    path2 = write_result(Result.model_validate(result_dict(defense="ecso", run_id="run-2")), root)
    assert path2.name == "organism__bundled__ecso.yaml"
    code = main(["catalog", "check", "--root", str(root)])
    assert code == 0


def test_write_result_rejects_invalid(root: Path, registry: set[str]) -> None:
    bad = result_dict()
    bad["conditions"][0]["judges"][0]["asr"]["value"] = 1.5
    with pytest.raises(CatalogError, match=r"conditions\.0\.judges\.0\.asr\.value"):
        write_result(bad, root)
    with pytest.raises(CatalogError, match="baseline 'figstepp' is not a registered.*did you mean 'figstep'"):
        write_result(result_dict(baseline="figstepp"), root)
    with pytest.raises(CatalogError, match="paper_id '2099-no-paper' is not in the catalog"):
        write_result(result_dict(paper_id="2099-no-paper"), root)
    assert not (root / "results").exists() or not list((root / "results").rglob("*"))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_result_is_atomic_when_sync_fails(root: Path, registry, monkeypatch) -> None:
    path = write_result(result_dict(), root)
    before = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(CatalogError, match="No space left"):  # a located one-line error, not a traceback
        write_result(result_dict(run_id="run-2"), root)
    assert path.read_bytes() == before  # the old file survives, complete
    assert _leftovers(path.parent) == []  # and no temporary file is left behind


def test_write_result_is_atomic_when_interrupted_mid_write(root: Path, registry, monkeypatch) -> None:
    path = write_result(result_dict(), root)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        """Writes the first half of the text, then fails (a crash in the middle of the write)."""

        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

        def write(self, text: str) -> int:
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    with pytest.raises(KeyboardInterrupt):
        write_result(result_dict(run_id="run-2"), root)
    assert path.read_bytes() == before
    assert _leftovers(path.parent) == []


def test_check_validates_results(root: Path, registry: set[str], capsys: pytest.CaptureFixture) -> None:
    path = write_result(result_dict(), root)
    moved = root / "results" / "ecso" / path.name
    moved.parent.mkdir()
    path.rename(moved)
    text = moved.read_text().replace("paper_id: 2023-gong-figstep", "paper_id: 2023-gong-figsteps")
    moved.write_text(text)
    code = main(["catalog", "check", "--root", str(root)])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "results/ecso/organism__bundled__none.yaml:2: result of baseline 'figstep' is in the folder 'ecso'"
        in out
    )
    assert (
        "organism__bundled__none.yaml:3: paper_id '2023-gong-figsteps' is not a paper of the catalog" in out
    )
    assert out.strip().splitlines()[-1] == "3 papers, 11 vocabularies, 1 result: 2 errors"


def test_repository_catalog_is_valid() -> None:
    """The real catalog passes every rule that does not depend on which baselines are implemented yet.

    (That every `baseline` name is registered is checked by `mllm-safety catalog check` and the registry test.)
    """
    repo_catalog = Path(cat.__file__).resolve().parents[2] / "catalog"
    scan = checks.scan(repo_catalog, full=True, check_registry=False)
    assert [str(i) for i in scan.issues if i.severity == "error"] == []
    assert scan.counts["papers"] == len(scan.catalog.papers)
