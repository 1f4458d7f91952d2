"""The bench's robot cell through the real protocols (plc_tags/README.md, "The robot cell"): the
inbox slots fed from the batch, the camera's frames, the robot's order handshake (acknowledge,
motion, done; faults 2, 3, 4 refused at once; a reset's recovery), and the bench's robot program
alone (`PlcRobot` over a dict world: the mishaps). The bench is stepped by hand (one scan and one
plant step of 100 ms) with a stand-in core that keeps every permit on and beats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.batterymodel.plc import PICK_AT, PlcRobot, RobotMishap
from edge.bus import Quality, open_bus
from edge.placement.robot import (NO_BATTERY, OUT_LANE, REJECT_LANE, RobotFault, RobotState, slot_location,
                                  station_location)
from edge.tagmap import Owner, load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.faults import LowConfidence, ReversedBattery
from tools.hil.plant import Plant, PlantConfig
from tools.hil.robot_cell import CameraConfig
from tools.hil.server_bench import HilBench, open_server

pytestmark = pytest.mark.hil

DT = 0.1
CYCLE_S = 2.0
ROWS = [0, 1, 2, 3, 5, 7, 8, 11]  # on the stations at the start; the rest of the 40 wait


class Line:
    """The bench with a stand-in core (permit on, limit 100 %, beating) and a supervisor bus."""

    def __init__(self, bench: HilBench):
        self.bench = bench
        self.core = open_bus(bench.server.tag_map, Owner.RTCORE)
        self.supervisor = open_bus(bench.server.tag_map, Owner.SUPERVISOR)
        self.beat = 0
        self.seq = 0
        self.reset_seq = 0
        self.write({"fixture_pressure_setpoint_kpa": (150.0,) * 8, "coolant_base_lpm": (4.0,) * 8,
                    "discharge_current_setpoint_a": (5.0,) * 7 + (0.0,)})  # station 7 (empty) asks none

    def write(self, values: dict) -> None:
        results = self.supervisor.write(values)
        assert all(r.quality is Quality.GOOD for r in results), results

    def order(self, pick: int, place: int, battery: int) -> int:
        self.seq += 1
        self.write({"robot_order_pick": pick, "robot_order_place": place, "robot_order_battery_id": battery})
        self.write({"robot_order_seq": self.seq})
        return self.seq

    def reset(self) -> None:
        self.reset_seq += 1
        self.write({"robot_reset_seq": self.reset_seq})

    def read(self, name: str):
        (value,) = self.supervisor.read([name])
        assert value.quality is Quality.GOOD, value
        return value.value

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.beat += 1
            self.core.write({"discharge_permit": (True,) * 8, "current_limit_pct": (100.0,) * 8,
                             "rtcore_heartbeat": self.beat})
            self.bench.step(DT)

    def close(self) -> None:
        self.core.close()
        self.supervisor.close()


@pytest.fixture(scope="module")
def available():
    return load_cells(default_cells_path(), limit=40)


def ids_of(available, rows):
    return [int(available["cell_id"][r]) for r in rows]


@pytest.fixture(params=["modbus", "logix"])
def line(request, available):
    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{request.param}.yaml"), timeout_s=2.0)
    server = open_server(tag_map)
    plant = Plant(available.select(ROWS), PlantConfig(seed=1), loaded=[0, 1, 2, 3, 4, 5, 6])  # station 7 empty
    waiting = ids_of(available, [20, 21])
    faults = (ReversedBattery(waiting[0]), LowConfidence(waiting[1], 50.0))
    bench = HilBench(plant, server, batteries=available, robot_cycle_s=CYCLE_S, placement_faults=faults,
                     camera=CameraConfig(seed=3))
    line = Line(bench)
    yield line
    line.close()
    server.close()


def test_the_slots_are_fed_in_batch_order_and_the_camera_publishes_frames(line, available):
    line.step(3)
    first = [i for i in ids_of(available, range(40)) if i not in ids_of(available, ROWS[:7])][:4]
    assert list(line.read("vision_battery_id")) == first  # rows 4, 6, 9, 10: not on a station
    frames = np.array(line.read("vision_frame"))
    line.step(5)  # 0.5 s: one frame period
    assert (np.array(line.read("vision_frame")) == frames + 1).all()
    assert list(line.read("vision_polarity")) == [1, 1, 1, 1]
    conf = np.array(line.read("vision_confidence_pct"))
    assert ((conf > 88) & (conf < 100)).all()
    x, y = np.array(line.read("vision_terminal_x_mm")), np.array(line.read("vision_terminal_y_mm"))
    assert np.abs(x[0::2] + 40.0).max() < 3.0 and np.abs(x[1::2] - 40.0).max() < 3.0 and np.abs(y).max() < 3.0
    assert line.read("station_loaded_id")[7] == NO_BATTERY


def test_slot_to_station_acknowledge_motion_done_and_the_station_holds_it(line, available):
    line.step(3)
    battery = line.read("vision_battery_id")[1]
    seq = line.order(slot_location(1), station_location(7), battery)
    line.step(1)
    assert line.read("robot_ack_seq") == seq and line.read("robot_done_seq") == 0
    line.step(1)
    assert line.read("robot_state") == RobotState.IN_MOTION
    line.step(int(PICK_AT * CYCLE_S / DT) + 1)
    assert line.read("robot_holding_id") == battery and line.read("vision_battery_id")[1] == NO_BATTERY
    line.step(int(CYCLE_S / DT))
    assert line.read("robot_done_seq") == seq and line.read("robot_state") == RobotState.DONE
    assert line.read("robot_fault_code") == 0 and line.read("robot_holding_id") == NO_BATTERY
    assert line.read("station_loaded_id")[7] == battery and line.bench.plant.loaded[7]
    line.step(15)  # the feed brings the next battery of the batch into the slot
    assert line.read("vision_battery_id")[1] not in (NO_BATTERY, battery)
    # and out again: station -> out lane (the station asks no current: permit on alone is safe)
    seq = line.order(station_location(7), OUT_LANE, battery)
    line.step(int(CYCLE_S / DT) + 3)
    assert line.read("robot_done_seq") == seq and line.read("station_loaded_id")[7] == NO_BATTERY
    assert line.bench.world.out_lane == [battery] and not line.bench.plant.loaded[7]


def test_refusals_at_once_a_busy_station_a_wrong_id_an_occupied_place(line, available):
    line.step(3)
    slot0 = line.read("vision_battery_id")[0]
    on_3 = line.read("station_loaded_id")[3]
    line.step(10)
    assert line.bench.plant.current_a[3] > 0
    for pick, place, battery, fault in ((station_location(3), OUT_LANE, on_3, RobotFault.STATION_NOT_SAFE),
                                        (slot_location(0), station_location(7), slot0 + 1, RobotFault.PICK_MISMATCH),
                                        (slot_location(0), station_location(2), slot0, RobotFault.PLACE_OCCUPIED),
                                        (slot_location(0), 1500, slot0, RobotFault.BAD_LOCATION)):
        seq = line.order(pick, place, battery)
        line.step(1)
        assert line.read("robot_done_seq") == seq and line.read("robot_state") == RobotState.FAULT
        assert line.read("robot_fault_code") == fault
        line.reset()
        line.step(1)
        assert line.read("robot_state") == RobotState.IDLE and line.read("robot_fault_code") == 0
    assert line.read("station_loaded_id")[3] == on_3 and line.bench.plant.current_a[3] > 0
    assert line.bench.world.reject_lane == []


def test_reversed_and_low_confidence_batteries_as_the_camera_sees_them(line, available):
    rev, low = ids_of(available, [20, 21])
    line.step(3)
    # bring them forward: move the four slot batteries into the reject lane until both are in a slot
    for _ in range(20):
        ids = list(line.read("vision_battery_id"))
        if rev in ids and low in ids:
            break
        k = next(k for k, b in enumerate(ids) if b not in (rev, low, NO_BATTERY))
        seq = line.order(slot_location(k), REJECT_LANE, ids[k])
        line.step(int(CYCLE_S / DT) + 15)
        assert line.read("robot_done_seq") == seq
    ids = list(line.read("vision_battery_id"))
    k_rev, k_low = ids.index(rev), ids.index(low)
    line.step(5)
    assert line.read("vision_polarity")[k_rev] == -1 and line.read("vision_polarity")[k_low] == 1
    x = line.read("vision_terminal_x_mm")
    assert x[2 * k_rev] > 35 and x[2 * k_rev + 1] < -35  # the positive terminal at the other end
    conf = line.read("vision_confidence_pct")
    assert 45 < conf[k_low] < 55 and conf[k_rev] > 88


# -- the robot program alone ---------------------------------------------------------------------------
class World:
    def __init__(self):
        self.at = {1000: 5, 1001: 6, 0: NO_BATTERY, 1: 9}
        self.reject, self.out = [], []

    def holds(self, location):
        return self.at.get(location, NO_BATTERY)

    def take(self, location):
        b, self.at[location] = self.at[location], NO_BATTERY
        return b

    def put(self, location, battery_id):
        {2000: self.reject, 2001: self.out}.get(location, None) is not None and \
            {2000: self.reject, 2001: self.out}[location].append(battery_id)
        if location < 1000:
            self.at[location] = battery_id


def robot_with(mishap, at_frac=0.75, cycle_s=1.0):
    world = World()
    robot = PlcRobot(world, 2, 2, cycle_s, lambda b, n: (mishap, at_frac) if (b, n) == (5, 1) else (RobotMishap.NONE, 0.0))
    return world, robot


def scan(robot, seq, pick=1000, place=0, battery=5, reset=0, busy=(False, False), dt=0.1):
    return robot.scan({"robot_order_seq": seq, "robot_order_pick": pick, "robot_order_place": place,
                       "robot_order_battery_id": battery, "robot_reset_seq": reset}, np.array(busy), dt)


@pytest.mark.unit
def test_an_instant_robot_places_in_the_scan_it_acknowledges():
    world, robot = robot_with(RobotMishap.NONE, cycle_s=0.0)
    scan(robot, 1)
    assert robot.status_tags() == {"robot_ack_seq": 1, "robot_done_seq": 1, "robot_state": 3, "robot_fault_code": 0,
                                   "robot_holding_id": NO_BATTERY}
    assert world.at[0] == 5 and world.at[1000] == NO_BATTERY


@pytest.mark.unit
def test_a_station_the_robot_works_in_is_held_off_and_an_unsafe_place_is_refused_at_the_end():
    world, robot = robot_with(RobotMishap.NONE)
    hold = scan(robot, 1)
    assert list(hold) == [True, False]
    for _ in range(8):
        assert list(scan(robot, 1)) == [True, False]
    scan(robot, 1, busy=(True, False), dt=0.5)  # current measured at the place when the robot gets there
    assert robot.state is RobotState.FAULT and robot.fault is RobotFault.STATION_NOT_SAFE
    assert robot.holding == 5 and world.at[0] == NO_BATTERY
    scan(robot, 1, reset=1)
    assert world.reject == [5] and robot.holding == NO_BATTERY and robot.state is RobotState.IDLE


@pytest.mark.unit
@pytest.mark.parametrize("mishap, ack, done, fault, holding, lost", [
    (RobotMishap.NO_ACK, 0, 0, 0, NO_BATTERY, []),
    (RobotMishap.NO_FINISH, 1, 0, 0, 5, []),
    (RobotMishap.DROP, 1, 1, RobotFault.PART_DROPPED, NO_BATTERY, [5]),
    (RobotMishap.DRIVE_FAULT, 1, 1, RobotFault.DRIVE_FAULT, 5, []),
])
def test_mishaps_and_the_reset_that_recovers(mishap, ack, done, fault, holding, lost):
    world, robot = robot_with(mishap)
    for _ in range(30):
        scan(robot, 1)
    tags = robot.status_tags()
    assert (tags["robot_ack_seq"], tags["robot_done_seq"], tags["robot_fault_code"], tags["robot_holding_id"]) == \
        (ack, done, fault, holding)
    assert robot.lost == lost and world.at[0] == NO_BATTERY
    scan(robot, 1, reset=1)
    tags = robot.status_tags()
    assert tags["robot_done_seq"] == 1 and tags["robot_state"] == RobotState.IDLE and tags["robot_fault_code"] == 0
    assert world.reject == ([5] if holding == 5 else [])
    scan(robot, 2, pick=1001, battery=6, reset=1)  # the next order goes through
    for _ in range(15):
        scan(robot, 2, pick=1001, battery=6, reset=1)
    assert robot.status_tags()["robot_done_seq"] == 2 and world.at[0] == 6


@pytest.mark.unit
def test_a_drive_fault_before_the_pick_leaves_the_part_in_its_slot():
    world, robot = robot_with(RobotMishap.DRIVE_FAULT, at_frac=0.25)
    for _ in range(5):
        scan(robot, 1)
    assert robot.fault is RobotFault.DRIVE_FAULT and robot.holding == NO_BATTERY and world.at[1000] == 5
