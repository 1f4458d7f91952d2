"""The flow finds its tags by role (edge/tagmap/roles.py), not by fixed names: the bench's map with
every tag the supervisor uses renamed (the PLC programmer's own names, as plc_tags/line1_logix.yaml
has them) and a `roles:` section loads as a line (edge/supervisor/line.py checks the supervisor's
tags by role too) and runs a batch through its whole path on an in-memory PLC: arrival, PackML
Reset and Start given over the renamed PackTags, vision, the robot slot -> station, the clamp,
discharge, rest, record, the robot station -> out lane. The PLC's side (the bench's robot program
and camera, the rig of test_flow.py) reads and writes the same PLC under the renamed tags. A map
that lacks a role, or whose tag does not fit its role, is refused naming the role, file and line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.bus import MemoryPlc
from edge.placement.robot import NO_BATTERY
from edge.supervisor.flow import PACKTAGS_READ, PACKTAGS_STATE, REQUIRED_TAGS, FlowEngine, FlowError, flow_tags
from edge.supervisor.line import load_line
from edge.supervisor.packml import Command, State
from edge.supervisor.stations import StationState as St
from edge.tagmap import load_tag_map
from edge.tagmap.roles import role_tag_name
from tests.edge.supervisor.test_flow import Rig, assert_recorded_once, plan_default

pytestmark = pytest.mark.integration

BENCH_MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"
BENCH_LINE = REPO_ROOT / "lines" / "bench.yaml"
RENAMED_ROLES = REQUIRED_TAGS + PACKTAGS_READ + (PACKTAGS_STATE,)


def plc_name(role_name: str) -> str:
    """The PLC programmer's name for a role's tag: none of them is a role's name."""
    return "L1_" + "".join(part.capitalize() for part in role_name.split("_"))


def renamed_map_text() -> str:
    """The bench map with every tag of the flow's roles renamed and listed under `roles:`."""
    text = BENCH_MAP.read_text()
    for r in RENAMED_ROLES:
        text, n = re.subn(rf"(?m)^(  - name: ){r}$", rf"\g<1>{plc_name(r)}", text)
        assert n == 1, r
    roles = "roles:\n" + "".join(f"  {r}: {plc_name(r)}\n" for r in RENAMED_ROLES)
    return text.replace("\ntags:\n", f"\n{roles}\ntags:\n", 1)


@pytest.fixture(scope="module")
def renamed_line(tmp_path_factory):
    here = tmp_path_factory.mktemp("renamed")
    (here / "line1.yaml").write_text(renamed_map_text())
    text = BENCH_LINE.read_text().replace("../plc_tags/hil_modbus.yaml", str(here / "line1.yaml"))
    text = text.replace("../models/shipped", str(REPO_ROOT / "models" / "shipped"))
    (here / "line.yaml").write_text(text)
    return dataclasses.replace(load_line(here / "line.yaml"), state_dir=None)


class RolePlc:
    """The PLC's side of the rig under the map's own names: `get`/`set` by role name (or tag name)."""

    def __init__(self, plc: MemoryPlc):
        self.memory = plc

    def _name(self, name: str) -> str:
        try:
            return role_tag_name(self.memory.tag_map, name) or name
        except KeyError:  # not a role: a tag name
            return name

    def get(self, name: str):
        return self.memory.get(self._name(name))

    def set(self, name: str, value) -> None:
        self.memory.set(self._name(name), value)


class RenamedRig(Rig):
    """test_flow.py's rig, its stand-in PLC program speaking to the renamed tags."""

    def __init__(self, line, models, state_dir: Path, **stand_in):
        self.memory = MemoryPlc(line.supervisor_map)
        super().__init__(line, models, state_dir, **stand_in)

    @property
    def plc(self):
        return RolePlc(self.memory)

    @plc.setter
    def plc(self, _value) -> None:  # Rig.__init__ makes a MemoryPlc: ours is made above
        pass

    def new_engine(self) -> FlowEngine:
        return FlowEngine(self.line, self.state_dir, self.models, core=self.core, settings=self.settings,
                          clock=self.clock, plc=self.memory, planner=plan_default)


def test_the_renamed_map_has_none_of_the_role_names_and_lists_every_role(renamed_line):
    sup = renamed_line.supervisor_map
    assert sup is renamed_line.rtcore_map or sup == renamed_line.rtcore_map  # one map for both, as the bench
    assert not [r for r in RENAMED_ROLES if sup.tag(r) is not None], "no tag keeps a role's name"
    assert flow_tags(sup) == {r: plc_name(r) for r in RENAMED_ROLES}


def test_a_batch_runs_through_its_whole_path_on_renamed_tags(renamed_line, models, tmp_path):
    rig = RenamedRig(renamed_line, models, tmp_path / "state")
    try:
        cells = rig.inbox("batch.csv", range(1, 5))
        rig.scan()  # the first PackTags poll learns the request counter
        for n, cmd in enumerate((Command.RESET, Command.START), start=1):
            rig.memory.set("L1_PackmlCommand", int(cmd))
            rig.memory.set("L1_PackmlCommandRequest", n)
            rig.scan()
        assert rig.engine.machine.state is State.EXECUTE
        assert rig.memory.get("L1_PackmlState") == int(State.EXECUTE)
        rig.run_until(rig.engine.idle)
        records = assert_recorded_once(rig, cells)
        for b in records:
            r = b.record
            assert r["outcome"] == "done", r
            assert r["charge_removed_ah"] > 0.0015
            assert r["placement"]["attempts"] == 1 and r["vision"]["ok"]
            assert r["clamp_kpa"] > 0 and r["clamped_s"] <= r["start_s"] < r["end_s"]
            changes = [c.state for c in rig.engine.store.station_history(r["station"]) if c.battery_id == b.cell_id]
            assert changes[:5] == [St.LOADING, St.CLAMPING, St.DISCHARGING, St.RESTING, St.DONE]
        assert rig.plant.violations == [], "no current before the clamp held its setpoint"
        assert sorted(rig.plant.world.out_lane) == sorted(int(c) for c in cells)
        assert rig.plant.loaded == [NO_BATTERY] * len(rig.plant.loaded)
        assert rig.memory.get("L1_RobotOrderSeq") == 2 * len(cells), "one order a move, written to the renamed tag"
        safe = renamed_line.supervisor_map.tag("L1_FixturePressureSetpointKpa").safe_value
        assert tuple(rig.memory.get("L1_FixturePressureSetpointKpa")) == tuple(safe), "empty stations: the safe value"
        assert rig.engine._plc_read_problem is None and rig.engine._plc_write_problem is None
    finally:
        rig.engine.close()


def test_a_map_that_lacks_a_role_is_refused_naming_it(renamed_line, models, tmp_path):
    sup = renamed_line.supervisor_map
    bare = dataclasses.replace(sup, tags=tuple(t for t in sup.tags if t.name != "L1_RobotAckSeq"),
                               roles={k: v for k, v in sup.roles.items() if k != "robot_ack_seq"})
    with pytest.raises(FlowError) as err:
        FlowEngine(dataclasses.replace(renamed_line, supervisor_map=bare), tmp_path, models,
                   plc=MemoryPlc(bare))
    assert str(err.value).startswith(f"{sup.source}: the supervisor map lacks robot_ack_seq;")
    assert "roles:" in str(err.value)


def test_a_tag_unfit_for_its_role_is_refused_naming_file_and_line(renamed_line, models, tmp_path):
    sup = renamed_line.supervisor_map
    short = dataclasses.replace(sup.tag("L1_StationVoltageV"), count=3)
    bad = dataclasses.replace(sup, tags=tuple(short if t.name == short.name else t for t in sup.tags))
    with pytest.raises(FlowError) as err:
        FlowEngine(dataclasses.replace(renamed_line, supervisor_map=bad), tmp_path, models, plc=MemoryPlc(bad))
    line = sup.roles.lines["station_voltage_v"]
    assert f"{sup.source}:{line}:" in str(err.value) and "L1_StationVoltageV" in str(err.value)
    assert "has 3 elements; role 'station_voltage_v' needs one per station (8)" in str(err.value)


def test_the_line_file_refuses_a_supervisor_map_without_a_role(tmp_path):
    text = renamed_map_text().replace("  robot_holding_id: L1_RobotHoldingId\n", "", 1)
    text = re.sub(r"(?m)^  - name: L1_RobotHoldingId$", "  - name: holding_battery", text)
    (tmp_path / "map.yaml").write_text(text)
    line_text = BENCH_LINE.read_text().replace("../plc_tags/hil_modbus.yaml", str(tmp_path / "map.yaml"))
    line_text = line_text.replace("../models/shipped", str(REPO_ROOT / "models" / "shipped"))
    (tmp_path / "line.yaml").write_text(line_text)
    from edge.supervisor.line import LineError

    with pytest.raises(LineError) as err:
        load_line(tmp_path / "line.yaml")
    messages = [str(p) for p in err.value.problems]
    assert any(": maps.supervisor: the tag map does not give the supervisor its roles: " in m
               and "no tag plays role 'robot_holding_id'" in m for m in messages), messages


LINE1 = """\
name: line1
maps:
  rtcore: {map}
  supervisor: {map}
stations: {{count: 4, zones: 1, markers: 6}}
channels: {{A: [0, 1], B: [2, 3]}}
fixture:
  station_pitch_mm: 300.0
  markers:
    - {{x_mm: 30.0, y_mm: 30.0, zone: 0}}
    - {{x_mm: 90.0, y_mm: 30.0, zone: 0}}
    - {{x_mm: 150.0, y_mm: 30.0, zone: 0}}
    - {{x_mm: 30.0, y_mm: 90.0, zone: 0}}
    - {{x_mm: 90.0, y_mm: 90.0, zone: 0}}
    - {{x_mm: 150.0, y_mm: 90.0, zone: 0}}
  zone_area_mm2: [21600.0]
routes:
  default: recycling
  chemistries:
    NMC: {{cutoff_v_per_cell: 2.5, second_life_floor_v_per_cell: 3.0, recycling_floor_v_per_cell: 2.7}}
models: {{soc_gan: {models}, rl_policy: {models}}}
limits: {{warning_degc: 45.0, temp_limit_degc: 55.0, max_current_a: 10.0, max_coolant_lpm: 12.0}}
"""


def test_the_shipped_line1_logix_map_runs_the_flow_under_its_own_names(models, tmp_path):
    """plc_tags/line1_logix.yaml names its robot, camera and loaded-battery tags its own way (17 of
    them under roles:): the flow used to refuse it (FlowError); now it starts, scans, and writes
    the robot's (empty) order and no current to the PLC's own tags."""
    path = tmp_path / "line1.yaml"
    path.write_text(LINE1.format(map=REPO_ROOT / "plc_tags" / "line1_logix.yaml",
                                 models=REPO_ROOT / "models" / "shipped"))
    line = load_line(path)
    plc = MemoryPlc(line.supervisor_map)
    plc.set("loaded_battery", (NO_BATTERY,) * 4)
    plc.set("camera_battery_id", (NO_BATTERY,) * 4)
    engine = FlowEngine(line, tmp_path / "state", models, plc=plc, planner=plan_default)
    try:
        assert engine.tags["robot_order_seq"] == "robot_order" and engine.tags["station_loaded_id"] == "loaded_battery"
        assert engine.start() and engine.machine.state is State.EXECUTE
        assert (plc.get("robot_pick"), plc.get("robot_battery")) == (0, 0)  # the MemoryPlc's zeros
        for _ in range(3):
            engine.scan()
        assert (plc.get("robot_pick"), plc.get("robot_place"), plc.get("robot_battery")) == (-1, -1, NO_BATTERY)
        assert tuple(plc.get("discharge_current_setpoint_a")) == (0.0,) * 4
        assert engine._plc_read_problem is None and engine._plc_write_problem is None
        assert engine.idle() and engine.waiting() == []
    finally:
        engine.close()
