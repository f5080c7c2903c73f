"""The `mllm-safety` command line: one entry point, subcommands defined next to the code they drive.

Each ``tools.cli_*`` module exposes ``register(subparsers)`` and sets ``func`` on its parsers; a handler
returns the process exit code. Errors a person can cause are printed as one clear message (exit 2),
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (imports only light modules)."""
    from tools.cli import catalog as cli_catalog
    from tools.cli import docs as cli_docs
    from tools.cli import run as cli_run
    from tools.cli import track as cli_track

    parser = argparse.ArgumentParser(
        prog="mllm-safety",
        description="MLLM Safety Atlas: the catalog of multimodal-LLM safety research and its runnable baselines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cli_run.register(sub)  # run, list, merge, rerun
    catalog = sub.add_parser("catalog", help="check, export and grow the paper catalog")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND", required=True)
    cli_catalog.register(catalog_sub)  # check, export, schema
    cli_track.register(catalog_sub)  # add, track, links
    cli_docs.register(sub)  # docs build | serve
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
