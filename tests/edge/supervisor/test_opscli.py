"""`discharge-edge history | events | record` (edge/supervisor/opscli.py) on a state dir written
here by the store, the historian and the alarm book: filters, CSV and JSON, acknowledging with
who and the ownership check, the record's files, exit codes."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from edge.cli import main
from edge.supervisor.alarms import AlarmBook, AlarmSpec
from edge.supervisor.historian import Historian, make_sample
from edge.supervisor.opscli import parse_time
from edge.supervisor.record import validate_record
from edge.supervisor.stations import StationState as St
from edge.supervisor.store import Store

pytestmark = pytest.mark.integration

N, ZONES = 2, 2
VERSIONS = {"soc_gan": {"sha256": "a" * 64, "format": "onnx"}, "rl_policy": {"sha256": "b" * 64, "format": "json"}}


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    t = [1000.0]
    with Store(d, N, clock=lambda: t[0]) as store:
        store.add_event("battery_queued", "queued", battery_id="7",
                        data={"features": {"feat_v_rest_V": 3.7}, "source": "b.csv:2"})
        store.set_station(0, St.LOADING, "7", {})
        h = Historian(d, N, ZONES, thread=False)
        for k in range(20):
            h._take(make_sample(1000.0 + k, ("7", None), ZONES, voltage_v=[22.0 - 0.1 * k, 0], current_a=[3.0, 0],
                                hot_degc=[30.0 + k, 25.0], pressure_kpa=[[100, 101], [0, 0]],
                                current_setpoint_a=[3.0, 0], pressure_setpoint_kpa=[100, 0],
                                coolant_base_lpm=[2, 0], coolant_lpm=[2.0, 0.0], permit=[1, 1]))
        h._drain(final=True)
        h.close()
        store.record_battery("7", {"cell_id": "7", "station": 0, "tier": 1, "soc_pct": 60.0, "soc_lo_pct": 55.0,
                                   "soc_hi_pct": 65.0, "soc_level": 0.9, "soh_est": 0.8, "soh_sd": 0.05,
                                   "strategy": {"name": "x"}, "route": "second_life", "outcome": "done",
                                   "reason": "", "cause": [], "start_s": 1000.0, "end_s": 1019.0,
                                   "charge_removed_ah": 0.016, "residual_pct_est": 59.6, "peak_temp_degc": 49.0,
                                   "time_above_warning_s": 90.0, "passes": 1, "redischarges": 0,
                                   "rebound_v_per_cell": 3.1, "pass_end": "cut-off", "source": "b.csv:2",
                                   "slot": 0, "channel": "A", "placement": {"slot": 0}, "vision": None,
                                   "clamp_kpa": 100.0, "clamped_s": 1000.0,
                                   "limits": {"line": {"warning_degc": 45.0, "temp_limit_degc": 55.0,
                                                       "max_current_a": 15.0, "max_coolant_lpm": 20.0},
                                              "core": {"warning_degc": 45.0, "temp_limit_degc": 55.0},
                                              "route": {"kind": "second_life", "cutoff_v_per_cell": 2.5,
                                                        "floor_v_per_cell": 3.0}}},
                            VERSIONS, at=1020.0)
    with AlarmBook(d, clock=lambda: 1010.0) as book:
        book.raise_alarm(AlarmSpec("core.station.0", "high", "OVER_TEMP", "hot", station=0, marker=3, value=56.0,
                                   unit="degC", battery_id="7", source="core"))
        book.one_shot(AlarmSpec("vision.9", "low", "battery_refused", "polarity", battery_id="9"))
    return d


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_filters_csv_and_json(state, capsys):
    code, out, _ = run(capsys, "history", "--state-dir", str(state), "--json", "--from", "1005", "--to", "1009.5")
    payload = json.loads(out)
    assert code == 0 and [r["t_s"] for r in payload["samples"]] == [1005.0, 1006.0, 1007.0, 1008.0, 1009.0]
    assert payload["samples"][0]["hot_degc_max"] == 35.0 and payload["samples"][0]["battery_id"] == "7"
    code, out, _ = run(capsys, "history", "--state-dir", str(state), "--csv", "--station", "0")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 20 and rows[-1]["voltage_v_mean"].startswith("20.1")
    code, out, _ = run(capsys, "history", "--state-dir", str(state), "--station", "1", "--json")
    assert json.loads(out)["samples"] == []  # an empty station holds nothing to keep
    assert run(capsys, "history", "--state-dir", str(state / "nope"))[0] == 2
    assert parse_time("1970-01-01T00:16:40") == 1000.0 and parse_time("12.5") == 12.5


def test_events_active_and_ack_with_who(state, capsys):
    code, out, _ = run(capsys, "events", "--state-dir", str(state), "--active", "--json")
    alarms = json.loads(out)["alarms"]
    assert code == 0 and [(a["key"], a["state"]) for a in alarms] == [("core.station.0", "unack"),
                                                                        ("vision.9", "rtn_unack")]
    code, out, _ = run(capsys, "events", "--state-dir", str(state), "--ack", str(alarms[1]["id"]), "--json")
    payload = json.loads(out)
    assert code == 0 and payload["acked"]["state"] == "normal" and payload["acked"]["acked_by"]["via"] == "cli"
    assert any(e["kind"] == "alarm_acked" and e["data"]["by"]["via"] == "cli" for e in payload["events"])
    code, out, _ = run(capsys, "events", "--state-dir", str(state), "--active")
    assert code == 0 and "core.station.0" in out and "vision.9" not in out
    assert run(capsys, "events", "--state-dir", str(state), "--ack", "99")[0] == 1
    (state / "supervisor.sqlite").chmod(0o664)
    code, _, err = run(capsys, "events", "--state-dir", str(state), "--ack", str(alarms[0]["id"]))
    assert code == 1 and "mode 0664" in err
    assert run(capsys, "events", "--state-dir", str(state / "nope"))[0] == 2


def test_record_writes_json_and_bdf(state, tmp_path, capsys):
    code, out, err = run(capsys, "record", "7", "--state-dir", str(state), "--out", str(tmp_path / "out"), "--json")
    record = json.loads(out)
    assert code == 0 and "bdf.csv" in err
    validate_record(record)
    assert record["arrival"] == {"source": "b.csv:2", "features": {"feat_v_rest_V": 3.7}}
    assert record["grade"]["soh_lo"] == pytest.approx(0.75) and len(record["series"]["t_s"]) == 20
    bp = record["battery_pass"]
    assert bp["RemainingCapacity"]["RemainingCapacityValue"] == 4.0 and bp["CapacityFade"]["CapacityFadeValue"] == 20.0
    assert bp["TemperatureInformation"]["TimeExtremeHighTemp"] == 1.5  # minutes above 45 degC
    assert bp["NegativeEvents"][0]["NegativeEventValue"].startswith("OVER_TEMP (station 0, marker 3, 56.00 degC")
    bdf = next((tmp_path / "out").glob("*.bdf.csv"))
    rows = list(csv.DictReader(bdf.open()))
    assert len(rows) == 20 and rows[0]["Current / A"] == "-3.0" and rows[-1]["Test Time / s"] == "19.0"
    assert float(rows[-1]["Discharging Capacity / Ah"]) == pytest.approx(3.0 * 19 / 3600, abs=1e-6)
    assert np.isclose(float(rows[0]["Applied Pressure / Pa"]), 100500.0)
    assert run(capsys, "record", "8", "--state-dir", str(state), "--out", str(tmp_path / "o"))[0] == 1
    assert run(capsys, "record", "7", "--state-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))[0] == 2
