"""The service layer: latches kept across restarts, the event log and its bound, the state dir."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from edge.rtloop import service
from edge.rtloop.service import EventLog, LatchStore, Latches, default_state_dir, flag_names
from rtcore.spec import Flag

pytestmark = pytest.mark.unit


def test_latches_round_trip(tmp_path):
    store = LatchStore(tmp_path / "state", "line1")
    assert store.load() == Latches() and not store.load()  # nothing stored: nothing latched
    latches = Latches(int(Flag.LINK_LOST),
                      {2: (int(Flag.OVER_TEMP), 9), 5: (int(Flag.SENSOR_STUCK | Flag.DTDT_ALARM), -1)})
    store.save(latches)
    assert store.path == tmp_path / "state" / "line1.latch.json"
    assert LatchStore(tmp_path / "state", "line1").load() == latches
    data = json.loads(store.path.read_text())
    assert data["line_cause"] == ["LINK_LOST"] and data["stations"]["2"]["cause"] == ["OVER_TEMP"]
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    store.save(Latches())  # a clear is saved too
    assert store.load() == Latches()
    assert LatchStore(tmp_path / "state", "other").load() == Latches()  # one file per link


def test_save_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    store = LatchStore(tmp_path, "line1")
    old = Latches(0, {1: (int(Flag.OVER_TEMP), 3)})
    store.save(old)

    def crash(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service.os, "replace", crash)
    with pytest.raises(OSError):
        store.save(Latches())
    monkeypatch.undo()
    assert store.load() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["line1.latch.json"]  # no temporary left


def test_save_writes_a_new_file_never_in_place(tmp_path):
    store = LatchStore(tmp_path, "line1")
    store.save(Latches(int(Flag.EXCEPTION), {}))
    before = os.stat(store.path).st_ino
    reader = open(store.path)  # a reader holding the old file sees it whole
    store.save(Latches(0, {7: (int(Flag.SENSOR_NONFINITE), 30)}))
    assert os.stat(store.path).st_ino != before  # the old inode is still open, so it cannot be reused
    assert json.loads(reader.read())["line_cause"] == ["EXCEPTION"]
    reader.close()
    assert store.load().stations == {7: (int(Flag.SENSOR_NONFINITE), 30)}


def test_an_unreadable_latch_file_starts_latched_and_is_kept(tmp_path, caplog):
    store = LatchStore(tmp_path, "line1")
    store.path.write_text("{not json")
    with caplog.at_level(logging.ERROR):
        latches = store.load()
    assert latches == Latches(int(Flag.EXCEPTION), {})
    assert (tmp_path / "line1.latch.json.bad").read_text() == "{not json"
    assert "unreadable" in caplog.text and str(store.path) in caplog.text


def test_events_are_json_lines_and_log_lines(tmp_path, caplog):
    events = EventLog(tmp_path / "state")
    with caplog.at_level(logging.WARNING, logger="edge.rtloop.events"):
        events.append("start", text="8 stations")
        events.append("latch", cause=int(Flag.OVER_TEMP), station=3, marker=13, value=61.25)
        events.append("clear", cause=int(Flag.OVER_TEMP), station=3, marker=13, value=float("nan"))
    lines = [json.loads(line) for line in events.path.read_text().splitlines()]
    assert [e["kind"] for e in lines] == ["start", "latch", "clear"]
    latch = lines[1]
    assert latch["cause"] == ["OVER_TEMP"] and latch["cause_bits"] == int(Flag.OVER_TEMP)
    assert (latch["station"], latch["marker"], latch["value"]) == (3, 13, 61.25)
    assert set(latch) == {"time_unix_s", "kind", "cause", "cause_bits", "station", "marker", "value", "text"}
    assert lines[2]["value"] is None  # NaN is not JSON
    levels = {r.getMessage().split(":")[0]: r.levelno for r in caplog.records}
    assert levels == {"rtcore event start": logging.WARNING, "rtcore event latch": logging.ERROR,
                      "rtcore event clear": logging.WARNING}
    assert "station 3, marker 13, 61.25 degC" in caplog.text


def test_event_log_rotation_bounds_the_disk(tmp_path):
    events = EventLog(tmp_path, max_bytes=2000)
    for k in range(200):
        events.append("latch", cause=int(Flag.DTDT_ALARM), station=k % 8, marker=k, value=50.0, text=f"event {k}")
    current, rotated = tmp_path / "events.jsonl", tmp_path / "events.jsonl.1"
    assert current.stat().st_size <= 2000 and rotated.stat().st_size <= 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1"]
    kept = [json.loads(line)["marker"] for f in (rotated, current) for line in f.read_text().splitlines()]
    assert kept == list(range(200 - len(kept), 200)) and len(kept) > 10  # the newest, in order, none torn


def test_event_log_survives_an_unwritable_dir(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    events = EventLog(blocker / "state")  # a state dir below a file cannot exist
    with caplog.at_level(logging.ERROR):
        events.append("latch", cause=int(Flag.OVER_TEMP), station=0)
    assert "cannot write event" in caplog.text and "rtcore event latch" in caplog.text


def test_default_state_dir(monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", "/srv/de")
    assert default_state_dir() == Path("/srv/de")
    monkeypatch.delenv("DISCHARGE_EDGE_STATE_DIR")
    assert default_state_dir() == Path("state") / "rtcore"  # the working directory's, never the home


def test_flag_names():
    assert flag_names(0) == []
    assert flag_names(int(Flag.OVER_TEMP | Flag.LINK_LOST)) == ["LINK_LOST", "OVER_TEMP"]
    assert flag_names(1 << 30) == ["BIT30"]


def test_instance_lock_is_the_links(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    with service.InstanceLock("line1") as lock:
        assert (tmp_path / "shm" / "line1.lock").read_text().strip() == str(os.getpid())
        message = f"rtcore already running on link line1 \\(pid {os.getpid()}\\)"
        with pytest.raises(service.AlreadyRunning, match=message):
            service.InstanceLock("line1")
        assert lock.link_name == "line1"
    service.InstanceLock("line1").release()  # released: free again
