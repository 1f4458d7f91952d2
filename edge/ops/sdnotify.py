"""systemd's sd_notify protocol with the standard library: READY=1, WATCHDOG=1, STOPPING=1, STATUS=.

Owns `Notifier`: one datagram a message to the unix socket named by `$NOTIFY_SOCKET` (a path, or
`@name` for the abstract namespace), as `sd_notify(3)` sends it. Without the variable (not started
by systemd, a terminal, a test) every call is a no-op that returns False, so callers never branch.
A send that fails is logged once and never raises: a service must not stop because its manager
cannot be told. `watchdog_interval_s()` reads `$WATCHDOG_USEC` (and `$WATCHDOG_PID`, which must
be this process when set) as `sd_watchdog_enabled(3)` does; `Notifier.watchdog()` sends at most
once a quarter of that interval, so calling it every scan is cheap. `STATUS=` text is one line.
Tests: tests/edge/ops/test_sdnotify.py.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_interval_s"]

log = logging.getLogger(__name__)

SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"
STATUS_MAX_CHARS = 200


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The service's watchdog interval in seconds (WatchdogSec=), or None when it has none or the
    watchdog is meant for another process."""
    env = os.environ if env is None else env
    usec = env.get(WATCHDOG_USEC_ENV, "")
    pid = env.get(WATCHDOG_PID_ENV, "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 if value > 0 else None


def _address(name: str) -> str | bytes:
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


class Notifier:
    """Messages to the service manager. `address` defaults to `$NOTIFY_SOCKET` (None or empty: off)."""

    def __init__(self, address: str | None = None, *, env: Mapping[str, str] | None = None,
                 clock=time.monotonic):
        env = os.environ if env is None else env
        self.address = address if address is not None else env.get(SOCKET_ENV) or None
        self.watchdog_s = watchdog_interval_s(env)
        self._clock = clock
        self._last_watchdog: float | None = None
        self._failed = False
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=VALUE` lines in one datagram; True when it was sent."""
        if self.address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)  # a reader that does not read never stops the caller's loop
            self._socket.sendto(message, _address(self.address))
            return True
        except OSError as exc:
            if not self._failed:
                log.warning("sd_notify: cannot send to %s: %s (further failures not logged)", self.address, exc)
                self._failed = True
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *self._status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *self._status(status))

    def status(self, text: str) -> bool:
        return self.notify(*self._status(text))

    def watchdog(self, *, force: bool = False) -> bool:
        """WATCHDOG=1, at most once a quarter of the watchdog interval (always with `force`, or
        when the service has no interval set); True when sent."""
        now = self._clock()
        if not force and self.watchdog_s is not None and self._last_watchdog is not None \
                and now - self._last_watchdog < self.watchdog_s / 4:
            return False
        sent = self.notify("WATCHDOG=1")
        if sent:
            self._last_watchdog = now
        return sent

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _status(text: str | None) -> tuple[str, ...]:
        if not text:
            return ()
        return ("STATUS=" + " ".join(text.split())[:STATUS_MAX_CHARS],)
