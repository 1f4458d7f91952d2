"""The rtcore process's sd_notify side: READY once the loop ticks, WATCHDOG while it goes on ticking.

Owns `TickWatch`, a thread of the rtcore process (`rtcore run`) that reads the loop's own status
from its link every `poll_s` and tells systemd (edge/ops/sdnotify.py):
- READY=1 with the first status whose tick count is above zero (the loop reads and writes the
  PLC): the supervisor's unit, ordered after this one, starts only then;
- WATCHDOG=1 each time the tick count has grown since the last look: a loop that hangs (a
  blocked bus call, a deadlock) stops the pings, and systemd kills and restarts the process after
  WatchdogSec (the PLC's own watchdog on rtcore_heartbeat has made the line safe long before);
- STATUS= a one-line summary (ticks, armed, the line's latch, isolated stations) when it changes;
- STOPPING=1 when `stop` is set (SIGTERM) or the watch is closed.
It never touches the loop: `read_status` is a callable returning an RtStatus or None.
Tests: tests/edge/ops/test_heartbeat.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from edge.ops.sdnotify import Notifier
from edge.rtloop.link import RtStatus
from edge.rtloop.service import flag_names

__all__ = ["TickWatch", "status_line"]

DEFAULT_POLL_S = 1.0


def status_line(status: RtStatus) -> str:
    """One line for `systemctl status`: ticks, armed, the line's latch, isolated stations."""
    isolated = [s for s, cause in enumerate(status.station_cause) if cause]
    line = f"line SAFE ({'|'.join(flag_names(status.safe_cause)) or 'latched'})" if status.safe_state else "line ok"
    stations = f"{len(isolated)} of {status.n_stations} stations isolated" + (
        f" ({', '.join(map(str, isolated[:8]))}{'...' if len(isolated) > 8 else ''})" if isolated else "")
    return f"{'armed' if status.armed else 'not armed'}, {line}, {stations}, {status.tick_count} ticks"


class TickWatch:
    """Tells `notifier` about the loop behind `read_status` until `stop` is set or `close()`."""

    def __init__(self, notifier: Notifier, read_status: Callable[[], RtStatus | None], stop: threading.Event,
                 *, poll_s: float | None = None):
        if poll_s is None:
            poll_s = DEFAULT_POLL_S if notifier.watchdog_s is None else min(DEFAULT_POLL_S, notifier.watchdog_s / 4)
        if not poll_s > 0:
            raise ValueError(f"TickWatch.poll_s must be > 0, got {poll_s}")
        self.notifier = notifier
        self.poll_s = poll_s
        self._read = read_status
        self._stop = stop
        self._closed = threading.Event()
        self._last_ticks = 0
        self._last_text = ""
        self.ready_sent = False
        self.stopping_sent = False
        self.pings = 0
        self._thread = threading.Thread(target=self._run, name="sd-notify-tick-watch", daemon=True)

    def start(self) -> TickWatch:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()
        self._stopping()

    def look(self) -> None:
        """One look at the status (the thread's step; public for tests)."""
        if self._stop.is_set():
            self._stopping()
            return
        status = self._read()
        if status is None or not status.alive or status.tick_count <= self._last_ticks:
            return  # no new tick: no ping (systemd's watchdog counts the silence)
        self._last_ticks = status.tick_count
        text = status_line(status)
        if not self.ready_sent:
            self.ready_sent = self.notifier.ready(text) or not self.notifier.enabled
            self._last_text = text
        elif text.split(", ")[:3] != self._last_text.split(", ")[:3]:  # not on every tick count
            self.notifier.status(text)
            self._last_text = text
        if self.notifier.watchdog(force=True):
            self.pings += 1

    def _stopping(self) -> None:
        if not self.stopping_sent:
            self.stopping_sent = True
            self.notifier.stopping("stopping: writing the safe values")

    def _run(self) -> None:
        while not self._closed.wait(self.poll_s):
            self.look()
            if self.stopping_sent:
                return
