"""The supervisor's store: WAL and FULL sync, records exactly once, checked changes, schema and
line checks, a second process on the same file, and a writer killed with SIGKILL at random
points that loses nothing it reported and doubles nothing."""

from __future__ import annotations

import math
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from edge import REPO_ROOT
from edge.supervisor.packml import Command, PackMlMachine, State, Transition
from edge.supervisor.stations import StationState, TransitionRefused
from edge.supervisor.store import DATABASE_FILE, DuplicateRecord, SchemaMismatch, Store, StoreError

pytestmark = pytest.mark.integration

S = StationState


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "state", 4, clock=iter(range(1000, 10_000)).__next__) as opened:
        yield opened


def test_wal_and_full_sync(store):
    assert store.pragmas() == {"journal_mode": "wal", "synchronous": 2}
    assert store.path.name == DATABASE_FILE
    store.add_event("test", "a write")
    assert store.path.with_name(DATABASE_FILE + "-wal").exists()


def test_a_new_store_has_every_station_empty_and_the_line_stopped(store):
    assert [(r.station, r.state, r.battery_id, r.data) for r in store.stations()] == [
        (s, S.EMPTY, None, {}) for s in range(4)]
    assert store.line_state() is State.STOPPED and store.line_history() == []


def test_a_battery_is_recorded_exactly_once(store):
    first = store.record_battery("C1", {"outcome": "recycling"}, {"soc_gan": "v3"})
    assert (first.cell_id, first.record, first.model_versions) == ("C1", {"outcome": "recycling"}, {"soc_gan": "v3"})
    with pytest.raises(DuplicateRecord, match="battery 'C1' already has its record") as info:
        store.record_battery("C1", {"outcome": "second_life"})
    assert info.value.stored == first
    assert store.batteries() == [first] and store.battery("C1") == first and store.battery("C2") is None
    rows = store._db.execute("SELECT count(*) FROM batteries WHERE cell_id = 'C1'").fetchone()[0]
    assert rows == 1


def test_a_record_that_is_not_standard_json_is_refused_and_not_written(store):
    with pytest.raises(ValueError):
        store.record_battery("C1", {"peak_degc": math.nan})
    assert store.battery("C1") is None
    with pytest.raises(ValueError, match="cell_id"):
        store.record_battery("", {})


def test_station_changes_are_checked_and_kept_in_history(store):
    store.set_station(1, S.LOADING, "C7", {"tier": 2})
    store.set_station(1, S.CLAMPING, "C7", {"clamp_kpa": 150.0})
    store.set_station(1, S.DISCHARGING, "C7", {"pass": 1})
    record = store.update_station_data(1, {"pass": 1, "charge_ah": 3.5})
    assert record.state is S.DISCHARGING and record.data == {"pass": 1, "charge_ah": 3.5}
    with pytest.raises(TransitionRefused, match="station 1: discharging -> done refused"):
        store.set_station(1, S.DONE, "C7")
    assert store.station(1).state is S.DISCHARGING and store.station(1).data == {"pass": 1, "charge_ah": 3.5}
    store.set_station(1, S.ISOLATED, "C7")
    with pytest.raises(TransitionRefused, match="only after an operator clears"):
        store.set_station(1, S.EMPTY)
    store.set_station(1, S.EMPTY, operator_clear=True)
    history = store.station_history(1)
    assert [(h.before, h.state, h.battery_id, h.operator_clear) for h in history] == [
        (S.EMPTY, S.LOADING, "C7", False), (S.LOADING, S.CLAMPING, "C7", False), (S.CLAMPING, S.DISCHARGING, "C7", False),
        (S.DISCHARGING, S.ISOLATED, "C7", False), (S.ISOLATED, S.EMPTY, None, True)]
    assert [h.at for h in history] == sorted(h.at for h in history)
    assert store.station_history(0) == []
    with pytest.raises(IndexError, match="station 4 does not exist"):
        store.station(4)


def test_the_line_state_follows_the_machine_and_refuses_a_stale_transition(store):
    machine = PackMlMachine(store.line_state(), on_change=store.set_line_state)
    machine.command(Command.RESET)
    machine.state_complete()
    machine.command(Command.START)
    assert store.line_state() is State.STARTING
    assert [(e.before, e.state, e.command) for e in store.line_history()] == [
        (State.STOPPED, State.RESETTING, Command.RESET), (State.RESETTING, State.IDLE, None),
        (State.IDLE, State.STARTING, Command.START)]
    stale = PackMlMachine(State.IDLE, on_change=store.set_line_state)
    with pytest.raises(StoreError, match="does not start from the stored line state Starting"):
        stale.command(Command.START)
    assert stale.state is State.IDLE and store.line_state() is State.STARTING
    with pytest.raises(StoreError):
        store.set_line_state(Transition(State.STOPPED, State.RESETTING, Command.RESET))


def test_events(store):
    first = store.add_event("alarm", "hot cell", station=2, battery_id="C3", data={"degc": 51.5})
    second = store.add_event("note", "text only")
    assert second > first
    events = store.events()
    assert [(e.kind, e.text, e.station, e.battery_id, e.data) for e in events] == [
        ("alarm", "hot cell", 2, "C3", {"degc": 51.5}), ("note", "text only", None, None, {})]
    assert [e.id for e in store.events(after_id=first)] == [second]


def test_reopening_keeps_everything(tmp_path):
    with Store(tmp_path, 2) as store:
        store.set_station(0, S.LOADING, "C1", {"tier": 1})
        store.record_battery("C0", {"x": 1})
    with Store(tmp_path, 2) as again:
        assert again.station(0).battery_id == "C1" and again.station(0).data == {"tier": 1}
        assert [b.cell_id for b in again.batteries()] == ["C0"]


def test_another_line_or_schema_is_refused(tmp_path):
    Store(tmp_path, 4).close()
    with pytest.raises(StoreError, match="a line of 4 stations, the line file has 8"):
        Store(tmp_path, 8)
    db = sqlite3.connect(tmp_path / DATABASE_FILE)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(SchemaMismatch, match=r"supervisor.sqlite: schema version '99'.*reads version 1"):
        Store(tmp_path, 4)


def test_a_foreign_database_or_file_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    db = sqlite3.connect(other / DATABASE_FILE)
    db.execute("CREATE TABLE foo (x)")
    db.commit()
    db.close()
    with pytest.raises(SchemaMismatch, match="not a supervisor database"):
        Store(other, 4)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / DATABASE_FILE).write_bytes(b"not a database at all " * 100)
    with pytest.raises(StoreError, match="supervisor.sqlite"):
        Store(junk, 4)


CHILD_WRITE_ONE = """
import sys
from edge.supervisor.store import Store
from edge.supervisor.stations import StationState
with Store(sys.argv[1], 4) as store:
    store.set_station(3, StationState.LOADING, "from-child")
    store.record_battery("from-child", {"by": "child"})
print("done", flush=True)
"""


def test_a_second_process_writes_while_this_one_has_the_store_open(tmp_path):
    with Store(tmp_path, 4) as store:
        store.set_station(0, S.LOADING, "from-parent")
        done = subprocess.run([sys.executable, "-c", CHILD_WRITE_ONE, str(tmp_path)], capture_output=True,
                              text=True, timeout=60, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stderr
        assert store.station(3).battery_id == "from-child" and store.battery("from-child").record == {"by": "child"}
        assert store.station(0).battery_id == "from-parent"


# -- a writer killed with SIGKILL -----------------------------------------------------------------
N_BATTERIES, N_STATIONS, PASSES = 16, 4, 2

CHILD_FLOW = """
import sys
from edge.supervisor.packml import Command, PackMlMachine, State
from edge.supervisor.stations import StationState as S
from edge.supervisor.store import DuplicateRecord, Store

state_dir, n_batteries, n_stations, passes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def done(what):  # printed only after the call returned: the change is on disk
    print(what, flush=True)

with Store(state_dir, n_stations) as store:
    line = PackMlMachine(store.line_state(), on_change=store.set_line_state)
    while line.state is not State.EXECUTE and line.state is not State.COMPLETE:
        if line.state is State.STOPPED:
            line.command(Command.RESET)
        elif line.state is State.IDLE:
            line.command(Command.START)
        else:
            line.state_complete()
        done(f"line {line.state.label}")
    for i in range(n_batteries):  # battery i on station i % n_stations, resumed from the store
        cell, s = f"cell{i:03d}", i % n_stations
        if store.battery(cell) is not None and store.station(s).battery_id != cell:
            continue  # finished before a kill
        while True:
            now = store.station(s)
            if now.state is S.EMPTY:
                if store.battery(cell) is not None:
                    break
                store.set_station(s, S.LOADING, cell, {"pass": 0})
            elif now.state is S.LOADING:
                store.set_station(s, S.CLAMPING, cell, {"pass": 0})
            elif now.state is S.CLAMPING:
                store.set_station(s, S.DISCHARGING, cell, {"pass": 1})
            elif now.state is S.DISCHARGING:
                store.set_station(s, S.RESTING, cell, now.data)
            elif now.state is S.RESTING and now.data["pass"] < passes:
                store.set_station(s, S.DISCHARGING, cell, {"pass": now.data["pass"] + 1})
            elif now.state is S.RESTING:
                store.set_station(s, S.DONE, cell, now.data)
            elif now.state is S.DONE:
                try:
                    store.record_battery(cell, {"station": s, "passes": now.data["pass"]}, {"soc_gan": "test"})
                    done(f"record {cell}")
                except DuplicateRecord:
                    pass  # written before the kill: never twice
                store.set_station(s, S.EMPTY, None)
            else:
                raise SystemExit(f"unexpected state {now.state}")
            if now.state is not S.DONE:
                done(f"station {s} {store.station(s).state.value} {cell}")
            else:
                done(f"station {s} empty")
    while line.state is not State.COMPLETE:
        line.state_complete()
        done(f"line {line.state.label}")
print("finished", flush=True)
"""


def rows(store: Store) -> int:
    return sum(store._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
               for t in ("line_state", "station_history", "batteries"))


def check_consistent(store: Store) -> None:
    """Every station's history chains into its current state; the records are cell000.. in order,
    each once, each after its station reached done; the line's history chains."""
    for record in store.stations():
        state, battery = S.EMPTY, None
        for change in store.station_history(record.station):
            assert change.before is state
            state, battery = change.state, change.battery_id
        assert (state, battery) == (record.state, record.battery_id)
    cells = [b.cell_id for b in store.batteries()]
    assert cells == [f"cell{i:03d}" for i in range(len(cells))]
    done_cells = {h.battery_id for h in store.station_history() if h.state is S.DONE}
    assert set(cells) <= done_cells
    state = State.STOPPED
    for entry in store.line_history():
        assert entry.before is state
        state = entry.state


def test_a_writer_killed_at_random_points_loses_nothing_and_doubles_nothing(tmp_path):
    script = tmp_path / "child_flow.py"
    script.write_text(textwrap.dedent(CHILD_FLOW))
    state_dir = tmp_path / "state"
    rng = random.Random(20240612)
    printed = kills = 0
    states_at_kill: set[str] = set()
    deadline = time.monotonic() + 240.0
    while True:
        assert time.monotonic() < deadline, f"no finish after {kills} kills"
        proc = subprocess.Popen([sys.executable, str(script), str(state_dir), str(N_BATTERIES), str(N_STATIONS),
                                 str(PASSES)], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        target, lines = rng.randint(1, 12), []
        try:
            for line in proc.stdout:
                lines.append(line)
                if len(lines) >= target:
                    time.sleep(rng.uniform(0.0, 0.004))  # kill inside a write or between writes
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    break
            lines += proc.stdout.readlines()  # what it printed before it died: each one committed
        finally:
            proc.stdout.close()
            proc.wait(timeout=60)
        finished = "finished\n" in lines
        printed += len(lines) - finished
        with Store(state_dir, N_STATIONS) as store:
            check_consistent(store)
            # every change the child reported is on disk; at most one per kill committed unreported
            assert printed <= rows(store) <= printed + kills
            states_at_kill |= {r.state.value for r in store.stations()}
        assert proc.returncode in (0, -signal.SIGKILL)  # a kill may land after "finished"
        if finished:
            break
    assert kills >= 3
    assert states_at_kill - {"empty"}  # some kill landed with a battery on a station (each state: test_flow.py)
    with Store(state_dir, N_STATIONS) as store:
        records = store.batteries()
        assert [b.cell_id for b in records] == [f"cell{i:03d}" for i in range(N_BATTERIES)]
        assert all(b.record == {"station": i % N_STATIONS, "passes": PASSES} for i, b in enumerate(records))
        assert all(r.state is S.EMPTY for r in store.stations())
        assert store.line_state() is State.COMPLETE
        per_battery = [[h.state for h in store.station_history() if h.battery_id == b.cell_id] for b in records]
        assert all(states == [S.LOADING, S.CLAMPING, S.DISCHARGING, S.RESTING, S.DISCHARGING, S.RESTING, S.DONE]
                   for states in per_battery)
