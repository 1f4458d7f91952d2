"""PackTags over the real protocols: the bench PLC (tools/hil/server_bench.py's server, its plant
side standing for the PLC/HMI) writes `packml_command` and bumps `packml_command_request` of the
bench maps (plc_tags/hil_modbus.yaml, hil_logix.yaml); the supervisor's `FlowEngine` reads them
over Modbus TCP or EtherNet/IP, follows Reset, Start, Hold, Unhold, Stop, Abort and Clear, and
writes `packml_state` back, which the PLC reads. A battery discharges on the bench meanwhile, so
Hold and Stop are seen to take the current setpoints to 0, and Reset + Start after Stop resume
it. Time is stepped by hand (one 1 s scan and one 1 s plant step a turn): no sleeps. A whole
batch on the bench: test_flow.py::test_a_batch_on_the_hil_bench_over_modbus."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.strategy.planner import default_strategy
from edge.supervisor.flow import FlowEngine, FlowSettings
from edge.supervisor.packml import Command, State

pytestmark = pytest.mark.hil

N = 8
CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
MAPS = {"modbus": REPO_ROOT / "plc_tags" / "hil_modbus.yaml", "logix": REPO_ROOT / "plc_tags" / "hil_logix.yaml"}


def plan_default(cells, grades):
    """The expert default per tier (the planner's own tests cover the tree; these the commands)."""
    return {int(t): default_strategy(None) for t in set(grades.tier.tolist())}


def write_cells(path: Path, rows: range) -> list[str]:
    with CELLS.open(newline="") as f:
        table = list(csv.DictReader(f))
    cols = ["cell_id"] + [k for k in table[0] if k.startswith("feat_")]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in rows:
            w.writerow([table[i][c] for c in cols])
    return [table[i]["cell_id"] for i in rows]


class Bench:
    """The served bench (PLC + plant + robot), a stand-in core beating and permitting over the
    same protocol, and a supervisor engine against the served map."""

    def __init__(self, protocol: str, line, models, state_dir: Path):
        from edge.bus import open_bus
        from edge.tagmap import Owner, load_tag_map
        from tools.hil.cells import default_cells_path, load_cells
        from tools.hil.plant import Plant, PlantConfig
        from tools.hil.server_bench import HilBench, open_server

        tag_map = dataclasses.replace(load_tag_map(MAPS[protocol]), timeout_s=2.0)
        available = load_cells(default_cells_path(), limit=40)
        self.server = open_server(tag_map)
        self.core_bus = self.engine = None
        try:
            self.bench = HilBench(Plant(available.select([0] * N), PlantConfig(seed=1), empty=True), self.server,
                                  batteries=available)
            self.core_bus = open_bus(self.server.tag_map, Owner.RTCORE)
            self.beat = 0
            self.engine = FlowEngine(dataclasses.replace(line, supervisor_map=self.server.tag_map), state_dir, models,
                                     settings=FlowSettings(scan_s=1.0, rest_s=10.0),
                                     clock=self.clock, planner=plan_default)
        except BaseException:
            self.close()
            raise
        self.t = 0.0
        self.request = 0

    def clock(self) -> float:
        return getattr(self, "t", 0.0)

    def turn(self) -> None:
        """One supervisor scan, the core's tick, one PLC scan and plant step of 1 s."""
        self.engine.scan()
        self.beat += 1
        self.core_bus.write({"discharge_permit": (True,) * N, "current_limit_pct": (100.0,) * N,
                             "rtcore_heartbeat": self.beat})
        self.bench.step(1.0)
        self.t += 1.0

    def plc_command(self, cmd: Command | int) -> None:
        """The PLC/HMI: the command number, then the request counter bumped (PackTags)."""
        self.request += 1
        self.server.set_many({"packml_command": int(cmd), "packml_command_request": self.request})

    def plc_state(self) -> int:
        """`packml_state` as the PLC holds it (what the supervisor wrote over the protocol)."""
        return int(self.server.get("packml_state"))

    def setpoints_a(self) -> np.ndarray:
        return np.asarray(self.server.get("discharge_current_setpoint_a"), float)

    def until(self, condition, max_turns: int = 120) -> int:
        for i in range(max_turns):
            self.turn()
            if condition():
                return i + 1
        raise AssertionError(f"not within {max_turns} turns; stations {self.engine.summary()['stations']}")

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            close = getattr(self.engine.bus, "close", None)
            if close is not None:
                close()
        if self.core_bus is not None:
            self.core_bus.close()
        self.server.close()


def test_the_bench_maps_carry_the_packtags_with_their_owners():
    from edge.tagmap import Access, DataType, Owner, load_tag_map

    for path in MAPS.values():
        tags = load_tag_map(path)
        cmd, req, state = (tags.tag(n) for n in ("packml_command", "packml_command_request", "packml_state"))
        for tag, access in ((cmd, Access.READ), (req, Access.READ), (state, Access.WRITE)):
            assert (tag.data_type, tag.count, tag.access, tag.owner) == (DataType.DINT, 1, access, Owner.SUPERVISOR)
        assert state.safe_value == 0 and (state.limits.min, state.limits.max) == (0, 17)
        assert state not in tags.outputs(Owner.RTCORE) and state in tags.outputs(Owner.SUPERVISOR)


@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_plc_commands_over_the_protocol_drive_the_line_and_the_state_comes_back(protocol, line, models, tmp_path):
    rig = Bench(protocol, line, models, tmp_path / "state")
    try:
        engine = rig.engine
        cells = write_cells(engine.paths.inbox / "arrivals.csv", range(1, 3))
        rig.turn()  # the first poll learns the request counter (0): nothing replayed
        assert engine.machine.state is State.STOPPED and rig.plc_state() == int(State.STOPPED)

        rig.plc_command(Command.START)  # Stopped does not take Start: refused, the state stays
        rig.turn()
        assert rig.plc_state() == int(State.STOPPED)
        assert any(e.kind == "packml_refused" and "Start" in e.text for e in engine.store.events())
        assert (rig.setpoints_a() == 0).all() and not [r for r in engine.store.stations() if r.battery_id]

        rig.plc_command(Command.RESET)
        rig.turn()
        assert engine.machine.state is State.IDLE and rig.plc_state() == int(State.IDLE)
        rig.server.set("packml_command", int(Command.STOP))  # a new number without a new request: nothing
        rig.turn()
        assert rig.plc_state() == int(State.IDLE)

        rig.plc_command(Command.START)
        rig.turn()
        assert rig.plc_state() == int(State.EXECUTE)
        rig.until(lambda: (rig.setpoints_a() > 0).any())  # loaded by the bench's robot, then discharged
        rig.turn()
        assert (np.asarray(rig.server.get("station_current_a")) > 0).any(), "the bench's PLC runs the current"

        rig.plc_command(Command.HOLD)
        rig.turn()
        assert engine.machine.state is State.HELD and rig.plc_state() == int(State.HELD)
        assert (rig.setpoints_a() == 0).all()
        rig.turn()
        assert (rig.setpoints_a() == 0).all() and rig.plc_state() == int(State.HELD)

        rig.plc_command(Command.UNHOLD)
        rig.turn()
        assert engine.machine.state is State.EXECUTE and rig.plc_state() == int(State.EXECUTE)
        rig.until(lambda: (rig.setpoints_a() > 0).any(), max_turns=10)

        rig.plc_command(Command.STOP)
        rig.turn()
        assert engine.machine.state is State.STOPPED and rig.plc_state() == int(State.STOPPED)
        assert (rig.setpoints_a() == 0).all()

        rig.plc_command(Command.ABORT)
        rig.turn()
        assert rig.plc_state() == int(State.ABORTED)
        rig.plc_command(Command.CLEAR)
        rig.turn()
        assert rig.plc_state() == int(State.STOPPED)

        # the same command twice is two requests: Reset, Start again, and the loaded batteries discharge on
        for cmd in (Command.RESET, Command.START):
            rig.plc_command(cmd)
            rig.turn()
        assert rig.plc_state() == int(State.EXECUTE)
        rig.until(lambda: (rig.setpoints_a() > 0).sum() == len(cells), max_turns=10)
        held = {r.battery_id for r in engine.store.stations() if r.battery_id}
        assert held == set(cells) and not engine.store.batteries()  # none lost, none recorded while stopped
        history = [(c.command, c.state) for c in engine.store.line_history()]
        for cmd, state in ((Command.RESET, State.RESETTING), (Command.START, State.STARTING),
                           (Command.HOLD, State.HOLDING), (Command.UNHOLD, State.UNHOLDING),
                           (Command.STOP, State.STOPPING), (Command.ABORT, State.ABORTING),
                           (Command.CLEAR, State.CLEARING)):
            assert (cmd, state) in history, (cmd, history)
    finally:
        rig.close()
