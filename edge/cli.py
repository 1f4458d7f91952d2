"""The `discharge-edge` command line: one program, subcommands from a plug-in table.

Subcommands are the entry points of group `discharge_edge.commands` (pyproject.toml); each
names a `register(subparsers)` function that adds its parser and sets `func`. The table keeps
edge/ from importing tools/ while tools/ still adds commands (hil, bench, demo). The command being
run is looked up first in this distribution's own entry_points.txt (`_own_command`), so a run does
not pay importlib.metadata's scan of every installed package; help and other packages' commands
go through importlib.metadata.

Conventions every subcommand keeps: with `--json` it prints exactly one JSON object on standard
output (units in the key names); progress and logs go to standard error; the exit code is 0 on
success, 1 when the job ran and found a problem (a map with errors, a failed check, an invalid
schedule instance, a refused model), 2 on bad usage and on an input file the command cannot read.

Input errors take one path: a command reads its files through `read_input` (or catches
`INPUT_ERRORS` and calls `refuse_input`), which prints one line
`discharge-edge COMMAND: FILE[:LINE]: ...` naming the file, the line or JSON path and the field
where the reader knows them (a missing file, a directory, not UTF-8, an empty file, a wrong
column), and returns the exit code; no traceback. An `InputError` raised anywhere under a command
ends the same way in `main`. Tests: tests/edge/test_cli_input_errors.py
(every subcommand with a missing, empty, wrong-column, non-UTF-8 file and a directory).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

COMMAND_GROUP = "discharge_edge.commands"
DISTRIBUTION = "discharge_edge"
"""This project's distribution: its own commands are looked up in its entry_points.txt first."""

EXIT_PROBLEM = 1
"""The job ran and found a problem (a map with errors, an invalid instance, a refused model)."""
EXIT_USAGE = 2
"""Bad usage: an option out of range, or an input file the command cannot read."""

EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE: what a shell tool exits with when its reader closed the pipe."""
INPUT_ERRORS = (ValueError, csv.Error, OSError)
"""What reading an input file may raise: the readers' own errors (CellsFileError, InstanceError,
TagMapError... are ValueErrors), UnicodeDecodeError (a ValueError), csv.Error, OSError."""

T = TypeVar("T")


class InputError(ValueError):
    """An input a command refuses; the message names the file, the line or JSON path and the field.
    `exit_code` is the command's documented code for it (2 unless the command documents 1)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def input_error(path: str | Path, exc: BaseException) -> str:
    """The one message of an input file's error: the reader's own text (which names the file, line
    and field where it knows them), the file named in front when the text does not name it; an
    OS error as 'cannot open: <reason>', a decoding error as 'not UTF-8 text' with the byte."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{path}:{decode_error_line(exc)}: {describe_error(exc)}"
    text = describe_error(exc)
    return text if str(path) in text else f"{path}: {text}"


def decode_error_line(exc: UnicodeDecodeError) -> int:
    """The line (from 1) of the first byte that is not UTF-8."""
    return bytes(exc.object[:exc.start]).count(b"\n") + 1


def describe_error(exc: BaseException) -> str:
    """An input error's text without the file (for readers that put file and line in front)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); save the file as UTF-8"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot open: {exc.strerror}"
    return str(exc) or type(exc).__name__


def refuse_input(command: str, path: str | Path, exc: BaseException, exit_code: int = EXIT_USAGE) -> int:
    """Print the input error of `path` for `discharge-edge COMMAND` on stderr; return the exit code."""
    return refuse(command, input_error(path, exc), exit_code)


def refuse(command: str, message: str, exit_code: int = EXIT_USAGE) -> int:
    """Print `discharge-edge COMMAND: message` on stderr (one line); return the exit code."""
    print(f"discharge-edge {command}: {message}", file=sys.stderr)
    return exit_code


def read_input(path: str | Path, reader: Callable[..., T], *args: Any, exit_code: int = EXIT_USAGE,
               **kwargs: Any) -> T:
    """`reader(path, ...)`, any of its `INPUT_ERRORS` turned into an `InputError` naming the file."""
    try:
        return reader(path, *args, **kwargs)
    except INPUT_ERRORS as exc:
        raise InputError(input_error(path, exc), exit_code) from exc


ONE_BLAS_THREAD = frozenset({"grade"})
"""Commands whose NumPy work is small matrix products: OpenBLAS's own threads only burn the other
core (grade at 10 000 rows: 0.04 s of CPU at import, and a worker spinning after each call)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command` (a subcommand's name), only that subcommand is
    loaded and registered, so running one command does not import every other's modules."""
    parser = argparse.ArgumentParser(
        prog="discharge-edge",
        description="Safe, fast discharge of retired lithium-ion battery modules.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log detail on stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    own = _own_command(command) if command is not None else None
    if own is not None:
        commands = [own]
    else:
        from importlib.metadata import entry_points  # 30-40 ms: imported only to list every command

        eps = list(entry_points(group=COMMAND_GROUP))
        if command is not None and any(ep.name == command for ep in eps):
            eps = [ep for ep in eps if ep.name == command]
        commands = sorted(((ep.name, ep.value) for ep in eps), key=lambda pair: pair[0])
    for name, target in commands:
        try:
            register = _load_target(target)
        except ImportError as exc:
            # One broken plug-in must not take the whole command line down (the operator may
            # need `tags check` to diagnose it); invoking the broken command names the cause.
            _register_unavailable(subparsers, name, target, exc)
            continue
        register(subparsers)
    return parser


def _own_command(command: str) -> tuple[str, str] | None:
    """(name, 'module:function') of `command` when this project's distribution declares it: read
    from the first DISTRIBUTION metadata folder on sys.path, as importlib.metadata would find it,
    without importing importlib.metadata (30-40 ms of `grade`'s second). None when the command is
    not ours, or the metadata cannot be read (build_parser then asks importlib.metadata)."""
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:  # a zip, a folder gone
            continue
        for name in names:
            stem, _, kind = name.rpartition(".")
            if kind in ("dist-info", "egg-info") and stem.split("-")[0].lower() == DISTRIBUTION:
                return _entry_point(Path(folder or ".", name, "entry_points.txt"), command)
    return None


def _entry_point(path: Path, command: str) -> tuple[str, str] | None:
    """(command, target) from the COMMAND_GROUP section of an entry_points.txt; None when absent."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError):
        return None
    section = None
    for line in lines:
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == COMMAND_GROUP and "=" in line:
            name, _, target = line.partition("=")
            if name.strip() == command:
                return command, target.strip()
    return None


def _load_target(target: str):
    """The object an entry point's 'module:attr.attr' names (EntryPoint.load's rule); ImportError
    when the module or the attribute is missing."""
    module_name, _, attrs = target.partition(":")
    obj = importlib.import_module(module_name.strip())
    for attr in filter(None, attrs.strip().split(".")):
        try:
            obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ImportError(f"{module_name.strip()} has no {attrs.strip()!r}") from exc
    return obj


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in `argv`: its first word that is not an option (None: help, or none)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _register_unavailable(subparsers, name: str, target: str, exc: ImportError) -> None:
    def fail(_args: argparse.Namespace) -> int:
        print(f"discharge-edge: command {name!r} cannot load {target}: {exc}", file=sys.stderr)
        return 2

    sub = subparsers.add_parser(name, help=f"(unavailable: {exc})", add_help=False)
    sub.add_argument("rest", nargs=argparse.REMAINDER)
    sub.set_defaults(func=fail)


def print_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout: the `--json` contract of every subcommand."""
    # one write: json.dump writes each token, hundreds of thousands of calls on an unbuffered stdout
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    if command in ONE_BLAS_THREAD:  # before anything imports NumPy: OpenBLAS starts its threads then
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        return refuse(_command_name(args), str(exc), exc.exit_code)
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as a shell tool does on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE


def _command_name(args: argparse.Namespace) -> str:
    """'bench discharge', 'tags check', 'grade': the command and its action as typed."""
    words = [args.command]
    for key, value in vars(args).items():
        if key.endswith("_command") and key != "command" and isinstance(value, str):
            words.append(value)
    return " ".join(words)


if __name__ == "__main__":  # `python -m edge.cli`: run the imported module's main, so that the
    from edge.cli import main as _main  # InputError the commands raise (edge.cli's) is the one caught

    sys.exit(_main())
