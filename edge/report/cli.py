"""`discharge-edge report --state-dir D --out FILE.html [--json] [--time-scale X]`: the batch report.

Reads the line's state dir (the supervisor may still be running) and writes one self-contained
HTML page (edge/report/html.py). Prints the page's path and the batch's one-line summary; with
`--json`, one JSON object: the summary, every battery, the stays, the robot's moves, the alarms
and the events listed, and `html` (the path). `--time-scale` is for a bench in scaled time (the
store's clock runs that many line seconds per wall second, as `run --time-scale` had it): the
wall clock shown is the store's time divided by it. Exit codes: 0 written, 1 no batch in the
state dir (the message names the file), 2 bad usage.
Tests: tests/edge/report/test_cli.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import print_json, refuse


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: allowed: a finite number > 0")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="the batch report as one self-contained HTML page")
    p.add_argument("--state-dir", type=Path, required=True, help="the line's state dir (supervisor.sqlite)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--time-scale", type=_positive, default=1.0,
                   help="line seconds per wall second of the store's clock (a scaled bench; default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.report import ReportError, write_report

    try:
        result = write_report(args.state_dir, args.out, time_scale=args.time_scale)
    except ReportError as exc:
        return refuse("report", str(exc), 1)
    except OSError as exc:
        return refuse("report", f"{args.out}: cannot write: {exc.strerror or exc}", 1)
    if args.json:
        print_json(result)
    else:
        s = result["summary"]
        outcomes = ", ".join(f"{v} {k}" for k, v in s["outcomes"].items()) or "no battery recorded"
        print(f"{result['html']}: {s['batteries_recorded']} batteries ({outcomes}), {s['events']} events, "
              f"{s['alarms']} alarms, {s['begin_utc']} to {s['end_utc']}")
    return 0


