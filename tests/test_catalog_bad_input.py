"""Bad catalog input: every case gives a located message (file:line: what (how to fix)) and exit 1.

Each test copies the small valid fixture catalog to tmp_path, breaks one file, and runs the real CLI
entry point (``tools.cli.main.main``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.cli.main import main

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the valid fixture catalog."""
    dest = tmp_path / "catalog"
    shutil.copytree(FIXTURE, dest)
    return dest


def check(root: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    """Run `mllm-safety catalog check --root ROOT`; return (exit code, stdout + stderr)."""
    code = main(["catalog", "check", "--root", str(root), *extra])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


def write(root: Path, name: str, text: str | bytes) -> Path:
    """Write a paper file (text or raw bytes) into ROOT/papers/."""
    path = root / "papers" / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


GOOD = """id: 2024-doe-example
title: An Example Paper About Safety
authors: [Jane Doe]
date: 2024-05
category: attack
"""


def test_valid_fixture_passes(root: Path, capsys: pytest.CaptureFixture) -> None:
    code, text = check(root, capsys)
    assert code == 0, text
    assert text.strip().splitlines()[-1] == "3 papers, 11 vocabularies, 0 results: OK"


def test_malformed_yaml(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "attack:\n  techniques: [typographic\nnotes: x\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "papers/2024-doe-example.yaml:8: malformed YAML" in text
    assert "indentation" in text  # how to fix


def test_duplicate_key(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "title: Another Title\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: duplicate key 'title' (first written at line 2)" in text


def test_unknown_field_suggests_spelling(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "venu: ECCV 2024\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: unknown field 'venu'" in text
    assert "did you mean 'venue'" in text


def test_unknown_nested_field(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "attack:\n  technique: [typographic]\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:7: unknown field 'attack.technique'" in text
    assert "did you mean 'techniques'" in text


def test_unknown_vocabulary_term_suggests_closest(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(
        root, "2024-doe-example.yaml", GOOD + "attack:\n  techniques:\n    - typographic\n    - typografik\n"
    )
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:9: unknown attack.techniques term 'typografik'" in text
    assert "did you mean 'typographic'?" in text
    assert "catalog/vocab/attack_techniques.yaml" in text


def test_alias_instead_of_term_id(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(
        root,
        "2024-doe-example.yaml",
        GOOD
        + "models: [gpt-4v]\nreported_results:\n"
        + (
            "  - {model: llava-1.5-7b, dataset: safebench, metric: asr, value: 0.5}\n"
            "  - {model: llava-1.5-7b, dataset: safe-bench, metric: asr, value: 0.5}\n"
        ),
    )
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:9: unknown reported_results.dataset term 'safe-bench'" in text
    assert "did you mean 'safebench'" in text


def test_duplicate_id(root: Path, capsys: pytest.CaptureFixture) -> None:
    text = (root / "papers" / "2023-gong-figstep.yaml").read_text()
    write(root, "2023-gong-figstep2.yaml", text.replace("2311.05608", "2311.99999").replace("FigStep:", "X:"))
    code, out = check(root, capsys)
    assert code == 1
    assert "2023-gong-figstep2.yaml:1: id '2023-gong-figstep' differs from the file name" in out
    assert "2023-gong-figstep2.yaml:1: duplicate id: 2023-gong-figstep.yaml has the same id" in out


def test_duplicate_arxiv_id(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "arxiv: '2311.05608'\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: duplicate arXiv id: 2023-gong-figstep.yaml has the same arXiv id" in text


def test_duplicate_title_after_normalization(root: Path, capsys: pytest.CaptureFixture) -> None:
    title = "figstep -- jailbreaking large vision-language models via typographic visual prompts!"
    write(root, "2024-doe-example.yaml", GOOD.replace("An Example Paper About Safety", title))
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:2: duplicate title: 2023-gong-figstep.yaml has the same title" in text


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,x", "ftp://x.org/a"]
)
def test_only_http_links(root: Path, capsys: pytest.CaptureFixture, url: str) -> None:
    write(root, "2024-doe-example.yaml", GOOD + f"links:\n  code: '{url}'\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:7: links.code:" in text
    assert "is not an http(s) URL" in text


def test_non_utf8_file(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD.encode() + b"notes: caf\xe9 in latin-1\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: the file is not valid UTF-8" in text
    assert "save the file with UTF-8 encoding" in text


def test_python_object_tag_is_rejected_not_executed(root: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "pwned"
    write(
        root, "2024-doe-example.yaml", GOOD + f"notes: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    code, text = check(root, capsys)
    assert code == 1
    assert (
        "2024-doe-example.yaml:6: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
        in text
    )
    assert not marker.exists()


def test_custom_tag_is_rejected(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "notes: !include other.yaml\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: YAML tag '!include' is not allowed" in text


def test_aliases_are_rejected(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "affiliations: &a [Doe Lab]\nsources: *a\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:7: anchors and aliases" in text


def test_empty_file(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", "# nothing here yet\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:1: the file is empty (write the paper as a YAML mapping)" in text


def test_list_instead_of_mapping(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", "- id: 2024-doe-example\n- title: An Example\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:1: the file is a list, not a mapping" in text


def test_unreal_date_and_missing_field(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(
        root, "2024-doe-example.yaml", GOOD.replace("2024-05", "2024-02-30").replace("category: attack\n", "")
    )
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:4: date: '2024-02-30' is not a real date" in text
    assert "2024-doe-example.yaml:1: missing required field 'category'" in text


def test_unquoted_arxiv_number(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "arxiv: 2405.01234\n")
    code, text = check(root, capsys)
    assert code == 1
    assert (
        "2024-doe-example.yaml:6: arxiv: expected text, got the number 2405.01234 (put the value in quotes"
        in text
    )


def test_borderline_without_reason(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "scope: borderline\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:6: scope is 'borderline' but scope_reason is missing" in text


def test_bad_vocabulary_file(root: Path, capsys: pytest.CaptureFixture) -> None:
    path = root / "vocab" / "models.yaml"
    path.write_text(
        path.read_text() + "  - id: gpt-4v\n    name: again\n    definition: twice.\n    parent: gpt4\n"
    )
    code, text = check(root, capsys)
    assert code == 1
    assert "vocab/models.yaml:15: term id 'gpt-4v' appears twice" in text
    assert "vocab/models.yaml:18: parent 'gpt4' of term 'gpt-4v' is not a term of this vocabulary" in text


def test_github_annotations(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "venu: x\n")
    code, text = check(root, capsys, "--format", "github")
    assert code == 1
    line = next(x for x in text.splitlines() if x.startswith("::error"))
    assert line.startswith("::error file=") and "2024-doe-example.yaml,line=6::unknown field 'venu'" in line


def test_missing_root_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, text = check(tmp_path / "nope", capsys)
    assert code == 2
    assert "no catalog at" in text and "--root" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (GOOD + "1: x\n", ":6: key '1' is not a name"),
        (GOOD + "notes: a\x01b\n", ":6: the file contains the control character U+0001"),
        (
            GOOD + "---\nid: 2024-doe-other\n",
            ":6: malformed YAML: expected a single document in the stream but found another document (a catalog file holds one YAML document",
        ),
        ("hello\n", ":1: the file is a single str value, not a mapping"),
        (GOOD + "links: https://x.org\n", ":6: links: expected a mapping of fields, got 'https://x.org'"),
        (GOOD + "authors2: []\n", ":6: unknown field 'authors2' (did you mean 'authors'"),
        ("a: " + "[" * 2000 + "]" * 2000 + "\n", ":1: malformed YAML"),
    ],
)
def test_more_bad_files(root: Path, capsys: pytest.CaptureFixture, content: str, expected: str) -> None:
    write(root, "2024-doe-example.yaml", content)
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml" + expected in text


def test_tab_indentation(root: Path, capsys: pytest.CaptureFixture) -> None:
    write(root, "2024-doe-example.yaml", GOOD + "attack:\n\ttechniques: [typographic]\n")
    code, text = check(root, capsys)
    assert code == 1
    assert "2024-doe-example.yaml:7: malformed YAML" in text and "(indent with spaces, not tabs)" in text
