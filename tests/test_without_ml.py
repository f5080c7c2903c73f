"""The catalog tooling works on a machine without the ML stack (the `ml` extra), and a command that needs
it says how to install it. A ``sitecustomize`` on PYTHONPATH makes importing torch, transformers,
tokenizers and safetensors fail in a subprocess, as on a fresh `pip install -e .`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "catalog"

BLOCKER = """
import sys

BLOCKED = {"torch", "transformers", "tokenizers", "safetensors"}


class _NoML:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoML())
"""

REPORT_ML = "import sys; print('ML modules:', sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED}))"


@pytest.fixture(scope="module")
def no_ml_env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("no_ml")
    (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`mllm-safety ARGS` in a subprocess (its main(), so no installed script is needed)."""
    code = "import sys; from tools.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_blocker_really_blocks(no_ml_env) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import torch"], env=no_ml_env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "No module named 'torch'" in proc.stderr


def test_catalog_check_needs_no_ml_stack(no_ml_env) -> None:
    args = ("catalog", "check", "--root", str(FIXTURE))
    without = cli(no_ml_env, *args)
    with_ml = cli({**os.environ, "PYTHONPATH": str(REPO)}, *args)
    assert "Traceback" not in without.stderr, without.stderr
    # the registry loaded: the baseline names were cross-checked exactly as with torch installed
    assert "could not load the baseline registry" not in without.stdout + without.stderr
    assert (without.returncode, without.stdout) == (with_ml.returncode, with_ml.stdout)
    assert without.stdout.strip().splitlines()[-1].startswith("3 papers, ")


def test_discovery_and_export_import_no_ml_module(no_ml_env) -> None:
    code = (
        "from baselines import registry\n"
        "for kind in ('attack', 'defense', 'judge', 'model', 'dataset'):\n"
        "    assert registry.names(kind), kind\n"
        f"from tools.catalog.issues import export_text; from pathlib import Path\n"
        f"assert '@' in export_text(Path({str(FIXTURE)!r}), 'bibtex')\n"
        + REPORT_ML.format(BLOCKED=repr({"torch", "transformers", "tokenizers", "safetensors"}))
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=no_ml_env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ML modules: []" in proc.stdout


def test_run_without_ml_stack_exits_2_with_the_install_hint(no_ml_env, tmp_path) -> None:
    proc = cli(no_ml_env, "run", "figstep", "--limit", "2", "--no-write-back", "--runs-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "pip install -e '.[ml]'" in lines[0] and "torch" in lines[0]


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from tools.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'torch', 'transformers', 'tokenizers', 'safetensors', 'numpy', 'PIL', 'requests', 'pydantic', 'yaml'})\n"
        "print('HEAVY', heavy)"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "usage: mllm-safety" in proc.stdout and "HEAVY []" in proc.stdout, proc.stdout
    assert time.perf_counter() - t0 < 30  # a sanity bound; the import figure is measured by -X importtime


def test_run_help_still_shows_the_detailed_options(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "--attack" in out and "--max-new-tokens" in out, out
