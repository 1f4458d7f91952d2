"""The per-battery record that travels with the battery: JSON (Battery Pass condition attributes) + BDF CSV.

Owns `build_record(state_dir, cell_id) -> dict`, `export_record(state_dir, cell_id, out_dir) ->
RecordFiles`, `bdf_rows(record) -> (header, rows)`, `validate_record(record)` (against the shipped
`RECORD_SCHEMA`, edge/supervisor/record.schema.json), `RECORD_SCHEMA_FILE`, `BDF_COLUMNS`,
`RecordError`. What each field means and how it maps to the Battery Pass data model and to the
Battery Data Format: edge/supervisor/RECORD.md.

Sources, all under the line's state dir (read only; the supervisor may be running):
supervisor.sqlite (the record written once when the battery was done, isolated or rejected; its
`battery_queued` event: arrival features, source file:line; its events, station changes and
alarms) and history.sqlite (the 1 s series and the full-rate rows of this battery).

API:
    record = build_record(state_dir, "17")          # RecordError: no such battery / no store
    validate_record(record)                         # jsonschema.ValidationError when it does not fit
    files = export_record(state_dir, "17", out_dir) # out_dir/17.record.json, out_dir/<bdf name>.bdf.csv
    header, rows = bdf_rows(record)
Tests: tests/edge/supervisor/test_opscli.py, test_flow.py (every record of a batch validated), test_demo_kept.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.supervisor.alarms import AlarmBook
from edge.supervisor.historian import HISTORY_FILE, HistoryError, HistoryReader

DATABASE_FILE = "supervisor.sqlite"
RECORD_SCHEMA_FILE = Path(__file__).with_name("record.schema.json")
RECORD_FORMAT = "discharge-edge battery record"
RECORD_VERSION = 1
NOMINAL_CAPACITY_AH = 5.0  # edge.strategy.model.NOMINAL_CAPACITY_AH (not imported: a light reader)
BDF_INSTITUTION = "discharge-edge"

#: (BDF preferred label, machine-readable name) of the columns written, in order
BDF_COLUMNS = (
    ("Test Time / s", "test_time_second"),
    ("Unix Time / s", "unix_time_second"),
    ("Voltage / V", "voltage_volt"),
    ("Current / A", "current_ampere"),
    ("Step Count / 1", "step_count"),
    ("Discharging Capacity / Ah", "discharging_capacity_ah"),
    ("Surface Temperature T1 / degC", "temperature_t1_celsius"),
    ("Applied Pressure / Pa", "applied_pressure_pa"),
)
SERIES_COLUMNS = ("t_s", "voltage_v_mean", "voltage_v_max", "current_a_mean", "current_a_max", "hot_degc_mean",
                  "hot_degc_max", "pressure_kpa_mean", "pressure_kpa_min", "pressure_kpa_max", "relief_kpa_max",
                  "coolant_lpm_mean", "coolant_lpm_max", "permit_mean", "limit_frac_mean")
FULL_RATE_SERIES = ("t_s", "voltage_v", "current_a", "hot_degc", "relief_kpa", "coolant_lpm", "permit")


class RecordError(RuntimeError):
    """No record can be built (no store, no such battery); the message names the file and the battery."""


@dataclass(frozen=True)
class RecordFiles:
    json_path: Path
    bdf_path: Path
    rows: int


def iso(t_s: float | None) -> str | None:
    """ISO 8601 (UTC) of a line-clock time (seconds since the epoch)."""
    if t_s is None or not math.isfinite(t_s):
        return None
    try:
        return dt.datetime.fromtimestamp(t_s, dt.timezone.utc).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):  # a scaled bench clock beyond the calendar
        return None


def _store_rows(path: Path, cell_id: str):
    if not path.is_file():
        raise RecordError(f"{path}: no supervisor store here (is this a line's state dir?)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        row = db.execute("SELECT recorded_at, record, model_versions FROM batteries WHERE cell_id = ?",
                         (cell_id,)).fetchone()
        if row is None:
            known = [r[0] for r in db.execute("SELECT cell_id FROM batteries ORDER BY id LIMIT 20")]
            raise RecordError(f"{path}: battery {cell_id!r} has no record (recorded: {', '.join(known) or 'none'}"
                              f"{', ...' if len(known) == 20 else ''})")
        events = db.execute("SELECT id, at, kind, text, station, data FROM events WHERE battery_id = ? ORDER BY id",
                            (cell_id,)).fetchall()
        changes = db.execute("SELECT at, station, before, state FROM station_history WHERE battery_id = ? ORDER BY id",
                             (cell_id,)).fetchall()
    finally:
        db.close()
    return row, events, changes


def build_record(state_dir: str | Path, cell_id: str) -> dict[str, Any]:
    """The battery's whole record (see RECORD.md); valid against `RECORD_SCHEMA_FILE`."""
    state_dir = Path(state_dir)
    (recorded_at, record_text, versions_text), events, changes = _store_rows(state_dir / DATABASE_FILE, str(cell_id))
    r, versions = json.loads(record_text), json.loads(versions_text)
    queued = next((json.loads(d) for _, _, kind, _, _, d in events if kind == "battery_queued"), {})
    with AlarmBook(state_dir, create=False) as book:
        alarms = [a.to_dict() for a in book.alarms(battery_id=str(cell_id))]
    series, full_rate, setpoints = _series(state_dir, str(cell_id))
    soh, soh_sd = r.get("soh_est"), r.get("soh_sd")
    record = {
        "format": RECORD_FORMAT, "format_version": RECORD_VERSION,
        "cell_id": str(cell_id), "recorded_at_s": recorded_at, "recorded_at": iso(recorded_at),
        "arrival": {"source": r.get("source") or queued.get("source"), "features": queued.get("features", {})},
        "grade": {"soc_pct": r.get("soc_pct"), "soc_lo_pct": r.get("soc_lo_pct"), "soc_hi_pct": r.get("soc_hi_pct"),
                  "soc_level": r.get("soc_level"), "soh_est": soh, "soh_sd": soh_sd,
                  "soh_lo": None if soh is None or soh_sd is None else soh - soh_sd,
                  "soh_hi": None if soh is None or soh_sd is None else soh + soh_sd, "tier": r.get("tier")},
        "strategy": r.get("strategy"),
        "limits": r.get("limits"),
        "placement": {k: r.get(k) for k in ("station", "slot", "channel", "placement", "vision", "clamp_kpa",
                                             "clamped_s")},
        "discharge": {k: r.get(k) for k in ("start_s", "end_s", "charge_removed_ah", "residual_pct_est",
                                             "peak_temp_degc", "time_above_warning_s", "passes", "redischarges",
                                             "rebound_v_per_cell", "pass_end")},
        "outcome": {"outcome": r.get("outcome"), "route": r.get("route"), "reason": r.get("reason", ""),
                    "cause": r.get("cause", [])},
        "events": [{"id": i, "t_s": at, "kind": kind, "text": text, "station": st}
                   for i, at, kind, text, st, _ in events],
        "station_changes": [{"t_s": at, "station": st, "before": b, "state": s} for at, st, b, s in changes],
        "alarms": alarms,
        "setpoints": setpoints,
        "series": series,
        "series_full_rate": full_rate,
        "model_versions": versions,
    }
    record["battery_pass"] = battery_pass(record)
    return record


def _series(state_dir: Path, cell_id: str):
    """The 1 s series, the full-rate rows and the setpoints of this battery as column lists."""
    empty = {"bucket_s": None, **{c: [] for c in SERIES_COLUMNS}}
    if not (state_dir / HISTORY_FILE).is_file():
        return empty, {c: [] for c in FULL_RATE_SERIES}, []
    try:
        with HistoryReader(state_dir) as h:
            rows = h.samples(battery_id=cell_id)
            raw = h.full_rate(battery_id=cell_id)
            setpoints = h.setpoints(battery_id=cell_id)
    except (HistoryError, sqlite3.Error):
        return empty, {c: [] for c in FULL_RATE_SERIES}, []
    series = {"bucket_s": 1.0, **{c: [x[c] for x in rows] for c in SERIES_COLUMNS}}
    full = {c: [x[c] for x in raw] for c in FULL_RATE_SERIES}
    full["pressure_kpa"] = [x["pressure_kpa"] for x in raw]
    sp = [{"t_s": x["t_s"], "current_a": x["current_a"], "pressure_kpa": x["pressure_kpa"],
           "coolant_base_lpm": x["coolant_base_lpm"], "limits": x["limits"]} for x in setpoints]
    return series, full, sp


NEGATIVE_EVENT_KINDS = ("station_isolated", "rebound_failed", "unload_failed", "resume_mismatch", "battery_refused")


def battery_pass(record: dict[str, Any]) -> dict[str, Any]:
    """The condition attributes of the Battery Pass data model (IDTA ProductCondition 1.0.2 payload
    names; RECORD.md says which and how)."""
    d, g, out = record["discharge"], record["grade"], record["outcome"]
    updated = iso(d.get("end_s")) or record["recorded_at"]
    bp: dict[str, Any] = {}
    if g.get("soh_est") is not None:
        bp["RemainingCapacity"] = {"RemainingCapacityValue": round(g["soh_est"] * NOMINAL_CAPACITY_AH, 4),
                                   "LastUpdate": updated}
        bp["CapacityFade"] = {"CapacityFadeValue": round(max(0.0, 1.0 - g["soh_est"]) * 100.0, 3),
                              "LastUpdate": updated}
    if d.get("residual_pct_est") is not None and out["outcome"] != "rejected":
        bp["StateOfCharge"] = {"StateOfChargeValue": round(min(100.0, max(0.0, d["residual_pct_est"])), 3),
                               "LastUpdate": updated}
    negative = []
    for e in record["events"]:
        if e["kind"] in NEGATIVE_EVENT_KINDS:
            negative.append({"NegativeEventValue": f"{e['kind']}: {e['text']}", "LastUpdate": iso(e["t_s"])})
    for a in record["alarms"]:
        if a["source"] == "core":
            where = f"station {a['station']}" + (f", marker {a['marker']}" if a["marker"] is not None else "")
            value = f", {a['value']:.2f} {a['unit'] or ''}".rstrip() if a["value"] is not None else ""
            negative.append({"NegativeEventValue": f"{a['cause']} ({where}{value})", "LastUpdate": iso(a["raised_at"])})
    bp["NegativeEvents"] = negative
    temp: dict[str, Any] = {"LastUpdate": updated}
    if d.get("peak_temp_degc") is not None:
        temp["MeasuredTemp"] = d["peak_temp_degc"]
    if d.get("time_above_warning_s") is not None:
        temp["TimeExtremeHighTemp"] = round(d["time_above_warning_s"] / 60.0, 4)  # minutes (the model's unit)
    bp["TemperatureInformation"] = temp
    limits = record.get("limits") or {}
    bp["_basis"] = {
        "model": "IDTA Battery Pass ProductCondition 1.0.2 (io.admin-shell.idta.batterypass.product_condition) (DIN DKE SPEC 99100); CapacityFade from 1.2.0",
        "nominal_capacity_ah": NOMINAL_CAPACITY_AH,
        "extreme_high_temp_boundary_degc": (limits.get("line") or {}).get("warning_degc"),
        "measured_temp": "the hottest marker's peak while on the station",
    }
    return bp


# -- the Battery Data Format CSV -------------------------------------------------------------------------
def bdf_rows(record: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The 1 s series as BDF rows: test time from the first sample, discharge current negative,
    the discharged capacity counted from the means, a step per station state change."""
    s = record["series"]
    header = [label for label, _ in BDF_COLUMNS]
    rows: list[list[Any]] = []
    if not s["t_s"]:
        return header, rows
    t0 = s["t_s"][0]
    changes = sorted(c["t_s"] for c in record["station_changes"])
    capacity, last_t, last_i = 0.0, None, None
    for k, t in enumerate(s["t_s"]):
        i = s["current_a_mean"][k]
        i = 0.0 if i is None else i
        if last_t is not None:
            capacity += 0.5 * (i + last_i) * (t - last_t) / 3600.0
        last_t, last_i = t, i
        step = sum(1 for c in changes if c <= t)
        p = s["pressure_kpa_mean"][k]
        rows.append([_r(t - t0, 3), _r(t, 3), _r(s["voltage_v_mean"][k], 4), _r(0.0 - i, 4) + 0.0, step, _r(capacity, 6),
                     _r(s["hot_degc_mean"][k], 3), None if p is None else _r(p * 1000.0, 1)])
    return header, rows


def _r(x, digits):
    return None if x is None else round(float(x), digits)


def bdf_name(record: dict[str, Any]) -> str:
    """BDF's recommended name InstitutionCode__CellName__YYYYMMDD_XXX, with the .bdf.csv extension."""
    day = (record["recorded_at"] or "1970-01-01")[:10].replace("-", "")
    cell = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in record["cell_id"])
    return f"{BDF_INSTITUTION}__{cell}__{day}_001.bdf.csv"


def export_record(state_dir: str | Path, cell_id: str, out_dir: str | Path) -> RecordFiles:
    """Write `<cell>.record.json` (validated first) and the BDF CSV into `out_dir`."""
    record = build_record(state_dir, cell_id)
    validate_record(record)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cell = "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in str(cell_id))
    json_path = out / f"{cell}.record.json"
    json_path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    header, rows = bdf_rows(record)
    bdf_path = out / bdf_name(record)
    with bdf_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([["" if v is None else v for v in row] for row in rows])
    return RecordFiles(json_path, bdf_path, len(rows))


def load_schema() -> dict[str, Any]:
    return json.loads(RECORD_SCHEMA_FILE.read_text())


def validate_record(record: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` when `record` does not fit the shipped schema."""
    import jsonschema

    jsonschema.validate(record, load_schema(), cls=jsonschema.Draft202012Validator)
