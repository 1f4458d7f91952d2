"""The line model (edge/lineview/model.py) on a real FlowEngine over an in-memory PLC (the
supervisor's test rig: the bench's robot cell and camera, a small battery per station, a stand-in
core): the snapshot of a running line, an isolated station and its alarm, commands by role
(PackML, acknowledge, setpoints through the map's limits), and the hub (bounded subscriber
queues, newest wins; submit answered by the scan loop, never waiting forever)."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

from edge.lineview.model import (CommandResult, LineCommand, LineHub, LineSnapshot, Role, apply, check_role,
                                 snapshot_of)
from edge.supervisor.packml import State
from edge.supervisor.stations import StationState as St
from rtcore.spec import Flag
from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Rig, currents

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(line, models, tmp_path):  # noqa: F811
    r = Rig(line, models, tmp_path / "state")
    yield r
    r.engine.close()


def running(rig, batteries: int = 5) -> list[str]:
    cells = rig.inbox("batch.csv", range(1, 1 + batteries))
    assert rig.engine.start()
    rig.run_until(lambda: ((currents(rig) > 0) & (rig.plant.current_a > 0)).any())
    rig.scan()  # the measured current tracked once more
    return cells


def test_the_snapshot_of_a_running_line(rig):
    cells = running(rig)
    snap = snapshot_of(rig.engine, report_path="/report")
    assert (snap.line, snap.packml_state, snap.packml_state_number, snap.mode) == ("hil-bench", "Execute", 6,
                                                                                   "Production")
    assert snap.time_s == rig.clock.t and len(snap.stations) == 8
    assert set(snap.allowed_commands) == {"stop", "hold", "abort"}
    assert snap.setpoints == {"max_current_a": 15.0, "max_coolant_lpm": 20.0}
    discharging = [s for s in snap.stations if s.state == "discharging"]
    assert len(discharging) >= 1
    for s in discharging:
        b = rig.engine.batteries[s.battery]
        assert s.battery in cells and s.tier == b["tier"] and s.channel == rig.line.channel_of(s.index).name
        assert s.soc_pct is not None and 0.0 < s.soc_pct <= b["soc_pct"]
        assert s.temp_degc == 30.0 and not s.isolated and s.cause == ()
        assert s.current_a == pytest.approx(rig.plant.current_a[s.index], rel=0.5) and s.current_a > 0
        assert s.current_setpoint_a == pytest.approx(currents(rig)[s.index])
    for s in snap.stations:
        if s.state == "empty":
            assert (s.battery, s.tier, s.soc_pct, s.current_a) == (None, None, None, None)
    on_station = sum(1 for s in snap.stations if s.battery)
    assert snap.batch.total == 5 and snap.batch.recorded == 0 and snap.batch.report_path == "/report"
    assert snap.batch.waiting == 5 - on_station
    d = snap.to_dict()
    text = json.dumps(d, allow_nan=False)  # JSON-able: no NaN, no tuples of dataclasses
    assert json.loads(text)["stations"][discharging[0].index]["battery"] == discharging[0].battery


def test_an_isolated_station_and_its_alarm(rig):
    running(rig)
    s = next(r.station for r in rig.engine.store.stations() if r.state is St.DISCHARGING)
    rig.core.cause[s] = int(Flag.OVER_TEMP)
    rig.core.hot_degc[s] = 58.5
    rig.scan()
    snap = snapshot_of(rig.engine)
    view = snap.stations[s]
    assert view.isolated and view.cause == ("OVER_TEMP",) and view.state == "isolated" and view.temp_degc == 58.5
    assert view.current_a is None  # not tracked once isolated (the last value would be stale)
    alarm = next(a for a in snap.alarms if a.key == f"core.station.{s}")
    assert (alarm.priority, alarm.state, alarm.station, alarm.source, alarm.value) == ("high", "unack", s, "core", 58.5)
    assert "OVER_TEMP" in alarm.message and alarm.battery == view.battery


def test_packml_commands_and_acknowledge_by_the_operator(rig):
    running(rig)
    engine = rig.engine
    refused = apply(engine, LineCommand.packml("unhold", by="test"), Role.OPERATOR)
    assert not refused.ok and "Unhold in state Execute" in refused.message and "Hold" in refused.message
    rig.scan()  # the watcher raises the refusal's one-shot alarm
    alarm = next(a for a in snapshot_of(engine).alarms if a.key.startswith("packml."))
    assert alarm.state == "rtn_unack" and alarm.cause == "packml_refused"
    held = apply(engine, LineCommand.packml("hold", by="test"), Role.OPERATOR)
    assert held.ok and held.packml_state == "Holding" and "Execute -> Holding" in held.message
    rig.scan()
    assert snapshot_of(engine).packml_state == "Held" and (currents(rig) == 0).all()
    acked = apply(engine, LineCommand.acknowledge(alarm.id, by="hmi 127.0.0.1"), Role.OPERATOR)
    assert acked.ok and "state normal" in acked.message
    assert all(a.id != alarm.id for a in snapshot_of(engine).alarms)
    who = engine.alarms.get(alarm.id).acked_by
    assert who["role"] == "operator" and who["client"] == "hmi 127.0.0.1" and who["via"] == "hmi"
    assert not apply(engine, LineCommand.acknowledge(9999), Role.OPERATOR).ok
    assert apply(engine, LineCommand.packml("unhold"), Role.OPERATOR).ok
    rig.scan()
    assert engine.machine.state is State.EXECUTE
    kinds = [e.data["command"]["kind"] for e in engine.store.events() if e.kind == "line_command"]
    assert kinds == ["unhold", "hold", "acknowledge", "acknowledge", "unhold"]


def test_setpoints_by_role_through_the_maps_limits(rig):
    running(rig)
    engine = rig.engine
    refused = apply(engine, LineCommand.setpoint("max_current_a", 5.0), Role.OPERATOR)
    assert not refused.ok and "role operator may not give 'setpoint'" in refused.message
    assert engine.line.limits.max_current_a == 15.0
    over = apply(engine, LineCommand.setpoint("max_current_a", 50.0), Role.ENGINEER)
    assert not over.ok and "discharge_current_setpoint_a" in over.message and "15" in over.message
    assert not apply(engine, LineCommand.setpoint("gain", 1.0), Role.ENGINEER).ok
    assert not apply(engine, LineCommand.setpoint("max_current_a", float("nan")), Role.ENGINEER).ok
    before = currents(rig).max()
    assert before > 0.5
    ok = apply(engine, LineCommand.setpoint("max_current_a", 0.5, by="eng"), Role.ENGINEER)
    assert ok.ok and "15 -> 0.5 A" in ok.message
    rig.scan()
    assert 0 < currents(rig).max() <= 0.5  # the flow's own write clips to the new limit
    assert snapshot_of(engine).setpoints["max_current_a"] == 0.5
    assert any(e.kind == "setpoint_changed" and e.data["value"] == 0.5 for e in engine.store.events())


def test_check_role():
    assert check_role(LineCommand.packml("hold"), "operator") is None
    assert check_role(LineCommand.setpoint("max_current_a", 1), Role.ENGINEER) is None
    assert "unknown" in check_role(LineCommand.packml("hold"), "guest")
    assert "unknown" in check_role(LineCommand.packml("explode"), "engineer")


# -- the hub ------------------------------------------------------------------------------------------
def snap(i: int) -> LineSnapshot:
    from edge.lineview.model import EMPTY_SNAPSHOT
    import dataclasses

    return dataclasses.replace(EMPTY_SNAPSHOT, line=f"l{i}", time_s=float(i))


def test_publish_latest_and_bounded_subscribers():
    hub = LineHub(subscriber_queue=3)
    assert hub.latest().packml_state == "Unknown" and hub.latest().seq == 0
    slow = hub.subscribe()
    for i in range(10):
        hub.publish(snap(i))
    assert hub.latest().line == "l9" and hub.latest().seq == 10
    assert slow.pending() == 3 and slow.dropped == 7  # newest wins; memory bounded
    assert [slow.get(0).line for _ in range(3)] == ["l7", "l8", "l9"]
    assert slow.get(0.01) is None
    slow.close()
    assert hub.subscribers() == 0
    hub.publish(snap(11))
    assert slow.pending() == 0


def test_async_subscribers_are_woken_from_another_thread():
    hub = LineHub()

    async def reader():
        sub = hub.subscribe()
        got = []
        t = threading.Thread(target=lambda: [hub.publish(snap(i)) for i in range(3)])
        t.start()
        while len(got) < 3:
            s = await sub.aget(5.0)
            assert s is not None
            got.append(s.line)
        t.join()
        assert await sub.aget(0.01) is None
        sub.close()
        return got

    assert asyncio.run(reader()) == ["l0", "l1", "l2"]


def test_submit_is_answered_by_the_loop_and_never_waits_forever():
    hub = LineHub()
    refused = hub.submit(LineCommand.setpoint("max_current_a", 1.0), Role.OPERATOR, timeout_s=0.01)
    assert not refused.ok and "may not" in refused.message and hub.waiting_commands() == 0
    late = hub.submit(LineCommand.packml("hold"), Role.OPERATOR, timeout_s=0.05)  # no loop carries it out
    assert not late.ok and "did not take it" in late.message and hub.waiting_commands() == 0
    seen = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if hub.wait_for_command(0.05):
                hub.carry_out(lambda c, r: (seen.append((c.kind, r)),
                                            CommandResult(True, c.describe(), "done", "Held", r.value))[1])

    t = threading.Thread(target=loop)
    t.start()
    try:
        result = hub.submit(LineCommand.packml("hold", by="x"), "operator", timeout_s=10.0)
        boom = hub.submit(LineCommand.packml("stop"), Role.ENGINEER, timeout_s=10.0)
    finally:
        stop.set()
        t.join()
    assert result.ok and result.packml_state == "Held" and result.role == "operator"
    assert seen == [("hold", Role.OPERATOR), ("stop", Role.ENGINEER)]
    assert boom.ok


def test_a_failing_command_is_answered_not_left_hanging():
    hub = LineHub()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", hub.submit(LineCommand.packml("stop"), "operator", 10.0)))
    t.start()
    while not hub.wait_for_command(0.05):
        pass
    assert hub.carry_out(lambda c, r: 1 / 0) == 1
    t.join()
    assert not out["r"].ok and "ZeroDivisionError" in out["r"].message


def test_the_hub_drives_a_real_engine(rig):
    running(rig)
    hub = LineHub()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", hub.submit(LineCommand.packml("hold", by="t"),
                                                                          Role.OPERATOR, timeout_s=30.0)))
    t.start()
    while "r" not in out:
        hub.carry_out(lambda c, r: apply(rig.engine, c, r))
        rig.scan()
        hub.publish(snapshot_of(rig.engine))
        t.join(0.01)
    t.join()
    assert out["r"].ok and hub.latest().packml_state in ("Holding", "Held")
    rig.scan()
    hub.publish(snapshot_of(rig.engine))
    assert hub.latest().packml_state == "Held" and np.all(currents(rig) == 0)
