"""The operator page served by uvicorn on a thread of the supervisor process.

Owns `start_page(hub, endpoint, state_dir, ...) -> PageServer` (started, its port known: 0 asks
for a free one) and `PageServer.stop()` (the event streams end, uvicorn shuts down, the thread is
joined). The scan loop stays the one thread that drives the PLC: the page only reads the hub and
queues commands on it. Tests: tests/edge/hmi/test_app.py, tests/edge/hmi/test_chromium.py.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path

from edge.lineview.model import LineHub
from edge.lineview.serve import Access, Endpoint, ServeError

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
REPORT_MAX_AGE_S = 5.0
"""A report written less than this ago is served as it is: one costs about 0.9 s of CPU in the
supervisor's process (6 batteries), and GET /report needs no token."""


def report_writer(state_dir: Path, *, time_scale: float = 1.0, max_age_s: float = REPORT_MAX_AGE_S,
                  clock=time.monotonic):
    """A `report()` for the page: the batch report written to `<state dir>/report.html` (None: no
    batch recorded yet); the one written less than `max_age_s` ago when there is one."""
    from edge.report.collect import ReportError

    lock = threading.Lock()  # one report at a time: two requests would write the same temporary file
    written: list[float] = []  # when this writer last wrote the report (clock)

    def write() -> Path | None:
        from edge.report.html import write_report

        out = Path(state_dir) / REPORT_FILE
        with lock:  # requests waiting here take the report the first one wrote
            if written and clock() - written[0] < max_age_s and out.exists():
                return out
            try:
                write_report(state_dir, out, time_scale=time_scale)
            except ReportError as exc:
                log.info("report: %s", exc)
                return None
            written[:] = [clock()]
        return out

    return write


def _hosts(host: str) -> tuple[str, ...]:
    """The Host headers a request may carry: the address served and localhost; any name when the
    page is served on every address (0.0.0.0 or ::, as the line file may ask)."""
    if ipaddress.ip_address(host).is_unspecified:
        return ("*",)
    return tuple(dict.fromkeys((host, "127.0.0.1", "localhost", "::1", f"[{host}]")))


class PageServer:
    def __init__(self, app, endpoint: Endpoint, stopping: threading.Event):
        import uvicorn

        self.endpoint = endpoint
        self._stopping = stopping
        config = uvicorn.Config(app, host=endpoint.host, port=endpoint.port, log_level="warning", lifespan="off",
                                access_log=False, timeout_graceful_shutdown=3)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="hmi-http", daemon=True)
        self.port = endpoint.port
        self.exit_code: int | None = None

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit as exc:  # uvicorn exits its startup with 3 (the port in use): start() reports it
            self.exit_code = exc.code if isinstance(exc.code, int) else 1

    def start(self, timeout_s: float = 10.0) -> PageServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServeError(f"the operator page could not listen on {self.endpoint.host}:{self.endpoint.port} "
                                 f"(uvicorn exit {self.exit_code}: the port in use? another address?)")
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(f"the operator page did not start within {timeout_s:g} s")
            time.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.endpoint.port
        return self

    @property
    def url(self) -> str:
        return Endpoint(self.endpoint.host, self.port).url("http")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_page(hub: LineHub, endpoint: Endpoint, access: Access, *, state_dir: Path | None = None,
               time_scale: float = 1.0, start_timeout_s: float = 10.0) -> PageServer:
    """Serve the page for `hub` on `endpoint` (port 0: a free one; `PageServer.port` says which)."""
    from edge.hmi.app import create_app

    stopping = threading.Event()
    report = report_writer(state_dir, time_scale=time_scale) if state_dir is not None else None
    app = create_app(hub, access, report=report, hosts=_hosts(endpoint.host), stopping=stopping)
    return PageServer(app, endpoint, stopping).start(start_timeout_s)
