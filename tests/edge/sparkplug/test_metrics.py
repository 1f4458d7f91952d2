"""A LineSnapshot as Sparkplug metrics, and report by exception."""

from __future__ import annotations

import pytest

from edge.sparkplug.metrics import DEVICE_METRICS, NODE_METRICS, changed, device_id, node_values, station_values
from tests.edge.sparkplug.lines import line_snapshot

pytestmark = pytest.mark.unit


def test_node_values_of_a_snapshot():
    v = node_values(line_snapshot(5, alarms=2))
    assert v == {"line/packml_state": "Execute", "line/packml_state_number": 6, "line/mode": "Production",
                 "line/station_count": 4, "alarms/active_count": 2, "alarms/unack_count": 2, "alarms/high_count": 2,
                 "batch/recorded_count": 5, "batch/total_count": 1000, "batch/waiting_count": 995,
                 "batch/progress_pct": 0.5}
    assert set(v) == set(NODE_METRICS)


def test_station_values_with_unknowns():
    snap = line_snapshot(1)
    assert station_values(snap.stations[2]) == {"battery": "B002", "tier": 3, "soc_pct": 88.8, "temp_degc": 27.5,
                                                "current_a": -5.0, "state": "discharging", "isolated": True,
                                                "cause": "overtemp"}
    empty = station_values(snap.stations[3])
    assert (empty["battery"], empty["tier"], empty["current_a"], empty["state"]) == (None, None, None, "empty")
    assert set(empty) | {"report_seq"} == set(DEVICE_METRICS)
    assert device_id(7) == "station007"


def test_report_by_exception_uses_deadbands_against_the_value_last_sent():
    sent = {"soc_pct": 50.0, "state": "discharging", "tier": 1, "battery": None}
    assert changed({"soc_pct": 50.05, "state": "discharging", "tier": 1, "battery": None}, sent) == {}
    assert changed({"soc_pct": 50.2, "state": "resting", "tier": 1, "battery": "B1"}, sent) == {
        "soc_pct": 50.2, "state": "resting", "battery": "B1"}
    assert changed({"soc_pct": None}, sent) == {"soc_pct": None}
    assert changed({"new": 1}, sent) == {"new": 1}
