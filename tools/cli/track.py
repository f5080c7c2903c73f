"""`mllm-safety catalog add | track | links`: grow the catalog from arXiv, track new papers, check links.

``$MLLM_SAFETY_ARXIV_API`` points the arXiv client elsewhere (tests use a local server) and
``$MLLM_SAFETY_ARXIV_DELAY`` sets the pause between arXiv calls (default 3 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from tools.catalog.store import CatalogError, default_root

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

    links = subparsers.add_parser(
        "links",
        help="check every URL of the catalog (exit 1 on dead links; permanent redirects are warnings)",
    )
    links.add_argument("--concurrency", type=int, default=8, metavar="N", help="parallel checks (default 8)")
    links.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per request")
    links.add_argument("--retries", type=int, default=2, metavar="N", help="retries of failing links")
    links.add_argument("--format", choices=["text", "github"], default="text")
    links.add_argument("--root", type=Path, default=None, help=ROOT_HELP)
    links.set_defaults(func=cmd_links)


def _err(message: str, code: int = 1) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _catalog(root: Path):
    from tools.catalog.store import load_catalog

    return load_catalog(root, check=False)


def _root_or_error(args: argparse.Namespace) -> Path | None:
    root = args.root or default_root()
    if not (root / "papers").is_dir():
        _err(f"no catalog at {root} (expected papers/ there; pass --root DIR or set MLLM_SAFETY_CATALOG)", 2)
        return None
    return root


def cmd_add(args: argparse.Namespace) -> int:
    """Fetch one paper from arXiv and write catalog/papers/<id>.yaml (exit 1 on duplicates or failure)."""
    from tools.catalog.store import check_catalog, write_paper
    from tools.cli.catalog import format_issue
    from tools.track.arxiv import ArxivClient, ArxivError, parse_arxiv_id
    from tools.track.intake import entry_to_paper, find_duplicate

    root = _root_or_error(args)
    if root is None:
        return 2
    try:
        arxiv_id = parse_arxiv_id(args.ref)
    except ValueError as e:
        return _err(str(e), 2)
    catalog = _catalog(root)
    known = find_duplicate(catalog, arxiv_id)  # before asking arXiv: the id alone
    if known:
        return _err(f"arXiv:{arxiv_id} is already in the catalog: {known.path} ({known.reason})")
    try:
        entry = ArxivClient().get(arxiv_id)
    except ArxivError as e:
        return _err(str(e))
    if entry.withdrawn:
        return _err(
            f"arXiv:{arxiv_id} has been withdrawn by its authors ({entry.comment or entry.abstract[:80]})"
        )
    dup = find_duplicate(catalog, entry.arxiv_id, entry.title)
    if dup:
        return _err(f"{entry.title!r} is already in the catalog: {dup.path} ({dup.reason})")
    try:
        paper, sugg = entry_to_paper(entry, catalog)
        path = write_paper(paper, root)
    except (CatalogError, ValueError) as e:
        return _err(f"could not build a valid entry for arXiv:{arxiv_id}: {e}")
    problems = [
        i
        for i in check_catalog(root, registry_names=set())
        if i.severity == "error" and Path(i.path).resolve() == path.resolve()
    ]
    if problems:
        path.unlink(missing_ok=True)
        for issue in problems:
            print(format_issue(issue), file=sys.stderr)
        return _err(f"the entry for arXiv:{arxiv_id} did not pass the catalog check; nothing was written")
    print(f"wrote {path}")
    print(f"  {paper.title} ({paper.date}{', ' + paper.venue if paper.venue else ''})")
    print(
        f"  suggested category: {paper.category}" + (f" (also {', '.join(paper.also)})" if paper.also else "")
    )
    for block in ("attack", "defense", "evaluation"):
        facets = getattr(paper, block)
        if facets is not None:
            shown = {k: v for k, v in facets.model_dump(exclude_defaults=True).items()}
            print(f"  suggested {block} facets: {shown}")
    print(
        "next: check the suggested category and facets, delete `suggested: true`, run `mllm-safety catalog check`"
    )
    return 0


def _parse_date(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def cmd_track(args: argparse.Namespace) -> int:
    """Query arXiv, write the dated candidates report (and stubs), remember the date of the run."""
    from tools.track.arxiv import ArxivClient, ArxivError
    from tools.track.tracker import load_config, read_state, run_track, write_report, write_state, write_stubs

    root = _root_or_error(args)
    if root is None:
        return 2
    if args.stubs < 0:
        return _err("--stubs must be 0 or more", 2)
    today = dt.date.today()
    try:
        config = load_config(root)
    except CatalogError as e:
        return _err(str(e), 2)
    state = read_state(root)
    if args.since:
        since = _parse_date(args.since)
        if since is None:
            return _err(f"--since {args.since!r} is not a date; write YYYY-MM-DD", 2)
    else:
        since = (
            _parse_date(str(state.get("last_run", "")))
            or (today - dt.timedelta(days=config.lookback_days)).isoformat()
        )
    catalog = _catalog(root)
    out = args.out or root.parent / "tracking"
    try:
        result = run_track(ArxivClient(), catalog, config, since=since, today=today.isoformat())
    except ArxivError as e:
        return _err(f"{e}; the report was not written and the last-run date is unchanged")
    report = write_report(result, out)
    stubs = write_stubs(result, catalog, args.stubs, out / "stubs") if args.stubs else []
    write_state(root, today.isoformat(), len(result.candidates))
    c = result.counts
    print(
        f"{c.get('unique', 0)} papers since {since}: {c.get('candidates', 0)} candidate(s), "
        f"{c.get('already in the catalog', 0)} already in the catalog, {c.get('withdrawn', 0)} withdrawn"
    )
    print(f"wrote {report}")
    for path in stubs:
        print(f"wrote {path}")
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    """Check every catalog URL; print dead links (errors) and permanent redirects (warnings)."""
    from tools.cli.catalog import format_issue
    from tools.track.links import LinkChecker, catalog_links, link_issues

    root = _root_or_error(args)
    if root is None:
        return 2
    if args.concurrency < 1 or args.timeout <= 0 or args.retries < 0:
        return _err("--concurrency must be >= 1, --timeout > 0 and --retries >= 0", 2)
    uses = catalog_links(_catalog(root))
    checker = LinkChecker(timeout_s=args.timeout, retries=args.retries)
    results = checker.check_all([u.url for u in uses], concurrency=args.concurrency)
    issues = link_issues(uses, results)
    for issue in issues:
        print(format_issue(issue, args.format))
    dead = sum(1 for i in issues if i.severity == "error")
    moved = len(issues) - dead
    print(f"{len(results)} distinct links in {len(uses)} places: {dead} dead, {moved} permanently redirected")
    return 1 if dead else 0
