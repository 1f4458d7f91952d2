"""`discharge-edge plant watch`: the plant's view of every line over Sparkplug B.

    discharge-edge plant watch --broker mqtt://127.0.0.1:PORT [--group G] [--host-id ID]
                               [--json] [--count N | --duration S] [--refresh-s 1]

Subscribes to spBv1.0/# (or one group's), keeps every line (node) and station (device) in a
`PlantState` (edge/sparkplug/watch.py), and shows them: on a terminal a table redrawn every
`--refresh-s` on stdout; otherwise (a pipe, a file) the table once at the end; with `--json` one
JSON object at the end (`messages`, `lines`: each line's state, bdSeq, births, deaths, seq gaps,
metrics, and its stations with their metrics and reports received and missing). A line is shown
DEAD after its NDEATH. `--host-id` makes it the primary host application (its STATE online is
what lines configured with that primary host wait for). Ends after N messages, S seconds, or at
Ctrl-C / SIGTERM. Exit 0; 2 on a bad URL or id; 1 when the broker was never reached.
Entry point: `plant = "edge.sparkplug.cli:register"`. Tests: tests/edge/sparkplug/test_cli.py.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

CONNECT_WAIT_S = 10.0  # how long a bounded run waits for the broker before giving up


def register(subparsers) -> None:
    p = subparsers.add_parser("plant", help="the plant's side of Sparkplug B: watch every line")
    sub = p.add_subparsers(dest="plant_command", required=True)
    w = sub.add_parser("watch", help="subscribe to spBv1.0/# and show every line and station")
    w.add_argument("--broker", required=True, metavar="URL", help="mqtt://HOST[:PORT] (default port 1883)")
    w.add_argument("--group", default=None, help="only this Sparkplug group (default: all)")
    w.add_argument("--host-id", default=None, metavar="ID",
                   help="be the primary host application ID: publish spBv1.0/STATE/ID online (retained)")
    w.add_argument("--json", action="store_true", help="one JSON object on stdout at the end")
    stop = w.add_mutually_exclusive_group()
    stop.add_argument("--count", type=int, default=None, metavar="N", help="end after N Sparkplug messages")
    stop.add_argument("--duration", type=float, default=None, metavar="S", help="end after S seconds")
    w.add_argument("--refresh-s", type=float, default=1.0, help="the table's redraw period on a terminal")
    w.set_defaults(func=cmd_watch)


def watch(broker: str, *, group: str | None = None, host_id: str | None = None, count: int | None = None,
          duration_s: float | None = None, refresh_s: float = 1.0, on_refresh=None,
          stop_event: threading.Event | None = None) -> dict[str, Any]:
    """Watch until `count` messages, `duration_s` seconds or `stop_event`; the plant as a dict
    (with `connected`: whether the broker was ever reached). Raises ValueError on a bad URL/id."""
    from edge.sparkplug.watch import PlantWatcher

    watcher = PlantWatcher(broker, group=group, host_id=host_id)
    stop_event = stop_event or threading.Event()
    started = time.monotonic()
    watcher.start()
    try:
        next_refresh = started + refresh_s
        while not stop_event.is_set():
            now = time.monotonic()
            if duration_s is not None and now - started >= duration_s:
                break
            if count is not None and watcher.state.messages >= count:
                break
            if watcher.connects == 0 and (count is not None or duration_s is not None) \
                    and now - started > max(CONNECT_WAIT_S, duration_s or 0.0):
                break
            if on_refresh is not None and now >= next_refresh:
                on_refresh(watcher.state.to_dict())
                next_refresh = now + refresh_s
            stop_event.wait(0.05)
        seen = watcher.state.to_dict()  # before leaving: a line answers the host's offline with NDEATH
    finally:
        watcher.stop()
    return {"broker": broker, "group": group, "host_id": host_id, "connected": watcher.connects > 0,
            "elapsed_s": round(time.monotonic() - started, 3), **seen}


def cmd_watch(args: argparse.Namespace) -> int:
    from edge.cli import print_json
    from edge.sparkplug.publisher import parse_broker_url
    from edge.sparkplug.watch import render_table

    try:
        parse_broker_url(args.broker)
        if args.count is not None and args.count < 1:
            raise ValueError(f"--count {args.count}: must be at least 1")
        if args.duration is not None and not args.duration > 0:
            raise ValueError(f"--duration {args.duration}: must be > 0")
    except ValueError as exc:
        print(f"discharge-edge plant watch: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tty = sys.stdout.isatty() and not args.json

    def redraw(state: dict[str, Any]) -> None:
        sys.stdout.write("\x1b[H\x1b[2J" + render_table(state) + "\n")
        sys.stdout.flush()

    try:
        result = watch(args.broker, group=args.group, host_id=args.host_id, count=args.count,
                       duration_s=args.duration, refresh_s=args.refresh_s, on_refresh=redraw if tty else None,
                       stop_event=stop)
    except ValueError as exc:
        print(f"discharge-edge plant watch: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json(result)
    else:
        print(render_table(result))
    if not result["connected"]:
        print(f"discharge-edge plant watch: no broker reached at {args.broker}", file=sys.stderr)
        return 1
    return 0
