"""Build or preview the site: the ``mkdocs`` command on the repository's mkdocs.yml (what CI builds), with
the catalog hook pointed at another catalog directory when asked. ``tools.cli.docs`` only parses and prints."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "mkdocs.yml"


class SiteError(Exception):
    """The site cannot be built as asked (mkdocs missing, no such catalog directory)."""


def mkdocs_command(action: str, *, strict: bool = False, site_dir: str | None = None,
                   dev_addr: str | None = None) -> list[str]:  # fmt: skip
    """The mkdocs command line for ``action`` ('build' or 'serve') on the repository's config."""
    cmd = [sys.executable, "-m", "mkdocs", action, "-f", str(CONFIG)]
    if strict:
        cmd.append("--strict")
    if site_dir:
        cmd += ["--site-dir", str(Path(site_dir).resolve())]
    if dev_addr:
        cmd += ["--dev-addr", dev_addr]
    return cmd


def mkdocs_env(catalog: str | None) -> dict[str, str]:
    """The environment of the mkdocs process: ``MLLM_SAFETY_CATALOG`` set when ``catalog`` is given."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if catalog:
        path = Path(catalog).resolve()
        if not path.is_dir():
            raise SiteError(f"catalog directory {catalog} does not exist (pass --catalog DIR)")
        env["MLLM_SAFETY_CATALOG"] = str(path)
    return env


def run_mkdocs(cmd: list[str], catalog: str | None) -> int:
    """Run ``cmd`` from the repository root; its exit code. SiteError when mkdocs is not installed."""
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        raise SiteError(
            "mkdocs and mkdocs-material are not installed; install them with "
            '`pip install -e ".[docs]"` and try again'
        )
    return subprocess.run(cmd, cwd=REPO, env=mkdocs_env(catalog), check=False).returncode


def site_dir(given: str | None) -> Path:
    """Where ``docs build`` writes the site: ``given`` or the repository's site/."""
    return Path(given).resolve() if given else REPO / "site"
