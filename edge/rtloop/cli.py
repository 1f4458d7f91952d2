"""`discharge-edge rtcore run|status|reset`: the real-time process and its supervisor link.

`run` is the rtcore OS process: it takes the link's instance lock first (a second `run` on the
same link exits 3, "rtcore already running on link X (pid N)", and touches nothing), logs at
INFO on stderr and to `<state dir>/rtcore.log` (rotated), refuses a map that does not give the
core its roles (edge/tagmap/roles.py `role_problems`, each problem with file and line), binds
the map's PLC (Modbus TCP or EtherNet/IP) to the kernel and ticks until SIGINT/SIGTERM or
`--seconds`; on the way out the loop writes the safe value of every rtcore output. Latches and
events live in the state dir. `run --line LINE.yaml` takes the map, the fixture (the line's,
station by station), the link and the state dir (`<line state dir>/rtcore`, as the
supervisor's `--spawn-rtcore` does) from the line file: the service's one config (deploy/).
Under systemd (`$NOTIFY_SOCKET`) `run` tells the manager READY=1 once the loop ticks,
WATCHDOG=1 while the tick count grows, a STATUS= line, and STOPPING=1 on the way out
(edge/ops/heartbeat.py).
`status` and `reset` are the supervisor's end of the link, for an operator at a terminal:
`status` prints the line, then a table of the stations (state word, decoded causes with the
marker, hottest °C, the current limit, permit, coolant, relief) and the decoded line flags
(`--json` keeps the numbers and bit fields) and exits 1 when no core runs or it is dead; `reset`
arms (clears every latch), `reset --station S` clears one station.
Exit codes (RUN_EXIT_CODES, also in `rtcore run --help`): 0 done, 1 a problem (no core, bad map
or line file, reset not carried out), 3 already running, 4 (`run`) stopped without its safe
values written: the PLC did not take them at the stop (gone, refusing), so the outputs' state is
unknown, whatever the core last wrote; only the PLC's own watchdog on the core's heartbeat
(plc_tags/README.md) stops the stations. The summary says `"safe_values_written": false`, stderr
and the log say it in words. Under systemd (deploy/discharge-edge-rtcore.service) Restart=always
restarts the unit after any exit it did not ask for, 4 included (the unit lists no
RestartPreventExitStatus=); after a `systemctl stop` the unit is left failed with status 4 in the
journal (systemd labels it NOPERMISSION, the LSB name of 4: read it as this code).
Tests: tests/edge/rtloop/test_cli.py, test_lifecycle.py, test_run_exit_code.py,
tests/edge/ops/test_rtcore_notify.py, tests/edge/rtloop/test_status_table.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import logging.handlers
import math
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

from edge.cli import EXIT_PROBLEM, INPUT_ERRORS, print_json, refuse_input
from edge.rtloop.link import AlreadyRunning, LinkError, RtStatus, SupervisorSide, heartbeat_age_s
from edge.rtloop.service import EventLog, InstanceLock, LatchStore, default_state_dir, flag_names

log = logging.getLogger(__name__)
DEFAULT_LINK = "discharge-edge-rtcore"
EXIT_ALREADY_RUNNING = 3
EXIT_SAFE_VALUES_NOT_WRITTEN = 4
"""`rtcore run` stopped, but the PLC did not take the safe values: the outputs' state is unknown."""
RUN_EXIT_CODES = (
    (0, "stopped (--seconds, SIGTERM, SIGINT) with every output's safe value written"),
    (1, "a problem: a bad map or line file, a map without the core's roles, an unusable link or state dir"),
    (EXIT_ALREADY_RUNNING, "an rtcore already runs on this link (nothing touched)"),
    (EXIT_SAFE_VALUES_NOT_WRITTEN, "stopped, but the PLC did not take the safe values (gone or refusing): the "
                                   "outputs' state is unknown; only the PLC's watchdog on the core's heartbeat "
                                   "stops the stations. Check the outputs at the PLC"),
)
LOG_FILE = "rtcore.log"
LOG_FILE_BYTES = 8 << 20
RESET_WAIT_S = 3.0  # how long `reset` waits to see the core carry it out


def register(subparsers) -> None:
    rt = subparsers.add_parser("rtcore", help="run the real-time process, or talk to a running one")
    actions = rt.add_subparsers(dest="rtcore_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run the real-time loop against the map's PLC",
                             formatter_class=argparse.RawDescriptionHelpFormatter,
                             epilog="exit codes:\n" + "\n".join(_wrap_code(c, text) for c, text in RUN_EXIT_CODES))
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--map", type=Path, help="tag map of the PLC")
    source.add_argument("--line", type=Path, help="the line file: its rtcore map, link and state dir")
    run.add_argument("--link", default=None, help=f"name of the supervisor link (shared memory; default "
                                                   f"the line's, else {DEFAULT_LINK})")
    run.add_argument("--state-dir", type=Path, default=None,
                     help="latches, events and rtcore.log (default <line state dir>/rtcore with --line, "
                          "else $DISCHARGE_EDGE_STATE_DIR or ./state/rtcore)")
    run.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until a signal)")
    run.add_argument("--period-ms", type=float, default=100.0)
    run.add_argument("--json", action="store_true")
    run.set_defaults(func=cmd_run)
    status = actions.add_parser("status", help="print the running loop's status, per station")
    reset = actions.add_parser("reset", help="arm: clear every latch (the loop re-latches if the fault persists)")
    reset.add_argument("--station", type=int, default=None, help="clear this station's latch only (does not arm)")
    for sub, func in ((status, cmd_status), (reset, cmd_reset)):
        sub.add_argument("--link", default=DEFAULT_LINK)
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(func=func)


def _wrap_code(code: int, text: str) -> str:
    return textwrap.fill(text, width=79, initial_indent=f"  {code}  ", subsequent_indent=" " * 5)


# -- run ------------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    line = None
    if args.line is not None:
        from edge.supervisor.line import LineError, load_line

        try:
            line = load_line(args.line)
            if args.state_dir is None:
                args.state_dir = line.state_paths().state_dir / "rtcore"
        except (LineError, ValueError) as exc:
            print(f"discharge-edge rtcore run: {exc}", file=sys.stderr)
            return 1
        args.link = args.link or line.rtcore_link
    args.link = args.link or DEFAULT_LINK
    args.tag_map = None if line is None else line.rtcore_map
    args.fixture = None if line is None else line.rtcore_fixture()  # the line's geometry, station by station
    try:
        lock = InstanceLock(args.link)  # first: a second instance must touch nothing
    except AlreadyRunning as exc:
        print(f"discharge-edge rtcore: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    except LinkError as exc:
        print(f"discharge-edge rtcore: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: _stop(stop, signum))  # the loop ends at its next tick
    handler = None
    try:
        state_dir = args.state_dir or default_state_dir()
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            handler = _log_to(state_dir / LOG_FILE)
        except OSError as exc:
            print(f"discharge-edge rtcore: cannot use state dir {state_dir}: {exc}", file=sys.stderr)
            return 1
        watch = _watch_ticks(args.link, stop)
        try:
            return _run(args, state_dir, stop)
        finally:
            watch.close()  # STOPPING=1 (the safe values are written by now)
            watch.notifier.close()
            for side in watch.sides:
                side.close()
    finally:
        lock.release()
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _stop(stop: threading.Event, signum: int) -> None:
    stop.signal = signal.Signals(signum).name  # logged once the loop is out (no logging in a handler)
    stop.set()


def _watch_ticks(link: str, stop: threading.Event):
    """The sd_notify side of the process (a no-op thread's worth without $NOTIFY_SOCKET)."""
    from edge.ops.heartbeat import TickWatch
    from edge.ops.sdnotify import Notifier

    side: list[SupervisorSide] = []

    def read_status() -> RtStatus | None:
        if not side:  # the loop creates the link's block: attach once it exists
            try:
                side.append(SupervisorSide(link))
            except LinkError:
                return None
        return side[0].read_status()

    notifier = Notifier()
    watch = TickWatch(notifier, read_status, stop)
    watch.sides = side  # closed with the watch (cmd_run)
    if notifier.enabled:
        watch.start()
    return watch


def _log_to(path: Path) -> logging.Handler:
    """INFO and above on stderr (the root's handler) and in a rotated file."""
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_FILE_BYTES, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return handler


def _run(args: argparse.Namespace, state_dir: Path, stop: threading.Event) -> int:
    from edge.bus import open_bus
    from edge.rtloop.loop import LoopSettings
    from edge.rtloop.process import run_rtcore
    from edge.tagmap import Owner, TagMapError, load_tag_map
    from edge.tagmap.roles import role_problems

    try:
        tag_map = args.tag_map if getattr(args, "tag_map", None) is not None else load_tag_map(args.map)
    except TagMapError as exc:
        log.error("refusing to start: the tag map has problems:\n%s", exc)
        return 1
    except INPUT_ERRORS as exc:  # not UTF-8: edge.cli's one input-error path
        return refuse_input("rtcore run", args.map, exc, EXIT_PROBLEM)
    problems = role_problems(tag_map, Owner.RTCORE)
    if problems:  # a role the core needs, missing or of the wrong shape: refused before the bus opens
        text = "\n".join(str(p) for p in problems)
        log.error("refusing to start: the tag map does not give the core its roles:\n%s", text)
        print(f"discharge-edge rtcore run: the tag map does not give the core its roles:\n{text}", file=sys.stderr)
        return 1
    log.info("rtcore: starting on link %s, map %s, period %g ms, state dir %s", args.link, tag_map.source,
             args.period_ms, state_dir)
    bus = open_bus(tag_map, Owner.RTCORE)
    try:
        summary = run_rtcore(bus, settings=LoopSettings(period_s=args.period_ms / 1e3), link_name=args.link,
                             duration_s=args.seconds, stop=stop, latches=LatchStore(state_dir, args.link),
                             events=EventLog(state_dir), fixture=getattr(args, "fixture", None))
    except (LinkError, ValueError) as exc:
        log.error("rtcore: cannot run: %s", exc)
        return 1
    written = summary.get("safe_values_written") is True
    if stop.is_set():
        log.info("rtcore: stopped by %s; safe values %s", getattr(stop, "signal", "a signal"),
                 "written" if written else "NOT written")
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key:20s} {value}")
    if not written:
        why = ("the PLC did not take the safe values at the stop: the outputs' state is unknown (what the core last "
               "wrote, or older); only the PLC's watchdog on the core's heartbeat stops the stations. Check the "
               f"outputs at the PLC ({tag_map.endpoint.host}:{tag_map.endpoint.port}, {tag_map.source})")
        log.error("rtcore: %s", why)
        print(f"discharge-edge rtcore run: {why}; exit {EXIT_SAFE_VALUES_NOT_WRITTEN}", file=sys.stderr)
        return EXIT_SAFE_VALUES_NOT_WRITTEN
    return 0


# -- status and reset -------------------------------------------------------------------------------
def _attach(link: str) -> SupervisorSide | None:
    try:
        return SupervisorSide(link)
    except LinkError as exc:
        print(f"discharge-edge rtcore: {exc}", file=sys.stderr)
        return None


def status_payload(link: str, status: RtStatus) -> dict:
    """The status as JSON: every number as it travels, plus the link and the heartbeat's age."""
    payload = {"link": link, **dataclasses.asdict(status)}
    payload = {k: [_finite(x) for x in v] if isinstance(v, tuple) else v for k, v in payload.items()}
    age = heartbeat_age_s(status)
    payload["heartbeat_age_s"] = None if age is None else round(age, 3)
    return payload


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _fmt_causes(cause: int, marker: int) -> str:
    if not cause:
        return "-"
    names = ",".join(flag_names(cause))
    return f"{names} (marker {marker})" if marker >= 0 else names


CAUSE_TEXT = {
    "RELIEF_ACTIVE": "a marker's ΔT is at or above the threshold: relief and coolant are on",
    "SAFE_STATE": "the line is latched safe: every output at its safe value until an arm",
    "DTDT_ALARM": "temperature rising ≥ 1 °C/s for more than 3 s (GB 38031-2025)",
    "SENSOR_NONFINITE": "a temperature reads NaN or infinite",
    "SENSOR_OUT_OF_RANGE": "a temperature is outside the plausible range",
    "SENSOR_STUCK": "a temperature repeated bit for bit too long",
    "PRESSURE_NONFINITE": "an applied pressure reads NaN or infinite",
    "LINK_LOST": "the PLC did not answer for longer than the blind time",
    "OVERRUN_STREAK": "the tick overran its period too many times in a row",
    "EXCEPTION": "the loop raised an exception (or a latch file was unreadable)",
    "DTDT_PENDING": "temperature rising ≥ 1 °C/s now, not yet for 3 s",
    "SENSOR_SUSPECT": "a sensor looks bad, not yet confirmed",
    "OVER_TEMP": "a marker at or above its station's temperature limit (maximum safety)",
    "STATION_ISOLATED": "some station is isolated until its reset",
}
"""What each flag of rtcore.spec.Flag means, for the operator reading `rtcore status`."""


def _legend(status: RtStatus) -> list[str]:
    """One line per flag name shown above: what it means."""
    seen: list[str] = []
    for bits in (status.flags, status.safe_cause, *status.station_cause):
        seen += [name for name in flag_names(bits) if name not in seen]
    return [f"  {name:19s} {CAUSE_TEXT.get(name, 'see rtcore/README.md')}" for name in seen]


def _station_summary(status: RtStatus) -> str:
    isolated = [s for s, c in enumerate(status.station_cause) if c]
    derated = [s for s in range(status.n_stations)
               if not status.station_cause[s] and status.station_current_limit_frac[s] < 0.995]
    permits = sum(1 for p in status.station_permit if p)

    def which(stations: list[int]) -> str:
        return f" ({', '.join(map(str, stations[:12]))}{', ...' if len(stations) > 12 else ''})" if stations else ""
    return (f"stations   {status.n_stations}: {permits} with permit, {len(isolated)} isolated{which(isolated)}, "
            f"{len(derated)} derated below 100 %{which(derated)}")


def format_status(link: str, status: RtStatus) -> str:
    """A readable report: the line, then one row per station."""
    age = heartbeat_age_s(status)
    lines = [
        f"rtcore on link {link}: {'alive' if status.alive else 'NOT ALIVE'}"
        f"{'' if age is None else f' (heartbeat {age:.2f} s ago)'}, {'armed' if status.armed else 'NOT ARMED'}",
        f"line       {'SAFE: ' + _fmt_causes(status.safe_cause, status.fault_marker) if status.safe_state else 'ok'}",
        f"flags      {','.join(flag_names(status.flags)) or '-'}",
        f"ticks      {status.tick_count}, overruns {status.overruns}, lateness p99 "
        f"{status.lateness_p99_ns / 1e6:.2f} ms, work mean/max {status.work_mean_ns / 1e6:.2f}/"
        f"{status.work_max_ns / 1e6:.2f} ms",
        f"bus        misses {status.bus_misses}, errors {status.link_errors}",
        f"setpoints  applied #{status.setpoints_applied}, rejected {status.setpoints_rejected}; "
        f"resets {status.resets_done}, station resets {status.station_resets_done}",
    ]
    if status.n_stations:
        header = f"{'station':>7}  {'state':8}  {'hottest °C':>10}  {'limit %':>7}  {'permit':6}  " \
                 f"{'coolant L/min':>13}  {'relief kPa':>10}  causes"
        lines += ["", header]
        for s in range(status.n_stations):
            cause = status.station_cause[s]
            lines.append(
                f"{s:>7}  {'isolated' if cause else 'ok':8}  {status.station_hot_degc[s]:>10.1f}  "
                f"{100 * status.station_current_limit_frac[s]:>7.0f}  {'yes' if status.station_permit[s] else 'no':6}  "
                f"{status.station_coolant_lpm[s]:>13.1f}  {status.station_relief_max_kpa[s]:>10.0f}  "
                f"{_fmt_causes(cause, status.station_fault_marker[s])}")
        lines += ["", _station_summary(status)]
    legend = _legend(status)
    if legend:
        lines += ["", "what the flags mean:", *legend]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    side = _attach(args.link)
    if side is None:
        return 1
    try:
        status = side.read_status()
    finally:
        side.close()
    if status is None:
        print(f"discharge-edge rtcore: the status on link {args.link} stayed busy; try again", file=sys.stderr)
        return 1
    if args.json:
        print_json(status_payload(args.link, status))
    else:
        print(format_status(args.link, status))
    if not status.alive:
        age = heartbeat_age_s(status)
        print(f"discharge-edge rtcore: the rtcore on link {args.link} is not alive "
              f"({'it never wrote a status' if age is None else f'last heartbeat {age:.1f} s ago'}); "
              "what is shown is its last status", file=sys.stderr)
        return 1
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    side = _attach(args.link)
    if side is None:
        return 1
    try:
        before = side.read_status()
        if before is None or not before.alive:
            print(f"discharge-edge rtcore: the rtcore on link {args.link} is not alive; nothing to reset",
                  file=sys.stderr)
            return 1
        if args.station is not None and not 0 <= args.station < before.n_stations:
            print(f"discharge-edge rtcore: station {args.station} is outside 0..{before.n_stations - 1}",
                  file=sys.stderr)
            return 1
        side.request_reset(args.station)
        after, done = _wait_for_reset(side, before, args.station)
    finally:
        side.close()
    what = "arm" if args.station is None else f"reset of station {args.station}"
    result = {"link": args.link, "station": args.station, "reset_requested": True, "carried_out": done}
    if after is not None:
        result.update(armed=after.armed, safe_state=after.safe_state, safe_cause=after.safe_cause)
        if args.station is not None:
            result["station_cause"] = after.station_cause[args.station]
    if args.json:
        print_json(result)
    elif done:
        print(f"{what} carried out on {args.link}")
    if not done:
        print(f"discharge-edge rtcore: the rtcore on link {args.link} did not carry out the {what} "
              f"within {RESET_WAIT_S:g} s", file=sys.stderr)
        return 1
    still = _still_latched(after, args.station)
    if still:
        print(f"discharge-edge rtcore: latched again at once: {still} (the fault persists)", file=sys.stderr)
    return 0


def _wait_for_reset(side: SupervisorSide, before: RtStatus, station: int | None) -> tuple[RtStatus | None, bool]:
    deadline = time.monotonic() + RESET_WAIT_S
    status = None
    while time.monotonic() < deadline:
        status = side.read_status() or status
        if status is not None:
            if station is None and status.resets_done > before.resets_done:
                return status, True
            if station is not None and status.station_resets_done > before.station_resets_done:
                return status, True
            if not status.alive:
                break
        time.sleep(0.02)
    return status, False


def _still_latched(status: RtStatus | None, station: int | None) -> str:
    if status is None:
        return ""
    if station is not None:
        cause, marker = status.station_cause[station], status.station_fault_marker[station]
        return f"station {station}: {_fmt_causes(cause, marker)}" if cause else ""
    parts = []
    if status.safe_state:
        parts.append(f"line: {_fmt_causes(status.safe_cause, status.fault_marker)}")
    parts += [f"station {s}: {_fmt_causes(c, m)}" for s, (c, m) in
              enumerate(zip(status.station_cause, status.station_fault_marker)) if c]
    return "; ".join(parts)
