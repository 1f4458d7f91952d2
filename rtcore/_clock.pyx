# cython: language_level=3
"""Compiled clock for the real-time loop: CLOCK_MONOTONIC, absolute-deadline sleep, SCHED_FIFO.

Owns `monotonic_ns`, `sleep_until_ns` (clock_nanosleep TIMER_ABSTIME, called without the GIL),
`Periodic` (absolute-deadline period; lateness per wake-up; missed deadlines skipped and
counted) and `request_realtime` (sched_setscheduler SCHED_FIFO + mlockall). No I/O, no logging:
the caller logs `RealtimeGrant.message`. Twin: rtcore/twin_clock.py. Tests: tests/rtcore/test_clock.py.
"""

from libc.errno cimport errno
from libc.string cimport strerror
from posix.mman cimport MCL_CURRENT, MCL_FUTURE, mlockall
from posix.time cimport CLOCK_MONOTONIC, TIMER_ABSTIME, clock_gettime, clock_nanosleep, timespec

from rtcore.spec import RealtimeGrant

cdef extern from "<sched.h>" nogil:
    cdef struct sched_param:
        int sched_priority
    int SCHED_FIFO
    int SCHED_RESET_ON_FORK
    int sched_setscheduler(int pid, int policy, const sched_param* param)
    int sched_get_priority_min(int policy)
    int sched_get_priority_max(int policy)

cdef extern from "<errno.h>" nogil:
    int EINTR


cdef bint mlocked = False  # mlockall again in a locked process stalled for minutes here


cdef inline long long now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef long long sleep_until_c(long long deadline_ns) noexcept nogil:
    """Sleep to an absolute CLOCK_MONOTONIC deadline (retry on EINTR); return lateness >= 0."""
    cdef timespec ts
    cdef long long now
    ts.tv_sec = deadline_ns // 1000000000
    ts.tv_nsec = deadline_ns % 1000000000
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR:
        pass
    now = now_ns()
    return now - deadline_ns if now > deadline_ns else 0


def monotonic_ns():
    """CLOCK_MONOTONIC in nanoseconds."""
    return now_ns()


def sleep_until_ns(long long deadline_ns):
    """Sleep until CLOCK_MONOTONIC reaches `deadline_ns`; return the lateness in ns (>= 0)."""
    cdef long long late
    with nogil:
        late = sleep_until_c(deadline_ns)
    return late


cdef class Periodic:
    """Absolute deadlines every `period_ns`; `wait()` sleeps (without the GIL) to the next one.

    A wake-up later than a whole period counts the deadlines it missed in `overruns` and
    skips them, so the loop never tries to catch up with a burst of ticks.
    """

    cdef readonly long long period_ns
    cdef readonly long long deadline_ns
    cdef readonly long long overruns
    cdef readonly long long ticks

    def __init__(self, period_ns, start_ns=None):
        if int(period_ns) <= 0:
            raise ValueError(f"Periodic.period_ns: must be > 0, got {period_ns}")
        self.period_ns = period_ns
        self.deadline_ns = (now_ns() if start_ns is None else int(start_ns)) + self.period_ns
        self.overruns = 0
        self.ticks = 0

    def wait(self):
        """Sleep until the next deadline; return this wake-up's lateness in ns."""
        cdef long long late, missed
        with nogil:
            late = sleep_until_c(self.deadline_ns)
            self.ticks += 1
            missed = late // self.period_ns
            self.overruns += missed
            self.deadline_ns += (missed + 1) * self.period_ns
        return late


def request_realtime(int priority, bint lock_memory=True):
    """Ask for SCHED_FIFO at `priority` and (unless told not to) mlockall(MCL_CURRENT|MCL_FUTURE)."""
    global mlocked
    cdef sched_param param
    cdef int low = sched_get_priority_min(SCHED_FIFO)
    cdef int high = sched_get_priority_max(SCHED_FIFO)
    cdef int err
    notes = []
    fifo = False
    if not low <= priority <= high:
        notes.append(f"SCHED_FIFO refused: priority {priority} outside [{low}, {high}]")
    else:
        param.sched_priority = priority
        # reset on fork: a child (a helper process, a subprocess) must not inherit real-time priority
        if sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0:
            fifo = True
            notes.append(f"SCHED_FIFO granted at priority {priority}")
        else:
            err = errno
            notes.append(f"SCHED_FIFO refused: {strerror(err).decode()} (errno {err}); "
                         "needs CAP_SYS_NICE or an RLIMIT_RTPRIO >= priority")
    if not lock_memory:
        mlock = False
        notes.append("mlockall not asked for")
    elif mlocked:
        mlock = True
        notes.append("mlockall(MCL_CURRENT|MCL_FUTURE) granted (earlier in this process)")
    elif mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
        mlock = mlocked = True
        notes.append("mlockall(MCL_CURRENT|MCL_FUTURE) granted")
    else:
        err = errno
        mlock = False
        notes.append(f"mlockall refused: {strerror(err).decode()} (errno {err}); "
                     "needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK")
    return RealtimeGrant(fifo_granted=fifo, priority=priority if fifo else 0,
                         mlock_granted=mlock, message="; ".join(notes))
