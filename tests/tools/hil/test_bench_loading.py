"""The bench's loading handshake through the real protocols (plc_tags/README.md, "Loading a
station"): the supervisor writes station_battery_id and changes station_load_request, the bench
PLC's robot moves the battery in LOAD_TIME_S of plant time and answers in station_loaded_id,
station_load_done and station_load_fault. The bench is stepped by hand (one scan and one plant
step of 100 ms), as in test_plc_watchdog.py, with a stand-in core that keeps every permit on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.bus import Quality, open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import (LOAD_NOT_SAFE, LOAD_OK, LOAD_TIME_S, LOAD_UNKNOWN_BATTERY, NO_BATTERY,
                                    HilBench, StationLoader, open_server)

pytestmark = pytest.mark.hil

DT = 0.1
MOVE_STEPS = int(round(LOAD_TIME_S / DT))
ROWS = [0, 1, 2, 3, 5, 7, 8, 11]  # SOC 0.4-0.9: none trips in these tests


class Line:
    """The bench with a stand-in core (permit on, limit 100 %, beating) and a supervisor bus."""

    def __init__(self, bench: HilBench):
        self.bench = bench
        self.core = open_bus(bench.server.tag_map, Owner.RTCORE)
        self.supervisor = open_bus(bench.server.tag_map, Owner.SUPERVISOR)
        self.beat = 0
        self.requests = [0] * 8
        self.setpoint_a = [5.0] * 8
        self.write({"fixture_pressure_setpoint_kpa": (150.0,) * 8, "coolant_base_lpm": (4.0,) * 8})
        self.set_current()

    def write(self, values: dict) -> None:
        results = self.supervisor.write(values)
        assert all(r.quality is Quality.GOOD for r in results), results

    def set_current(self, station: int | None = None, amps: float | None = None) -> None:
        if station is not None:
            self.setpoint_a[station] = amps
        self.write({"discharge_current_setpoint_a": tuple(self.setpoint_a)})

    def request(self, station: int, cell_id: int) -> int:
        ids = list(self.read("station_loaded_id"))
        ids[station] = cell_id
        self.requests[station] += 1
        self.write({"station_battery_id": tuple(ids), "station_load_request": tuple(self.requests)})
        return self.requests[station]

    def read(self, name: str) -> tuple:
        (value,) = self.supervisor.read([name])
        assert value.quality is Quality.GOOD, value
        return tuple(value.value)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.beat += 1
            results = self.core.write({"discharge_permit": (True,) * 8, "current_limit_pct": (100.0,) * 8,
                                       "rtcore_heartbeat": self.beat})
            assert all(r.quality is Quality.GOOD for r in results), results
            self.bench.step(DT)

    def close(self) -> None:
        self.core.close()
        self.supervisor.close()


@pytest.fixture(scope="module")
def available():
    return load_cells(default_cells_path(), limit=40)


def make_line(protocol: str, available, **plant_kwargs) -> Line:
    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{protocol}.yaml"), timeout_s=2.0)
    server = open_server(tag_map)
    plant = Plant(available.select(ROWS), PlantConfig(seed=1), **plant_kwargs)
    return Line(HilBench(plant, server, batteries=available))


@pytest.fixture(params=["modbus", "logix"])
def line(request, available):
    line = make_line(request.param, available)
    yield line
    line.close()
    line.bench.server.close()


@pytest.fixture(params=["modbus", "logix"])
def empty_line(request, available):
    line = make_line(request.param, available, loaded=[0, 1, 2, 3, 4, 5, 6])  # station 7 starts empty
    yield line
    line.close()
    line.bench.server.close()


def ids_of(available, rows):
    return [int(available["cell_id"][r]) for r in rows]


def test_the_robot_unloads_and_loads_a_station_while_the_others_discharge(line, available):
    start_ids = ids_of(available, ROWS)
    line.step(3)
    assert list(line.read("station_loaded_id")) == start_ids
    assert line.read("station_load_done") == (0,) * 8 and line.read("station_load_fault") == (0,) * 8
    line.set_current(2, 0.0)  # the supervisor stops station 2, then asks for battery row 30 there
    line.step(2)
    new_id = ids_of(available, [30])[0]
    req = line.request(2, new_id)
    line.step(MOVE_STEPS - 1)
    assert line.read("station_load_done")[2] == 0, "done before the move time"
    assert line.read("station_loaded_id")[2] == start_ids[2]
    line.set_current(2, 5.0)  # asked during the move: the robot holds the station off
    line.step(1)
    assert line.bench.plant.current_a[2] == 0.0
    line.step(1)
    assert line.read("station_load_done")[2] == req and line.read("station_load_fault")[2] == LOAD_OK
    assert line.read("station_loaded_id")[2] == new_id
    assert line.read("station_loaded_id")[:2] + line.read("station_loaded_id")[3:] == tuple(start_ids[:2] + start_ids[3:])
    plant = line.bench.plant
    np.testing.assert_allclose(plant.soc()[2].mean(), available["truth_soc"][30], atol=0.01)
    np.testing.assert_allclose(plant.initial_charge_ah[2], plant.residual_ah()[2], rtol=0.01)
    assert plant.modules_placed[2] == 2 and not plant.tripped[2]
    assert np.all(np.delete(plant.current_a, 2) == 5.0), "the other stations kept discharging"
    line.step(5)  # the new battery discharges at the supervisor's setpoint
    assert plant.current_a[2] == 5.0
    assert plant.temp_degc()[2].max() < available["truth_t_amb_C"][30] + 1.0, "a fresh module starts at its ambient"

    line.set_current(2, 0.0)
    line.step(2)
    req = line.request(2, NO_BATTERY)  # unload: the station is left empty
    line.step(MOVE_STEPS + 1)
    assert line.read("station_load_done")[2] == req and line.read("station_loaded_id")[2] == NO_BATTERY
    line.set_current(2, 5.0)
    line.step(3)
    obs = plant.observe()
    assert obs.current_a[2] == 0.0 and obs.module_voltage_v[2] == 0.0 and not obs.tripped[2]
    assert line.read("station_current_a")[2] == 0.0 and line.read("station_voltage_v")[2] == 0.0
    np.testing.assert_allclose(obs.marker_temp_degc[2], available["truth_t_amb_C"][30], atol=0.3)
    assert plant.residual_ah()[2] == 0.0 and plant.initial_charge_ah[2] == 0.0


def test_the_plc_refuses_to_load_a_discharging_station(line, available):
    line.step(3)
    assert line.bench.plant.current_a[4] == 5.0
    req = line.request(4, ids_of(available, [31])[0])
    line.step(1)
    assert line.read("station_load_done")[4] == req, "a refusal is answered at once"
    assert line.read("station_load_fault")[4] == LOAD_NOT_SAFE
    assert line.read("station_loaded_id")[4] == ids_of(available, ROWS)[4]
    line.step(MOVE_STEPS + 2)
    assert line.bench.plant.current_a[4] == 5.0 and line.bench.plant.modules_placed[4] == 1, "nothing moved"
    assert line.read("station_loaded_id")[4] == ids_of(available, ROWS)[4]
    line.set_current(4, 0.0)  # stopped: the same battery is accepted, and the fault clears when done
    line.step(2)
    req = line.request(4, ids_of(available, [31])[0])
    line.step(MOVE_STEPS + 1)
    assert line.read("station_load_fault")[4] == LOAD_OK and line.read("station_load_done")[4] == req
    assert line.read("station_loaded_id")[4] == ids_of(available, [31])[0]


def test_the_plc_refuses_a_battery_it_does_not_know(line, available):
    line.set_current(5, 0.0)
    line.step(3)
    unknown = max(ids_of(available, range(len(available)))) + 1000
    req = line.request(5, unknown)
    line.step(1)
    assert line.read("station_load_done")[5] == req and line.read("station_load_fault")[5] == LOAD_UNKNOWN_BATTERY
    line.step(MOVE_STEPS + 2)
    assert line.read("station_loaded_id")[5] == ids_of(available, ROWS)[5] and line.bench.plant.modules_placed[5] == 1


def test_an_empty_station_has_no_module_until_one_is_loaded(empty_line, available):
    line = empty_line
    line.step(5)
    plant = line.bench.plant
    assert line.read("station_loaded_id")[7] == NO_BATTERY and not plant.loaded[7]
    assert plant.current_a[7] == 0.0 and not plant.tripped[7] and plant.residual_ah()[7] == 0.0
    assert line.read("station_voltage_v")[7] == 0.0
    np.testing.assert_allclose(line.read("marker_temp_degc")[28:32], available["truth_t_amb_C"][ROWS[7]], atol=0.3)
    line.set_current(7, 0.0)
    line.step(1)
    req = line.request(7, ids_of(available, [33])[0])
    line.step(MOVE_STEPS + 1)
    assert line.read("station_load_done")[7] == req and line.read("station_loaded_id")[7] == ids_of(available, [33])[0]
    line.set_current(7, 5.0)
    line.step(3)
    assert plant.current_a[7] == 5.0 and line.read("station_voltage_v")[7] > 15.0


@pytest.mark.unit
def test_the_loader_takes_a_request_changed_during_a_move_when_the_move_ends():
    from edge.batterymodel.plant import Command

    moves = []
    loader = StationLoader([11, NO_BATTERY], lambda cell_id: cell_id in (11, 12, 13), lambda s, c: moves.append((s, c)),
                           load_time_s=0.3)

    def scan(request, wanted, on=(True, False), current=(5.0, 0.0)):
        cmd = Command.idle(2, 2)
        cmd.discharge_on[:] = on
        cmd.current_a[:] = np.where(on, 5.0, 0.0)
        return loader.scan({"station_load_request": request, "station_battery_id": wanted}, cmd, np.array(current), 0.1)

    cmd = scan((0, 0), (11, NO_BATTERY))
    assert cmd.discharge_on[0] and loader.status_tags()["station_load_done"] == (0, 0)
    scan((0, 1), (11, 12), on=(True, True))
    assert loader.fault[1] == LOAD_NOT_SAFE and loader.done[1] == 1, "permit on with a current asked: discharging"
    scan((0, 2), (11, 12), current=(5.0, 0.1))
    assert loader.fault[1] == LOAD_NOT_SAFE and loader.done[1] == 2, "current still flowing"
    scan((0, 3), (11, 12))
    assert loader.moving[1] and (loader.done[1], loader.fault[1]) == (2, LOAD_NOT_SAFE), "the fault goes with done"
    cmd = scan((0, 4), (11, 13), on=(True, True))  # changed during the move; the supervisor asks current
    assert not cmd.discharge_on[1] and cmd.current_a[1] == 0.0 and cmd.discharge_on[0], "held off while moving"
    scan((0, 4), (11, 13))
    assert moves == [] and loader.status_tags()["station_loaded_id"] == (11, NO_BATTERY)
    scan((0, 4), (11, 13))  # 0.3 s: the move ends, then request 4 is taken
    assert moves == [(1, 12)] and loader.status_tags()["station_loaded_id"] == (11, 12)
    assert (loader.done[1], loader.fault[1]) == (3, LOAD_OK) and loader.moving[1]
    for _ in range(3):
        scan((0, 4), (11, 13))
    assert moves == [(1, 12), (1, 13)] and loader.status_tags()["station_load_done"] == (0, 4)
    assert loader.status_tags()["station_load_fault"] == (0, 0)


def test_cell_id_0_is_a_battery_unloaded_and_loaded_again(line, available):
    """Row 0 of the cells file is cell id 0: station 0 starts with it, and the robot moves it like
    any other battery; only -1 (`NO_BATTERY`) means none."""
    assert ids_of(available, [0]) == [0] and ROWS[0] == 0
    line.step(3)
    assert line.read("station_loaded_id")[0] == 0 and line.bench.plant.loaded[0]
    line.set_current(0, 0.0)
    line.step(2)
    req = line.request(0, NO_BATTERY)
    line.step(MOVE_STEPS + 1)
    assert line.read("station_load_done")[0] == req and line.read("station_loaded_id")[0] == NO_BATTERY
    assert not line.bench.plant.loaded[0]
    req = line.request(0, 0)  # battery 0 back: known, loaded fresh from row 0
    line.step(1)
    assert line.read("station_load_fault")[0] == LOAD_OK and line.bench.loader.moving[0]
    line.step(MOVE_STEPS)
    assert line.read("station_load_done")[0] == req and line.read("station_load_fault")[0] == LOAD_OK
    assert line.read("station_loaded_id")[0] == 0 and line.bench.plant.loaded[0]
    assert line.bench.plant.modules_placed[0] == 2
    line.set_current(0, 5.0)
    line.step(3)
    assert line.bench.plant.current_a[0] == 5.0
    np.testing.assert_allclose(line.bench.plant.soc()[0].mean(), available["truth_soc"][0], atol=0.01)


@pytest.mark.unit
def test_the_loader_loads_cell_id_0_and_unloads_on_no_battery():
    from edge.batterymodel.plant import Command

    moves = []
    loader = StationLoader([NO_BATTERY], lambda cell_id: cell_id in (0, 5), lambda s, c: moves.append((s, c)),
                           load_time_s=0.0)

    def scan(request, wanted):
        return loader.scan({"station_load_request": (request,), "station_battery_id": (wanted,)}, Command.idle(1, 1),
                           np.zeros(1), 0.1)

    scan(1, 0)
    scan(1, 0)
    assert moves == [(0, 0)] and loader.status_tags()["station_loaded_id"] == (0,)
    assert loader.status_tags()["station_load_fault"] == (LOAD_OK,)
    scan(2, NO_BATTERY)
    scan(2, NO_BATTERY)
    assert moves == [(0, 0), (0, NO_BATTERY)] and loader.status_tags()["station_loaded_id"] == (NO_BATTERY,)
    scan(3, 7)  # not a battery the robot knows
    assert loader.status_tags()["station_load_fault"] == (LOAD_UNKNOWN_BATTERY,) and loader.done[0] == 3
    assert loader.status_tags()["station_loaded_id"] == (NO_BATTERY,) and len(moves) == 2
