"""The `mllm-safety` command line: one entry point, subcommands defined next to the code they drive.

Each ``tools.cli.*`` module exposes ``register(subparsers)`` and sets ``func`` on its parsers; a handler
returns the process exit code. Errors a person can cause are printed as one clear message (exit 2),
never as a traceback. The ML stack (torch, transformers, ...) is the optional extra ``ml``: a command that
needs it on a machine without it exits 2 with the line that installs it; the catalog, site and tracker
commands never import it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

#: The packages of the ``ml`` extra (pyproject.toml); importing one of them without it installed is answered
#: with the install hint instead of a traceback.
ML_PACKAGES = frozenset({"torch", "transformers", "tokenizers", "safetensors"})
ML_HINT = "pip install -e '.[ml]'"


def missing_ml_package(error: BaseException) -> str | None:
    """The ML package whose absence caused ``error`` (an ImportError, possibly wrapped), else None."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ImportError) and (e.name or "").split(".")[0] in ML_PACKAGES:
            return (e.name or "").split(".")[0]
        e = e.__cause__ or e.__context__
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. The run commands' detailed options (whose defaults come from pydantic models)
    are built only when ``argv`` names one of them, or when ``argv`` is None (the full parser, for tests and
    documentation), so that ``mllm-safety --help`` and the catalog commands start fast."""
    from tools.cli import catalog as cli_catalog
    from tools.cli import docs as cli_docs
    from tools.cli import eval as cli_eval
    from tools.cli import judges as cli_judges
    from tools.cli import run as cli_run
    from tools.cli import track as cli_track

    parser = argparse.ArgumentParser(
        prog="mllm-safety",
        description="MLLM Safety Atlas: the catalog of multimodal-LLM safety research and its runnable baselines.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    command = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    cli_run.register(sub, detailed=argv is None or command in cli_run.COMMANDS)  # run, list, merge, rerun
    catalog = sub.add_parser("catalog", help="check, export and grow the paper catalog")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND", required=True)
    cli_catalog.register(catalog_sub)  # check, export, schema
    cli_track.register(catalog_sub)  # add, track, links
    cli_docs.register(sub)  # docs build | serve
    cli_judges.register(sub)  # judges validate, rejudge
    cli_eval.register(sub)  # eval <benchmark>
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except Exception as e:
        package = missing_ml_package(e)
        if package is None:
            raise
        print(
            f"error: `{args.command}` needs the ML stack, but {package} is not installed; install it with "
            f"`{ML_HINT}` (on a CPU machine, `pip install torch` from the CPU index first)",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
