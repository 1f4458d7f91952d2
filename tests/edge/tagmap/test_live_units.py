"""edge/tagmap/live.py without a PLC: naming a tag, showing a value, judging a reading, pacing a watch."""

from __future__ import annotations

import math

import pytest

from edge import REPO_ROOT
from edge.bus import Quality
from edge.tagmap import load_tag_map
from edge.tagmap.live import (NoAnswer, Reading, Selection, UnknownTag, format_value, json_value, reading_problem,
                              resolve, watch)

pytestmark = pytest.mark.unit

HIL = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")


def test_a_tag_an_element_and_a_role_resolve():
    assert resolve(HIL, "zone_pressure_kpa[15]") == Selection("zone_pressure_kpa[15]", HIL.tag("zone_pressure_kpa"), 15)
    assert resolve(HIL, "plc_heartbeat").tag.name == "plc_heartbeat"
    with pytest.raises(UnknownTag, match=r"'zone_pressure' is not a tag or role of .*hil_modbus.yaml; near: zone_pressure_kpa"):
        resolve(HIL, "zone_pressure")
    with pytest.raises(UnknownTag, match="has 16 elements, 0..15"):
        resolve(HIL, "zone_pressure_kpa[16]")


def test_arrays_are_shown_compactly():
    temps, permit = HIL.tag("marker_temp_degc"), HIL.tag("discharge_permit")
    assert format_value(tuple(float(i) for i in range(32)), temps) == "[0, 1, 2, 3, 4, 5, …, 30, 31] (32 values, 0..31)"
    assert format_value((float("nan"),) * 3 + (1.5,), temps) == "[nan ×3, 1.5]"
    assert format_value((True,) * 3 + (False,) + (True,) * 4, permit) == "[true ×3, false, true ×4]"
    assert format_value(21.299999237060547, HIL.tag("zone_pressure_kpa")) == "21.3"  # a float32's digits
    assert format_value(None, temps) == "-"
    assert json_value((1.0, math.nan, -math.inf)) == [1.0, None, None]


def test_a_reading_outside_its_limits_names_its_elements():
    temps = HIL.tag("marker_temp_degc")  # -40..150 degC
    assert reading_problem(temps, (20.0,) * 32) == ""
    values = (20.0,) * 5 + (1717.4,) + (20.0,) * 25 + (-41.0,)
    assert reading_problem(temps, values) == ("reads [5] 1717.4, [31] -41 degC (2 of 32), outside its limits "
                                              "-40..150 degC")
    assert reading_problem(HIL.tag("packml_command"), 14) == "reads 14 (1 of 1), outside its limits 0..9"


def test_a_real_of_no_measurements_magnitude_is_a_type_problem():
    pressures = HIL.tag("zone_pressure_kpa")
    assert reading_problem(pressures, (0.0,) * 16) == ""  # zero is a measurement
    assert "integer registers read as a REAL" in reading_problem(pressures, (3.6e-38,) + (150.0,) * 15)
    assert reading_problem(HIL.tag("vision_terminal_x_mm"), (2e30,) + (1.0,) * 7).startswith("reads [0] 2e+30 (1 of 8)")
    assert "no REAL measurement" in reading_problem(HIL.tag("vision_confidence_pct"), (math.nan, 95.0, 95.0, 95.0))


class FakeClock:
    def __init__(self):
        self.now_s = 100.0

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds


class SlowReader:
    """Each read takes `took_s[i]` of the fake clock; NoAnswer when the list runs out."""

    def __init__(self, clock: FakeClock, took_s: list[float]):
        self.clock, self.took_s, self.read_at = clock, list(took_s), []

    def read(self):
        if not self.took_s:
            raise NoAnswer("gone")
        self.read_at.append(self.clock.now_s)
        self.clock.now_s += self.took_s.pop(0)
        return [Reading(Selection("x", HIL.tag("plc_heartbeat")), len(self.read_at), Quality.GOOD, 0, self.clock.now_s)]


def test_watch_keeps_absolute_deadlines_and_skips_what_an_overrun_missed(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("edge.tagmap.live.time.monotonic", clock.monotonic)
    reader = SlowReader(clock, [0.01, 0.01, 0.35, 0.01, 0.01])
    samples = []
    state = watch(reader, 0.1, 5, lambda state, readings: samples.append(readings[0].value), sleep=clock.sleep)
    assert samples == [1, 2, 3, 4, 5] and state.samples == 5
    starts = [round(t - 100.0, 6) for t in reader.read_at]
    assert starts == [0.0, 0.1, 0.2, 0.6, 0.7]  # the read at 0.2 ran to 0.55: 0.3, 0.4, 0.5 skipped
    assert state.skipped == 3


def test_watch_without_a_count_ends_only_by_the_plc_or_the_caller(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("edge.tagmap.live.time.monotonic", clock.monotonic)
    reader = SlowReader(clock, [0.01] * 4)
    with pytest.raises(NoAnswer):
        watch(reader, 0.5, None, lambda *_: None, sleep=clock.sleep)
    assert len(reader.read_at) == 4


def test_a_read_refused_for_its_type_is_a_live_problem_even_when_the_tag_list_saw_nothing():
    from edge.bus.base import TagValue
    from edge.tagmap.live import LiveReport, _check_tags

    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_logix.yaml")
    detail = "the PLC's ZonePressure is REAL[16], the map says DINT[16]"

    class Reader:  # the tag list blinded (no remote problems), the read's own check speaks
        endpoint = "127.0.0.1:44818"

        def remote_problems(self):
            return []

        def read_tags(self, names):
            bad = names[0] == "zone_pressure_kpa"
            return [TagValue(names[0], None if bad else 1, Quality.BAD_TYPE if bad else Quality.GOOD, 0,
                             detail if bad else "")]

    report = LiveReport()
    _check_tags(tag_map, Reader(), report)
    flagged = [p for p in report.problems if p.tag == "zone_pressure_kpa"]
    assert len(flagged) == 1 and flagged[0].message == detail
    assert flagged[0].line == tag_map.tag("zone_pressure_kpa").source_line
