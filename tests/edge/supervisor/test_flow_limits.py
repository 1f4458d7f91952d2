"""The public paths the line model (edge/lineview/model.py) uses instead of reaching into the flow
and the bus: `FlowEngine.set_limit` (a line limit checked by the map's own write check, written to
the store, applied by the flow's write path from the next scan, kept across a restart while the
line file has the value it overrode), `TagBus.check_write` (the bus's check of a write, sending
nothing) and the recorded ids the flow keeps in memory (`waiting()` reads no record; its cost at
2000 records: test_bench_flow.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.bus import MemoryPlc, Quality, open_bus
from edge.supervisor.flow import LIMIT_ROLES, LimitRefused
from edge.tagmap import Owner
from tests.edge.supervisor.test_flow import Rig, assert_recorded_once, currents, started

pytestmark = pytest.mark.integration


@pytest.fixture
def rig(line, models, tmp_path):
    r = Rig(line, models, tmp_path / "state")
    yield r
    r.engine.close()


def running(rig) -> list[str]:
    cells = rig.inbox("batch.csv", range(1, 6))
    started(rig)
    rig.run_until(lambda: ((currents(rig) > 0.5) & (rig.plant.current_a > 0)).any())
    return cells


# -- TagBus.check_write --------------------------------------------------------------------------------
def test_check_write_answers_what_write_would_and_sends_nothing(line):
    plc = MemoryPlc(line.supervisor_map)
    bus = open_bus(line.supervisor_map, Owner.SUPERVISOR, plc=plc)
    before = {t.name: plc.get(t.name) for t in line.supervisor_map.tags}
    ok = bus.check_write("discharge_current_setpoint_a", (12.0,) * 8)
    assert (ok.name, ok.quality, ok.detail) == ("discharge_current_setpoint_a", Quality.GOOD, "")
    over = bus.check_write("discharge_current_setpoint_a", (16.0,) * 8)
    assert over.quality is Quality.REFUSED_LIMITS and "15" in over.detail
    shape = bus.check_write("discharge_current_setpoint_a", 1.0)  # an array tag given one number
    assert shape.quality is Quality.REFUSED_LIMITS
    unknown = bus.check_write("no_such_tag", 1.0)
    assert unknown.quality is Quality.BAD_UNKNOWN_TAG and "hil_modbus.yaml" in unknown.detail
    read = bus.check_write("station_voltage_v", (1.0,) * 8)
    assert read.quality is Quality.REFUSED_ACCESS and "read tag" in read.detail
    core = bus.check_write("discharge_permit", (True,) * 8)
    assert core.quality is Quality.REFUSED_OWNER and "rtcore" in core.detail
    assert {t.name: plc.get(t.name) for t in line.supervisor_map.tags} == before, "nothing was written"
    assert not bus.connected, "no connection was needed"
    # the same refusals as write's
    for name, value in (("discharge_current_setpoint_a", (16.0,) * 8), ("station_voltage_v", (1.0,) * 8)):
        (written,) = bus.write({name: value})
        assert (written.quality, written.detail) == (bus.check_write(name, value).quality,
                                                     bus.check_write(name, value).detail)
    bus.close()


# -- FlowEngine.set_limit --------------------------------------------------------------------------------
def test_set_limit_is_checked_and_refusals_change_nothing(rig):
    engine = rig.engine
    limits = engine.line.limits
    for name, value, says in (
            ("gain", 1.0, "limit 'gain' is unknown; allowed: max_current_a, max_coolant_lpm"),
            ("max_current_a", float("nan"), "max_current_a = nan; allowed: a finite number > 0 A"),
            ("max_current_a", 0.0, "allowed: a finite number > 0 A"),
            ("max_current_a", -1.0, "allowed: a finite number > 0 A"),
            ("max_current_a", True, "allowed: a finite number > 0 A"),
            ("max_current_a", "ten", "allowed: a finite number > 0 A"),
            ("max_current_a", 50.0, "max_current_a = 50 A: the write of discharge_current_setpoint_a "
                                    "(hil_modbus.yaml, line "),
            ("max_coolant_lpm", 500.0, "max_coolant_lpm = 500 L/min: the write of coolant_base_lpm")):
        with pytest.raises(LimitRefused) as err:
            engine.set_limit(name, value)
        assert says in str(err.value)
    with pytest.raises(LimitRefused, match=r"is refused: .*15"):
        engine.set_limit("max_current_a", 15.5)
    assert engine.line.limits == limits
    assert not engine.store.events(kind="setpoint_changed")


def test_set_limit_clips_the_next_scans_write_and_is_recorded(rig):
    cells = running(rig)
    engine = rig.engine
    assert currents(rig).max() > 0.5
    assert engine.set_limit("max_current_a", 0.5, by="eng") == (15.0, 0.5)
    (event,) = engine.store.events(kind="setpoint_changed")
    assert event.data == {"name": "max_current_a", "before": 15.0, "value": 0.5, "unit": "A", "by": "eng",
                          "tag": "discharge_current_setpoint_a", "role": "discharge_current_setpoint_a",
                          "line_value": 15.0}
    assert all(d.max_a == 0.5 for d in engine._drivers.values()) and engine._drivers
    for _ in range(5):
        rig.scan()
        assert 0 < currents(rig).max() <= 0.5
    assert engine.set_limit("max_coolant_lpm", 1.0) == (20.0, 1.0)
    rig.scan()
    coolant = np.asarray(rig.plc.get("coolant_base_lpm"), float)
    held = [r.station for r in engine.store.stations() if r.state.value in ("clamping", "discharging", "resting")]
    assert held and (coolant[held] <= 1.0).all()
    engine.set_limit("max_current_a", 15.0)
    rig.run_until(engine.idle)
    records = assert_recorded_once(rig, cells)
    assert {b.record["limits"]["line"]["max_coolant_lpm"] for b in records} == {1.0}  # in force when recorded


def test_a_limit_set_is_kept_across_a_restart(rig):
    running(rig)
    rig.engine.set_limit("max_current_a", 0.5, by="eng")
    engine = rig.kill()
    assert engine.line.limits.max_current_a == 0.5
    (restored,) = engine.store.events(kind="setpoint_restored")
    assert restored.data == {"name": "max_current_a", "value": 0.5, "unit": "A", "line_value": 15.0}
    for _ in range(5):
        rig.scan()
        assert currents(rig).max() <= 0.5
    assert (currents(rig) > 0).any()


def test_a_line_file_changed_since_wins_over_the_limit_set(rig):
    running(rig)
    rig.engine.set_limit("max_current_a", 0.5, by="eng")
    rig.engine.store.close()
    rig.line = dataclasses.replace(rig.line, limits=dataclasses.replace(rig.line.limits, max_current_a=10.0))
    engine = rig.engine = rig.new_engine()
    assert engine.line.limits.max_current_a == 10.0
    (dropped,) = engine.store.events(kind="setpoint_dropped")
    assert "the line file's max_current_a is now 10 A (it was 15.0 when 0.5 was set)" in dropped.text
    assert not engine.store.events(kind="setpoint_restored")
    engine = rig.kill()  # dropped once: the next start neither restores nor drops it again
    assert engine.line.limits.max_current_a == 10.0
    assert len(engine.store.events(kind="setpoint_dropped")) == 1 and not engine.store.events(kind="setpoint_restored")


def test_a_limit_the_map_no_longer_allows_is_dropped_at_restart(rig):
    rig.engine.set_limit("max_coolant_lpm", 18.0)
    rig.engine.store.close()
    sup = rig.line.supervisor_map
    tag = sup.tag("coolant_base_lpm")
    lower = dataclasses.replace(tag, limits=dataclasses.replace(tag.limits, max=15.0))
    tighter = dataclasses.replace(sup, tags=tuple(lower if t.name == tag.name else t for t in sup.tags))
    rig.line = dataclasses.replace(rig.line, supervisor_map=tighter)
    engine = rig.engine = rig.new_engine()
    assert engine.line.limits.max_coolant_lpm == 20.0  # the line file's (the map check is the line file's too)
    (dropped,) = engine.store.events(kind="setpoint_dropped")
    assert "max_coolant_lpm = 18 L/min: the write of coolant_base_lpm" in dropped.text


def test_limit_roles_are_the_line_models_setpoints():
    from edge.lineview.model import SETPOINTS

    assert SETPOINTS == LIMIT_ROLES


# -- the recorded ids kept in memory -------------------------------------------------------------------
def test_waiting_and_the_scan_read_no_record(rig, monkeypatch):
    cells = running(rig)

    def no_records():
        raise AssertionError("the scan read every record")

    monkeypatch.setattr(rig.engine.store, "batteries", no_records)
    rig.run_until(rig.engine.idle)
    monkeypatch.undo()
    assert_recorded_once(rig, cells)
    assert rig.engine.recorded() == frozenset(cells) == rig.engine.store.recorded_ids()
    assert rig.engine.store.recorded_count() == len(cells)
    assert rig.engine.waiting() == []
    engine = rig.kill()
    assert engine.recorded() == frozenset(cells)  # loaded once at start
