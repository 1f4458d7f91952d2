"""The core spawned from a line gets the line's fixture (edge/rtloop/handle.py `spawn(fixture=)`,
`RtcoreHandle.spawn_line`), as `rtcore run --line` gives it: the plumbing into the child's
`run_rtcore`, a line's core coming up live on an in-memory PLC, and a fixture that does not fit the
map killing the child at start (exit code 1, its reason on stderr), which shows the fixture crossed
into the spawned process."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.rtloop.handle import RtcoreError, RtcoreHandle, _rtcore_child
from edge.rtloop.loop import LoopSettings
from edge.supervisor.line import load_line
from rtcore.spec import Fixture

pytestmark = pytest.mark.integration

WAIT_S = 15.0


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "unused-state"))


@pytest.fixture(scope="module")
def line():
    return load_line(REPO_ROOT / "lines" / "bench.yaml")


def link_name() -> str:
    return f"de-fixture-{uuid.uuid4().hex[:8]}"


def plc_values(tag_map) -> dict:
    """A quiet line: every marker at 25 degC, every zone at 150 kPa, a PLC heartbeat of 1."""
    temps, pressures = tag_map.tag("marker_temp_degc"), tag_map.tag("zone_pressure_kpa")
    return {"marker_temp_degc": (25.0,) * temps.count, "zone_pressure_kpa": (150.0,) * pressures.count,
            "plc_heartbeat": 1}


class Pipe:
    def __init__(self):
        self.sent = []

    def send(self, value):
        self.sent.append(value)

    def close(self):
        pass


def test_the_child_hands_the_fixture_to_run_rtcore(line, monkeypatch):
    seen = {}

    def run_rtcore(bus, **kwargs):
        seen.update(kwargs)
        bus.close()
        return {"ticks": 0}

    monkeypatch.setattr("edge.rtloop.process.run_rtcore", run_rtcore)
    fixture = line.rtcore_fixture()
    results = Pipe()
    _rtcore_child(line.rtcore_map, link_name(), 0.1, LoopSettings(), None, plc_values(line.rtcore_map), results,
                  fixture)
    assert seen["fixture"] is fixture and results.sent == [{"ticks": 0}]
    _rtcore_child(line.rtcore_map, link_name(), 0.1, LoopSettings(), None, plc_values(line.rtcore_map), Pipe())
    assert seen["fixture"] is None  # no fixture given: the map's (run_rtcore's default)


def test_spawn_line_gives_the_line_map_link_and_fixture(line, monkeypatch):
    calls = []
    monkeypatch.setattr(RtcoreHandle, "spawn", classmethod(lambda cls, tag_map, **kw: calls.append((tag_map, kw))))
    RtcoreHandle.spawn_line(line, state_dir="/tmp/x", time_scale=2.0)
    (tag_map, kw), = calls
    assert tag_map is line.rtcore_map and kw["link"] == line.rtcore_link and kw["time_scale"] == 2.0
    expected = line.rtcore_fixture()
    assert np.array_equal(kw["fixture"].marker_xy_mm, expected.marker_xy_mm)
    assert np.array_equal(kw["fixture"].marker_zone, expected.marker_zone)
    aimed = line.rtcore_map.with_endpoint("127.0.0.1", 5999)
    RtcoreHandle.spawn_line(line, tag_map=aimed, link="other")
    assert calls[1][0] is aimed and calls[1][1]["link"] == "other"


def test_a_fixture_that_is_not_one_is_refused():
    with pytest.raises(TypeError, match="rtcore.spec.Fixture"):
        RtcoreHandle.spawn(REPO_ROOT, fixture={"markers": []})


def test_the_core_of_a_line_comes_up_live_with_the_lines_fixture(line):
    with RtcoreHandle.spawn_line(line, link=link_name(), plc_values=plc_values(line.rtcore_map), realtime_priority=0,
                                 plc_heartbeat_stale_ticks=0) as rt:
        status = rt.attach(WAIT_S)
        assert status.alive and status.tick_count > 0 and status.n_stations == line.stations.count
        summary = rt.stop(WAIT_S)
    assert isinstance(summary, dict) and summary


def test_a_fixture_the_map_does_not_fit_kills_the_child_at_start(line, capfd):
    whole = line.rtcore_fixture()
    half = dataclasses.replace(whole, marker_xy_mm=whole.marker_xy_mm[:16], marker_zone=whole.marker_zone[:16])
    assert isinstance(half, Fixture)
    rt = RtcoreHandle.spawn(line.rtcore_map, link=link_name(), plc_values=plc_values(line.rtcore_map),
                            fixture=half, realtime_priority=0)
    try:
        with pytest.raises(RtcoreError, match=rf"pid {rt.pid}\) on link {rt.link} ended with exit code 1"):
            rt.attach(WAIT_S)
    finally:
        rt.close()
    assert "the fixture has 16 markers and 16 zones" in capfd.readouterr().err
