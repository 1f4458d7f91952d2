"""The bench PLC's program (tools/hil/server_bench.py): per-station permit, current = min(setpoint,
the core's limit), and the watchdog on the core's heartbeat that stops every station when the
heartbeat stands still for more than WATCHDOG_S (0.5 s of PLC time) and lets them run again
only when it moves.

Checked three ways: the program alone (exact scan counts), the in-process bench stepped by hand
over the served Modbus and EtherNet/IP maps (a stand-in core writes through the real protocol),
and the bench paced in its own thread (wall time: the stop comes no earlier than WATCHDOG_S
after the last heartbeat, and within a generous bound).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.bus import Quality, open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import WATCHDOG_S, CoreWatchdog, HilBench, PlcProgram, open_server

DT = 0.1


def tags(heartbeat, permit=(True,) * 8, asked=(5.0,) * 8, limit=(100.0,) * 8):
    return {"discharge_permit": permit, "discharge_current_setpoint_a": asked, "current_limit_pct": limit,
            "fixture_pressure_setpoint_kpa": (150.0,) * 8, "relief_second_kpa": (0.0,) * 16,
            "coolant_flow_lpm": (4.0,) * 8, "rtcore_heartbeat": heartbeat}


@pytest.mark.unit
def test_the_program_stops_every_station_after_a_stale_heartbeat_and_resumes_when_it_moves():
    program = PlcProgram(zones_per_station=2)
    assert WATCHDOG_S == 0.5
    first = program.scan(tags(0), DT)
    assert not first.discharge_on.any() and program.watchdog.trips == 0, "a core that never beat: off, no trip"
    running = program.scan(tags(1), DT)
    assert running.discharge_on.all() and np.all(running.current_a == 5.0)
    assert running.pressure_kpa.shape == (8, 2)
    stale_scans = int(round(WATCHDOG_S / DT))
    for _ in range(stale_scans):  # stale for exactly WATCHDOG_S: still running
        cmd = program.scan(tags(1), DT)
    assert cmd.discharge_on.all() and program.watchdog.trips == 0
    cmd = program.scan(tags(1), DT)  # one scan more: stale for longer than WATCHDOG_S
    assert not cmd.discharge_on.any() and np.all(cmd.current_a == 0.0)
    assert program.watchdog.trips == 1 and not program.watchdog.healthy
    for _ in range(20):
        cmd = program.scan(tags(1), DT)
    assert not cmd.discharge_on.any() and program.watchdog.trips == 1, "one trip, held while stale"
    cmd = program.scan(tags(2), DT)
    assert cmd.discharge_on.all() and np.all(cmd.current_a == 5.0), "the heartbeat moved: running again"


@pytest.mark.unit
def test_the_program_applies_permit_and_current_limit_per_station():
    program = PlcProgram(zones_per_station=2)
    program.scan(tags(0), DT)
    permit = (True, False) + (True,) * 6
    limit = (60.0, 100.0, 0.0, 100.0, 20.0, 150.0, 100.0, 100.0)  # % of the setpoint; above 100 counts as 100
    asked = (5.0, 5.0, 5.0, 5.0, 5.0, 8.0, 0.0, float("nan"))
    cmd = program.scan(tags(1, permit, asked, limit), DT)
    np.testing.assert_allclose(cmd.current_a, [3.0, 5.0, 0.0, 5.0, 1.0, 8.0, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_array_equal(cmd.discharge_on, [True, False, False, True, True, True, False, False])
    with pytest.raises(ValueError, match="relief_second_kpa has 16 zones for 8 stations x 3 zones"):
        PlcProgram(zones_per_station=3).scan(tags(1), DT)
    with pytest.raises(ValueError, match="timeout_s"):
        CoreWatchdog(0.0)


class StandInCore:
    """What the core writes, through the real protocol: permit, limit, heartbeat."""

    def __init__(self, server):
        self.bus = open_bus(server.tag_map, Owner.RTCORE)
        self.beat = 0

    def write(self, limit=100.0) -> None:
        self.beat += 1
        results = self.bus.write({"discharge_permit": (True,) * 8, "current_limit_pct": (limit,) * 8,
                                  "rtcore_heartbeat": self.beat})
        assert all(r.quality is Quality.GOOD for r in results), results


@pytest.fixture(params=["modbus", "logix"])
def served_bench(request):
    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{request.param}.yaml"), timeout_s=2.0)
    server = open_server(tag_map)
    rows = load_cells(default_cells_path(), limit=12).select([0, 1, 2, 3, 5, 7, 8, 11])  # SOC 0.4-0.9: none trips
    bench = HilBench(Plant(rows, PlantConfig(seed=1)), server)
    supervisor = open_bus(server.tag_map, Owner.SUPERVISOR)
    supervisor.write({"discharge_current_setpoint_a": (5.0,) * 8, "fixture_pressure_setpoint_kpa": (150.0,) * 8,
                      "coolant_base_lpm": (4.0,) * 8})
    core = StandInCore(server)
    yield bench, core
    core.bus.close()
    supervisor.close()
    bench.stop()
    server.close()


@pytest.mark.hil
def test_served_bench_drops_permit_and_current_when_the_core_stops_beating(served_bench):
    bench, core = served_bench
    for _ in range(10):  # the core runs, the plant discharges at 80 % of 5 A
        core.write(limit=80.0)
        bench.step(DT)
    np.testing.assert_allclose(bench.plant.current_a, 4.0)
    stale_steps = 0
    while bench.plant.current_a.any():  # the core is killed: nothing is written any more
        bench.step(DT)
        stale_steps += 1
        assert stale_steps < 50, "the PLC never noticed the frozen heartbeat"
    assert stale_steps == int(round(WATCHDOG_S / DT)) + 1, "stops on the first scan stale for longer than WATCHDOG_S"
    assert not bench.command.discharge_on.any() and np.all(bench.command.current_a == 0.0)
    assert bench.server.get("discharge_permit") == (True,) * 8, "the core's last word stays; the PLC overrides it"
    assert bench.watchdog_trips == 1
    for _ in range(5):
        bench.step(DT)
    assert not bench.plant.current_a.any() and bench.watchdog_trips == 1
    core.write(limit=80.0)  # a core starts again
    bench.step(DT)
    np.testing.assert_allclose(bench.plant.current_a, 4.0)


@pytest.mark.hil
def test_paced_bench_stops_no_earlier_than_the_watchdog_time(served_bench):
    bench, core = served_bench
    bench.start(dt_s=0.02, time_scale=1.0)
    deadline = time.monotonic() + 10.0
    while not (bench.plant.current_a > 0).all():
        core.write()
        time.sleep(0.05)
        assert time.monotonic() < deadline, "the bench never started discharging"
    for _ in range(5):
        time.sleep(0.05)
        last_beat_s = time.monotonic()  # before the write: the PLC cannot have seen it earlier
        core.write()
    while bench.watchdog_trips == 0:
        time.sleep(0.01)
        assert time.monotonic() - last_beat_s < 5.0, "the PLC never noticed the frozen heartbeat"
    stopped_after_s = time.monotonic() - last_beat_s
    assert stopped_after_s >= WATCHDOG_S, f"stopped {stopped_after_s:.3f} s after the last heartbeat"
    deadline = time.monotonic() + 2.0
    while bench.plant.current_a.any():
        assert time.monotonic() < deadline, "a trip left current flowing"
        time.sleep(0.01)
