"""Subcommands of `mllm-safety` (being written; see tools/cli.py for the wiring)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands to subparsers."""
