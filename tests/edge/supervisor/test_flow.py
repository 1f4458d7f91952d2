"""The supervisor's flow engine against an in-memory PLC (the bench map), a stand-in for the PLC's
robot cell (the bench's robot program `PlcRobot` and camera `InboxCamera` over a world of slots,
stations and lanes: cycle 2 s) and a small battery per station with a clamp that takes a few
seconds to close, and a stand-in core (status with per-station causes and hottest markers). Time
is a fake clock advanced one scan at a time: no sleeps. Covered: a batch from the inbox to one
record per battery (slot, station, channel, placement times, vision figures, the clamp before any
current), vision refusals and robot faults (reject lane with the reason, a retry), a bad inbox file,
PackML Hold/Stop/Abort during Execute, resume after a kill in each station state and with a move
open, a map without the robot cell's tags, a broken model."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.batterymodel.plc import PlcRobot
from edge.bus import MemoryPlc
from edge.placement.robot import NO_BATTERY
from edge.rtloop.link import RtStatus
from edge.strategy.planner import default_strategy
from edge.supervisor.flow import PLACEMENT_TAGS, FlowEngine, FlowError, FlowSettings, plc_battery_id
from edge.supervisor.models import ModelRefused, load_line_models
from edge.supervisor.packml import Command, State
from edge.supervisor.stations import StationState as St
from edge.tagmap import DataType
from edge.tagmap.model import Scaling
from rtcore.spec import Flag
from tools.hil.faults import LowConfidence, ReversedBattery
from tools.hil.robot_cell import BenchWorld, CameraConfig, InboxCamera, mishaps_from

pytestmark = pytest.mark.integration

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
N = 8
ZONES = 2
SETTINGS = FlowSettings(scan_s=1.0, rest_s=3.0)
CYCLE_S = 2.0


# -- the harness ------------------------------------------------------------------------------------
def without_placement_tags(tag_map):
    return dataclasses.replace(tag_map, tags=tuple(t for t in tag_map.tags if t.name not in PLACEMENT_TAGS))


def write_cells(path: Path, rows: range) -> list[str]:
    with CELLS.open(newline="") as f:
        table = list(csv.DictReader(f))
    cols = ["cell_id"] + [k for k in table[0] if k.startswith("feat_")]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in rows:
            w.writerow([table[i][c] for c in cols])
    return [table[i]["cell_id"] for i in rows]


def plan_default(cells, grades):
    """The expert default per tier: the planner's own tests cover the tree; these tests the flow."""
    return {int(t): default_strategy(None) for t in set(grades.tier.tolist())}


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeCore:
    """The rtcore handle's supervisor end: a status per station, the setpoints sent."""

    def __init__(self):
        self.cause = [0] * N
        self.permit = [True] * N
        self.hot_degc = [30.0] * N
        self.safe_cause = 0  # the line latch (0: not latched)
        self.relief_kpa = [0.0] * N  # the largest relief over each station's zones
        self.sent = []

    def status(self):
        return RtStatus(n_stations=N, station_cause=tuple(self.cause), station_hot_degc=tuple(self.hot_degc),
                        station_permit=tuple(self.permit), station_current_limit_frac=(1.0,) * N,
                        station_relief_max_kpa=tuple(self.relief_kpa),
                        safe_state=bool(self.safe_cause), safe_cause=self.safe_cause)

    def send_setpoints(self, setpoints):
        self.sent.append(setpoints)


class StandIn:
    """The PLC's side: the robot cell (the bench's `PlcRobot` and `InboxCamera`; `feed` the slots
    with `add`; `faults` as the bench takes them) and per station a small battery (open circuit
    2.3 + 1.85 x SOC V per cell, `r_cell_ohm`, 6 cells in series) discharged at the current
    setpoint, and a clamp per zone that closes on the pressure setpoint by half the way each second."""

    def __init__(self, plc: MemoryPlc, capacity_ah: float = 0.004, r_cell_ohm: float = 0.04, soc: float = 0.5,
                 faults=(), cycle_s: float = CYCLE_S, camera: CameraConfig = CameraConfig(seed=5)):
        self.plc, self.capacity_ah, self.r = plc, capacity_ah, r_cell_ohm
        self.soc: dict[int, float] = {}
        self.soc0 = soc
        self.tripped: set[int] = set()  # cells whose module the PLC has cut off (a weak cell): no current
        self.pressure_kpa = np.zeros(N * ZONES)
        self.relief_kpa = np.zeros(N)  # taken off each station's clamp (the core's relief valves)
        self.current_a = np.zeros(N)
        self.camera = InboxCamera([], 4, camera, faults)
        self.world = BenchWorld(self.camera, [NO_BATTERY] * N, self._load, lambda s: None, clock=lambda: self.t)
        self.robot = PlcRobot(self.world, N, 4, cycle_s, mishaps_from(faults))
        self.t = 0.0
        self.violations: list[tuple] = []  # current while the clamp was not at its setpoint
        self.clamped = np.zeros(N, bool)
        self.loaded_lag_steps = 0  # station_loaded_id published this many steps after the robot's done
        self._shown: list[tuple] = []
        self.step(0.0)

    @property
    def loaded(self) -> list[int]:
        return [int(b) for b in self.world.loaded_id]

    def add(self, cell_ids) -> None:
        self.camera.feed.extend(int(c) for c in cell_ids if plc_battery_id(c) is not None)

    def _load(self, s: int, cell: int) -> None:
        self.pressure_kpa[s * ZONES:(s + 1) * ZONES] = 0.0  # a new battery: the clamp opened
        self.clamped[s] = False

    def step(self, dt_s: float) -> None:
        values = {k: self.plc.get(k) for k in ("robot_order_seq", "robot_order_pick", "robot_order_place",
                                               "robot_order_battery_id", "robot_reset_seq")}
        setpoint = np.asarray(self.plc.get("discharge_current_setpoint_a"), float)
        clamp = np.repeat(np.asarray(self.plc.get("fixture_pressure_setpoint_kpa"), float), ZONES)
        clamp = np.maximum(0.0, clamp - np.repeat(self.relief_kpa, ZONES))
        busy = (setpoint > 0) | (self.current_a > 0)
        hold = self.robot.scan(values, busy, dt_s) if dt_s > 0 else np.zeros(N, bool)
        self.camera.step(dt_s if dt_s > 0 else 1e-9)
        self.t += dt_s
        self.pressure_kpa += (clamp - self.pressure_kpa) * min(1.0, 0.5 * dt_s)
        voltage = np.zeros(N)
        for s in range(N):
            cell = int(self.world.loaded_id[s])
            zones = self.pressure_kpa[s * ZONES:(s + 1) * ZONES]
            if cell == NO_BATTERY:
                self.current_a[s] = 0.0
                self.pressure_kpa[s * ZONES:(s + 1) * ZONES] = 0.0
                continue
            self.clamped[s] |= bool((zones >= 0.95 * clamp[s * ZONES]).all() and clamp[s * ZONES] > 0)
            soc = self.soc.setdefault(cell, self.soc0)
            self.current_a[s] = 0.0 if cell in self.tripped or hold[s] else float(setpoint[s])
            if self.current_a[s] > 0 and not self.clamped[s]:
                self.violations.append((self.t, s, cell, tuple(zones)))
            soc = max(0.0, soc - self.current_a[s] * dt_s / 3600.0 / self.capacity_ah)
            self.soc[cell] = soc
            voltage[s] = 6 * max(0.0, 2.3 + 1.85 * soc - self.current_a[s] * self.r)
        self._shown = (self._shown + [tuple(int(v) for v in self.world.loaded_id)])[-(self.loaded_lag_steps + 1):]
        tags = {**self.robot.status_tags(), **self.camera.tags(), "station_loaded_id": self._shown[0],
                "station_current_a": tuple(self.current_a), "station_voltage_v": tuple(voltage),
                "zone_pressure_kpa": tuple(self.pressure_kpa)}
        for name, value in tags.items():
            self.plc.set(name, value)


class Rig:
    def __init__(self, line, models, state_dir: Path, settings: FlowSettings = SETTINGS, **stand_in):
        self.line, self.models, self.state_dir, self.settings = line, models, state_dir, settings
        self.plc = MemoryPlc(line.supervisor_map)
        self.plant = StandIn(self.plc, **stand_in)
        self.core = FakeCore()
        self.clock = Clock()
        self.engine = self.new_engine()

    def new_engine(self) -> FlowEngine:
        """A supervisor started (again) on the same state dir, PLC and core."""
        return FlowEngine(self.line, self.state_dir, self.models, core=self.core, settings=self.settings,
                          clock=self.clock, plc=self.plc, planner=plan_default)

    def kill(self) -> FlowEngine:
        """SIGKILL between scans: nothing more runs; every change it acted on is on disk."""
        self.engine.store.close()
        self.engine = self.new_engine()
        return self.engine

    def scan(self) -> None:
        self.engine.scan()
        self.clock.t += self.settings.scan_s
        self.plant.step(self.settings.scan_s)

    def run_until(self, condition, max_scans: int = 400) -> int:
        for i in range(max_scans):
            self.scan()
            if condition():
                return i + 1
        raise AssertionError(f"not within {max_scans} scans; stations {self.states()}")

    def states(self) -> list[St]:
        return [r.state for r in self.engine.store.stations()]

    def inbox(self, name: str, rows: range) -> list[str]:
        """An arrival file in the inbox; its batteries queue behind the robot in the same order."""
        self.engine.paths.inbox.mkdir(parents=True, exist_ok=True)
        cells = write_cells(self.engine.paths.inbox / name, rows)
        self.plant.add(cells)
        return cells


def currents(rig) -> np.ndarray:
    return np.asarray(rig.plc.get("discharge_current_setpoint_a"), float)


@pytest.fixture
def rig(line, models, tmp_path):
    r = Rig(line, models, tmp_path / "state")
    yield r
    r.engine.close()


def started(rig) -> Rig:
    assert rig.engine.start()
    assert rig.engine.machine.state is State.EXECUTE
    return rig


def assert_recorded_once(rig, cells) -> list:
    records = rig.engine.store.batteries()
    ids = [b.cell_id for b in records]
    assert sorted(ids) == sorted(cells) and len(set(ids)) == len(ids)
    recorded_events = [e for e in rig.engine.store.events() if e.kind == "battery_queued"]
    assert sorted(e.battery_id for e in recorded_events) == sorted(cells)  # queued once each too
    return records


# -- a batch ---------------------------------------------------------------------------------------------
def test_a_batch_from_the_inbox_to_one_record_per_battery(rig):
    cells = rig.inbox("batch1.csv", range(1, 6))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = assert_recorded_once(rig, cells)
    for b in records:
        r = b.record
        assert r["outcome"] == "done", r
        assert r["charge_removed_ah"] > 0.0015  # about half the stand-in's 4 mAh
        assert r["soc_lo_pct"] <= r["soc_pct"] <= r["soc_hi_pct"] and r["soh_sd"] > 0
        assert r["source"].startswith("batch1.csv:") and r["end_s"] > r["start_s"]
        assert r["peak_temp_degc"] == 30.0 and r["time_above_warning_s"] == 0.0
        assert b.model_versions["soc_gan"]["sha256"] == rig.models.versions["soc_gan"]["sha256"]
        assert len(b.model_versions["rl_policy"]["sha256"]) == 64
        changes = [c.state for c in rig.engine.store.station_history(r["station"]) if c.battery_id == b.cell_id]
        assert changes[:5] == [St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE]
        # S13: where it came from and went, when the robot moved it, what vision saw, the clamp before current
        assert r["slot"] in range(4) and r["channel"] == rig.line.channel_of(r["station"]).name
        p = r["placement"]
        assert p["ordered_s"] <= p["acked_s"] < p["done_s"] <= r["clamped_s"] <= r["start_s"]
        assert p["done_s"] - p["ordered_s"] >= CYCLE_S and p["attempts"] == 1
        v = r["vision"]
        assert v["ok"] and v["polarity"] == 1 and v["battery_id"] == int(b.cell_id) and v["slot"] == r["slot"]
        assert 0 <= v["positive_offset_mm"] <= 3.0 and 0 <= v["negative_offset_mm"] <= 3.0
        assert v["confidence_pct"] >= 80.0 and v["frame_age_s"] <= 2.0
        assert r["clamped_s"] - p["done_s"] >= 3.0, "the clamp takes a few seconds to close"
    assert rig.plant.violations == [], "no current before the clamp held its setpoint"
    assert sorted(rig.plant.world.out_lane) == sorted(int(c) for c in cells), "every battery to the out lane"
    moves = rig.engine.summary()["robot_moves"]
    assert len(moves) == 2 * len(cells) and all(m["ok"] for m in moves)
    assert all(a["done_s"] <= b["ordered_s"] for a, b in zip(moves, moves[1:])), "one move at a time"
    assert (rig.engine.paths.inbox / "done" / "batch1.csv").exists()
    assert not list(rig.engine.paths.inbox.glob("*.csv"))
    # a channel's stations share a tier at any time
    for channel in rig.line.channels:
        tiers_at = {}
        for s in channel.stations:
            for c in rig.engine.store.station_history(s):
                if c.state is St.LOADING:
                    tiers_at.setdefault(c.at, set()).add(rig.engine.batteries[c.battery_id]["tier"])
        assert all(len(t) == 1 for t in tiers_at.values())
    assert rig.core.sent, "the tier limits went to the core"
    # S13 item 1: edge/placement/assign.py planned the tiers when the batch was queued
    plans = [e for e in rig.engine.store.events() if e.kind == "tier_plan"]
    assert plans and plans[0].data["why"].startswith("5 batteries queued from batch1.csv")
    tiers = {rig.engine.batteries[c]["tier"] for c in cells}
    assert set(plans[0].data["channel_tier"]) <= {c.name for c in rig.line.channels}
    assert set(plans[0].data["channel_tier"].values()) <= tiers
    assert plans[0].data["predicted_makespan_s"] >= plans[0].data["lower_bound_s"] > 0
    assert rig.plant.loaded == [NO_BATTERY] * N, "every station unloaded"
    # a second file later: the flow is continuous; a battery already recorded is not queued again
    more = rig.inbox("batch2.csv", range(5, 8))
    rig.run_until(rig.engine.idle)
    assert_recorded_once(rig, cells + more[1:])
    assert any(e.kind == "arrival_duplicate" and e.battery_id == more[0] for e in rig.engine.store.events())


def test_a_rebound_above_the_floor_is_discharged_again(rig):
    rig.plant.r = 0.3  # 0.5 V under load: the cut-off comes early and the rested cell rebounds above the floor
    cells = rig.inbox("batch.csv", range(1, 3))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = assert_recorded_once(rig, cells)
    route = rig.line.routes.for_chemistry(None)
    assert any(b.record["redischarges"] >= 1 for b in records)
    for b in records:
        r = b.record
        assert r["passes"] == r["redischarges"] + 1
        floor = route.second_life_floor_v_per_cell if r["route"] == "second_life" else route.recycling_floor_v_per_cell
        assert r["rebound_v_per_cell"] <= floor  # the last rest ended under the route's floor
    assert any(e.kind == "redischarge" for e in rig.engine.store.events())


def test_a_bad_inbox_file_is_rejected_naming_file_and_line(rig):
    inbox = rig.engine.paths.inbox
    cells = rig.inbox("good.csv", range(1, 3))
    text = (inbox / "good.csv").read_text().splitlines()
    text[2] = text[2].replace(",", ",oops,", 1).rsplit(",", 1)[0]  # line 3: a value that is no number
    (inbox / "bad.csv").write_text("\n".join(text) + "\n")
    started(rig)
    rig.run_until(rig.engine.idle)
    assert not (inbox / "bad.csv").exists()
    error = (inbox / "rejected" / "bad.csv.error.txt").read_text()
    assert "bad.csv:3:" in error
    assert (inbox / "rejected" / "bad.csv").exists()
    assert any(e.kind == "arrival_rejected" and "bad.csv:3:" in e.text for e in rig.engine.store.events())
    assert_recorded_once(rig, cells)


# -- PackML ---------------------------------------------------------------------------------------------
def test_hold_stops_new_loads_and_holds_currents_at_zero(rig):
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: (currents(rig) > 0).any())
    waiting = rig.engine.waiting()
    assert waiting, "some tier waits for a channel"
    assert rig.engine.command(Command.HOLD)
    loads = len(rig.plant.world.placed)
    for _ in range(10):
        rig.scan()
        assert rig.engine.machine.state is State.HELD
        assert (currents(rig) == 0).all()
    assert len(rig.plant.world.placed) == loads and rig.engine.waiting() == waiting
    assert rig.engine.command(Command.UNHOLD)
    rig.run_until(rig.engine.idle)
    assert rig.engine.machine.state is State.EXECUTE
    assert_recorded_once(rig, cells)


def test_stop_and_abort_set_every_current_to_zero_and_aborted_needs_clear(rig):
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: (currents(rig) > 0).any())
    assert rig.engine.command(Command.STOP)
    rig.scan()
    assert rig.engine.machine.state is State.STOPPED and (currents(rig) == 0).all()
    assert rig.engine.start()
    rig.run_until(lambda: (currents(rig) > 0).any())
    assert rig.engine.command(Command.ABORT)
    for _ in range(3):
        rig.scan()
        assert rig.engine.machine.state is State.ABORTED and (currents(rig) == 0).all()
    assert not rig.engine.start()  # Reset is refused in Aborted
    assert not rig.engine.command(Command.START)
    assert rig.engine.command(Command.CLEAR)
    rig.scan()
    assert rig.engine.machine.state is State.STOPPED
    assert rig.engine.start()
    rig.run_until(rig.engine.idle)
    assert_recorded_once(rig, cells)
    assert [h.state for h in rig.engine.store.line_history()].count(State.ABORTED) == 1


# -- loading ----------------------------------------------------------------------------------------------
@pytest.fixture
def faulty(line, models, tmp_path):
    """A rig whose rows 1..5 carry faults: set by each test before the inbox is read."""
    rigs = []

    def make(faults_of):
        cells = [str(i) for i in range(1, 6)]  # cell_id = row in cells_train.csv
        r = Rig(line, models, tmp_path / "state", faults=faults_of(cells))
        rigs.append(r)
        return r, r.inbox("batch.csv", range(1, 6))

    yield make
    for r in rigs:
        r.engine.close()


def test_a_station_that_shows_its_battery_a_scan_after_the_robots_done_is_still_clamped(rig):
    """The PLC's tags are not read as one: the robot's done may come before the station's battery."""
    rig.plant.loaded_lag_steps = 2
    cells = rig.inbox("batch.csv", range(1, 4))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = assert_recorded_once(rig, cells)
    assert all(b.record["outcome"] == "done" for b in records)
    assert not any(e.kind == "battery_refused" for e in rig.engine.store.events())


def test_a_clamp_that_never_closes_rejects_its_battery_and_faults_the_station_after_the_timeout(rig):
    """Relief held open on station 0 (CI, stop 24: the core's relief on a module resting above its
    release temperature) keeps the clamp at 0 kPa: the flow does not wait forever."""
    rig.plant.relief_kpa[0] = rig.core.relief_kpa[0] = 200.0
    cells = rig.inbox("batch.csv", range(1, 4))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    rejected = [r for r in records.values() if r["outcome"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["station"] == 0
    timeout_s = rig.line.placement.clamp_timeout_s
    assert rejected[0]["reason"].startswith(f"clamp: 150 kPa not reached in {timeout_s:.0f} s")
    assert rejected[0]["reason"].endswith("zones read [0.0, 0.0] kPa; the core's relief on the station 200 kPa")
    assert sum(r["outcome"] == "done" for r in records.values()) == 2
    station0 = rig.engine.store.stations()[0]
    assert station0.state is St.FAULT and station0.battery_id == rejected[0]["cell_id"]
    assert not any(r.state is St.CLAMPING for r in rig.engine.store.stations())
    assert any(a.key == "station.0.fault" for a in rig.engine.alarms.active())
    assert [e.kind for e in rig.engine.store.events() if e.station == 0].count("clamp_failed") == 1
    assert not rig.plant.violations, "no current before a clamp"


def test_a_reversed_and_a_low_confidence_battery_go_to_the_reject_lane_with_the_reason(faulty):
    rig, cells = faulty(lambda c: (ReversedBattery(int(c[0])), LowConfidence(int(c[2]), 60.0)))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    rev, low = records[cells[0]], records[cells[2]]
    assert rev["outcome"] == "rejected" and rev["reason"].startswith("vision: polarity not as the fixture expects")
    assert rev["vision"]["polarity"] == -1 and rev["vision"]["positive_offset_mm"] > 70 and rev["station"] is None
    assert low["outcome"] == "rejected" and low["reason"].startswith("vision: confidence below the minimum: ")
    assert 50 < low["vision"]["confidence_pct"] < 70 and low["placement"]["place"] == "reject lane"
    assert sorted(rig.plant.world.reject_lane) == sorted([int(cells[0]), int(cells[2])])
    assert all(records[c]["outcome"] == "done" for c in (cells[1], cells[3], cells[4]))
    placed = {b for _, _, b in rig.plant.world.placed}
    assert int(cells[0]) not in placed and int(cells[2]) not in placed, "nothing refused ever reached a station"


def test_a_robot_that_does_not_acknowledge_is_reset_and_the_order_retried(faulty):
    from tools.hil.faults import RobotMishapFault
    rig, cells = faulty(lambda c: (RobotMishapFault(int(c[0]), "no_ack"),))
    started(rig)
    rig.run_until(rig.engine.idle)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    assert records[cells[0]]["outcome"] == "done" and records[cells[0]]["placement"]["attempts"] == 2
    first = [m for m in rig.engine.summary()["robot_moves"] if m["battery_id"] == int(cells[0])][0]
    assert [a["outcome"] for a in first["attempts"]] == ["ack_timeout", "done"]
    assert [m["outcome"] for m in rig.plant.robot.moves if m["battery_id"] == int(cells[0])][:2] == ["abandoned", "done"]


@pytest.mark.parametrize("mishap, reason", [
    ("drop", "robot: robot fault 5: part dropped (gripper lost it) (order "),
    ("drive_fault", "robot: robot fault 6: drive fault mid-move (order "),
    ("no_finish", "robot: not done within 30 s of the acknowledge (order "),
])
def test_a_part_the_robot_lost_or_kept_is_rejected_with_the_reason_and_the_line_goes_on(faulty, mishap, reason):
    from tools.hil.faults import RobotMishapFault
    rig, cells = faulty(lambda c: (RobotMishapFault(int(c[1]), mishap, orders=2),))
    started(rig)
    rig.run_until(rig.engine.idle, max_scans=600)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    r = records[cells[1]]
    assert r["outcome"] == "rejected" and r["reason"].startswith(reason), r["reason"]
    assert r["vision"]["ok"] and r["slot"] in range(4)
    where = rig.plant.robot.lost if mishap == "drop" else rig.plant.world.reject_lane
    assert int(cells[1]) in where
    assert all(records[c]["outcome"] == "done" for c in cells if c != cells[1])
    assert rig.plant.robot.status_tags()["robot_done_seq"] == rig.plc.get("robot_order_seq"), "no order hanging"
    assert rig.plant.violations == []


def test_cell_id_0_is_loaded_discharged_and_recorded_done(rig):
    cells = rig.inbox("batch.csv", range(0, 2))
    assert cells[0] == "0"
    started(rig)
    rig.run_until(rig.engine.idle)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    r = records["0"]
    assert r["outcome"] == "done", r
    assert r["charge_removed_ah"] > 0.0015 and rig.plant.soc[0] < 0.2
    assert any(cell == 0 for _, _, cell in rig.plant.world.placed), "the robot placed battery 0"
    changes = [c.state for c in rig.engine.store.station_history(r["station"]) if c.battery_id == "0"]
    assert changes[:5] == [St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE]
    assert rig.plant.loaded == [NO_BATTERY] * N, "battery 0 unloaded too"


@pytest.mark.parametrize("cell_id", ["2147483648", "-5", "A12"])
def test_a_cell_id_the_plc_cannot_carry_is_rejected_with_the_reason(rig, cell_id):
    """A whole number outside 0..2**31-1 is queued and recorded rejected (never asked of the PLC);
    a cell_id that is no number at all rejects its file, naming file and line."""
    kept = rig.inbox("batch.csv", range(1, 3))[1]
    path = rig.engine.paths.inbox / "batch.csv"
    rows = path.read_text().splitlines()
    rows[1] = cell_id + "," + rows[1].split(",", 1)[1]  # line 2: the first battery's id
    path.write_text("\n".join(rows) + "\n")
    started(rig)
    rig.run_until(rig.engine.idle)
    if cell_id == "A12":
        assert "batch.csv:2:" in (rig.engine.paths.inbox / "rejected" / "batch.csv.error.txt").read_text()
        assert rig.engine.store.batteries() == [] and rig.plant.world.placed == []
        return
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, [cell_id, kept])}
    assert records[cell_id]["outcome"] == "rejected"
    assert records[cell_id]["reason"] == (f"cell id {cell_id!r} cannot be written to robot_order_battery_id "
                                          "(a whole number 0..2147483647)")
    assert [cell for _, _, cell in rig.plant.world.placed] == [int(kept)], "only the other one moved"
    assert records[kept]["outcome"] == "done"


@pytest.mark.parametrize("cell_id, expected", [("0", 0), (" 7 ", 7), ("2147483647", 2**31 - 1), ("-1", None),
                                               ("-5", None), ("2147483648", None), ("A12", None), ("1.5", None),
                                               ("", None)])
def test_plc_battery_id_is_the_cell_id_in_0_to_2_31_minus_1(cell_id, expected):
    assert plc_battery_id(cell_id) == expected


def test_a_pass_ends_when_the_plc_stops_the_current_but_not_while_the_core_withholds_the_permit(rig):
    cells = rig.inbox("batch.csv", range(1, 3))
    rig.plant.tripped = {int(c) for c in cells}  # the PLC cut both modules off at once
    rig.core.permit = [False] * N  # ... and the core does not permit yet: nothing to conclude
    started(rig)
    rig.run_until(lambda: rig.states().count(St.DISCHARGING) == 2)
    for _ in range(3 * int(SETTINGS.stop_detect_s)):
        rig.scan()
        assert rig.states().count(St.DISCHARGING) == 2
    rig.core.permit = [True] * N
    n = rig.run_until(lambda: St.RESTING in rig.states())
    assert n >= SETTINGS.stop_detect_s
    rig.run_until(rig.engine.idle)
    records = assert_recorded_once(rig, cells)
    assert all(b.record["pass_end"] == "current stopped" and b.record["outcome"] == "done" for b in records)


def test_a_pass_that_drew_nothing_ends_the_battery_whatever_its_rest_voltage(rig):
    cells = rig.inbox("batch.csv", range(1, 3))
    rig.plant.tripped = {int(c) for c in cells}  # the PLC's cut-off holds: no current will ever flow
    started(rig)
    rig.run_until(rig.engine.idle)
    records = assert_recorded_once(rig, cells)
    route = rig.line.routes.for_chemistry(None)
    assert all(b.record["rebound_v_per_cell"] > route.recycling_floor_v_per_cell for b in records)  # full modules
    assert all(b.record["redischarges"] == 0 and b.record["passes"] == 1 for b in records)
    assert not any(e.kind == "redischarge" for e in rig.engine.store.events())


# -- isolation --------------------------------------------------------------------------------------------
def test_a_station_the_core_isolates_is_recorded_isolated_and_the_line_goes_on(rig):
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: St.DISCHARGING in rig.states())
    s = rig.states().index(St.DISCHARGING)
    cell = rig.engine.store.station(s).battery_id
    rig.core.cause[s] = int(Flag.OVER_TEMP | Flag.DTDT_ALARM)
    rig.core.hot_degc[s] = 56.0
    rig.run_until(rig.engine.idle)
    assert rig.states()[s] is St.ISOLATED
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    assert records[cell]["outcome"] == "isolated"
    assert set(records[cell]["cause"]) == {"OVER_TEMP", "DTDT_ALARM"}
    assert sum(r["outcome"] == "done" for r in records.values()) == len(cells) - 1


@pytest.mark.parametrize("column, value, field", [
    ("feat_v_rest_V", "400", "feat_v_rest_V"),  # outside the physical range: not graded
    ("feat_r0p1s_mOhm", "1000", "soh_est"),  # inside it, but its grade is absurd: not planned
])
def test_a_battery_outside_the_physical_range_is_refused_with_its_line_and_the_rest_go_on(rig, column, value, field):
    cells = rig.inbox("batch.csv", range(1, 4))
    path = rig.engine.paths.inbox / "batch.csv"
    rows = path.read_text().splitlines()
    header = rows[0].split(",")
    bad = rows[2].split(",")
    bad[header.index(column)] = value
    rows[2] = ",".join(bad)
    path.write_text("\n".join(rows) + "\n")
    started(rig)
    rig.run_until(rig.engine.idle)
    refused = [e for e in rig.engine.store.events() if e.kind == "arrival_refused"]
    assert len(refused) == 1 and refused[0].battery_id == cells[1]
    assert refused[0].data["line"] == 3 and refused[0].data["field"] == field
    assert "batch.csv:3" in refused[0].text
    assert sorted(b.cell_id for b in rig.engine.store.batteries()) == sorted([cells[0], cells[2]])


def test_a_line_the_core_latches_safe_aborts_and_goes_on_after_clear_reset_start(rig):
    cells = rig.inbox("batch.csv", range(1, 5))
    started(rig)
    rig.run_until(lambda: St.DISCHARGING in rig.states())
    on_stations = {r.battery_id for r in rig.engine.store.stations() if r.state is St.DISCHARGING}
    rig.core.safe_cause = int(Flag.SAFE_STATE | Flag.LINK_LOST)
    rig.scan()
    assert rig.engine.machine.state is State.ABORTING  # its scan writes every current 0
    assert "LINK_LOST" in rig.engine.needs_operator()
    trips = [e for e in rig.engine.store.events() if e.kind == "line_tripped"]
    assert len(trips) == 1 and trips[0].data["cause"] == ["SAFE_STATE", "LINK_LOST"]
    rig.scan()  # one trip, one event, while it stays latched
    assert rig.engine.machine.state is State.ABORTED
    assert len([e for e in rig.engine.store.events() if e.kind == "line_tripped"]) == 1
    assert (currents(rig) == 0).all()
    assert not rig.engine.store.batteries()  # nothing recorded: the batteries wait on their stations
    assert {r.battery_id for r in rig.engine.store.stations() if r.state is St.DISCHARGING} == on_stations
    rig.core.safe_cause = 0  # the operator's `rtcore reset`
    for cmd in (Command.CLEAR, Command.RESET, Command.START):
        assert rig.engine.command(cmd)
        rig.scan()
    assert rig.engine.machine.state is State.EXECUTE and rig.engine.needs_operator() is None
    rig.run_until(rig.engine.idle)
    assert all(b.record["outcome"] == "done" for b in assert_recorded_once(rig, cells))


def test_arrivals_planned_in_the_background_are_queued_at_a_later_scan(line, models, tmp_path):
    import threading

    gate = threading.Event()

    def slow_plan(cells, grades):
        assert gate.wait(30.0)
        return plan_default(cells, grades)

    rig = Rig(line, models, tmp_path / "state", dataclasses.replace(SETTINGS, plan_in_background=True))
    rig.engine.planner = slow_plan
    try:
        cells = rig.inbox("batch.csv", range(1, 4))
        started(rig)
        for _ in range(3):  # the scans go on while the file is planned
            rig.scan()
            assert rig.engine.waiting() == [] and not rig.engine.idle()
        assert (rig.engine.paths.inbox / "batch.csv").exists()  # kept until its batteries are queued
        gate.set()
        rig.engine._job.done.wait(30.0)
        rig.run_until(rig.engine.idle)
        assert all(b.record["outcome"] == "done" for b in assert_recorded_once(rig, cells))
        assert not (rig.engine.paths.inbox / "batch.csv").exists()
    finally:
        gate.set()
        rig.engine.close()


def test_the_charge_drawn_while_the_supervisor_was_down_is_bridged(rig):
    rig.inbox("batch.csv", range(1, 2))
    started(rig)
    rig.run_until(lambda: St.DISCHARGING in rig.states())
    rig.scan()
    rig.scan()
    s = rig.states().index(St.DISCHARGING)
    before = rig.engine.store.station(s).data
    assert before["last_current_a"] > 0
    engine = rig.kill()
    rig.clock.t += 10.0  # down 10 s while the PLC kept the current
    engine.scan()
    after = engine.store.station(s).data
    gap_s = after["tracked_at"] - before["tracked_at"]
    assert gap_s == pytest.approx(10.0 + SETTINGS.scan_s)
    bridged_ah = 0.5 * (before["last_current_a"] + after["last_current_a"]) * gap_s / 3600.0
    assert after["last_current_a"] > 0
    assert after["charge_ah"] - before["charge_ah"] == pytest.approx(bridged_ah, rel=1e-9)


# -- resume after a kill ---------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE, "done, recorded",
                                   St.ISOLATED, St.EMPTY])
def test_resume_after_a_kill_in_each_station_state(rig, state):
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    recorded_already = state == "done, recorded"  # killed between the record and the unload
    if recorded_already:
        state = St.DONE
        rig.run_until(lambda: St.DONE in rig.states())
        s = rig.states().index(St.DONE)
        rec = rig.engine.store.station(s)
        assert "recorded" not in rec.data
        rig.engine.store.record_battery(rec.battery_id, {"outcome": "done", "station": s,
                                                         "charge_removed_ah": rec.data["charge_ah"]})
    target = St.DISCHARGING if state is St.ISOLATED else state
    if recorded_already:
        pass
    elif state is St.EMPTY:  # killed right after an unload, before the next load
        rig.run_until(lambda: any(c.before is St.DONE for c in rig.engine.store.station_history()))
    else:
        rig.run_until(lambda: target in rig.states())
    if not recorded_already:
        s = rig.states().index(St.EMPTY if state is St.EMPTY else target)
    if state is St.ISOLATED:  # killed between the isolation and its record
        rec = rig.engine.store.station(s)
        rig.core.cause[s] = int(Flag.OVER_TEMP)
        rig.engine.store.set_station(s, St.ISOLATED, rec.battery_id, dict(rec.data, cause=["OVER_TEMP"]))
    before = rig.engine.store.station(s)
    recorded_before = len(rig.engine.store.batteries())
    engine = rig.kill()
    assert engine.store.station(s).state is before.state  # resumed where it was
    assert engine.machine.state is State.EXECUTE  # the line state too: no --start needed
    rig.run_until(engine.idle)
    records = {b.cell_id: b.record for b in assert_recorded_once(rig, cells)}
    assert engine.summary()["restarts"] == 1
    assert len(records) >= recorded_before
    if before.battery_id:
        expected = "isolated" if state is St.ISOLATED else "done"
        assert records[before.battery_id]["outcome"] == expected
        assert records[before.battery_id]["station"] == s
    if state is St.DONE:  # the record survived the kill: charge counted before it
        assert records[before.battery_id]["charge_removed_ah"] == pytest.approx(before.data["charge_ah"], abs=1e-6)


def test_a_store_that_disagrees_with_the_plc_puts_the_station_in_fault(rig):
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: St.DISCHARGING in rig.states())
    s = rig.states().index(St.DISCHARGING)
    rig.engine.store.close()
    rig.plant.world.loaded_id[s] = 99999  # someone swapped the battery while the supervisor was down
    rig.plant.step(0.0)
    engine = rig.new_engine()
    rig.engine = engine
    assert engine.store.station(s).state is St.FAULT
    assert "99999" in engine.store.station(s).data["reason"]
    rig.run_until(engine.idle)
    assert len(engine.store.batteries()) == len(cells) - 1


# -- refusals ---------------------------------------------------------------------------------------------
def test_a_map_without_the_robot_cell_tags_is_refused_naming_them(line, models, tmp_path):
    bare = dataclasses.replace(line, supervisor_map=without_placement_tags(line.supervisor_map))
    with pytest.raises(FlowError) as err:
        FlowEngine(bare, tmp_path, models, plc=MemoryPlc(bare.supervisor_map))
    for name in PLACEMENT_TAGS:
        assert name in str(err.value)


def test_a_broken_model_is_refused_naming_it(line, tmp_path):
    broken = tmp_path / "models"
    shutil.copytree(line.models.rl_policy_dir, broken)
    onnx = broken / "rl_policy.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelRefused, match="RL policy in .*models refused"):
        load_line_models(line.models.soc_gan_dir, broken)


def with_packtags(tag_map):
    """The map with PackTags command and status tags (the bench maps have them: then as it is)."""
    if all(tag_map.tag(t) is not None for t in ("packml_command", "packml_command_request", "packml_state")):
        return tag_map
    write, read = tag_map.tag("robot_order_seq"), tag_map.tag("robot_ack_seq")
    scalar = {"count": 1, "data_type": DataType.DINT, "unit": "", "scaling": Scaling()}
    added = (dataclasses.replace(read, name="packml_command", **scalar),
             dataclasses.replace(read, name="packml_command_request", **scalar),
             dataclasses.replace(write, name="packml_state", safe_value=0, **scalar))
    return dataclasses.replace(tag_map, tags=tag_map.tags + added)


def test_packtags_commands_from_the_plc_and_the_state_written_back(line, models, tmp_path):
    tagged = dataclasses.replace(line, supervisor_map=with_packtags(line.supervisor_map))
    rig = Rig(tagged, models, tmp_path / "state")
    try:
        cells = rig.inbox("batch.csv", range(1, 4))
        rig.scan()  # the first poll learns the request counter
        for n, cmd in enumerate((Command.RESET, Command.START), start=1):
            rig.plc.set("packml_command", int(cmd))
            rig.plc.set("packml_command_request", n)
            rig.scan()
        assert rig.engine.machine.state is State.EXECUTE
        assert rig.plc.get("packml_state") == int(State.EXECUTE)
        rig.run_until(lambda: (currents(rig) > 0).any())
        rig.plc.set("packml_command", int(Command.HOLD))
        rig.plc.set("packml_command_request", 3)
        rig.scan()
        assert rig.plc.get("packml_state") == int(State.HELD) and (currents(rig) == 0).all()
        rig.plc.set("packml_command", int(Command.UNHOLD))
        rig.plc.set("packml_command_request", 4)
        rig.run_until(rig.engine.idle)
        assert_recorded_once(rig, cells)
    finally:
        rig.engine.close()


def test_an_empty_station_the_core_isolated_takes_no_battery(rig):
    rig.core.cause[0] = int(Flag.SENSOR_STUCK)
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(rig.engine.idle)
    assert not [c for c in rig.engine.store.station_history(0)]
    assert_recorded_once(rig, cells)


# -- against the HIL bench over Modbus (the real handshake and the battery model) -------------------
@pytest.mark.slow
@pytest.mark.hil
def test_a_batch_on_the_hil_bench_over_modbus(line, models, tmp_path):
    from edge.bus import open_bus
    from edge.tagmap import Owner, load_tag_map
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.plant import Plant, PlantConfig
    from tools.hil.server_bench import HilBench, open_server

    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml"), timeout_s=2.0)
    available = load_cells(default_cells_path(), limit=40)
    server = open_server(tag_map)
    bench = HilBench(Plant(available.select([0] * N), PlantConfig(seed=1), empty=True), server,
                     batteries=available)
    core_bus = open_bus(server.tag_map, Owner.RTCORE)  # a stand-in core: permits on, beating
    core = FakeCore()
    clock = Clock(0.0)
    settings = FlowSettings(scan_s=1.0, rest_s=10.0)
    hil_line = dataclasses.replace(line, supervisor_map=server.tag_map)
    engine = FlowEngine(hil_line, tmp_path / "state", models, core=core, settings=settings, clock=clock,
                        planner=plan_default)
    try:
        cells = write_cells(engine.paths.inbox / "arrivals.csv", range(0, 5))  # row 0: cell id 0
        assert engine.start()
        for beat in range(1, 20_000):
            engine.scan()
            core_bus.write({"discharge_permit": (True,) * N, "current_limit_pct": (100.0,) * N,
                            "rtcore_heartbeat": beat})
            obs = bench.plant.observe() if hasattr(bench.plant, "observe") else None
            if obs is not None:
                core.hot_degc = list(np.nanmax(obs.marker_temp_degc, axis=1))
            bench.step(1.0)
            clock.t += 1.0
            if engine.idle():
                break
        records = {b.cell_id: b.record for b in engine.store.batteries()}
        assert sorted(records) == sorted(cells), engine.summary()["stations"]
        assert all(r["outcome"] == "done" for r in records.values()), records
        assert sum(r["charge_removed_ah"] for r in records.values()) > 2.0
        # a module the PLC cuts off at once (a weak cell: the plant trips on its lowest cell) ends its pass too
        assert {r["pass_end"] for r in records.values()} <= {"cut-off", "current stopped"}
        assert "0" in records, "battery 0 is loaded like any other"
        assert list(bench.loader.loaded_id) == [NO_BATTERY] * N, "every station unloaded"
    finally:
        engine.close()
        core_bus.close()
        server.close()


# -- the tier plan's inputs ---------------------------------------------------------------------------
@pytest.mark.unit
def test_predicted_discharge_time_follows_the_strategy_segments_and_the_current_limit():
    from edge.strategy.model import NOMINAL_CAPACITY_AH
    from edge.supervisor.assigning import predicted_discharge_s

    strategy = {"segments": [{"soc_from_pct": 50.0, "c_rate": 2.0}, {"soc_from_pct": 0.0, "c_rate": 1.0}]}
    b = {"soc_pct": 90.0, "soh_est": 1.0, "strategy": strategy}
    cap = NOMINAL_CAPACITY_AH
    expected = 0.40 * cap / (2.0 * cap) * 3600 + 0.40 * cap / (1.0 * cap) * 3600  # 90->50 at 2C, 50->10 at 1C
    assert predicted_discharge_s(b, max_current_a=100.0) == pytest.approx(expected)  # 720 + 1440 s
    assert predicted_discharge_s(b, max_current_a=cap) == pytest.approx(2 * 1440.0)  # 1C cap on both
    assert predicted_discharge_s(dict(b, soh_est=0.5), 100.0) == pytest.approx(expected / 2)
    assert predicted_discharge_s(dict(b, soc_pct=8.0), 100.0) == 0.0


# -- what the line keeps (issue 14): history, alarms, records ------------------------------------------
def test_the_batch_is_kept_history_alarms_and_records_that_validate(rig, tmp_path):
    from edge.supervisor.historian import HistoryReader
    from edge.supervisor.record import bdf_rows, build_record, export_record, validate_record

    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: St.DISCHARGING in rig.states())
    s = rig.states().index(St.DISCHARGING)
    cell = rig.engine.store.station(s).battery_id
    rig.run_until(lambda: rig.engine.store.station(s).data.get("charge_ah", 0) > 0)
    rig.core.cause[s] = int(Flag.OVER_TEMP)
    rig.core.hot_degc[s] = 56.5
    rig.run_until(rig.engine.idle)
    summary = rig.engine.summary()
    active = {a["key"]: a for a in summary["alarms_active"]}
    core = active[f"core.station.{s}"]
    assert (core["state"], core["cause"], core["value"], core["battery_id"], core["priority"]) == (
        "unack", "OVER_TEMP", 56.5, cell, "high")
    assert rig.engine.historian.flush()
    with HistoryReader(rig.engine.paths.state_dir) as h:
        rows = h.samples(battery_id=cell)
        assert rows and all(r["station"] == s for r in rows)
        assert max(r["current_a_max"] for r in rows) > 0 and max(r["pressure_kpa_max"] for r in rows) > 0
        raw = h.full_rate(station=s)
        assert any(r["hot_degc"] == 56.5 for r in raw)  # full rate around the isolation
        assert {e["kind"] for e in h.events()} >= {"battery_queued", "station_isolated"}
        assert [c["state"] for c in h.state_changes(station=s)][:3] == ["loading", "clamping", "discharging"]
        assert any(sp["limits"] for sp in h.setpoints())  # the tier limits sent to the core
    for c in cells:
        record = build_record(rig.engine.paths.state_dir, c)
        validate_record(record)  # every record against the shipped schema
        assert record["series"]["t_s"] and record["model_versions"]["soc_gan"]["sha256"]
        assert record["limits"]["line"]["warning_degc"] == 45.0
        bp = record["battery_pass"]
        assert bp["RemainingCapacity"]["RemainingCapacityValue"] == pytest.approx(record["grade"]["soh_est"] * 5.0,
                                                                                  abs=1e-4)
    isolated = build_record(rig.engine.paths.state_dir, cell)
    assert isolated["outcome"]["outcome"] == "isolated"
    assert any("OVER_TEMP" in n["NegativeEventValue"] for n in isolated["battery_pass"]["NegativeEvents"])
    assert isolated["battery_pass"]["TemperatureInformation"]["MeasuredTemp"] == 56.5
    header, rows = bdf_rows(isolated)
    assert header[:4] == ["Test Time / s", "Unix Time / s", "Voltage / V", "Current / A"]
    assert rows[0][0] == 0.0 and min(r[3] for r in rows) < 0  # discharge is negative current
    files = export_record(rig.engine.paths.state_dir, cell, tmp_path / "out")
    assert files.rows == len(rows) and files.bdf_path.name.endswith(".bdf.csv")
    assert files.bdf_path.read_text().splitlines()[0].startswith("Test Time / s,Unix Time / s,Voltage / V")
