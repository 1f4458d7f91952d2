"""`discharge-edge run --line LINE.yaml`: the supervisor process of one line.

Owns the subcommand (entry point `run = "edge.supervisor.cli:register"`) and `run_loop`, which
calls `FlowEngine.scan()` every `--scan-s` until SIGTERM/SIGINT or, with `--until-idle`, until
the queue is empty and every station empty or isolated. The rtcore process is attached to on the
line's link by default (it runs as its own service and keeps protecting while the supervisor is
down); `--spawn-rtcore` starts it from the line's rtcore map and stops it at the end. `--start`
is PackML Reset then Start at startup. Arrivals are graded and planned on a worker thread while
the scans go on. `--plc-port` aims both maps at another port of their host (a bench server on a
free port); `--time-scale` is for a bench in scaled time: the supervisor's clock (rests,
timeouts, records) runs that many plant seconds per wall second, the scan period stays in wall
seconds. `--json` prints one JSON object at the end; progress and logs go to stderr. A line the core
latched safe aborts (PackML); `--until-idle` then ends with exit code 1, naming the cause.
The line seen from outside (issue 18): when the line file's `serve:` section or `--http-port` /
`--opcua-port` asks (edge/lineview/serve.py), the loop publishes a `LineSnapshot` after every scan
on a `LineHub` and carries out the commands queued on it (between scans, as they come: the scan
thread stays the one that drives the PLC); the operator page (edge/hmi) is served by uvicorn on a
thread, OPC UA by edge/opcua when present, Sparkplug B by edge/sparkplug (`serve.sparkplug` or
`--sparkplug-broker`); without section or option nothing more is opened. Exit codes: 0
done, 1 refused (line file, models, a map without the flow's tags, the core, the serve section or
its access file, a port in use), 2 bad usage. Tests: tests/edge/supervisor/test_run_cli.py,
tests/edge/hmi/test_run_serves.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from edge.ops.sdnotify import Notifier
from edge.strategy.cli import positive_finite
from edge.supervisor.line import LineError, load_line
from edge.supervisor.store import StoreError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a line: the supervisor process (arrivals to records)")
    parser.add_argument("--line", required=True, type=Path, help="the line file (YAML)")
    parser.add_argument("--state-dir", type=Path, default=None, help="state dir (default: the line file's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--spawn-rtcore", action="store_true", help="start the rtcore process from the line's map")
    parser.add_argument("--start", action="store_true", help="PackML Reset then Start at startup")
    parser.add_argument("--until-idle", action="store_true",
                        help="end when nothing waits and every station is empty or isolated")
    parser.add_argument("--scan-s", type=positive_finite, default=1.0, help="scan period, s (default %(default)s)")
    parser.add_argument("--rest-s", type=positive_finite, default=60.0, help="rest before the rebound check, s")
    parser.add_argument("--simulations", type=int, default=16, help="game-tree simulations per tier")
    parser.add_argument("--no-tree", action="store_true", help="plan the initial strategies only")
    parser.add_argument("--plan-seconds", type=positive_finite, default=120.0,
                        help="game-tree time budget per tier, s (default %(default)s)")
    parser.add_argument("--plc-port", type=_port, default=None,
                        help="the PLC's TCP port for both maps (default: the maps' own)")
    parser.add_argument("--time-scale", type=positive_finite, default=1.0,
                        help="a bench in scaled time: plant seconds per wall second (default 1: a real line)")
    parser.add_argument("--http-port", type=_port_or_zero, default=None,
                        help="serve the operator page on this port (0: a free one, printed); the host is the "
                             "line file's serve.http.host, else 127.0.0.1")
    parser.add_argument("--opcua-port", type=_port_or_zero, default=None,
                        help="serve OPC UA on this port (0: a free one, printed); host as --http-port's")
    parser.add_argument("--sparkplug-broker", default=None, metavar="URL",
                        help="publish the line as a Sparkplug B edge node to this broker (mqtt://HOST[:PORT]); "
                             "the line file's serve.sparkplug gives the rest (group, node...)")
    parser.add_argument("--sparkplug-node", default=None, metavar="ID",
                        help="the Sparkplug B edge node id (default: serve.sparkplug.node, else the line's name); "
                             "two lines on one broker need two ids")
    parser.add_argument("--sparkplug-primary-host", default=None, metavar="ID",
                        help="wait for this primary host's STATE online before publishing (the plant's consumer, "
                             "e.g. `plant watch --host-id ID`): with it no report is lost across a broker restart")
    parser.set_defaults(func=run)


def _with_sparkplug_ids(config, args: argparse.Namespace):
    """`--sparkplug-node` and `--sparkplug-primary-host` over the line file's serve.sparkplug."""
    given = {key: value for key, value in (("node", getattr(args, "sparkplug_node", None)),
                                           ("primary_host", getattr(args, "sparkplug_primary_host", None)))
             if value is not None}
    if not given:
        return config
    if config.sparkplug is None:
        raise ValueError("--sparkplug-node and --sparkplug-primary-host need a broker: --sparkplug-broker URL "
                         "or the line file's serve.sparkplug.broker")
    return dataclasses.replace(config, sparkplug={**config.sparkplug, **given})


def _check_serve_options(config, line) -> None:
    """The OPC UA and Sparkplug B options of `serve:` checked with the line file, before the models
    and the store load (ValueError naming the file and the key)."""
    if config.opcua is not None:
        from edge.opcua.server import parse_options

        parse_options(config.opcua_options, str(line.source))
    if config.sparkplug is not None:
        from edge.sparkplug.publisher import sparkplug_options

        sparkplug_options(config.sparkplug, f"{line.source}: serve.sparkplug")


def _port_or_zero(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: allowed: a TCP port 0..65535 (0: a free one)")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: allowed: a TCP port 1..65535")
    return value


def run_loop(engine: FlowEngine, *, scan_s: float, until_idle: bool, stop: threading.Event,
             after_scan: Callable[[], None] | None = None, sleep: Callable[[float], None] | None = None,
             hub=None, report_path: str | None = None) -> int:
    """Scan every `scan_s` (monotonic deadlines, no drift) until `stop` or idle; returns the scans.

    With `hub` (edge.lineview.model.LineHub): the commands queued on it are carried out before each
    scan and, between scans, as soon as they come (each answered, then a fresh snapshot published);
    a snapshot is published after every scan."""
    from edge.lineview.model import apply, snapshot_of

    def commands() -> None:
        if hub.carry_out(lambda command, role: apply(engine, command, role)):
            hub.publish(snapshot_of(engine, report_path=report_path))

    scans = 0
    next_at = time.monotonic()
    wait = sleep or (lambda s: stop.wait(s))
    while not stop.is_set():
        if hub is not None:
            commands()
        engine.scan()
        scans += 1
        if hub is not None:
            hub.publish(snapshot_of(engine, report_path=report_path))
        if after_scan is not None:
            after_scan()
        if until_idle and scans > 1 and (engine.idle() or engine.needs_operator()):
            break
        next_at += scan_s
        if hub is None or sleep is not None:
            wait(max(0.0, next_at - time.monotonic()))
            continue
        while not stop.is_set():  # the wait, answering commands as they come
            left = next_at - time.monotonic()
            if left <= 0:
                break
            if hub.wait_for_command(min(left, 0.25)):
                commands()
    return scans


def run(args: argparse.Namespace, *, line=None, plc=None, after_scan=None, sleep=None, clock=None) -> int:
    """The subcommand. Keywords for in-process tests: `line` (a LineConfig instead of loading
    `--line`), `plc` (an in-memory PLC; no core attached), `after_scan`, `sleep`, `clock`."""
    from edge.supervisor.flow import FlowEngine, FlowError, FlowSettings, PlanSettings  # the flow: on use
    from edge.supervisor.models import ModelRefused, load_line_models

    try:
        line = line or load_line(args.line)
        if args.plc_port is not None:
            from edge.rtloop.handle import aimed

            line = dataclasses.replace(line, rtcore_map=aimed(line.rtcore_map, port=args.plc_port),
                                       supervisor_map=aimed(line.supervisor_map, port=args.plc_port))
        paths = line.state_paths(override=args.state_dir)
        from edge.lineview.serve import serve_config  # checked with the line file, before anything starts

        serve = serve_config(line, http_port=getattr(args, "http_port", None),
                             opcua_port=getattr(args, "opcua_port", None),
                             sparkplug_broker=getattr(args, "sparkplug_broker", None))
        serve = _with_sparkplug_ids(serve, args)
        _check_serve_options(serve, line)
        models = load_line_models(line.models.soc_gan_dir, line.models.rl_policy_dir)
    except (LineError, ValueError, ModelRefused) as exc:
        print(f"discharge-edge run: {exc}", file=sys.stderr)
        return 1
    core = None
    try:
        from edge.rtloop.handle import RtcoreError, RtcoreHandle

        if args.spawn_rtcore:
            core = RtcoreHandle.spawn_line(line, state_dir=paths.state_dir / "rtcore",  # with the line's fixture
                                           time_scale=args.time_scale)
            core.attach(10.0)
            if args.start:  # a core this run started: --start is the operator's arm too
                core.arm(timeout_s=5.0)
        elif plc is None:
            core = RtcoreHandle.attach_only(line.rtcore_link)
    except (RtcoreError, ValueError) as exc:
        print(f"discharge-edge run: rtcore: {exc}", file=sys.stderr)
        return 1
    settings = FlowSettings(scan_s=args.scan_s, rest_s=args.rest_s, plan_in_background=plc is None, history_thread=True,
                            plan=PlanSettings(max_simulations=args.simulations, max_seconds=args.plan_seconds,
                                              use_tree=not args.no_tree))
    if clock is None and args.time_scale != 1.0:
        scale = args.time_scale
        clock = lambda: time.time() * scale  # noqa: E731 (plant seconds on a scaled bench)
    try:
        engine = FlowEngine(line, paths.state_dir, models, core=core, settings=settings, plc=plc,
                            **({"clock": clock} if clock is not None else {}))
    except (FlowError, StoreError) as exc:
        print(f"discharge-edge run: {exc}", file=sys.stderr)
        if core is not None and core.spawned:
            core.stop()
        return 1
    try:
        served = _serve(serve, line, args, engine, paths.state_dir)
    except (ValueError, OSError) as exc:  # ServeError: the serve section, the access file, a port in use
        print(f"discharge-edge run: serve: {exc}", file=sys.stderr)
        engine.close()
        if core is not None and core.spawned:
            core.stop()
        return 1
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    notifier = Notifier()  # systemd's Type=notify (deploy/): READY, WATCHDOG each scan, STOPPING

    def scanned() -> None:
        notifier.watchdog()  # rate-limited to a quarter of WatchdogSec; a hung scan loop stops the pings
        if after_scan is not None:
            after_scan()

    summary = None
    try:
        if args.start and not engine.start():
            print(f"discharge-edge run: PackML start refused in {engine.machine.state.label}", file=sys.stderr)
        print(f"discharge-edge run: line {line.name}, {line.stations.count} stations, state {engine.machine.state.label}, "
              f"inbox {paths.inbox}", file=sys.stderr)
        notifier.ready(f"line {line.name}, {line.stations.count} stations, {engine.machine.state.label}")
        if served.hub is not None:
            from edge.lineview.model import snapshot_of

            served.hub.publish(snapshot_of(engine, report_path=served.report_path))
        scans = run_loop(engine, scan_s=args.scan_s, until_idle=args.until_idle, stop=stop,
                         after_scan=scanned, sleep=sleep, hub=served.hub, report_path=served.report_path)
        halted = engine.needs_operator()
        summary = engine.summary() | {"scans": scans, "halted": halted}
        if served.urls:
            summary["served"] = served.urls
    finally:
        served.stop()
        if served.sparkplug is not None and summary is not None:  # counted after NDEATH, the last message
            summary["sparkplug"] = served.sparkplug.stats()
        notifier.stopping()
        notifier.close()
        engine.close()
        if core is not None and core.spawned:
            core.stop()
    if args.json:
        from edge.cli import print_json

        print_json(summary)
    else:
        print(f"discharge-edge run: {summary['batteries_processed']} batteries recorded, "
              f"{summary['batteries_waiting']} waiting, {summary['restarts']} restarts", file=sys.stderr)
    if halted and args.until_idle:
        print(f"discharge-edge run: the line needs the operator: {halted}", file=sys.stderr)
        return 1
    return 0


class _Served:
    """What `run` serves of the line (nothing, the page, OPC UA) and how to stop it."""

    def __init__(self):
        self.hub = None
        self.report_path: str | None = None
        self.urls: dict[str, str] = {}
        self.sparkplug = None  # the publisher's handle: its counts go in run's summary
        self._stops: list[Callable[[], None]] = []

    def stop(self) -> None:
        while self._stops:
            try:
                self._stops.pop()()
            except Exception:  # a server that fails to stop must not hide the run's own outcome
                log.exception("stopping a server of the line")


def _serve(config, line, args: argparse.Namespace, engine, state_dir: Path) -> _Served:
    """Start what `config` (the line file's `serve:` and the options over it) asks for; nothing
    when it asks for nothing."""
    served = _Served()
    if not config.any:
        return served
    from edge.lineview.model import LineHub
    from edge.lineview.serve import load_access

    from edge.lineview.model import snapshot_of

    access = load_access(state_dir, config) if config.http is not None or config.opcua is not None else None
    served.hub = LineHub()
    served.hub.publish(snapshot_of(engine, report_path="/report" if config.http is not None else None))
    try:
        if config.http is not None:
            from edge.hmi.server import start_page

            served.report_path = "/report"
            page = start_page(served.hub, config.http, access, state_dir=state_dir,
                              time_scale=getattr(args, "time_scale", 1.0))
            served._stops.append(page.stop)
            served.urls["http"] = page.url
            print(f"discharge-edge run: operator page on {page.url} (tokens of the roles: {access.path})",
                  file=sys.stderr)
        if config.opcua is not None:
            from edge.opcua.server import start_opcua

            server = start_opcua(served.hub, config.opcua.host, config.opcua.port, access=access,
                                 state_dir=state_dir, options=config.opcua_options, line_name=line.name)
            served._stops.append(server.stop)
            url = server.url
            served.urls["opcua"] = url
            print(f"discharge-edge run: OPC UA on {url}", file=sys.stderr)
        if config.sparkplug is not None:
            from edge.sparkplug.publisher import sparkplug_options, start_sparkplug

            options = sparkplug_options(config.sparkplug, f"{line.source}: serve.sparkplug")
            options.setdefault("bdseq_path", str(state_dir / "sparkplug.bdseq"))  # a restart never reuses bdSeq 0
            handle = start_sparkplug(served.hub, **options)
            served.sparkplug = handle
            served._stops.append(handle.stop)
            served.urls["sparkplug"] = options["broker_url"]
            from edge.sparkplug.publisher import node_id_of

            node = options.get("node") or node_id_of(line.name)
            print(f"discharge-edge run: Sparkplug B to {options['broker_url']} (group {options['group']}, node "
                  f"{node})", file=sys.stderr)
    except BaseException:
        served.stop()
        raise
    return served
