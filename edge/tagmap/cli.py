"""`discharge-edge tags`: check a map offline or against its PLC, read and watch live tags.

- `tags check FILE...`: every file is loaded, its roles checked (edge/tagmap/roles.py
  `role_problems`: a role a process owning tags in the map needs, its shape and type, the
  fixture; `role_notes` are printed as warnings) and every problem printed as file:line: tag:
  message (exit 1 if any). `--live` also connects to the map's PLC and checks it there
  (edge/tagmap/live.py `check_live`): tags the PLC lacks or refuses, Logix tags of another type or
  size, inputs read outside their limits or type, the PLC's heartbeat standing still, and a
  layout that is not the map's. Live checks only read; they never write. A file that cannot be
  read at all (missing, a directory, not UTF-8) is a problem of that file like any other, in
  edge.cli's words (`describe_error`).
- `tags read --map F TAG...` and `tags watch --map F TAG... [--every S] [--count N]`: live values
  with quality, unit and time; a TAG is a tag, `tag[i]` or a role; only reads (live.py's
  docstring has the output, the JSON and the exit codes: 0 read, 1 a tag read with a bad
  quality, 2 a map or TAG refused, 3 no answer from the PLC; Ctrl-C ends a watch with 0). `--every`
  is at least 0.01 s, a map's fastest scan group.
- `--endpoint HOST:PORT` aims a map at another PLC (the bench on 127.0.0.1, a spare controller).
- `tags import` and `tags export` (Kepware, Studio 5000) register from edge/tagmap/vendor_cli.py.

Tests: tests/edge/tagmap/test_cli.py, test_live.py, test_live_units.py, test_commissioning.py,
tests/edge/test_cli_input_errors.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import threading
import time
from pathlib import Path

from edge.cli import EXIT_PROBLEM, INPUT_ERRORS, decode_error_line, describe_error, print_json, refuse
from edge.tagmap import live, vendor_cli
from edge.tagmap.checker import MapProblem, TagMapError
from edge.tagmap.load import load_tag_map
from edge.tagmap.model import TagMap
from edge.tagmap.roles import role_notes, role_problems


log = logging.getLogger(__name__)


def register(subparsers) -> None:
    tags = subparsers.add_parser("tags", help="check tag maps, offline or against the live PLC; read and watch tags")
    actions = tags.add_subparsers(dest="tags_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate tag maps; errors name file, line and tag")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--live", action="store_true", help="also check each map against its PLC (reads only)")
    check.add_argument("--timeout", type=float, default=None, metavar="S",
                       help=f"per-request timeout for --live (default {live.DEFAULT_TIMEOUT_S:g} s)")
    check.add_argument("--heartbeat-wait", type=float, default=live.HEARTBEAT_WAIT_S, metavar="S",
                       help=f"--live: how long the PLC's heartbeat may stand still (default {live.HEARTBEAT_WAIT_S:g} s)")
    check.add_argument("--endpoint", default=None, metavar="HOST:PORT", help="--live: check against this PLC instead")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    check.set_defaults(func=run_check)

    read = actions.add_parser("read", help="read live tags once (value, quality, unit, time); never writes")
    _live_arguments(read, "print one JSON object on stdout")
    read.set_defaults(func=run_read)
    watch = actions.add_parser("watch", help="read live tags every S seconds until --count or Ctrl-C; never writes")
    _live_arguments(watch, "print JSON lines: one object a sample, as it is taken")
    watch.add_argument("--every", type=float, default=1.0, metavar="S", help="seconds between samples (default 1; at least 0.01)")
    watch.add_argument("--count", type=int, default=None, metavar="N", help="stop after N samples (default: Ctrl-C)")
    watch.set_defaults(func=run_watch)
    vendor_cli.register(actions)  # tags import, tags export


def _live_arguments(parser: argparse.ArgumentParser, json_help: str) -> None:
    parser.add_argument("--map", type=Path, required=True, metavar="FILE", help="the PLC's tag map")
    parser.add_argument("tags", nargs="+", metavar="TAG", help="a tag name, name[i] for one element, or a role name")
    parser.add_argument("--endpoint", default=None, metavar="HOST:PORT", help="read this PLC instead of the map's")
    parser.add_argument("--timeout", type=float, default=live.DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"per-read timeout (default {live.DEFAULT_TIMEOUT_S:g} s)")
    parser.add_argument("--json", action="store_true", help=json_help)


# -- check -------------------------------------------------------------------------------------
def run_check(args: argparse.Namespace) -> int:
    timeout_s = args.timeout if args.timeout is not None else live.DEFAULT_TIMEOUT_S
    if not (_positive(timeout_s) and _positive(args.heartbeat_wait)):
        return refuse("tags check", "--timeout and --heartbeat-wait must be positive seconds")
    endpoint = _endpoint(args.endpoint) if args.endpoint else None
    if args.endpoint and endpoint is None:
        return refuse("tags check", f"--endpoint {args.endpoint!r}: expected HOST:PORT, PORT 1..65535")
    with _quiet_bus(args):
        reports = [check_file(path, live_check=args.live, timeout_s=timeout_s, heartbeat_wait_s=args.heartbeat_wait,
                              endpoint=endpoint) for path in args.files]
    ok = all(r["ok"] for r in reports)
    if args.json:
        print_json({"ok": ok, "files": reports})
    else:
        for report in reports:
            for problem in report["problems"]:
                print(problem["text"])
            for note in report["notes"]:
                print(note)
            if report["ok"]:
                passed = f", live check against {report['endpoint']} passed" if args.live else ""
                print(f"{report['file']}: OK, {report['tag_count']} tags{passed}")
    return 0 if ok else 1


def check_file(path: Path, live_check: bool, timeout_s: float = live.DEFAULT_TIMEOUT_S,
               heartbeat_wait_s: float = live.HEARTBEAT_WAIT_S, endpoint: tuple[str, int] | None = None) -> dict:
    report = {"file": str(path), "ok": False, "tag_count": 0, "endpoint": None, "problems": [], "notes": []}
    try:
        tag_map = load_tag_map(path)
    except TagMapError as exc:
        report["problems"] = [_problem(p) for p in exc.problems]
        return report
    except INPUT_ERRORS as exc:  # not UTF-8 (the loader reads text)
        line = decode_error_line(exc) if isinstance(exc, UnicodeDecodeError) else 0
        report["problems"] = [_problem(MapProblem(path, line, None, describe_error(exc)))]
        return report
    if endpoint is not None:
        tag_map = tag_map.with_endpoint(*endpoint)
    report["tag_count"] = len(tag_map.tags)
    report["endpoint"] = f"{tag_map.endpoint.host}:{tag_map.endpoint.port}"
    report["problems"] = [_problem(p) for p in role_problems(tag_map)]  # roles its processes need, the fixture
    report["notes"] = [str(p) for p in role_notes(tag_map)]
    if live_check:
        found = live.check_live(tag_map, timeout_s, heartbeat_wait_s)
        report["problems"] += [_problem(p) for p in found.problems]
        report["notes"] += [f"{path}: note: {note}" for note in found.notes]
    report["ok"] = not report["problems"]
    return report


def _problem(problem: MapProblem) -> dict:
    return {"file": str(problem.file), "line": problem.line, "tag": problem.tag, "message": problem.message,
            "text": str(problem)}


# -- read and watch ----------------------------------------------------------------------------
def _open_live(args: argparse.Namespace, command: str) -> tuple[TagMap, list[live.Selection]] | int:
    """The map (aimed at --endpoint) and the TAGs resolved, or the exit code of a refusal."""
    if not _positive(args.timeout):
        return refuse(command, "--timeout must be positive seconds")
    try:
        tag_map = load_tag_map(args.map)
    except TagMapError as exc:
        return refuse(command, f"the tag map has problems:\n{exc}")
    except INPUT_ERRORS as exc:
        line = decode_error_line(exc) if isinstance(exc, UnicodeDecodeError) else 0
        where = f"{args.map}:{line}" if line else str(args.map)
        return refuse(command, f"{where}: {describe_error(exc)}")
    if args.endpoint:
        endpoint = _endpoint(args.endpoint)
        if endpoint is None:
            return refuse(command, f"--endpoint {args.endpoint!r}: expected HOST:PORT, PORT 1..65535")
        tag_map = tag_map.with_endpoint(*endpoint)
    selections, unknown = [], []
    for spec in args.tags:
        try:
            selections.append(live.resolve(tag_map, spec))
        except live.UnknownTag as exc:
            unknown.append(str(exc))
    if unknown:  # every TAG refused at once, each on its line with the names near it
        return [refuse(command, message) for message in unknown][-1]
    return tag_map, selections


def run_read(args: argparse.Namespace) -> int:
    opened = _open_live(args, "tags read")
    if isinstance(opened, int):
        return opened
    tag_map, selections = opened
    try:
        with _quiet_bus(args), live.LiveReader(tag_map, selections, args.timeout) as reader:
            readings = reader.read()
    except live.NoAnswer as exc:
        return refuse("tags read", str(exc), live.EXIT_NO_ANSWER)
    now_s = time.monotonic()
    if args.json:
        print_json(live.read_json(tag_map, readings, now_s))
    else:
        for reading in readings:
            print(live.reading_text(reading, now_s))
    return 0 if all(r.quality.usable for r in readings) else EXIT_PROBLEM


MIN_EVERY_S = 0.01
"""The shortest --every: a map's fastest scan group (10 ms)."""


def run_watch(args: argparse.Namespace) -> int:
    if not _positive(args.every) or (args.count is not None and args.count < 1):
        return refuse("tags watch", "--every must be positive seconds and --count at least 1")
    if args.every < MIN_EVERY_S:  # 1e-9 read ~1900 times a second: a PLC's comms, not a watch
        return refuse("tags watch", f"--every {args.every:g} s is faster than a map's fastest scan group; "
                                    f"allowed: {MIN_EVERY_S:g} s or more")
    opened = _open_live(args, "tags watch")
    if isinstance(opened, int):
        return opened
    tag_map, selections = opened
    bad = False

    def emit(state: live.WatchState, readings: list[live.Reading]) -> None:
        nonlocal bad
        bad = bad or not all(r.quality.usable for r in readings)
        now_s = time.monotonic()
        if args.json:
            text = _one_line(live.sample_json(tag_map, state, readings, now_s))
        else:
            text = "\n".join(live.sample_text(state, readings, now_s))
        sys.stdout.write(text + "\n")  # one write a sample: a Ctrl-C never leaves half a line
        sys.stdout.flush()

    reader, state = None, None
    try:
        with _quiet_bus(args):
            reader = live.LiveReader(tag_map, selections, args.timeout)
            state = live.watch(reader, args.every, args.count, emit)
    except live.NoAnswer as exc:
        return refuse("tags watch", str(exc), live.EXIT_NO_ANSWER)
    except KeyboardInterrupt:  # the way to end a watch without --count: quietly, the bus closed
        print("discharge-edge tags watch: stopped (Ctrl-C)", file=sys.stderr)
    finally:
        with _no_interrupts():  # a second Ctrl-C must not cut the bus's close short
            if reader is not None:
                reader.close()
    if state is not None and state.skipped:
        print(f"discharge-edge tags watch: {state.skipped} samples skipped (a read took longer than --every)",
              file=sys.stderr)
    return EXIT_PROBLEM if bad else 0


@contextlib.contextmanager
def _quiet_bus(args: argparse.Namespace):
    """The bus's own warnings (a failed connect, a retry) held back unless -v: the command says
    what failed once, in its own words."""
    bus_log = logging.getLogger("edge.bus")
    level = bus_log.level
    if not getattr(args, "verbose", 0):
        bus_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        bus_log.setLevel(level)


@contextlib.contextmanager
def _no_interrupts():
    """SIGINT ignored inside (main thread only: elsewhere signals cannot be set, nor arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(payload: dict) -> str:
    return json.dumps(payload, allow_nan=False, separators=(",", ":"))


def _positive(value: float) -> bool:
    return value is not None and math.isfinite(value) and value > 0


def _endpoint(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return host.strip("[]"), int(port)


__all__ = ["check_file", "register", "run_check", "run_read", "run_watch"]
