"""One handle for the rtcore process: spawn it from a tag map, attach to the link, read status, arm, stop.

`RtcoreHandle.spawn(tag_map, ...)` starts the real-time loop (`process.run_rtcore`) in its own OS
process (multiprocessing, spawn) against the PLC of `tag_map`, a frozen `TagMap` object: aim it
with `port=`/`host=` (applied with `TagMap.with_endpoint`) or hand over a map already aimed (a
bench server's `tag_map`). A map with no endpoint port is refused. `plc_values=` runs the loop on
an in-memory PLC holding those values instead (no network; `bench rtcore`). The loop starts not
armed; the state dir, if given, keeps its latches and events (and `rtcore.log`) as `rtcore run`
does. `fixture=` is the station geometry the core uses (`LineConfig.rtcore_fixture()`, as
`rtcore run --line` gives it); None: the map's `fixture:`, else the even split.
`RtcoreHandle.spawn_line(line, ...)` spawns the core of a line file: its rtcore map, its link and
its fixture.

The process body installs its SIGTERM/SIGINT handlers first: either signal sets the loop's stop
event, the loop ends at its next tick and writes the safe value of every rtcore output, and the
run summary comes back over a pipe. `stop(timeout_s)` sends SIGTERM, joins, and sends SIGKILL
only when the timeout passes (logged as a warning: the safe values were then not written by
the core, only the PLC's watchdog protects the line). `kill()` is SIGKILL at once (crash tests).

`RtcoreHandle.attach_only(link)` is the same supervisor end for a core started elsewhere (a
service, `rtcore run`): status, setpoints, arm and resets; it does not own the process, so it
cannot stop or kill it.

Every wait is a bounded poll of the link's status (`attach`, `wait_for`, `join`, `stop`), never a
fixed sleep. A failure is an `RtcoreError` naming the link and, for a spawned core that died,
its pid and exit code.
Tests: tests/edge/rtloop/test_handle.py, test_handle_fixture.py.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import multiprocessing as mp
import time
import uuid
from pathlib import Path
from typing import Callable

from edge.rtloop.link import LinkError, RtStatus, SupervisorSide, heartbeat_age_s
from edge.rtloop.loop import LoopSettings
from edge.tagmap import TagMap
from rtcore.spec import Fixture, Setpoints

log = logging.getLogger(__name__)

POLL_S = 0.02  # status poll interval of the bounded waits
LOG_FILE = "rtcore.log"


class RtcoreError(RuntimeError):
    """The rtcore process or its link cannot be used; the message names the link (and exit code)."""


def new_link_name(prefix: str = "discharge-edge-rt") -> str:
    """A link name of its own (one shared-memory block per running core)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def aimed(tag_map: TagMap, host: str | None = None, port: int | None = None) -> TagMap:
    """`tag_map` aimed at host:port (either may stay as the map has it); refused without a port."""
    if host is not None or port is not None:
        tag_map = tag_map.with_endpoint(host if host is not None else tag_map.endpoint.host,
                                        port if port is not None else tag_map.endpoint.port)
    endpoint = tag_map.endpoint
    port = endpoint.port
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535 or not endpoint.host:
        raise ValueError(f"{tag_map.source}: the map has no endpoint to reach the PLC (host {endpoint.host!r}, "
                         f"port {port!r}); aim it with port=/host= (TagMap.with_endpoint)")
    return tag_map


class RtcoreHandle:
    """The supervisor's handle on one rtcore process (spawned here, or attached to)."""

    def __init__(self, link: str, process=None, results=None):
        """Use `spawn` or `attach_only`."""
        self.link = link
        self._process = process
        self._results = results  # the read end of the pipe the summary comes back on
        self._side: SupervisorSide | None = None
        self._summary: dict | None = None
        self._last: RtStatus | None = None
        self._link_problem = "it never appeared"

    # -- making one ------------------------------------------------------------------------------
    @classmethod
    def spawn(cls, tag_map: TagMap, *, host: str | None = None, port: int | None = None, link: str | None = None,
              state_dir: Path | None = None, seconds: float | None = None, settings: LoopSettings | None = None,
              plc_values: dict | None = None, fixture: Fixture | None = None, **settings_fields) -> RtcoreHandle:
        """Start the loop in its own process; it does not wait for the link (see `attach`).

        `settings_fields` are LoopSettings fields (over `settings` if given); `seconds` ends the run
        by itself (None: until `stop`); `plc_values` (tag name -> value) runs it on an in-memory
        PLC seeded with them instead of the map's endpoint; `fixture` the line's station geometry
        (None: the map's, else the even split)."""
        if fixture is not None and not isinstance(fixture, Fixture):
            raise TypeError(f"fixture must be an rtcore.spec.Fixture (LineConfig.rtcore_fixture()), got "
                            f"{type(fixture).__name__}")
        settings = dataclasses.replace(settings or LoopSettings(), **settings_fields)
        if plc_values is None:
            tag_map = aimed(tag_map, host, port)
        elif host is not None or port is not None:
            raise ValueError("an in-memory PLC has no endpoint: give plc_values or host/port, not both")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"seconds must be > 0 or None, got {seconds!r}")
        link = link or new_link_name()
        ctx = mp.get_context("spawn")
        receive, send = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_rtcore_child, name=f"rtcore-{link}",
                              args=(tag_map, link, seconds, settings, None if state_dir is None else str(state_dir),
                                    plc_values, send, fixture))
        process.start()
        send.close()  # ours: the child holds the write end, so its death reads as EOF
        log.info("rtcore: spawned pid %d on link %s against %s (%s; fixture: %s)", process.pid, link, tag_map.source,
                 "in-memory PLC" if plc_values is not None else
                 f"{tag_map.endpoint.host}:{tag_map.endpoint.port}",
                 "the line's" if fixture is not None else "the map's" if tag_map.fixture is not None else "even split")
        return cls(link, process, receive)

    @classmethod
    def spawn_line(cls, line, *, tag_map: TagMap | None = None, link: str | None = None,
                   **kwargs) -> RtcoreHandle:
        """Spawn the core of a line file (`edge.supervisor.line.LineConfig`): its rtcore map (or
        `tag_map`, the same map aimed elsewhere), its `rtcore_link` (or `link`) and its fixture
        (`line.rtcore_fixture()`), as `rtcore run --line` runs it. Other arguments as `spawn`."""
        return cls.spawn(tag_map if tag_map is not None else line.rtcore_map, link=link or line.rtcore_link,
                         fixture=line.rtcore_fixture(), **kwargs)

    @classmethod
    def attach_only(cls, link: str, timeout_s: float = 0.0) -> RtcoreHandle:
        """The handle of a core started elsewhere (a service); with `timeout_s` > 0, `attach` first."""
        handle = cls(link)
        if timeout_s > 0:
            handle.attach(timeout_s)
        return handle

    # -- the process -------------------------------------------------------------------------------
    @property
    def spawned(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode if self._process is not None else None

    @property
    def alive(self) -> bool:
        """A spawned core: its process runs. Attached only: the link's heartbeat is fresh."""
        if self._process is not None:
            return self._process.is_alive()
        status = self.status()
        return bool(status is not None and status.alive)

    def _died(self, doing: str) -> RtcoreError:
        return RtcoreError(f"the rtcore process (pid {self.pid}) on link {self.link} ended with exit code "
                           f"{self.exitcode} {doing}; its log is on stderr")

    # -- the link ------------------------------------------------------------------------------------
    def _try_attach(self) -> SupervisorSide | None:
        if self._side is None:
            try:
                self._side = SupervisorSide(self.link)
            except LinkError as exc:
                self._link_problem = str(exc)
                return None
        return self._side

    def _need_side(self) -> SupervisorSide:
        side = self._try_attach()
        if side is None:
            if self._process is not None and not self._process.is_alive():
                raise self._died("before its link was up")
            raise RtcoreError(f"no rtcore link {self.link} yet (attach first): {self._link_problem}")
        return side

    def attach(self, timeout_s: float = 10.0) -> RtStatus:
        """Wait (at most `timeout_s`) for the link and a live status from the loop; returns it.

        Refused with RtcoreError naming the link: the spawned process died (with its exit code),
        the link never appeared, or the core behind it is not alive (its last heartbeat's age)."""
        deadline = time.monotonic() + timeout_s
        problem = None
        while True:
            if self._process is not None and not self._process.is_alive():
                raise self._died("before its link was up")
            side = self._try_attach()
            if side is not None:
                status = side.read_status()
                if status is not None:
                    self._last = status
                    if status.alive and status.tick_count > 0:
                        return status
                    age = heartbeat_age_s(status)
                    problem = ("the core behind it is not alive (" +
                               ("it never wrote a status" if age is None else f"last heartbeat {age:.1f} s ago") + ")")
            if time.monotonic() >= deadline:
                raise RtcoreError(f"no live rtcore on link {self.link} within {timeout_s:g} s: "
                                  f"{problem or self._link_problem}")
            time.sleep(POLL_S)

    def status(self) -> RtStatus | None:
        """The loop's last status (None before the link is up, or while a write keeps it busy)."""
        side = self._try_attach()
        status = side.read_status() if side is not None else None
        if status is not None:
            self._last = status
        return status

    def send_setpoints(self, setpoints: Setpoints) -> None:
        self._need_side().send_setpoints(setpoints)

    def arm(self, timeout_s: float | None = None) -> RtStatus | None:
        """Ask the loop to arm (clear every latch). With `timeout_s`, wait until it has carried it out."""
        before = self._resets_done()
        self._need_side().request_reset()
        if timeout_s is None:
            return None
        return self.wait_for(lambda s: s.resets_done > before, timeout_s, "the arm carried out")

    def reset_station(self, station: int, timeout_s: float | None = None) -> RtStatus | None:
        """Ask the loop to clear one station's latch (it does not arm). With `timeout_s`, wait for it."""
        side = self._need_side()
        status = self.status() or self._last
        if status is not None and status.n_stations and not 0 <= station < status.n_stations:
            raise ValueError(f"station {station} is outside 0..{status.n_stations - 1} on link {self.link}")
        before = status.station_resets_done if status is not None else 0
        side.request_reset(station)
        if timeout_s is None:
            return None
        return self.wait_for(lambda s: s.station_resets_done > before, timeout_s, f"the reset of station {station}")

    def _resets_done(self) -> int:
        status = self.status() or self._last
        return status.resets_done if status is not None else 0

    def wait_for(self, predicate: Callable[[RtStatus], object], timeout_s: float, what: str = "the condition",
                 poll_s: float = POLL_S, after_exit: bool = False) -> RtStatus:
        """Poll the status until `predicate(status)` is true; returns that status. RtcoreError when a
        spawned core dies first (unless `after_exit`: a crash test waits on the dead core's last
        status), TimeoutError (with the last status) after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status is not None and predicate(status):
                return status
            if not after_exit and self._process is not None and not self._process.is_alive():
                raise self._died(f"while waiting for {what}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"not within {timeout_s:g} s on link {self.link}: {what}; last status: "
                                   f"{_describe(self._last)}")
            time.sleep(poll_s)

    # -- the end ---------------------------------------------------------------------------------------
    def _own(self, what: str) -> None:
        if self._process is None:
            raise RtcoreError(f"cannot {what} the rtcore on link {self.link}: attached only, the process is not ours")

    def _collect(self, timeout_s: float) -> dict | None:
        if self._summary is None and self._results is not None:
            try:
                if self._results.poll(max(0.0, timeout_s)):
                    self._summary = self._results.recv()
            except (EOFError, OSError):
                pass  # died without a summary
        return self._summary

    def join(self, timeout_s: float) -> dict:
        """Wait for a run with `seconds` to end by itself; its summary. RtcoreError if it did not end
        within `timeout_s` (it keeps running: `stop` it) or ended without a summary."""
        self._own("join")
        deadline = time.monotonic() + timeout_s
        summary = self._collect(timeout_s)
        self._process.join(max(0.0, deadline - time.monotonic()))
        if self._process.is_alive():
            raise RtcoreError(f"the rtcore process (pid {self.pid}) on link {self.link} still runs after "
                              f"{timeout_s:g} s")
        summary = summary or self._collect(0.5)
        if summary is None:
            raise self._died("without a run summary")
        return summary

    def stop(self, timeout_s: float = 15.0) -> dict:
        """SIGTERM: the loop writes its safe values and ends; returns its run summary. SIGKILL only
        when it has not ended within `timeout_s` (logged; RtcoreError, there is no summary then).
        A core that has already ended gives its summary."""
        self._own("stop")
        process = self._process
        if process.is_alive():
            process.terminate()
        deadline = time.monotonic() + timeout_s
        summary = self._collect(timeout_s)
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            log.warning("rtcore: pid %d on link %s did not end within %g s of SIGTERM; sending SIGKILL (its safe "
                        "values were not written by the core: the PLC's watchdog drops the stations)",
                        process.pid, self.link, timeout_s)
            process.kill()
            process.join(5.0)
        summary = summary or self._collect(0.5)
        if summary is None:
            raise self._died("without a run summary")
        return summary

    def kill(self, timeout_s: float = 5.0) -> None:
        """SIGKILL, no safe values (a crash); returns once the process is gone."""
        self._own("kill")
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout_s)

    def close(self) -> None:
        """Let go of the link (the process, if any, is left as it is: `stop` it first)."""
        if self._side is not None:
            self._side.close()
            self._side = None
        if self._results is not None:
            self._results.close()
            self._results = None

    def __enter__(self) -> RtcoreHandle:
        return self

    def __exit__(self, *exc) -> None:
        """A spawned core still running is stopped (SIGTERM, safe values); the link is let go."""
        try:
            if self._process is not None and self._process.is_alive():
                try:
                    self.stop()
                except RtcoreError as err:
                    log.error("%s", err)
        finally:
            self.close()

    def __repr__(self) -> str:
        who = f"pid {self.pid}" if self._process is not None else "attached only"
        return f"RtcoreHandle(link={self.link!r}, {who})"


def _describe(status: RtStatus | None) -> str:
    if status is None:
        return "none"
    return (f"alive {status.alive}, armed {status.armed}, ticks {status.tick_count}, line safe {status.safe_state} "
            f"({status.safe_cause:#x}), station causes {[hex(c) for c in status.station_cause]}")


def _rtcore_child(tag_map: TagMap, link: str, seconds: float | None, settings: LoopSettings, state_dir: str | None,
                  plc_values: dict | None, results, fixture: Fixture | None = None) -> None:
    """Body of a spawned rtcore process. SIGTERM and SIGINT end the loop at its next tick (installed
    before anything else); it writes its safe values and sends its summary."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    from edge.bus import MemoryPlc, open_bus
    from edge.rtloop.process import run_rtcore
    from edge.rtloop.service import EventLog, LatchStore
    from edge.tagmap import Owner

    root = logging.getLogger()
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s rtcore[{link}]: %(message)s"))
    root.addHandler(stderr)
    root.setLevel(logging.WARNING)
    latches = events = None
    if state_dir is not None:
        path = Path(state_dir)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(path / LOG_FILE, maxBytes=8 << 20, backupCount=3)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file_handler)
        root.setLevel(logging.INFO)
        latches, events = LatchStore(path, link), EventLog(path)
    if plc_values is not None:
        plc = MemoryPlc(tag_map)
        for name, value in plc_values.items():
            plc.set(name, value)
        bus = open_bus(tag_map, Owner.RTCORE, plc=plc)
    else:
        bus = open_bus(tag_map, Owner.RTCORE)
    summary = run_rtcore(bus, settings=settings, link_name=link, duration_s=seconds, stop=stop, latches=latches,
                         events=events, fixture=fixture)
    results.send(summary)
    results.close()
