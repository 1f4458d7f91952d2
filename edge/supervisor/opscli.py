"""`discharge-edge history | events | record`: what a line kept, read from its state dir.

Owns the three subcommands (entry points in pyproject.toml: `register_history`,
`register_events`, `register_record`) and `parse_time`.

    discharge-edge history --state-dir D [--station S] [--from T] [--to T] [--full-rate] [--csv|--json]
    discharge-edge events  --state-dir D [--active] [--ack ID] [--json]
    discharge-edge record  CELL_ID --state-dir D --out DIR [--json]

- `history`: the 1 s samples (or `--full-rate`: the rows around events) of the historian, the
  setpoints, station changes and events, filtered by station and time. T is seconds on the
  line's clock or an ISO 8601 time (a time without a zone is UTC). Text: a table on stdout;
  `--csv`: the samples as CSV (one header); `--json`: one object {"samples", "setpoints",
  "state_changes", "events"}.
- `events`: the alarms (ISA-18.2 states; `--active`: those not yet both acknowledged and cleared)
  and the store's events; `--ack ID` acknowledges alarm ID after the ownership check
  (`alarms.check_operator`), recording who (`operator_identity("cli")`).
- `record`: the battery's record as `<cell>.record.json` (validated against the shipped schema)
  and its series as a Battery Data Format CSV in DIR.
Exit codes: 0 done, 1 refused (no such battery, an ack the ownership check refuses, no alarm of
that id), 2 bad usage or a state dir without a store. Tests: tests/edge/supervisor/test_opscli.py.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import sys
from pathlib import Path

from edge.supervisor.historian import SAMPLE_COLUMNS, FULL_RATE_COLUMNS, HistoryError, HistoryReader


def parse_time(text: str) -> float:
    """Seconds on the line's clock, or an ISO 8601 time (no zone: UTC)."""
    try:
        value = float(text)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed: seconds (line clock) or an ISO 8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def _state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", required=True, type=Path, help="the line's state dir (run's --state-dir)")


def register_history(subparsers) -> None:
    p = subparsers.add_parser("history", help="the line's history: 1 s samples, setpoints, state changes, events")
    _state_dir(p)
    p.add_argument("--station", type=int, default=None, help="one station only")
    p.add_argument("--from", dest="t_from", type=parse_time, default=None, help="from T (s, line clock, or ISO 8601)")
    p.add_argument("--to", dest="t_to", type=parse_time, default=None, help="to T")
    p.add_argument("--battery", default=None, help="one battery only")
    p.add_argument("--full-rate", action="store_true", help="the full-rate rows around events instead of 1 s samples")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="the samples as CSV on stdout")
    out.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    try:
        reader = HistoryReader(args.state_dir)
    except HistoryError as exc:
        print(f"discharge-edge history: {exc}", file=sys.stderr)
        return 2
    with reader:
        where = dict(station=args.station, t_from=args.t_from, t_to=args.t_to, battery_id=args.battery)
        rows = reader.full_rate(**where) if args.full_rate else reader.samples(**where)
        columns = FULL_RATE_COLUMNS if args.full_rate else SAMPLE_COLUMNS
        if args.csv:
            w = csv.writer(sys.stdout)
            w.writerow(columns)
            for r in rows:
                w.writerow(["" if r[c] is None else r[c] for c in columns])
            return 0
        payload = {"state_dir": str(args.state_dir), "kind": "full_rate" if args.full_rate else "samples_1s",
                   "samples": rows, "setpoints": reader.setpoints(**where), "state_changes": reader.state_changes(
                       station=args.station, t_from=args.t_from, t_to=args.t_to, battery_id=args.battery),
                   "events": reader.events(**where)}
    if args.json:
        from edge.cli import print_json

        print_json(payload)
        return 0
    shown = ("t_s", "station", "battery_id", "voltage_v_mean", "current_a_mean", "hot_degc_max", "pressure_kpa_min",
             "relief_kpa_max", "coolant_lpm_mean", "permit_mean") if not args.full_rate else columns
    print("  ".join(f"{c:>14}" for c in shown))
    for r in rows:
        print("  ".join(f"{_cell(r[c]):>14}" for c in shown))
    print(f"{len(rows)} rows, {len(payload['setpoints'])} setpoint changes, {len(payload['state_changes'])} state "
          f"changes, {len(payload['events'])} events", file=sys.stderr)
    return 0


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def register_events(subparsers) -> None:
    p = subparsers.add_parser("events", help="the line's alarms (ISA-18.2) and events; acknowledge an alarm")
    _state_dir(p)
    p.add_argument("--active", action="store_true", help="only the alarms not both acknowledged and cleared")
    p.add_argument("--ack", type=int, default=None, metavar="ID", help="acknowledge alarm ID (you are recorded)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_events)


def cmd_events(args: argparse.Namespace) -> int:
    import sqlite3

    from edge.supervisor.alarms import AlarmBook, AlarmError, AlarmRefused, check_operator, operator_identity

    try:
        book = AlarmBook(args.state_dir, create=False)
    except (AlarmError, sqlite3.Error) as exc:
        print(f"discharge-edge events: {exc}", file=sys.stderr)
        return 2
    with book:
        acked = None
        if args.ack is not None:
            try:
                check_operator(args.state_dir)
                acked = book.ack(args.ack, operator_identity("cli"))
            except AlarmRefused as exc:
                print(f"discharge-edge events: {exc}", file=sys.stderr)
                return 1
            except AlarmError as exc:
                print(f"discharge-edge events: {exc}", file=sys.stderr)
                return 1
        alarms = book.active() if args.active else book.alarms()
        events = [] if args.active else _store_events(args.state_dir)
    payload = {"state_dir": str(args.state_dir), "alarms": [a.to_dict() for a in alarms], "events": events}
    if acked is not None:
        payload["acked"] = acked.to_dict()
    if args.json:
        from edge.cli import print_json

        print_json(payload)
        return 0
    if acked is not None:
        print(f"alarm {acked.id} ({acked.key}) acknowledged by {acked.acked_by['user']}: now {acked.state}",
              file=sys.stderr)
    for e in events:
        where = f" station {e['station']}" if e["station"] is not None else ""
        print(f"{e['at']:.1f}  event {e['kind']}{where}: {e['text']}")
    for a in alarms:
        where = "".join(f" {k} {v}" for k, v in (("station", a.station), ("marker", a.marker), ("battery", a.battery_id))
                        if v is not None)
        value = f" value {a.value:g} {a.unit or ''}" if a.value is not None else ""
        print(f"alarm {a.id:>4} {a.state:>9} {a.priority:>6} {a.key}: {a.cause}{where}{value}: {a.text}")
    return 0


def _store_events(state_dir: Path) -> list[dict]:
    import json
    import sqlite3

    db = sqlite3.connect(f"file:{Path(state_dir) / 'supervisor.sqlite'}?mode=ro", uri=True, timeout=5.0)
    try:
        rows = db.execute("SELECT id, at, kind, text, station, battery_id, data FROM events ORDER BY id").fetchall()
    finally:
        db.close()
    return [{"id": i, "at": at, "kind": k, "text": t, "station": s, "battery_id": b, "data": json.loads(d)}
            for i, at, k, t, s, b, d in rows]


def register_record(subparsers) -> None:
    p = subparsers.add_parser("record", help="a battery's record: JSON (Battery Pass condition) + BDF CSV")
    p.add_argument("cell_id", metavar="CELL_ID", help="the battery's cell id")
    _state_dir(p)
    p.add_argument("--out", required=True, type=Path, help="folder for CELL.record.json and the .bdf.csv")
    p.add_argument("--json", action="store_true", help="print the record as one JSON object on stdout")
    p.set_defaults(func=cmd_record)


def cmd_record(args: argparse.Namespace) -> int:
    from edge.supervisor.record import RecordError, export_record

    try:
        files = export_record(args.state_dir, args.cell_id, args.out)
    except RecordError as exc:
        print(f"discharge-edge record: {exc}", file=sys.stderr)
        return 1 if "has no record" in str(exc) else 2
    if args.json:
        import json

        from edge.cli import print_json

        print_json(json.loads(files.json_path.read_text()))
    print(f"discharge-edge record: {files.json_path} and {files.bdf_path} ({files.rows} rows)", file=sys.stderr)
    return 0
