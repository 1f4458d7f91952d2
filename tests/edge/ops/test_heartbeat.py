"""edge/ops/heartbeat.py: READY with the first tick, WATCHDOG only while the ticks grow, STOPPING at the end."""

import socket
import threading

import pytest

from edge.ops.heartbeat import TickWatch, status_line
from edge.ops.sdnotify import Notifier
from edge.rtloop.link import RtStatus
from rtcore.spec import Flag

pytestmark = pytest.mark.unit


@pytest.fixture
def manager(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield path, sock
    sock.close()


def drain(sock) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def status(ticks: int, **fields) -> RtStatus:
    return RtStatus(**{"tick_count": ticks, "armed": True, "n_stations": 2, "station_cause": (0, 0),
                       "station_permit": (True, True), **fields})


def test_ready_once_ticking_watchdog_while_ticks_grow_and_stopping_on_stop(manager):
    path, sock = manager
    seen = [None]
    stop = threading.Event()
    watch = TickWatch(Notifier(env={"NOTIFY_SOCKET": str(path)}), lambda: seen[0], stop, poll_s=1.0)
    watch.look()  # no link yet
    seen[0] = status(0)
    watch.look()  # not ticking yet
    assert drain(sock) == []
    seen[0] = status(5)
    watch.look()
    assert drain(sock) == ["READY=1\nSTATUS=armed, line ok, 0 of 2 stations isolated, 5 ticks", "WATCHDOG=1"]
    watch.look()  # the same tick count: the loop hangs, no ping
    assert drain(sock) == []
    seen[0] = status(9, station_cause=(int(Flag.OVER_TEMP), 0))
    watch.look()
    assert drain(sock) == ["STATUS=armed, line ok, 1 of 2 stations isolated (0), 9 ticks", "WATCHDOG=1"]
    seen[0] = status(12, station_cause=(int(Flag.OVER_TEMP), 0))
    watch.look()
    assert drain(sock) == ["WATCHDOG=1"]  # the status line is sent when it changes, not per tick count
    seen[0] = status(20, alive=False)
    watch.look()
    assert drain(sock) == []  # a loop that ended is not pinged
    stop.set()
    watch.look()
    assert drain(sock) == ["STOPPING=1\nSTATUS=stopping: writing the safe values"]
    watch.close()
    assert drain(sock) == []  # STOPPING once
    assert watch.pings == 3


def test_the_thread_pings_and_says_stopping_when_closed(manager):
    path, sock = manager
    ticks = iter(range(1, 10_000))
    watch = TickWatch(Notifier(env={"NOTIFY_SOCKET": str(path)}), lambda: status(next(ticks)), threading.Event(),
                      poll_s=0.01).start()
    got: list[str] = []
    for _ in range(500):
        got += drain(sock)
        if got.count("WATCHDOG=1") >= 3:
            break
        threading.Event().wait(0.01)
    watch.close()
    got += drain(sock)
    assert got[0].startswith("READY=1\n") and got.count("WATCHDOG=1") >= 3 and got[-1].startswith("STOPPING=1")


def test_status_line_of_a_safe_line():
    text = status_line(status(3, safe_state=True, safe_cause=int(Flag.LINK_LOST), armed=False))
    assert text == "not armed, line SAFE (LINK_LOST), 0 of 2 stations isolated, 3 ticks"


def test_poll_follows_the_watchdog_interval():
    notifier = Notifier(env={"NOTIFY_SOCKET": "/nowhere", "WATCHDOG_USEC": "2000000"})
    assert TickWatch(notifier, lambda: None, threading.Event()).poll_s == 0.5
    assert TickWatch(Notifier(env={}), lambda: None, threading.Event()).poll_s == 1.0
    with pytest.raises(ValueError, match="poll_s must be > 0"):
        TickWatch(notifier, lambda: None, threading.Event(), poll_s=0)
