"""edge/ops/sdnotify.py: the datagrams systemd would read, on a unix socket of the test's own."""

import os
import socket

import pytest

from edge.ops.sdnotify import Notifier, watchdog_interval_s

pytestmark = pytest.mark.unit


@pytest.fixture
def manager(tmp_path):
    """A unix datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield path, sock
    sock.close()


def received(sock) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_watchdog_status_and_stopping_arrive_as_sd_notify_sends_them(manager):
    path, sock = manager
    with Notifier(env={"NOTIFY_SOCKET": str(path)}) as notifier:
        assert notifier.enabled
        assert notifier.ready("42 ticks, armed")
        assert received(sock) == ["READY=1", "STATUS=42 ticks, armed"]
        assert notifier.watchdog()
        assert received(sock) == ["WATCHDOG=1"]
        assert notifier.status("line SAFE (LINK_LOST)\nsecond line")
        assert received(sock) == ["STATUS=line SAFE (LINK_LOST) second line"]  # one line
        assert notifier.stopping()
        assert received(sock) == ["STOPPING=1"]


def test_the_abstract_namespace_address(tmp_path):
    name = f"discharge-edge-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert received(sock) == ["READY=1"]
    finally:
        sock.close()


def test_without_notify_socket_every_call_is_a_no_op():
    notifier = Notifier(env={})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False and notifier.stopping() is False


def test_a_socket_nobody_listens_on_is_logged_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False and notifier.watchdog() is False
    assert sum("sd_notify: cannot send" in r.getMessage() for r in caplog.records) == 1


def test_watchdog_is_sent_at_most_once_a_quarter_interval(manager):
    path, sock = manager
    now = [100.0]
    notifier = Notifier(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, clock=lambda: now[0])
    assert notifier.watchdog_s == 2.0
    assert notifier.watchdog() is True
    now[0] += 0.4
    assert notifier.watchdog() is False  # within 0.5 s (a quarter of 2 s)
    now[0] += 0.2
    assert notifier.watchdog() is True
    assert notifier.watchdog(force=True) is True
    assert [received(sock) for _ in range(3)] == [["WATCHDOG=1"]] * 3


@pytest.mark.parametrize("env, interval", [
    ({"WATCHDOG_USEC": "5000000"}, 5.0),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
    ({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}, None),  # another process's watchdog
    ({"WATCHDOG_USEC": "0"}, None), ({"WATCHDOG_USEC": "soon"}, None), ({}, None),
])
def test_watchdog_interval_as_sd_watchdog_enabled_reads_it(env, interval):
    assert watchdog_interval_s(env) == interval


def test_a_reader_that_never_reads_does_not_block_the_sender(tmp_path):
    import socket

    from edge.ops.sdnotify import Notifier

    path = tmp_path / "full.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))  # never read: its queue fills
    notifier = Notifier(env={"NOTIFY_SOCKET": str(path)})
    sent = [notifier.watchdog(force=True) for _ in range(5000)]
    notifier.close()
    sock.close()
    assert sent[0] is True and sent[-1] is False  # the queue filled; the later pings were dropped, not waited on
