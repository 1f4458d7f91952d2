"""The `discharge-edge` command line: one program, subcommands from a plug-in table.

Subcommands are the entry points of group `discharge_edge.commands` (pyproject.toml); each
names a `register(subparsers)` function that adds its parser and sets `func`. The table keeps
edge/ from importing tools/ while tools/ still adds commands (hil, bench, demo).

Conventions every subcommand keeps: with `--json` it prints exactly one JSON object on standard
output (units in the key names); progress and logs go to standard error; the exit code is 0 on
success, 1 when the job ran and found a problem (a map with errors, a failed check), 2 on bad
usage. Tests: tests/edge/test_cli.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)

COMMAND_GROUP = "discharge_edge.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="discharge-edge",
        description="Safe, fast discharge of retired lithium-ion battery modules.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log detail on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            # One broken plug-in must not take the whole command line down (the operator may
            # need `tags check` to diagnose it); invoking the broken command names the cause.
            _register_unavailable(subparsers, ep.name, ep.value, exc)
            continue
        register(subparsers)
    return parser


def _register_unavailable(subparsers, name: str, target: str, exc: ImportError) -> None:
    def fail(_args: argparse.Namespace) -> int:
        print(f"discharge-edge: command {name!r} cannot load {target}: {exc}", file=sys.stderr)
        return 2

    sub = subparsers.add_parser(name, help=f"(unavailable: {exc})", add_help=False)
    sub.add_argument("rest", nargs=argparse.REMAINDER)
    sub.set_defaults(func=fail)


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout: the `--json` contract of every subcommand."""
    json.dump(payload, sys.stdout, indent=2, sort_keys=False, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
