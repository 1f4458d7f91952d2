"""The supervisor link: what travels, who may open it, one instance per link, a computed `alive`.

Every test works in its own private link directory ($DISCHARGE_EDGE_SHM_DIR under tmp_path).
The ownership tests chown files to uid 65534 and need root.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from edge import REPO_ROOT
from edge.rtloop import link as link_mod
from edge.rtloop.link import (
    MAX_STATIONS,
    SIZE,
    AlreadyRunning,
    LinkError,
    RtSide,
    RtStatus,
    SupervisorSide,
    link_dir,
)
from rtcore.spec import Setpoints, StationLimits

pytestmark = pytest.mark.integration

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


@pytest.fixture(autouse=True)
def private_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    return tmp_path / "shm"


def station_status(n: int, **fields) -> RtStatus:
    return RtStatus(
        tick_count=7, armed=True, bus_misses=2, n_stations=n,
        station_cause=tuple(16 if s == 1 else 0 for s in range(n)),
        station_fault_marker=tuple(5 if s == 1 else -1 for s in range(n)),
        station_hot_degc=tuple(30.0 + s for s in range(n)),
        station_current_limit_frac=tuple(0.0 if s == 1 else 1.0 - s / 100 for s in range(n)),
        station_coolant_lpm=tuple(float(s) for s in range(n)),
        station_relief_max_kpa=tuple(10.0 * s for s in range(n)),
        station_permit=tuple(s != 1 for s in range(n)), **fields)


def hold_link(name: str, env_dir) -> subprocess.Popen:
    """Another process serving `name`; returns once it holds the link."""
    code = ("import sys; from edge.rtloop.link import RtSide, RtStatus; r = RtSide(sys.argv[1]); "
            "r.write_status(RtStatus(tick_count=1)); print('ready', flush=True); sys.stdin.read(); r.close()")
    env = {**os.environ, "DISCHARGE_EDGE_SHM_DIR": str(env_dir)}
    child = subprocess.Popen([sys.executable, "-c", code, name], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "ready"
    return child


# -- what travels -------------------------------------------------------------------------------
def test_setpoints_with_station_limits_and_resets_travel():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        assert rt.poll_setpoints() == (None, 0, False)
        limits = tuple(StationLimits(1.0 + s, 2.0, 44.0 - s, 55.0) for s in range(8))
        sent = Setpoints(delta_t_threshold_degc=3.0, hotspot_ratio=(0.25,) * 16, station_limits=limits)
        sup.send_setpoints(sent)
        got, seq, reset = rt.poll_setpoints()
        assert got == sent and seq > 0 and not reset
        assert rt.poll_setpoints() == (None, seq, False)  # nothing new
        sup.request_reset()  # the arm: the setpoints in force stay as they are
        again, seq2, reset = rt.poll_setpoints()
        assert reset and seq2 > seq and (again is None or again == sent)
        sup.request_reset(station=3)  # one station: its own record, never taken for an arm
        assert rt.poll_setpoints()[2] is False
        assert rt.poll_station_resets() == (3,) and rt.poll_station_resets() == ()
    finally:
        sup.close(), rt.close()


def test_a_reset_before_any_setpoints_carries_no_setpoints():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        sup.request_reset()
        assert rt.poll_setpoints()[::2] == (None, True)  # the core keeps the setpoints it started with
    finally:
        sup.close(), rt.close()


def test_the_link_refuses_more_than_it_carries():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        with pytest.raises(LinkError, match=f"at most {MAX_STATIONS}"):
            sup.send_setpoints(Setpoints(station_limits=(StationLimits(2.0, 2.0, 45.0, 60.0),) * (MAX_STATIONS + 1)))
        with pytest.raises(LinkError, match=f"at most {MAX_STATIONS}"):
            rt.write_status(station_status(MAX_STATIONS + 1))
        with pytest.raises(ValueError, match="station_permit has 2 entries; n_stations is 3"):
            rt.write_status(RtStatus(n_stations=3, station_permit=(True, False)))
    finally:
        sup.close(), rt.close()


def test_status_with_station_arrays_round_trips():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        sent = station_status(8)
        rt.write_status(sent)
        got = sup.read_status()
        assert got.alive and got.heartbeat_ns > 0
        assert got == RtStatus(**{**sent.__dict__, "heartbeat_ns": got.heartbeat_ns})
        rt.write_status(station_status(2))  # fewer stations: only the valid entries come back
        assert sup.read_status().station_permit == (True, False)
    finally:
        sup.close(), rt.close()


# -- alive from the heartbeat ----------------------------------------------------------------------
def test_alive_false_within_a_second_of_the_last_write():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        rt.write_status(RtStatus(tick_count=1))
        written = time.monotonic()
        assert sup.read_status().alive
        deadline = written + 10.0
        while sup.read_status().alive and time.monotonic() < deadline:
            time.sleep(0.02)
        dead_after_s = time.monotonic() - written
        assert not sup.read_status().alive
        assert 1.0 <= dead_after_s < 1.5  # alive exactly while the heartbeat is younger than 1 s
        rt.write_status(RtStatus(tick_count=2))
        assert sup.read_status().alive  # a fresh write revives it
        rt.write_status(RtStatus(tick_count=3, alive=False))  # the loop says it ended
        assert not sup.read_status().alive
    finally:
        sup.close(), rt.close()


def test_a_writer_killed_mid_write_reads_dead_not_busy():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        rt.write_status(RtStatus(tick_count=4))
        block = rt._block
        link_mod.struct.pack_into("<Q", block.buf, link_mod._STATUS_AT, block.seq(link_mod._STATUS_AT) + 1)
        status = sup.read_status()
        assert status is not None and status.tick_count == 4 and not status.alive
    finally:
        sup.close(), rt.close()


def test_a_status_never_written_is_not_alive():
    rt, sup = RtSide("a"), SupervisorSide("a")
    try:
        assert not sup.read_status().alive
    finally:
        sup.close(), rt.close()


# -- the private directory and the block -------------------------------------------------------------
def test_link_lives_in_a_private_directory_with_a_private_block(private_dir):
    rt = RtSide("a")
    try:
        assert link_dir() == private_dir and rt.path == private_dir / "a"
        d, f = os.stat(private_dir), os.stat(rt.path)
        assert stat.S_IMODE(d.st_mode) == 0o700 and d.st_uid == os.geteuid()
        assert stat.S_IMODE(f.st_mode) == 0o600 and f.st_uid == os.geteuid() and f.st_size == SIZE
        assert int((private_dir / "a.lock").read_text()) == os.getpid()
    finally:
        rt.close()
    assert not (private_dir / "a").exists()  # the block goes with its instance


def test_default_directory_is_per_user(monkeypatch):
    monkeypatch.delenv("DISCHARGE_EDGE_SHM_DIR")
    assert str(link_dir()) == f"/dev/shm/discharge-edge-{os.geteuid()}"


@as_root
def test_a_directory_of_another_user_is_refused(private_dir):
    private_dir.mkdir(mode=0o700)
    os.chown(private_dir, NOBODY, NOBODY)
    for side in (RtSide, SupervisorSide):
        with pytest.raises(LinkError, match=f"refusing link directory {private_dir}: owner uid {NOBODY}, mode 0700"):
            side("a")
    assert os.listdir(private_dir) == []  # nothing was created in it


def test_a_directory_open_to_others_is_refused(private_dir):
    private_dir.mkdir()
    os.chmod(private_dir, 0o777)
    with pytest.raises(LinkError, match=f"refusing link directory {private_dir}: owner uid {os.geteuid()}, mode 0777"):
        RtSide("a")


def test_a_symlinked_directory_is_refused(private_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    private_dir.symlink_to(elsewhere)
    with pytest.raises(LinkError, match="it is a symbolic link"):
        RtSide("a")
    assert os.listdir(elsewhere) == []


def _plant_block(private_dir, mode: int, uid: int | None = None):
    private_dir.mkdir(mode=0o700)
    planted = private_dir / "a"
    planted.write_bytes(b"x" * SIZE)
    os.chmod(planted, mode)
    if uid is not None:
        os.chown(planted, uid, uid)
    return planted


@as_root
def test_a_block_created_by_another_user_is_refused(private_dir):
    planted = _plant_block(private_dir, 0o600, NOBODY)
    with pytest.raises(LinkError, match=f"refusing link {planted}: owner uid {NOBODY}, mode 0600"):
        RtSide("a")
    with pytest.raises(LinkError, match=f"refusing link {planted}: owner uid {NOBODY}"):
        SupervisorSide("a")
    assert planted.read_bytes() == b"x" * SIZE and os.stat(planted).st_uid == NOBODY  # untouched


def test_a_block_open_to_everyone_is_refused(private_dir):
    planted = _plant_block(private_dir, 0o666)
    for side in (RtSide, SupervisorSide):
        with pytest.raises(LinkError, match=f"refusing link {planted}: owner uid {os.geteuid()}, mode 0666"):
            side("a")
    assert planted.read_bytes() == b"x" * SIZE


def test_a_block_whose_mode_changed_under_a_running_core_is_refused_by_the_supervisor():
    rt = RtSide("a")
    try:
        os.chmod(rt.path, 0o666)
        with pytest.raises(LinkError, match="mode 0666"):
            SupervisorSide("a")
    finally:
        rt.close()


def test_a_symlink_is_never_followed(private_dir, tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    os.chmod(target, 0o644)
    private_dir.mkdir(mode=0o700)
    (private_dir / "a").symlink_to(target)
    for side in (RtSide, SupervisorSide):
        with pytest.raises(LinkError, match=f"refusing link {private_dir / 'a'}: it is a symbolic link"):
            side("a")
    assert target.read_bytes() == b"keep me" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert (private_dir / "a").is_symlink()


def test_a_symlinked_lock_file_is_refused(private_dir, tmp_path):
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    private_dir.mkdir(mode=0o700)
    (private_dir / "a.lock").symlink_to(target)
    with pytest.raises(LinkError, match="lock file .* symbolic link"):
        RtSide("a")
    assert target.read_bytes() == b"keep me"


def test_a_stale_block_of_a_dead_instance_is_replaced(private_dir):
    planted = _plant_block(private_dir, 0o600)  # ours, right mode, and no lock held: a crash's leftover
    rt = RtSide("a")
    try:
        assert planted.read_bytes()[:4] == b"DEDG"  # made anew (the inode number may be reused)
        sup = SupervisorSide("a")  # a sound block: its header is ours
        rt.write_status(RtStatus(tick_count=9))
        assert sup.read_status().tick_count == 9
        sup.close()
    finally:
        rt.close()


def test_a_missing_link_says_no_core_runs():
    with pytest.raises(LinkError, match="no rtcore running on link a .*is the rtcore process running"):
        SupervisorSide("a")


def test_a_block_of_another_layout_is_refused():
    rt = RtSide("a")
    try:
        link_mod._HEADER.pack_into(rt._block.buf, 0, b"DEDG", 1, 1234)
        with pytest.raises(LinkError, match=r"layout b'DEDG' v1 .* this build speaks b'DEDG' v2"):
            SupervisorSide("a")
    finally:
        rt.close()


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden"])
def test_link_names_are_plain(name):
    with pytest.raises(LinkError, match="plain name"):
        RtSide(name)


# -- one instance per link -----------------------------------------------------------------------------
def test_a_second_instance_is_refused_and_the_first_keeps_working(private_dir):
    first = hold_link("a", private_dir)
    try:
        inode = os.stat(private_dir / "a").st_ino
        with pytest.raises(AlreadyRunning, match=f"rtcore already running on link a \\(pid {first.pid}\\)"):
            RtSide("a")
        assert os.stat(private_dir / "a").st_ino == inode  # the first's block is untouched
        sup = SupervisorSide("a")
        assert sup.read_status().tick_count == 1
        sup.close()
    finally:
        first.stdin.close()
        assert first.wait(timeout=10) == 0
    rt = RtSide("a")  # the first is gone: the link is free
    rt.close()


def test_one_process_cannot_serve_a_link_twice():
    rt = RtSide("a")
    try:
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            RtSide("a")
    finally:
        rt.close()


def test_closing_does_not_remove_a_block_that_is_not_ours(private_dir):
    rt = RtSide("a")
    os.unlink(private_dir / "a")
    replacement = private_dir / "a"
    replacement.write_bytes(b"other")
    rt.close()
    assert replacement.read_bytes() == b"other"


def test_a_supervisor_follows_a_core_restarted_after_a_crash(private_dir):
    first = hold_link("a", private_dir)
    sup = SupervisorSide("a")
    try:
        assert sup.read_status().tick_count == 1
        first.kill()  # kill -9: the block stays behind, its heartbeat ages
        first.wait(timeout=10)
        rt = RtSide("a")  # the restart replaces the stale block
        try:
            rt.write_status(RtStatus(tick_count=77))
            status = sup.read_status()
            assert status.alive and status.tick_count == 77 and sup.path == private_dir / "a"
        finally:
            rt.close()
    finally:
        sup.close()
        first.stdout.close()
        first.stdin.close()
