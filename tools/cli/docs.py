"""`mllm-safety docs build | serve`: build or preview the site (MkDocs + the catalog hook).

Both wrap the ``mkdocs`` command on the repository's mkdocs.yml, so what they build is exactly what
``mkdocs build`` and CI build. ``--catalog`` points the hook at another catalog directory. Argparse only:
the work is ``tools.site.build``.
"""

from __future__ import annotations

import argparse
import sys


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


def _run(action: str, args: argparse.Namespace, **options: object) -> int:
    from tools.site.build import SiteError, mkdocs_command, run_mkdocs

    try:
        return run_mkdocs(mkdocs_command(action, strict=args.strict, **options), args.catalog)
    except SiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _build(args: argparse.Namespace) -> int:
    from tools.site.build import site_dir

    rc = _run("build", args, site_dir=args.site_dir)
    if rc == 0:
        print(f"site built in {site_dir(args.site_dir)}")
    else:
        print("error: the site did not build; the messages above say why", file=sys.stderr)
    return rc


def _serve(args: argparse.Namespace) -> int:
    return _run("serve", args, dev_addr=args.dev_addr)
