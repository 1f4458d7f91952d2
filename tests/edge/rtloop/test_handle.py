"""RtcoreHandle against the served bench: the HIL PLC served in this process (open_server + HilBench),
the core spawned by the handle in its own process over Modbus TCP, this test the supervisor.

Spawn, attach, not armed, arm, status per station, a station latch cleared by reset_station,
stop leaves the safe values on the PLC (read through a supervisor bus), kill reads dead within a
second, attach to a dead link or a dead process names it, a hung core gets SIGKILL only after
stop's timeout (logged), a map with no port is refused. Every wait is a bounded poll.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
import uuid

import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.rtloop.handle import RtcoreError, RtcoreHandle
from edge.tagmap import Owner, load_tag_map
from rtcore.spec import Flag, Setpoints, StationLimits
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import HilBench, open_server

from .safe_outputs import is_safe_value

pytestmark = pytest.mark.hil

MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"
WAIT_S = 10.0
N = 8


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "unused-state"))


@pytest.fixture(scope="module")
def served():
    """The bench PLC on a free port, its plant paced in real time, and a supervisor bus on it."""
    server = open_server(load_tag_map(MAP))
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=N), PlantConfig(seed=3)), server)
    supervisor = open_bus(server.tag_map, Owner.SUPERVISOR)
    supervisor.write({"discharge_current_setpoint_a": (5.0,) * N, "fixture_pressure_setpoint_kpa": (150.0,) * N,
                      "coolant_base_lpm": (4.0,) * N}, timeout_s=2.0)
    bench.start(dt_s=0.1, time_scale=1.0)
    yield server, supervisor
    bench.stop()
    supervisor.close()
    server.close()


def plc(bus, *names: str) -> dict:
    return {v.name: v.value for v in bus.read(list(names), timeout_s=2.0)}


def poll(what: str, check, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)
    return got


def unsafe_outputs(bus) -> dict:
    """The rtcore outputs the PLC holds away from their safe values (the heartbeat aside)."""
    safe = {t.name: t.safe_value for t in bus.tag_map.outputs(Owner.RTCORE) if t.name != "rtcore_heartbeat"}
    values = plc(bus, *safe)
    return {name: values[name] for name, s in safe.items() if not is_safe_value(values[name], s)}


def link_name() -> str:
    return f"de-handle-{uuid.uuid4().hex[:8]}"


def test_spawn_attach_arm_reset_and_stop_leave_the_safe_values(served, tmp_path):
    server, supervisor = served
    state = tmp_path / "state"
    with RtcoreHandle.spawn(server.tag_map, link=link_name(), state_dir=state, realtime_priority=0) as rt:
        assert rt.spawned and rt.pid
        status = rt.attach(WAIT_S)
        assert rt.alive and status.alive and status.tick_count > 0
        assert status.n_stations == N and not status.armed and not any(status.station_permit)
        poll("safe outputs before the arm", lambda: not unsafe_outputs(supervisor))

        armed = rt.arm(timeout_s=WAIT_S)
        assert armed.armed and armed.resets_done == 1
        status = rt.wait_for(lambda s: all(s.station_permit), WAIT_S, "every station's permit")
        assert len(status.station_hot_degc) == len(status.station_cause) == N
        assert all(15.0 < t < 45.0 for t in status.station_hot_degc) and not any(status.station_cause)
        poll("every permit on the PLC", lambda: plc(supervisor, "discharge_permit")["discharge_permit"] == (True,) * N)

        # one station's limit below its temperature: it latches alone; reset_station clears it
        hot = 2
        limit = status.station_hot_degc[hot] - 2.0
        rt.send_setpoints(Setpoints(station_limits=tuple(
            StationLimits(2.0, 2.0, limit - 1.0, limit) if s == hot else StationLimits(2.0, 2.0, 45.0, 60.0)
            for s in range(N))))
        latched = rt.wait_for(lambda s: s.station_cause[hot], WAIT_S, f"station {hot} to latch")
        assert latched.station_cause[hot] & int(Flag.OVER_TEMP) and not latched.safe_state
        assert [bool(c) for c in latched.station_cause] == [s == hot for s in range(N)]
        rt.send_setpoints(Setpoints())  # the fault goes; the latch stays until reset
        with pytest.raises(ValueError, match="outside 0..7"):
            rt.reset_station(N)
        cleared = rt.reset_station(hot, timeout_s=WAIT_S)
        assert cleared.station_resets_done == 1
        rt.wait_for(lambda s: not any(s.station_cause) and all(s.station_permit), WAIT_S, "the station back")

        summary = rt.stop(timeout_s=15.0)
        assert not rt.alive and rt.exitcode == 0
        assert summary["safe_values_written"] is True and summary["ticks"] > 0 and summary["armed"] is True
        assert unsafe_outputs(supervisor) == {}  # read after the exit: nothing rewrites them
        assert rt.stop() == summary  # a second stop gives the same summary
    assert (state / "events.jsonl").exists() and (state / "rtcore.log").exists()


def test_kill_reads_dead_within_a_second_and_attach_names_the_dead(served):
    server, _ = served
    link = link_name()
    rt = RtcoreHandle.spawn(server.tag_map, link=link, realtime_priority=0)
    try:
        rt.attach(WAIT_S)
        service = RtcoreHandle.attach_only(link, timeout_s=WAIT_S)  # as a supervisor beside a service
        assert service.alive and not service.spawned
        with pytest.raises(RtcoreError, match="attached only"):
            service.stop()
        rt.kill()
        killed = time.monotonic()
        assert not rt.alive and rt.exitcode == -9
        service.wait_for(lambda s: not s.alive, 1.5, "alive false after SIGKILL")
        assert time.monotonic() - killed < 1.5
        assert not service.alive
        service.close()

        with pytest.raises(RtcoreError, match=rf"link {link} .*exit code -9"):
            rt.attach(1.0)
        with pytest.raises(RtcoreError, match=rf"no live rtcore on link {link} within 0.3 s: .*not alive "
                                              r"\(last heartbeat"):
            RtcoreHandle.attach_only(link).attach(0.3)
        with pytest.raises(RtcoreError, match="no live rtcore on link de-handle-none within 0.2 s"):
            RtcoreHandle.attach_only("de-handle-none").attach(0.2)
        with pytest.raises(RtcoreError, match=r"ended with exit code -9 without a run summary"):
            rt.stop()
    finally:
        rt.close()


def test_a_process_that_dies_at_start_is_named_with_its_exit_code(served):
    server, _ = served
    broken = dataclasses.replace(server.tag_map, tags=tuple(t for t in server.tag_map.tags
                                                             if t.name != "zone_pressure_kpa"))
    with RtcoreHandle.spawn(broken, link=link_name(), realtime_priority=0) as rt:
        with pytest.raises(RtcoreError, match=rf"pid {rt.pid}\) on link {rt.link} ended with exit code 1"):
            rt.attach(WAIT_S)


def test_a_map_with_no_port_is_refused():
    tag_map = load_tag_map(MAP)
    with pytest.raises(ValueError, match=r"hil_modbus.yaml: the map has no endpoint .*port 0"):
        RtcoreHandle.spawn(tag_map.with_endpoint("127.0.0.1", 0))
    with pytest.raises(ValueError, match="port 70000"):
        RtcoreHandle.spawn(tag_map, port=70000)
    with pytest.raises(ValueError, match="plc_values or host/port"):
        RtcoreHandle.spawn(tag_map, port=5020, plc_values={})


def test_stop_sends_sigkill_only_after_the_timeout_and_says_so(served, caplog):
    server, _ = served
    with RtcoreHandle.spawn(server.tag_map, link=link_name(), realtime_priority=0) as rt:
        rt.attach(WAIT_S)
        os.kill(rt.pid, signal.SIGSTOP)  # a core that cannot answer SIGTERM (hung)
        with caplog.at_level(logging.WARNING, logger="edge.rtloop.handle"):
            with pytest.raises(RtcoreError, match="exit code -9 without a run summary"):
                rt.stop(timeout_s=0.5)
        assert not rt.alive
        assert "did not end within 0.5 s of SIGTERM; sending SIGKILL" in caplog.text
