"""Reference twin of the compiled clock (`rtcore._clock`): same names, stdlib only.

Owns: `monotonic_ns`, `sleep_until_ns` (absolute deadline on CLOCK_MONOTONIC), `Periodic`
(absolute-deadline period, lateness per wake-up) and `request_realtime` (SCHED_FIFO and
mlockall, reporting what the system granted). The twin sleeps with the GIL held in the
interpreter's own way (time.sleep releases it), so it is only the reference, not the RT loop.
Tests: tests/rtcore/test_clock.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

from rtcore.spec import RealtimeGrant

MCL_CURRENT = 1
MCL_FUTURE = 2
_locked = []  # one entry once mlockall succeeded: locking again stalled for minutes here


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def sleep_until_ns(deadline_ns: int) -> int:
    """Sleep until CLOCK_MONOTONIC reaches `deadline_ns`; return the lateness in ns (>= 0)."""
    deadline_ns = int(deadline_ns)
    while True:
        now = monotonic_ns()
        if now >= deadline_ns:
            return now - deadline_ns
        time.sleep((deadline_ns - now) / 1e9)


class Periodic:
    """Absolute deadlines every `period_ns`; `wait()` sleeps to the next one.

    A wake-up later than a whole period counts the deadlines it missed in `overruns` and
    skips them, so the loop never tries to catch up with a burst of ticks.
    """

    def __init__(self, period_ns: int, start_ns: int | None = None):
        if int(period_ns) <= 0:
            raise ValueError(f"Periodic.period_ns: must be > 0, got {period_ns}")
        self.period_ns = int(period_ns)
        self.deadline_ns = (monotonic_ns() if start_ns is None else int(start_ns)) + self.period_ns
        self.overruns = 0
        self.ticks = 0

    def wait(self) -> int:
        """Sleep until the next deadline; return this wake-up's lateness in ns."""
        lateness = sleep_until_ns(self.deadline_ns)
        self.ticks += 1
        missed = lateness // self.period_ns
        self.overruns += missed
        self.deadline_ns += (missed + 1) * self.period_ns
        return lateness


def _mlockall(flags: int) -> int:
    """Call libc mlockall; return 0 or the errno."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.mlockall(ctypes.c_int(flags)) != 0:
        return ctypes.get_errno()
    return 0


def request_realtime(priority: int, lock_memory: bool = True) -> RealtimeGrant:
    """Ask for SCHED_FIFO at `priority` and (unless told not to) mlockall(MCL_CURRENT|MCL_FUTURE)."""
    priority = int(priority)
    notes = []
    fifo = False
    try:
        low = os.sched_get_priority_min(os.SCHED_FIFO)
        high = os.sched_get_priority_max(os.SCHED_FIFO)
        if not low <= priority <= high:
            notes.append(f"SCHED_FIFO refused: priority {priority} outside [{low}, {high}]")
        else:
            # reset on fork: a child must not inherit real-time priority
            os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(priority))
            fifo = True
            notes.append(f"SCHED_FIFO granted at priority {priority}")
    except OSError as exc:
        notes.append(f"SCHED_FIFO refused: {os.strerror(exc.errno or 0)} (errno {exc.errno}); "
                     "needs CAP_SYS_NICE or an RLIMIT_RTPRIO >= priority")
    if not lock_memory:
        err = -1
        notes.append("mlockall not asked for")
    elif _locked:
        err = 0
        notes.append("mlockall(MCL_CURRENT|MCL_FUTURE) granted (earlier in this process)")
    elif (err := _mlockall(MCL_CURRENT | MCL_FUTURE)) == 0:
        _locked.append(True)
        notes.append("mlockall(MCL_CURRENT|MCL_FUTURE) granted")
    else:
        notes.append(f"mlockall refused: {os.strerror(err)} (errno {err}); "
                     "needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK")
    return RealtimeGrant(fifo_granted=fifo, priority=priority if fifo else 0,
                         mlock_granted=err == 0, message="; ".join(notes))
