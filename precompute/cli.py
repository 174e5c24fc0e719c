"""Argument parsing and dispatch; each command lives in its own ``cmd_*`` module."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from taskspace_core.configs import ModelError
from taskspace_core.store import StoreError
from taskspace_core.tasks import TaskError

COMMANDS = ("cmd_eval", "cmd_tasks", "cmd_run", "cmd_pretrain", "cmd_users", "cmd_pairs", "cmd_findings")
# the module of each subcommand: a command line imports only its own (``run`` never imports torch)
COMMAND_MODULES = {"eval": "cmd_eval", "tasks": "cmd_tasks", "run": "cmd_run", "export": "cmd_run",
                   "pretrain": "cmd_pretrain", "users": "cmd_users", "pairs": "cmd_pairs",
                   "findings": "cmd_findings"}  # fmt: skip


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m precompute", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")
    sub = parser.add_subparsers(dest="command", required=True)
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name in [COMMAND_MODULES[first]] if first in COMMAND_MODULES else COMMANDS:
        try:
            module = importlib.import_module(f"precompute.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"precompute.{name}":
                continue  # a command not written yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (TaskError, ModelError, ValueError, FileNotFoundError, StoreError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped (Ctrl-C); finished units are kept in the cache", file=sys.stderr)
        return 130
