"""Alarms on the ISA-18.2 model (edge/supervisor/alarms.py): the state diagram, one-shot alarms,
sync of state-based alarms, acknowledgement with who and an event, the ownership rule, and the
watcher raising and clearing from a core status, the line state, station faults and events."""

from __future__ import annotations

import os
import types

import pytest

from edge.supervisor.alarms import (AlarmBook, AlarmError, AlarmRefused, AlarmSpec, AlarmWatcher, check_operator,
                                    operator_identity)
from edge.supervisor.stations import StationState
from edge.supervisor.store import Store
from rtcore.spec import Flag

pytestmark = pytest.mark.integration

WHO = {"user": "op", "uid": 1000, "pid": 1, "host": "ipc", "via": "test"}


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path, 4, clock=lambda: 10.0) as s:
        yield s


@pytest.fixture
def book(tmp_path, store):
    with AlarmBook(tmp_path, clock=lambda: 20.0) as b:
        yield b


def spec(key="core.station.1", **kw):
    return AlarmSpec(key, kw.pop("priority", "high"), kw.pop("cause", "OVER_TEMP"), "hot", **kw)


def test_the_isa_18_2_states(book, store):
    a = book.raise_alarm(spec(station=1, marker=2, value=61.5, unit="degC", battery_id="7"), at=1.0)
    assert (a.state, a.station, a.marker, a.value, a.battery_id, a.raises) == ("unack", 1, 2, 61.5, "7", 1)
    assert book.raise_alarm(spec(), at=2.0).id == a.id  # still active: the same occurrence, unchanged
    assert book.clear(a.key, at=3.0).state == "rtn_unack"
    again = book.raise_alarm(spec(value=63.0), at=4.0)  # active again before its acknowledgement
    assert (again.id, again.state, again.raises, again.value) == (a.id, "unack", 2, 63.0)
    acked = book.ack(a.id, WHO, at=5.0)
    assert (acked.state, acked.acked_by["user"], acked.acked_at) == ("acked", "op", 5.0)
    assert [x.id for x in book.active()] == [a.id]
    assert book.clear(a.key, at=6.0).state == "normal" and book.active() == []
    assert book.raise_alarm(spec(), at=7.0).id != a.id  # a closed occurrence is history: a new one
    ev = [e for e in store.events() if e.kind == "alarm_acked"]
    assert len(ev) == 1 and ev[0].data["by"]["user"] == "op" and ev[0].data["alarm_id"] == a.id


def test_one_shot_waits_for_its_ack_and_ack_twice_changes_nothing(book):
    a = book.one_shot(spec("vision.3", priority="low", cause="battery_refused"), at=1.0)
    assert a.state == "rtn_unack" and a.active
    first = book.ack(a.id, WHO, at=2.0)
    assert first.state == "normal"
    assert book.ack(a.id, WHO | {"user": "other"}, at=3.0).acked_by["user"] == "op"
    with pytest.raises(AlarmError, match="no alarm 99"):
        book.ack(99, WHO)


def test_sync_raises_the_present_and_clears_the_others_under_a_prefix(book):
    book.sync("core.", [spec("core.station.1"), spec("core.station.2")], at=1.0)
    book.raise_alarm(spec("plc.write", priority="medium"), at=1.0)
    book.sync("core.", [spec("core.station.2")], at=2.0)
    states = {a.key: a.state for a in book.active()}
    assert states == {"core.station.1": "rtn_unack", "core.station.2": "unack", "plc.write": "unack"}
    with pytest.raises(ValueError, match="priority"):
        AlarmSpec("x", "urgent", "c", "t")


def test_the_watcher_from_status_line_stations_and_events(book, store):
    watcher = AlarmWatcher(book, store)
    status = types.SimpleNamespace(safe_state=False, safe_cause=0, fault_marker=-1,
                                   station_cause=(0, int(Flag.OVER_TEMP), 0, 0), station_fault_marker=(-1, 5, -1, -1),
                                   station_hot_degc=(30.0, 58.25, 30.0, 30.0))
    store.set_station(1, StationState.LOADING, "42", {})
    store.add_event("battery_refused", "battery 9: vision: polarity", battery_id="9")
    store.add_event("robot_move", "robot: failed", data={"ok": False})
    watcher.scan(100.0, status, "Execute", store.stations(), {"plc.write": AlarmSpec(
        "plc.write", "medium", "PLC write refused", "write of x refused")})
    by_key = {a.key: a for a in book.active()}
    core = by_key["core.station.1"]
    assert (core.cause, core.station, core.marker, core.value, core.unit, core.battery_id, core.source) == (
        "OVER_TEMP", 1, 5, 58.25, "degC", "42", "core")
    assert by_key["robot"].state == "unack" and by_key["plc.write"].state == "unack"
    vision = [a for k, a in by_key.items() if k.startswith("vision.")]
    assert len(vision) == 1 and vision[0].state == "rtn_unack" and vision[0].battery_id == "9"
    ok = types.SimpleNamespace(**(vars(status) | {"station_cause": (0, 0, 0, 0)}))
    store.add_event("robot_move", "robot: done", data={"ok": True})
    watcher.scan(101.0, ok, "Aborted", store.stations(), {"plc.write": None})
    states = {a.key: a.state for a in book.active()}
    assert states["core.station.1"] == "rtn_unack" and states["robot"] == "rtn_unack"
    assert states["plc.write"] == "rtn_unack" and states["line.aborted"] == "unack"


def test_who_may_acknowledge(tmp_path, store):
    check_operator(tmp_path)  # the test's own state dir: allowed
    who = operator_identity("cli")
    assert who["uid"] == os.geteuid() and who["via"] == "cli" and who["user"]
    (tmp_path / "supervisor.sqlite").chmod(0o666)
    with pytest.raises(AlarmRefused, match="supervisor.sqlite.*mode 0666"):
        check_operator(tmp_path)
    with pytest.raises(AlarmError, match="missing"):
        check_operator(tmp_path / "nowhere")
