"""The contribution path's config files are valid: GitHub workflows, the issue form, pre-commit, CITATION.cff.

actionlint cannot be installed offline here (its PyPI wrapper downloads the binary from GitHub), so the
workflows get a structural check of the keys GitHub requires; actionlint also runs when it is on PATH.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
JOB_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
USES = re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[A-Za-z0-9_.\-/]+|\./\S+|docker://\S+)$")
EVENTS = {"push", "pull_request", "pull_request_target", "schedule", "workflow_dispatch", "workflow_call",
          "release", "issues", "issue_comment", "workflow_run", "merge_group"}  # fmt: skip
INPUT_TYPES = {"string", "boolean", "choice", "number", "environment"}
PERMISSION_VALUES = {"read", "write", "none"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_problems(wf: Any) -> list[str]:
    """What GitHub would reject (or what would be a script-injection risk) in a parsed workflow."""
    if not isinstance(wf, dict):
        return ["the workflow is not a mapping"]
    problems = []
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    if not on:
        problems.append("missing `on`")
    events = [on] if isinstance(on, str) else list(on or [])
    problems += [f"unknown event {e!r}" for e in events if e not in EVENTS]
    if isinstance(on, dict):
        for entry in on.get("schedule") or []:
            if len(str(entry.get("cron", "")).split()) != 5:
                problems.append(f"cron {entry!r} does not have 5 fields")
        for name, spec in ((on.get("workflow_dispatch") or {}).get("inputs") or {}).items():
            if spec.get("type", "string") not in INPUT_TYPES:
                problems.append(f"input {name}: unknown type {spec.get('type')!r}")
    perms = wf.get("permissions", {})
    if isinstance(perms, dict):
        problems += [f"permission {k}: {v!r}" for k, v in perms.items() if v not in PERMISSION_VALUES]
    jobs = wf.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        return [*problems, "missing `jobs`"]
    for job_id, job in jobs.items():
        where = f"jobs.{job_id}"
        if not JOB_ID.match(str(job_id)):
            problems.append(f"{where}: invalid job id")
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in jobs:
                problems.append(f"{where}: needs unknown job {need!r}")
        if "uses" in job:  # a reusable-workflow call has no runs-on / steps
            continue
        if "runs-on" not in job:
            problems.append(f"{where}: missing `runs-on`")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append(f"{where}: missing `steps`")
            continue
        for i, step in enumerate(steps):
            has = [k for k in ("uses", "run") if k in step]
            if len(has) != 1:
                problems.append(f"{where}.steps[{i}]: needs exactly one of `uses` or `run`")
            elif "uses" in step and not USES.match(step["uses"]):
                problems.append(f"{where}.steps[{i}]: `uses: {step['uses']}` is not owner/repo@ref")
            run = str(step.get("run", ""))
            if re.search(r"\$\{\{\s*(inputs\.|github\.event\.)", run):
                problems.append(f"{where}.steps[{i}]: untrusted input interpolated into `run` (use env:)")
            for text in (run, *map(str, (step.get("with") or {}).values())):
                if text.count("${{") != text.count("}}"):
                    problems.append(f"{where}.steps[{i}]: unbalanced ${{{{ }}}} expression")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_has_the_keys_github_requires(path):
    assert workflow_problems(load(path)) == []


def test_the_structural_check_catches_broken_workflows():
    good = load(REPO / ".github" / "workflows" / "ci.yml")
    assert workflow_problems(good) == []
    assert "missing `on`" in workflow_problems({"jobs": good["jobs"]})
    broken = {"on": "push", "jobs": {"a": {"steps": [{"run": "x", "uses": "a/b@v1"}], "needs": "zz"}}}
    found = workflow_problems(broken)
    assert "jobs.a: missing `runs-on`" in found and "jobs.a: needs unknown job 'zz'" in found
    assert "jobs.a.steps[0]: needs exactly one of `uses` or `run`" in found
    inject = {
        True: {"workflow_dispatch": {}},
        "jobs": {"b": {"runs-on": "x", "steps": [{"run": "echo ${{ inputs.x }}"}]}},
    }
    assert any("untrusted input" in p for p in workflow_problems(inject))


def _commands(wf: dict) -> list[str]:
    return [line.strip() for job in wf["jobs"].values() for s in job.get("steps", []) for line in str(s.get("run", "")).splitlines()]  # fmt: skip


def test_ci_runs_catalog_check_with_annotations_lint_tests_and_strict_docs():
    from tools.cli.main import build_parser

    cmds = _commands(load(REPO / ".github" / "workflows" / "ci.yml"))
    for wanted in ("mllm-safety catalog check --format github", "pytest", "mkdocs build --strict"):
        assert any(c.startswith(wanted) for c in cmds), wanted
    assert any(c.startswith("ruff check") for c in cmds)
    parser = build_parser()
    for cmd in cmds:
        if cmd.startswith("mllm-safety ") and "$" not in cmd:
            parser.parse_args(shlex.split(cmd)[1:])  # exits (fails the test) on an unknown option


def test_track_workflow_is_weekly_and_opens_a_pull_request():
    wf = load(REPO / ".github" / "workflows" / "track.yml")
    on = wf.get("on", wf.get(True))
    cron = on["schedule"][0]["cron"].split()
    assert cron[2] == "*" and cron[3] == "*" and cron[4] != "*"  # one day a week
    assert any("mllm-safety catalog track" in c for c in _commands(wf))
    steps = wf["jobs"]["track"]["steps"]
    pr = next(s for s in steps if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert "tracking/" in pr["with"]["add-paths"] and "catalog/tracking-state.yaml" in pr["with"]["add-paths"]
    assert wf["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_issue_form_suggest_paper():
    form = load(REPO / ".github" / "ISSUE_TEMPLATE" / "suggest-paper.yml")
    assert form["name"] and form["description"] and isinstance(form["body"], list)
    ids = []
    for item in form["body"]:
        assert item["type"] in {"markdown", "input", "textarea", "dropdown", "checkboxes"}
        if item["type"] == "markdown":
            assert item["attributes"]["value"].strip()
            continue
        ids.append(item["id"])
        assert item["attributes"]["label"]
        if item["type"] == "dropdown":
            assert item["attributes"]["options"]
        if item["type"] == "checkboxes":
            assert all(o["label"] for o in item["attributes"]["options"])
    assert len(ids) == len(set(ids)) and "link" in ids


def test_pull_request_template_has_both_checklists():
    text = (REPO / ".github" / "PULL_REQUEST_TEMPLATE.md").read_text(encoding="utf-8")
    assert "mllm-safety catalog check" in text and "suggested: true" in text
    for item in ("@register", "Params", "paper_id", "behaviour test", "docs build"):
        assert item in text


def test_pre_commit_config_runs_ruff_and_the_catalog_check():
    from tools.cli.main import build_parser

    cfg = load(REPO / ".pre-commit-config.yaml")
    hooks = {}
    for repo in cfg["repos"]:
        assert repo["repo"] == "local" or (repo["repo"].startswith("https://") and repo["rev"])
        for hook in repo["hooks"]:
            hooks[hook["id"]] = hook
            if repo["repo"] == "local":
                assert {"id", "name", "entry", "language"} <= set(hook)
    assert "ruff" in hooks and "ruff-format" in hooks
    entry = shlex.split(hooks["catalog-check"]["entry"])
    assert entry[0] == "mllm-safety" and build_parser().parse_args(entry[1:]).catalog_command == "check"


def test_citation_cff():
    cff = load(REPO / "CITATION.cff")
    for key in ("cff-version", "message", "title", "authors"):
        assert cff[key], key
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    version = re.search(r'(?m)^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"))[1]
    assert cff["version"] == version
    for ref in cff.get("references", []):
        assert ref["type"] and ref["title"] and ref["authors"]


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed")
def test_actionlint():
    proc = subprocess.run(["actionlint", *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_data_covers_every_data_file_of_the_packages() -> None:
    """A wheel (non-editable install) must carry the fonts, prompts, bundled sets and drawn pools: every file
    git tracks under baselines/ and tools/ is a module or matches a package-data pattern of pyproject.toml."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    tracked = subprocess.run(
        ["git", "ls-files", "baselines", "tools"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    left_out = [
        f for f in tracked if not f.endswith(".py") and not any(fnmatch.fnmatch(Path(f).name, p) for p in patterns)
    ]
    assert not left_out, f"add their patterns to [tool.setuptools.package-data]: {left_out}"
