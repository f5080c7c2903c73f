"""`mllm-safety catalog add | track | links`: grow the catalog from arXiv, track new papers, check links.

``$MLLM_SAFETY_ARXIV_API`` points the arXiv client elsewhere (tests use a local server) and
``$MLLM_SAFETY_ARXIV_DELAY`` sets the pause between arXiv calls (default 3 s). Argparse only: the jobs
are ``tools.track.jobs`` (imported when a command runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT_HELP = "catalog directory (default: $MLLM_SAFETY_CATALOG or the repository's catalog/)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `add`, `track` and `links` subcommands to the `catalog` subparsers."""
    add = subparsers.add_parser(
        "add", help="add a paper from arXiv: fetch its metadata, suggest facets, write and check its YAML"
    )
    add.add_argument("ref", help="arXiv id or URL, e.g. 2311.05608 or https://arxiv.org/abs/2311.05608v2")
    add.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    add.set_defaults(func=cmd_add)

    track = subparsers.add_parser(
        "track", help="search arXiv for new papers of the field and write a ranked candidates report"
    )
    track.add_argument("--since", default=None, help="YYYY-MM-DD (default: the last run, else 30 days ago)")
    track.add_argument(
        "--stubs", type=int, default=0, metavar="N", help="also write YAML stubs for the top N"
    )
    track.add_argument(
        "--out", type=Path, default=None, help="report folder (default: tracking/ next to the catalog)"
    )
    track.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    track.set_defaults(func=cmd_track)

    imp = subparsers.add_parser(
        "import-list",
        help="add new papers from a curated list (markdown tables or a reviewed candidate .json); "
        "prints a pull-request body",
    )
    imp.add_argument("path", type=Path, help="a list's .md file, or a reviewed candidate list .json")
    imp.add_argument("--list", dest="list_name", default=None, help="owner/repo the .md file comes from")
    imp.add_argument("--commit", default=None, help="the list's commit the file was read at")
    imp.add_argument("--write", action="store_true", help="write the new papers into the catalog")
    imp.add_argument("--pr-body", type=Path, default=None, help="also write the pull-request body here")
    imp.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    imp.set_defaults(func=cmd_import_list)

    fill = subparsers.add_parser(
        "fill-metadata",
        help="fill missing authors, abstracts, dates, titles from local arXiv API records, with their source",
    )
    fill.add_argument("records", type=Path, nargs="+", help=".json/.jsonl arXiv API records or .md digests")
    fill.add_argument(
        "--source", default=None, help="source label, e.g. arxiv-api-mirror:<owner>/<repo>/<path>@<commit>"
    )
    fill.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    fill.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    fill.set_defaults(func=cmd_fill_metadata)

    links = subparsers.add_parser(
        "links",
        help="check every URL of the catalog (exit 1 on dead links; permanent redirects are warnings)",
    )
    links.add_argument("--concurrency", type=int, default=8, metavar="N", help="parallel checks (default 8)")
    links.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request")
    links.add_argument("--retries", type=int, default=2, metavar="N", help="retries of failing links")
    links.add_argument(
        "--allow-host",
        dest="allow_hosts",
        action="append",
        default=[],
        metavar="HOST",
        help="check this host even if it is loopback/private (a local mirror); repeatable",
    )
    links.add_argument("--format", choices=["text", "github"], default="text")
    links.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    links.set_defaults(func=cmd_links)


def _err(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _failed(error: Exception) -> int:
    """Print a JobError's located issues and its message; its exit code."""
    from tools.catalog.issues import format_issue

    for issue in getattr(error, "issues", []):
        print(format_issue(issue), file=sys.stderr)
    return _err(str(error), getattr(error, "code", 1))


def cmd_add(args: argparse.Namespace) -> int:
    """Fetch one paper from arXiv and write catalog/papers/<id>.yaml (exit 1 on duplicates or failure)."""
    from tools.track.jobs import JobError, add_from_arxiv, catalog_root

    try:
        added = add_from_arxiv(catalog_root(args.root), args.ref)
    except JobError as e:
        return _failed(e)
    paper = added.paper
    print(f"wrote {added.path}")
    print(f"  {paper.title} ({paper.date}{', ' + paper.venue if paper.venue else ''})")
    print(
        f"  suggested category: {paper.category}" + (f" (also {', '.join(paper.also)})" if paper.also else "")
    )
    for block in ("attack", "defense", "evaluation"):
        facets = getattr(paper, block)
        if facets is not None:
            print(f"  suggested {block} facets: {facets.model_dump(exclude_defaults=True)}")
    print(
        "next: check the suggested category and facets, delete `suggested: true`, run `mllm-safety catalog check`"
    )
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    """Query arXiv, write the dated candidates report (and stubs), remember the date of the run."""
    from tools.track.jobs import JobError, catalog_root, track_new_papers

    try:
        done = track_new_papers(catalog_root(args.root), since=args.since, stubs=args.stubs, out=args.out)
    except JobError as e:
        return _failed(e)
    c = done.counts
    print(
        f"{c.get('unique', 0)} papers since {done.since}: {c.get('candidates', 0)} candidate(s), "
        f"{c.get('already in the catalog', 0)} already in the catalog, {c.get('withdrawn', 0)} withdrawn"
    )
    for path in [done.report, *done.stubs]:
        print(f"wrote {path}")
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    """Check every catalog URL; print dead links (errors) and permanent redirects (warnings)."""
    from tools.catalog.issues import format_issue
    from tools.track.jobs import JobError, catalog_root, check_links

    try:
        report = check_links(
            catalog_root(args.root),
            concurrency=args.concurrency,
            timeout_s=args.timeout,
            retries=args.retries,
            allow_hosts=tuple(args.allow_hosts),
        )
    except JobError as e:
        return _failed(e)
    for issue in report.issues:
        print(format_issue(issue, args.format))
    moved = len(report.issues) - report.dead
    print(
        f"{report.distinct} distinct links in {report.places} places: {report.dead} dead, "
        f"{moved} permanently redirected"
    )
    return 1 if report.dead else 0


def cmd_import_list(args: argparse.Namespace) -> int:
    """`catalog import-list`: new papers from a curated list, a PR body, optionally written."""
    from tools.catalog.model import default_root
    from tools.catalog.store import load_catalog
    from tools.track.listimport import import_path, write_papers
    from tools.track.tracker import render_pr_body

    root = args.root or default_root()
    try:
        result = import_path(args.path, load_catalog(root, check=False), args.list_name, args.commit)
    except (OSError, ValueError) as e:
        return _err(str(e), 2)
    body = render_pr_body(None, [result])
    if args.pr_body:
        args.pr_body.parent.mkdir(parents=True, exist_ok=True)
        args.pr_body.write_text(body, encoding="utf-8")
    if args.write:
        write_papers(result.papers, root)
    print(body)
    return 0


def cmd_fill_metadata(args: argparse.Namespace) -> int:
    """`catalog fill-metadata`: fill missing fields from local arXiv API records."""
    from tools.catalog.model import default_root
    from tools.track.metadata import fill_files, summary

    try:
        root = args.root or default_root()
        report, written = fill_files(args.records, root, source=args.source, dry_run=args.dry_run)
    except ValueError as e:
        return _err(str(e), 2)
    print(summary(report, len(written)))
    return 0
