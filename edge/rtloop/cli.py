"""`discharge-edge rtcore run|status|reset`: the real-time process and its supervisor link.

`run` is the rtcore OS process: it binds the map's PLC (Modbus TCP or EtherNet/IP) to the
kernel and ticks until stopped (SIGINT/SIGTERM) or for `--seconds`. `status` and `reset` are
the supervisor's end of the link, for an operator at a terminal. Tests: tests/edge/rtloop/.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from pathlib import Path

from edge.bus import open_bus
from edge.cli import print_json
from edge.rtloop.link import LinkError, SupervisorSide
from edge.rtloop.loop import LoopSettings
from edge.rtloop.process import run_rtcore
from edge.tagmap import Owner, TagMapError, load_tag_map

log = logging.getLogger(__name__)
DEFAULT_LINK = "discharge-edge-rtcore"


def register(subparsers) -> None:
    rt = subparsers.add_parser("rtcore", help="run the real-time process, or talk to a running one")
    actions = rt.add_subparsers(dest="rtcore_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run the real-time loop against the map's PLC")
    run.add_argument("--map", type=Path, required=True, help="tag map of the PLC")
    run.add_argument("--link", default=DEFAULT_LINK, help="name of the supervisor link (shared memory)")
    run.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until a signal)")
    run.add_argument("--period-ms", type=float, default=100.0)
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_run)
    for name, func, text in (("status", cmd_status, "print the running loop's status"),
                             ("reset", cmd_reset, "leave the safe state (the loop re-latches if the fault persists)")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--link", default=DEFAULT_LINK)
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(func=func)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        tag_map = load_tag_map(args.map)
    except TagMapError as exc:
        log.error("refusing to start: the tag map has problems:\n%s", exc)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    bus = open_bus(tag_map, Owner.RTCORE)
    summary = run_rtcore(bus, settings=LoopSettings(period_s=args.period_ms / 1e3), link_name=args.link,
                         duration_s=args.seconds, stop=stop)
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:20s} {value}")
    return 0


def _attach(link: str) -> SupervisorSide | None:
    try:
        return SupervisorSide(link)
    except LinkError as exc:
        log.error("%s", exc)
        return None


def cmd_status(args: argparse.Namespace) -> int:
    side = _attach(args.link)
    if side is None:
        return 1
    status = side.read_status()
    side.close()
    payload = dataclasses.asdict(status) if status else {"error": "status busy; try again"}
    if args.json:
        print_json(payload)
    else:
        for key, value in payload.items():
            print(f"{key:20s} {value}")
    return 0 if status else 1


def cmd_reset(args: argparse.Namespace) -> int:
    side = _attach(args.link)
    if side is None:
        return 1
    side.request_reset()
    side.close()
    if args.json:
        print_json({"reset_requested": True, "link": args.link})
    else:
        print(f"reset requested on {args.link}")
    return 0
