"""What a line tells the plant: Sparkplug B metrics of a `LineSnapshot` (edge/lineview/model.py).

Owns the metric names (units at the end, as everywhere in the house), their data types, the
device id of a station (`device_id`), and report by exception (`changed`: a metric is sent again
when it differs from the value last sent, floats by more than their deadband).

The node (one per line) carries the line: `line/packml_state`, `line/packml_state_number`,
`line/mode`, `line/station_count`, `alarms/active_count`, `alarms/unack_count`,
`alarms/high_count`, `batch/recorded_count`, `batch/total_count`, `batch/waiting_count`,
`batch/progress_pct`. A device (one per station, `station000`, `station001`...) carries the
station: `battery`, `tier`, `soc_pct`, `temp_degc`, `current_a`, `state`, `isolated`, `cause`,
and `report_seq`, the station's report number (1, 2, 3... one per DDATA the line produced, kept
across reconnects and sent again as it was when the report is forwarded), by which a consumer
counts every report it got and every one it missed. Tests: tests/edge/sparkplug/test_metrics.py.
"""

from __future__ import annotations

import math
from typing import Any

from edge.sparkplug.payload import DataType

REPORT_SEQ = "report_seq"

NODE_METRICS: dict[str, DataType] = {
    "line/packml_state": DataType.STRING,
    "line/packml_state_number": DataType.INT32,
    "line/mode": DataType.STRING,
    "line/station_count": DataType.UINT32,
    "alarms/active_count": DataType.UINT32,
    "alarms/unack_count": DataType.UINT32,
    "alarms/high_count": DataType.UINT32,
    "batch/recorded_count": DataType.UINT32,
    "batch/total_count": DataType.UINT32,
    "batch/waiting_count": DataType.UINT32,
    "batch/progress_pct": DataType.DOUBLE,
}

DEVICE_METRICS: dict[str, DataType] = {
    "battery": DataType.STRING,
    "tier": DataType.INT32,
    "soc_pct": DataType.DOUBLE,
    "temp_degc": DataType.DOUBLE,
    "current_a": DataType.DOUBLE,
    "state": DataType.STRING,
    "isolated": DataType.BOOLEAN,
    "cause": DataType.STRING,
    REPORT_SEQ: DataType.UINT64,
}

DEADBANDS: dict[str, float] = {"soc_pct": 0.1, "temp_degc": 0.1, "current_a": 0.05, "batch/progress_pct": 0.1}
"""A float is reported again when it moved by more than this from the value last reported."""


def device_id(station_index: int) -> str:
    return f"station{int(station_index):03d}"


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def node_values(snapshot: Any) -> dict[str, Any]:
    """The line's node metrics of a snapshot (None: unknown)."""
    alarms = tuple(snapshot.alarms)
    batch = snapshot.batch
    total = int(batch.total)
    return {
        "line/packml_state": snapshot.packml_state,
        "line/packml_state_number": snapshot.packml_state_number,
        "line/mode": snapshot.mode,
        "line/station_count": len(snapshot.stations),
        "alarms/active_count": len(alarms),
        "alarms/unack_count": sum(1 for a in alarms if a.state in ("unack", "rtn_unack")),
        "alarms/high_count": sum(1 for a in alarms if a.priority == "high"),
        "batch/recorded_count": int(batch.recorded),
        "batch/total_count": total,
        "batch/waiting_count": int(batch.waiting),
        "batch/progress_pct": 100.0 * int(batch.recorded) / total if total > 0 else None,
    }


def station_values(station: Any) -> dict[str, Any]:
    """A station's device metrics, without `report_seq` (the publisher numbers the reports)."""
    return {
        "battery": None if station.battery is None else str(station.battery),
        "tier": None if station.tier is None else int(station.tier),
        "soc_pct": _finite(station.soc_pct),
        "temp_degc": _finite(station.temp_degc),
        "current_a": _finite(station.current_a),
        "state": str(station.state),
        "isolated": bool(station.isolated),
        "cause": ",".join(station.cause or ()),
    }


def changed(new: dict[str, Any], sent: dict[str, Any], deadbands: dict[str, float] = DEADBANDS) -> dict[str, Any]:
    """The metrics of `new` to report: those never sent, or differing from the value sent (a float
    by more than its deadband; None and a number always differ)."""
    out = {}
    for name, value in new.items():
        if name not in sent:
            out[name] = value
            continue
        old = sent[name]
        if isinstance(value, float) and isinstance(old, float):
            if abs(value - old) > deadbands.get(name, 0.0):
                out[name] = value
        elif value != old or type(value) is not type(old):
            out[name] = value
    return out
