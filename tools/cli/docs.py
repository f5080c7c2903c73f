"""`mllm-safety docs build | serve`: build or preview the site (MkDocs + the catalog hook).

Both wrap the ``mkdocs`` command on the repository's mkdocs.yml, so what they build is exactly what
``mkdocs build`` and CI build. ``--catalog`` points the hook at another catalog directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "mkdocs.yml"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `docs build` and `docs serve`."""
    docs = subparsers.add_parser("docs", help="build or preview the static site")
    sub = docs.add_subparsers(dest="docs_command", metavar="SUBCOMMAND", required=True)
    b = sub.add_parser("build", help="build the site (generated pages come from the catalog)")
    b.add_argument("--strict", action="store_true", help="fail on any warning (what CI runs)")
    b.add_argument("--site-dir", default=None, help="output folder (default: site/)")
    b.add_argument(
        "--catalog", default=None, help="catalog directory (default: $MLLM_SAFETY_CATALOG or catalog/)"
    )
    b.set_defaults(func=_build)
    s = sub.add_parser("serve", help="live preview on http://127.0.0.1:8000")
    s.add_argument("--dev-addr", default="127.0.0.1:8000", help="IP:PORT to serve on")
    s.add_argument("--strict", action="store_true", help="fail on any warning")
    s.add_argument(
        "--catalog", default=None, help="catalog directory (default: $MLLM_SAFETY_CATALOG or catalog/)"
    )
    s.set_defaults(func=_serve)


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


def _env(catalog: str | None) -> dict[str, str] | None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if catalog:
        path = Path(catalog).resolve()
        if not path.is_dir():
            print(f"error: catalog directory {catalog} does not exist (pass --catalog DIR)", file=sys.stderr)
            return None
        env["MLLM_SAFETY_CATALOG"] = str(path)
    return env


def _run(cmd: list[str], catalog: str | None) -> int:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        print(
            "error: mkdocs and mkdocs-material are not installed; install them with "
            '`pip install -e ".[docs]"` and try again',
            file=sys.stderr,
        )
        return 2
    env = _env(catalog)
    if env is None:
        return 2
    return subprocess.run(cmd, cwd=REPO, env=env, check=False).returncode


def _build(args: argparse.Namespace) -> int:
    rc = _run(mkdocs_command("build", strict=args.strict, site_dir=args.site_dir), args.catalog)
    if rc == 0:
        print(f"site built in {Path(args.site_dir).resolve() if args.site_dir else REPO / 'site'}")
    else:
        print("error: the site did not build; the messages above say why", file=sys.stderr)
    return rc


def _serve(args: argparse.Namespace) -> int:
    return _run(mkdocs_command("serve", strict=args.strict, dev_addr=args.dev_addr), args.catalog)
