"""`discharge-edge tags check FILE...` and `tags check --live FILE`: commissioning a tag map.

Offline, every file is loaded and every problem printed as file:line: tag: message (exit 1 if
any). `--live` also connects to the map's PLC and compares: a tag the PLC lacks, of another type
or size (Logix, from its tag list), or an address it answers with an exception (Modbus, by
reading each tag once). Live checks only read; they never write. A file that cannot be read at all
(missing, a directory, not UTF-8) is a problem of that file like any other, in edge.cli's words
(`describe_error`). Tests: tests/edge/tagmap/test_cli.py, tests/edge/test_cli_input_errors.py.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from edge.bus import BusError, Quality, open_bus
from edge.cli import INPUT_ERRORS, decode_error_line, describe_error, print_json
from edge.tagmap.checker import MapProblem, TagMapError
from edge.tagmap.load import load_tag_map
from edge.tagmap.model import Owner, Protocol, TagMap

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    tags = subparsers.add_parser("tags", help="check tag maps, offline or against the live PLC")
    actions = tags.add_subparsers(dest="tags_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate tag maps; errors name file, line and tag")
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--live", action="store_true", help="also compare each map with what its PLC offers")
    check.add_argument("--timeout", type=float, default=None, metavar="S", help="per-request timeout for --live")
    check.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    reports = [check_file(path, live=args.live, timeout_s=args.timeout) for path in args.files]
    ok = all(r["ok"] for r in reports)
    if args.json:
        print_json({"ok": ok, "files": reports})
    else:
        for report in reports:
            for problem in report["problems"]:
                print(problem["text"])
            if report["ok"]:
                live = f", live check against {report['endpoint']} passed" if args.live else ""
                print(f"{report['file']}: OK, {report['tag_count']} tags{live}")
    return 0 if ok else 1


def check_file(path: Path, live: bool, timeout_s: float | None) -> dict:
    report = {"file": str(path), "ok": False, "tag_count": 0, "endpoint": None, "problems": []}
    try:
        tag_map = load_tag_map(path)
    except TagMapError as exc:
        report["problems"] = [_problem(p) for p in exc.problems]
        return report
    except INPUT_ERRORS as exc:  # not UTF-8 (the loader reads text)
        line = decode_error_line(exc) if isinstance(exc, UnicodeDecodeError) else 0
        report["problems"] = [_problem(MapProblem(path, line, None, describe_error(exc)))]
        return report
    report["tag_count"] = len(tag_map.tags)
    report["endpoint"] = f"{tag_map.endpoint.host}:{tag_map.endpoint.port}"
    if live:
        report["problems"] = [_problem(p) for p in live_problems(tag_map, timeout_s)]
    report["ok"] = not report["problems"]
    return report


def live_problems(tag_map: TagMap, timeout_s: float | None = None) -> list[MapProblem]:
    """How the PLC behind `tag_map` differs from it; reads only."""
    problems: list[MapProblem] = []
    endpoint = f"{tag_map.endpoint.host}:{tag_map.endpoint.port}"
    with open_bus(tag_map, Owner.SUPERVISOR) as bus:
        try:
            if tag_map.protocol is Protocol.LOGIX:
                remote = dict(p.split(": ", 1) for p in bus.remote_problems(timeout_s))
                for tag in tag_map.tags:
                    if tag.name in remote:
                        problems.append(MapProblem(tag_map.source, tag.source_line, tag.name, remote[tag.name]))
            for tag in tag_map.tags:
                result = bus.read([tag.name], timeout_s)[0]
                if result.quality is Quality.BAD_DEVICE:
                    problems.append(MapProblem(tag_map.source, tag.source_line, tag.name,
                                               f"the PLC at {endpoint} refuses {tag.address} ({tag.count} x {tag.data_type.value})"))
        except BusError as exc:
            problems.append(MapProblem(tag_map.source, 1, None, f"cannot check against the PLC at {endpoint}: {exc}"))
    return problems


def _problem(problem: MapProblem) -> dict:
    return {"file": str(problem.file), "line": problem.line, "tag": problem.tag, "message": problem.message,
            "text": str(problem)}
