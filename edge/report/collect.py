"""A batch from a line's state dir, as the report shows it: summary, batteries, stays, moves, events.

Owns `collect_batch(state_dir, time_scale=1.0) -> dict` (JSON-able, standard JSON: no NaN) and
`ReportError`. Sources, read through their owners' APIs: `edge.supervisor.store.Store` (the
battery records, the station history, the line's PackML history, the events),
`edge.supervisor.alarms.AlarmBook` (ISA-18.2 alarms, when the store has them) and
`edge.supervisor.historian.HistoryReader` (the 1 s series per station, when `history.sqlite`
exists). The supervisor may be running: nothing is changed (the store and the alarm book open
their tables as they always do; no row is written).

Times: the store's clock is the line's (`time.time()` on a real line; on a bench in scaled time,
`time_scale` plant seconds per wall second, as `run --time-scale` has it). Each time is kept as
the store has it (`*_s`) and given as wall-clock ISO 8601 UTC (`*_utc`, the store's time divided
by `time_scale`); `line_min` columns count minutes of line time from the batch's first event.
Tests: tests/edge/report/test_html.py (collect_batch on a batch written through the store).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge.supervisor.store import DATABASE_FILE, Store, StoreError

__all__ = ["ReportError", "collect_batch", "utc"]

SERIES_COLUMNS = ("t_s", "station", "battery_id", "current_a_mean", "hot_degc_max", "voltage_v_mean",
                  "relief_kpa_max", "coolant_lpm_mean", "limit_frac_mean")
EVENTS_SHOWN_MAX = 2000  # the newest are kept beyond this (a page stays readable and small)
QUIET_EVENT_KINDS = ("robot_handshake",)  # every handshake step: counted, not listed


class ReportError(RuntimeError):
    """The state dir has no batch to report; the message names the file."""


def utc(t_s: float | None, time_scale: float = 1.0) -> str | None:
    """The store's time as wall-clock ISO 8601 UTC (seconds), or None."""
    if t_s is None or not math.isfinite(t_s):
        return None
    return datetime.fromtimestamp(t_s / time_scale, tz=timezone.utc).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def _station_count(path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            return int(dict(db.execute("SELECT key, value FROM meta"))["station_count"])
        finally:
            db.close()
    except (sqlite3.Error, KeyError, ValueError) as exc:
        raise ReportError(f"{path}: not a supervisor store ({exc})") from exc


def _finite(x: Any, digits: int | None = None) -> Any:
    if isinstance(x, float):
        if not math.isfinite(x):
            return None
        return round(x, digits) if digits is not None else x
    return x


def _battery_row(record: dict, recorded_at: float, scale: float) -> dict[str, Any]:
    soh, sd = record.get("soh_est"), record.get("soh_sd")
    placement = record.get("placement") or {}
    begin = placement.get("done_s") if placement.get("done_s") is not None else record.get("start_s")
    return {
        "cell_id": str(record.get("cell_id")), "tier": record.get("tier"), "route": record.get("route"),
        "slot": record.get("slot", placement.get("slot")), "station": record.get("station"),
        "channel": record.get("channel"),
        "soc_pct": _finite(record.get("soc_pct"), 2),
        "soc_interval_pct": [_finite(record.get("soc_lo_pct"), 2), _finite(record.get("soc_hi_pct"), 2)],
        "soh_est": _finite(soh, 4),
        "soh_interval": [_finite(soh - sd, 4), _finite(soh + sd, 4)] if soh is not None and sd is not None else
        [None, None],
        "outcome": record.get("outcome"), "cause": list(record.get("cause") or []), "reason": record.get("reason", ""),
        "placed_s": begin, "start_s": record.get("start_s"), "end_s": record.get("end_s"),
        "recorded_s": recorded_at,
        "placed_utc": utc(begin, scale), "start_utc": utc(record.get("start_s"), scale),
        "end_utc": utc(record.get("end_s"), scale),
        "discharge_min": _finite((record["end_s"] - record["start_s"]) / 60.0, 1)
        if record.get("end_s") is not None and record.get("start_s") is not None else None,
        "passes": record.get("passes"), "redischarges": record.get("redischarges"),
        "charge_removed_ah": _finite(record.get("charge_removed_ah"), 3),
        "residual_pct_est": _finite(record.get("residual_pct_est"), 1),
        "peak_temp_degc": _finite(record.get("peak_temp_degc"), 1),
        "time_above_warning_s": _finite(record.get("time_above_warning_s"), 1),
        "clamp_kpa": _finite(record.get("clamp_kpa"), 1), "source": record.get("source"),
    }


def _stays(history, scale: float) -> list[dict[str, Any]]:
    """Each battery's stay on a station, from its first state off `empty` to the station's next
    `empty` (or the end of the history): the Gantt's bars."""
    open_at: dict[int, dict[str, Any]] = {}
    stays = []
    for change in history:
        s = change.station
        state = change.state.value
        current = open_at.get(s)
        if current is not None and (state == "empty" or change.battery_id != current["cell_id"]):
            current["end_s"] = change.at
            stays.append(open_at.pop(s))
            current = None
        if state != "empty" and current is None and change.battery_id is not None:
            open_at[s] = {"station": s, "cell_id": str(change.battery_id), "begin_s": change.at, "end_s": None,
                          "states": []}
        if s in open_at:
            open_at[s]["states"].append({"state": state, "at_s": change.at})
    stays.extend(open_at.values())
    for stay in stays:
        stay["begin_utc"], stay["end_utc"] = utc(stay["begin_s"], scale), utc(stay["end_s"], scale)
    return sorted(stays, key=lambda x: (x["begin_s"], x["station"]))


def _moves(events, scale: float) -> list[dict[str, Any]]:
    moves = []
    for e in events:
        if e.kind != "robot_move":
            continue
        d = e.data
        moves.append({"battery_id": d.get("battery_id"), "pick": d.get("pick"), "place": d.get("place"),
                      "ok": bool(d.get("ok")), "reason": d.get("reason", ""), "attempts": len(d.get("attempts") or ()),
                      "ordered_s": d.get("ordered_s"), "done_s": d.get("done_s", e.at),
                      "ordered_utc": utc(d.get("ordered_s"), scale), "done_utc": utc(d.get("done_s", e.at), scale)})
    return moves


def _alarms(state_dir: Path, scale: float) -> tuple[list[dict[str, Any]], str | None]:
    try:
        from edge.supervisor.alarms import AlarmBook, AlarmError
    except ImportError as exc:  # a supervisor without alarms yet
        return [], f"alarms not available: {exc}"
    try:
        with AlarmBook(state_dir, create=False) as book:
            alarms = [a.to_dict() for a in book.alarms()]
    except (AlarmError, sqlite3.Error) as exc:
        return [], f"alarms not read: {exc}"
    for a in alarms:
        for key in ("raised_at", "acked_at", "cleared_at"):
            a[key.replace("_at", "_utc")] = utc(a.get(key), scale)
    return alarms, None


def _series(state_dir: Path) -> tuple[dict[int, dict[str, list]], str | None]:
    """Per station, the historian's 1 s columns (lists), or why there are none."""
    try:
        from edge.supervisor.historian import HistoryError, HistoryReader
    except ImportError as exc:
        return {}, f"no historian: {exc}"
    try:
        with HistoryReader(state_dir) as reader:
            rows = reader.samples()
    except (HistoryError, sqlite3.Error) as exc:
        return {}, str(exc)
    series: dict[int, dict[str, list]] = {}
    for r in rows:
        columns = series.setdefault(int(r["station"]), {c: [] for c in SERIES_COLUMNS if c != "station"})
        for c in columns:
            columns[c].append(_finite(r.get(c)))
    return series, None


def collect_batch(state_dir: str | Path, *, time_scale: float = 1.0, series: bool = True) -> dict[str, Any]:
    """Everything the report shows of the batch in `state_dir` (JSON-able)."""
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ValueError(f"time_scale is {time_scale!r}; allowed: a finite number > 0")
    state_dir = Path(state_dir)
    path = state_dir / DATABASE_FILE
    if not path.is_file():
        raise ReportError(f"{path}: no supervisor store here (is {state_dir} a line's state dir?)")
    try:
        with Store(state_dir, _station_count(path)) as store:
            batteries = store.batteries()
            history = store.station_history()
            events = store.events()
            line_history = store.line_history()
            n_stations = store.station_count
    except StoreError as exc:
        raise ReportError(str(exc)) from exc
    rows = [_battery_row(b.record, b.recorded_at, time_scale) for b in batteries]
    model_versions = batteries[-1].model_versions if batteries else {}
    stays = _stays(history, time_scale)
    tier_of = {r["cell_id"]: r["tier"] for r in rows}
    outcome_of = {r["cell_id"]: r["outcome"] for r in rows}
    record_end = {r["cell_id"]: r["recorded_s"] for r in rows}
    last_s = max((t for t in [e.at for e in events] + [c.at for c in history] if t is not None), default=None)
    for stay in stays:
        stay["tier"], stay["outcome"] = tier_of.get(stay["cell_id"]), outcome_of.get(stay["cell_id"])
        stay["open"] = stay["end_s"] is None  # still on its station (an isolated module waits for the operator)
        if stay["open"]:
            stay["end_s"] = max(record_end.get(stay["cell_id"]) or stay["begin_s"], last_s or stay["begin_s"])
            stay["end_utc"] = utc(stay["end_s"], time_scale)
    moves = _moves(events, time_scale)
    alarms, alarms_note = _alarms(state_dir, time_scale)
    per_station, series_note = _series(state_dir) if series else ({}, "not asked")
    times = [t for t in ([e.at for e in events] + [c.at for c in history]) if t is not None]
    begin_s, end_s = (min(times), max(times)) if times else (None, None)
    starts = [r["start_s"] for r in rows if r["start_s"] is not None]
    ends = [r["end_s"] for r in rows if r["end_s"] is not None]
    busy = [m["done_s"] - m["ordered_s"] for m in moves if m["ordered_s"] is not None and m["done_s"] is not None]
    kinds = Counter(e.kind for e in events)
    listed = [e for e in events if e.kind not in QUIET_EVENT_KINDS][-EVENTS_SHOWN_MAX:]
    summary = {
        "state_dir": str(state_dir.resolve()), "stations": n_stations, "time_scale": time_scale,
        "begin_utc": utc(begin_s, time_scale), "end_utc": utc(end_s, time_scale),
        "line_time_min": _finite((end_s - begin_s) / 60.0, 1) if times else None,
        "batteries_recorded": len(rows), "outcomes": dict(Counter(r["outcome"] for r in rows)),
        "tiers": {str(k): v for k, v in sorted(Counter(r["tier"] for r in rows).items(), key=lambda kv: str(kv[0]))},
        "charge_removed_ah": _finite(sum(r["charge_removed_ah"] or 0.0 for r in rows), 2),
        "peak_temp_degc": max((r["peak_temp_degc"] for r in rows if r["peak_temp_degc"] is not None), default=None),
        "batch_min": _finite((max(ends) - min(starts)) / 60.0, 1) if starts and ends else None,
        "batteries_per_h": _finite(3600.0 * len(rows) / (max(ends) - min(starts)), 2)
        if starts and ends and max(ends) > min(starts) else None,
        "robot_moves": len(moves), "robot_moves_failed": sum(1 for m in moves if not m["ok"]),
        "robot_busy_min": _finite(sum(busy) / 60.0, 1),
        "supervisor_starts": kinds.get("supervisor_start", 0),
        "line_state": line_history[-1].state.label if line_history else None,
        "events": sum(kinds.values()), "event_kinds": dict(sorted(kinds.items())),
        "alarms": len(alarms), "alarms_active": sum(1 for a in alarms if a.get("state") != "normal"),
        "model_versions": model_versions,
    }
    return {
        "summary": summary, "batteries": rows, "stays": stays, "robot_moves": moves,
        "line_states": [{"at_s": e.at, "at_utc": utc(e.at, time_scale), "state": e.state.label,
                         "command": None if e.command is None else e.command.name} for e in line_history],
        "events": [{"id": e.id, "at_s": e.at, "at_utc": utc(e.at, time_scale), "kind": e.kind, "text": e.text,
                    "station": e.station, "battery_id": e.battery_id} for e in listed],
        "events_not_listed": {k: kinds[k] for k in QUIET_EVENT_KINDS if kinds.get(k)} | (
            {"older": sum(kinds.values()) - len(listed) - sum(kinds.get(k, 0) for k in QUIET_EVENT_KINDS)}
            if len(events) > len(listed) + sum(kinds.get(k, 0) for k in QUIET_EVENT_KINDS) else {}),
        "alarms": alarms, "series": {str(s): cols for s, cols in sorted(per_station.items())},
        "notes": [n for n in (alarms_note, None if series_note is None else f"series: {series_note}") if n],
        "origin_s": begin_s,
    }
