"""The operator page: a Starlette app over a `LineHub` (edge/lineview/model.py).

Owns `create_app(hub, access, ...)` and its routes; the page itself is plain files in
edge/hmi/static/ (index.html, app.js, style.css: no build step).

    GET  /                  the page
    GET  /static/...        its files
    GET  /api/snapshot      the latest LineSnapshot as JSON
    GET  /api/events        server-sent events: `event: snapshot` with the JSON of each published
                            snapshot (the latest first), a comment every `keepalive_s`
    GET  /api/whoami        {"role": ...} for the bearer token (401 without a known one)
    POST /api/command       {"command": "hold"} | {"command": "acknowledge", "alarm_id": 3} |
                            {"command": "setpoint", "name": "max_current_a", "value": 10}
                            with `Authorization: Bearer TOKEN`: 200 carried out, 409 refused (the
                            line's state, the role), 401 no or unknown token, 400 a bad body
    GET  /report            the batch report (edge/report), made from the state dir on request

Reading needs no token; commanding does (edge/lineview/serve.py, Access). Requests whose Host is
not the address served (or localhost) are refused (a page of another site cannot reach the line
through DNS rebinding); no CORS, so another origin cannot send the bearer header either.
Tests: tests/edge/hmi/test_app.py, tests/edge/hmi/test_chromium.py.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from edge.lineview.model import LineCommand, LineHub, LineSnapshot, Role
from edge.lineview.serve import Access

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
KEEPALIVE_S = 15.0
SUBMIT_TIMEOUT_S = 5.0
ENCODED_KEPT = 16  # snapshots whose SSE message is kept (a subscriber's queue holds 8)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    return token.strip() if kind.lower() == "bearer" and token.strip() else None


def create_app(hub: LineHub, access: Access, *, report: Callable[[], Path | None] | None = None,
               hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), keepalive_s: float = KEEPALIVE_S,
               submit_timeout_s: float = SUBMIT_TIMEOUT_S, stopping: threading.Event | None = None) -> Starlette:
    """`report()` writes the batch report and returns its path (None: no batch yet); `stopping`
    ends the event streams (the server's shutdown)."""
    stopping = stopping or threading.Event()

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def snapshot(request: Request) -> Response:
        return JSONResponse(hub.latest().to_dict(), headers={"Cache-Control": "no-store"})

    encoded: collections.OrderedDict[int, tuple[LineSnapshot, str]] = collections.OrderedDict()

    def event_of(snap: LineSnapshot) -> str:
        """The snapshot's SSE message, encoded once for every client (the streams run on one event
        loop): 50 clients of a 64-station line at 5 snapshots/s cost 48 % of a core when each
        encoded its own."""
        hit = encoded.get(id(snap))
        if hit is not None and hit[0] is snap:
            return hit[1]
        text = f"event: snapshot\ndata: {json.dumps(snap.to_dict(), allow_nan=False)}\n\n"
        encoded[id(snap)] = (snap, text)  # the snapshot kept: its id is not reused while here
        while len(encoded) > ENCODED_KEPT:
            encoded.popitem(last=False)
        return text

    async def events(request: Request) -> Response:
        sub = hub.subscribe()

        async def stream():
            try:
                yield "retry: 2000\n\n"
                yield event_of(hub.latest())
                quiet_s = 0.0
                while not stopping.is_set():
                    snap = await sub.aget(1.0)
                    if snap is None:
                        quiet_s += 1.0
                        if await request.is_disconnected():
                            break
                        if quiet_s >= keepalive_s:
                            quiet_s = 0.0
                            yield ": keepalive\n\n"
                        continue
                    quiet_s = 0.0
                    yield event_of(snap)
            except asyncio.CancelledError:
                raise
            finally:
                sub.close()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def _role(request: Request) -> Role | None:
        return access.role_of(_bearer(request))

    async def whoami(request: Request) -> Response:
        role = _role(request)
        if role is None:
            return JSONResponse({"error": "no known token: send Authorization: Bearer TOKEN (the line's access "
                                          f"file, {access.path.name})"}, status_code=401)
        return JSONResponse({"role": role.value})

    async def command(request: Request) -> Response:
        role = _role(request)
        if role is None:
            return JSONResponse({"ok": False, "message": "refused: no known token (Authorization: Bearer TOKEN "
                                 f"from the line's access file, {access.path.name})"}, status_code=401)
        try:
            body = await request.json()
            kind = str(body["command"]).lower()
            who = f"hmi {request.client.host if request.client else '?'} {role.value}"
            if kind == "acknowledge":
                cmd = LineCommand.acknowledge(int(body["alarm_id"]), by=who)
            elif kind == "setpoint":
                cmd = LineCommand.setpoint(str(body["name"]), float(body["value"]), by=who)
            else:
                cmd = LineCommand.packml(kind, by=who)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"ok": False, "message": f"bad request: {type(exc).__name__}: {exc}; allowed: "
                                 '{"command": "hold"}, {"command": "acknowledge", "alarm_id": N}, '
                                 '{"command": "setpoint", "name": NAME, "value": X}'}, status_code=400)
        result = await run_in_threadpool(hub.submit, cmd, role, submit_timeout_s)
        return JSONResponse(result.to_dict(), status_code=200 if result.ok else 409)

    async def report_page(request: Request) -> Response:
        if report is None:
            return PlainTextResponse("no report here", status_code=404)
        try:
            path = await run_in_threadpool(report)
        except Exception as exc:  # the report's own refusal, shown to the operator
            log.warning("report: %s", exc)
            return PlainTextResponse(f"report: {exc}", status_code=500)
        if path is None:
            return PlainTextResponse("no batch recorded yet", status_code=404)
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/snapshot", snapshot),
        Route("/api/events", events),
        Route("/api/whoami", whoami),
        Route("/api/command", command, methods=["POST"]),
        Route("/report", report_page),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))])
