"""The real-time loop against the HIL bench over Modbus TCP and EtherNet/IP on 127.0.0.1.

A hot cell (an internal short in cell 0 of station 1 from 5 s) heats one end of that module,
the first of its two fixture zones (zone 2 of 16). The bench publishes what its sensors show;
the loop reads it through the real protocol, runs the tick and writes relief (per zone) and
coolant (per station) back; the bench's PLC applies them. Plant and loop step in lockstep (one
plant step of 100 ms, one tick), so "ticks" here are exact. The bench's PLC watchdog has its own
tests (test_plc_watchdog.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.rtloop.loop import LoopTags, RtLoop
from edge.rtloop.process import build_kernel
from edge.tagmap import Owner, load_tag_map
from rtcore.spec import Setpoints
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.faults import InternalShort
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import NO_BATTERY, HilBench, open_server

pytestmark = pytest.mark.hil

SETPOINTS = Setpoints(delta_t_threshold_degc=0.5, check_interval_s=2.0)
ONSET_TICK = 50


@pytest.fixture(params=["modbus", "logix"])
def hot_cell_bench(request):
    # lockstep: ticks are counted, not timed, so a loaded machine must not turn into timeouts
    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{request.param}.yaml"), timeout_s=2.0)
    server = open_server(tag_map)
    plant = Plant(load_cells(default_cells_path(), limit=8), PlantConfig(seed=3),
                  faults=(InternalShort(module=1, cell=0, r_short_ohm=0.5, onset_s=ONSET_TICK * 0.1),))
    bench = HilBench(plant, server)
    supervisor = open_bus(server.tag_map, Owner.SUPERVISOR)
    rtcore_bus = open_bus(server.tag_map, Owner.RTCORE)
    yield bench, supervisor, rtcore_bus
    supervisor.close()
    rtcore_bus.close()
    server.close()


def test_relief_and_coolant_answer_a_hot_cell_within_two_ticks(hot_cell_bench):
    bench, supervisor, bus = hot_cell_bench
    server = bench.server
    supervisor.write({"discharge_current_setpoint_a": (5.0,) * 8, "fixture_pressure_setpoint_kpa": (150.0,) * 8})
    loop = RtLoop(bus, build_kernel(bus.tag_map, LoopTags(), 0.1, SETPOINTS))
    loop.arm("test")
    k = SETPOINTS.check_interval_ticks(loop.kernel.config)
    hot_marker, hot_zone, station_zones = 4, 2, (2, 3)  # station 1: its first marker and zone hold the short
    temps, relief, coolant = [], [], []
    for _ in range(120):
        bench.step(0.1)
        temps.append(server.get("marker_temp_degc")[hot_marker])
        loop.step()
        relief.append(server.get("relief_second_kpa"))
        coolant.append(server.get("coolant_flow_lpm"))
    temps, relief, coolant = np.array(temps), np.array(relief), np.array(coolant)
    rise = temps[k:] - temps[:-k]
    change_tick = int(np.argmax(rise >= SETPOINTS.delta_t_threshold_degc)) + k  # first tick the rise crossed
    answer_tick = int(np.argmax((relief[:, hot_zone] > 0) & (coolant[:, 1] > 0)))
    assert rise.max() >= SETPOINTS.delta_t_threshold_degc, "the hot cell never showed"
    assert not relief[:ONSET_TICK].any() and not (coolant[:ONSET_TICK] > 0).any(), "relief before any fault"
    assert ONSET_TICK <= answer_tick <= change_tick + 2, (change_tick, answer_tick)
    others = [z for z in range(16) if z not in station_zones]
    assert not relief[:, others].any(), "relief on stations that are not hot"
    assert bench.plant.current_a[1] > 0 and not loop.kernel.safe_state  # relief, not a stop
    assert server.get("discharge_permit") == (True,) * 8
    assert bench.watchdog_trips == 0


@pytest.mark.parametrize("empty", [False, True])
def test_hil_serve_offers_every_battery_of_the_file_and_starts_loaded_or_empty(empty):
    import json
    import subprocess
    import sys

    args = [sys.executable, "-m", "edge.cli", "hil", "serve", "--map", str(REPO_ROOT / "plc_tags" / "hil_modbus.yaml"),
            "--port", "0", "--seconds", "0.3", "--first-row", "4", "--json", *(["--empty"] if empty else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    cells = load_cells(default_cells_path())
    assert report["batteries_available"] == len(cells)
    expected = [NO_BATTERY] * 8 if empty else [int(c) for c in cells["cell_id"][4:12]]  # -1: empty
    assert report["loaded_ids"] == expected


def test_physics_faults_belong_to_the_first_module_of_their_station():
    rows = load_cells(default_cells_path(), limit=10)
    short = InternalShort(module=1, cell=0, r_short_ohm=0.5, onset_s=0.0)
    plant = Plant(rows.select(list(range(8))), PlantConfig(seed=3), faults=(short,))
    assert plant._short_conductance()[6] == 2.0
    plant.load_row(1, rows.select([9]))
    assert not plant._short_conductance().any(), "the next battery on the station has no short"
    empty = Plant(rows.select(list(range(8))), PlantConfig(seed=3), faults=(short,), empty=True)
    assert not empty.loaded.any() and not empty._short_conductance().any()
    empty.load_row(1, rows.select([9]))
    assert empty._short_conductance()[6] == 2.0, "a station that started empty: its first module"
