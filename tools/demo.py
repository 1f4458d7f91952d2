"""`discharge-edge demo`: the main job on the embedded default, the whole product on the HIL bench.

1. The bench serves plc_tags/hil_modbus.yaml (or the Logix map, `--protocol logix`) on 127.0.0.1
   (a free port; its server thread at SCHED_FIFO `--bench-priority`, 40, below the core's 50, as a
   PLC of its own answers whatever else the machine runs). Its 8 stations start empty; its robot holds the first `--modules` rows of
   `--cells` (their truth) and loads them on the supervisor's request (the loading handshake).
   Battery `--short-module` of the batch (its row, from 0) has an internal short in a cell (a hot
   cell) from `--short-onset-s` after it is loaded, on whichever station takes it. The plant runs `--time-scale` plant seconds per wall
   second; the PLC program applies the core's permits and limits and drops every station when
   the core's heartbeat goes stale.
2. The rtcore process runs against it over the real protocol (`RtcoreHandle.spawn`, a service of
   its own), every 100 ms of wall time, and is armed here (the operator's reset).
3. The supervisor is `discharge-edge run` in its own OS process, on a line file written to
   OUT/line.yaml (lines/bench.yaml aimed at the served map, with a link of its own and the state
   dir OUT/state). The batch's arrival-test results (cell_id and the feat_* columns, no truth)
   are dropped into its inbox; it grades, plans per tier, loads the stations through the robot,
   discharges, rests, checks the rebound, unloads and records every battery, and ends when the
   line is idle.
4. `--crash-supervisor-at S`: S wall seconds after it started, the supervisor is killed with
   SIGKILL, left down `--down-s` wall seconds, and started again; it resumes from its store and
   the PLC. The core keeps protecting the line meanwhile; what it did is in the JSON.
5. `--serve` (issue 18): the supervisor serves the operator page on http://127.0.0.1:8080/ and OPC UA
   on opc.tcp://127.0.0.1:4840 (when edge.opcua is installed) while the batch runs; `--http-port`
   and `--opcua-port` change them (0: a free port, chosen once: a restarted supervisor serves on the same). The page's address is printed with the
   operator's token in its fragment (#token=..., from OUT/state/access.json) once it is up.
   `--sparkplug-broker URL`: the supervisor publishes the line as a Sparkplug B node there.
6. The report (tools/demo_report.py): OUT/batch.json (what `--json` prints), OUT/records/<cell>.json,
   OUT/report.png (per station: hottest cell, current, relief, coolant) and OUT/gantt.png.

Exit codes: 0 the batch completed (every battery recorded once, no line trip), 1 it did not,
2 bad usage. Tests: tests/tools/test_demo.py, tests/edge/hmi/test_demo_page.py (--serve).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from edge import REPO_ROOT
from edge.batterymodel.plc import NO_BATTERY, ROBOT_CYCLE_S
from edge.cli import print_json

log = logging.getLogger(__name__)

MAPS = {"modbus": REPO_ROOT / "plc_tags" / "hil_modbus.yaml", "logix": REPO_ROOT / "plc_tags" / "hil_logix.yaml"}
BASE_LINE = REPO_ROOT / "lines" / "bench.yaml"
PERIOD_S = 0.1  # the core's wall-clock tick
MAX_STATIONS = {"modbus": 128, "logix": 128}
"""The largest line: the supervisor link holds 128 stations (edge/rtloop/link.py); both protocols
carry them (requests split to the protocols' limits, issue 19)."""
MAX_SLOTS = 64  # the line file's bound on placement.slots
BENCH_DT_S = 0.5  # the plant's step, plant seconds (a fifth of a core tick at x25)
TRACE_EVERY_S = 5.0  # plant seconds between the report's samples
SUPERVISOR_SCAN_S = 0.2  # wall seconds between the supervisor's scans
BENCH_PRIORITY = 40  # SCHED_FIFO of the bench PLC server's thread: below the core's 50, above normal load


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the embedded default (HIL bench on loopback)")
    demo.add_argument("--cells", type=Path, default=None, help="cells CSV (default ../shared/data/cells_train.csv)")
    demo.add_argument("--modules", type=int, default=16, help="the batch: the file's first N rows (default 16)")
    demo.add_argument("--protocol", choices=sorted(MAPS), default="modbus")
    demo.add_argument("--bench-priority", type=int, default=BENCH_PRIORITY, choices=range(0, 100), metavar="0..99",
                      help="the bench PLC server's thread at SCHED_FIFO this priority, below the core's 50, as a "
                           "PLC of its own would answer beside other load (default %(default)s; 0: normal)")
    demo.add_argument("--robot-cycle-s", type=float, default=ROBOT_CYCLE_S,
                      help=f"the bench robot's pick-and-place cycle, plant seconds (default {ROBOT_CYCLE_S:g}; "
                           "0 = instant placement)")
    demo.add_argument("--slots", type=int, default=None,
                      help="inbox slots the robot picks from (default the bench map's, 4): the camera's tags "
                           "resized with the map, written to OUT/map.yaml")
    demo.add_argument("--stations", type=int, default=None,
                      help="stations of the line (default the bench map's, 8): the map is resized and written "
                           "to OUT/map.yaml, the line gets channels of as many stations as lines/bench.yaml's")
    demo.add_argument("--time-scale", type=float, default=25.0, help="plant seconds per wall second (default 25)")
    demo.add_argument("--short-module", type=int, default=1,
                      help="the batch's battery (row, from 0) with the hot cell (-1: none)")
    demo.add_argument("--short-onset-s", type=float, default=30.0,
                      help="plant seconds after that battery is loaded that its short starts")
    demo.add_argument("--short-ohm", type=float, default=0.25,
                      help="resistance of the internal short (0.25 ohm: the cell heats past the maximum safety "
                           "whatever relief and coolant do, and its station is isolated)")
    demo.add_argument("--crash-supervisor-at", type=float, default=None, metavar="S",
                      help="kill the supervisor with SIGKILL S wall seconds after it started, then start it again")
    demo.add_argument("--down-s", type=float, default=3.0, help="wall seconds the killed supervisor stays down")
    demo.add_argument("--simulations", type=int, default=4, help="game-tree simulations per tier (default 4)")
    demo.add_argument("--plan-seconds", type=float, default=20.0, help="game-tree time budget per tier, s")
    demo.add_argument("--rest-s", type=float, default=60.0, help="rest before the rebound check, plant seconds")
    demo.add_argument("--max-seconds", type=float, default=900.0,
                      help="wall seconds at most (the batch normally ends before: the supervisor finds the line idle)")
    demo.add_argument("--serve", action="store_true",
                      help="serve the operator page (and OPC UA when edge.opcua is there) while the batch runs")
    demo.add_argument("--http-port", type=int, default=8080,
                      help="with --serve: the page's port on 127.0.0.1 (default %(default)s; 0: a free one)")
    demo.add_argument("--opcua-port", type=int, default=4840,
                      help="with --serve: OPC UA's port on 127.0.0.1 (default %(default)s; 0: a free one)")
    demo.add_argument("--sparkplug-broker", default=None, metavar="URL",
                      help="the supervisor publishes the line as a Sparkplug B node to this broker (mqtt://HOST[:PORT])")
    demo.add_argument("--sparkplug-node", default=None, metavar="ID",
                      help="its node id (default: the line's name; two demos on one broker need two)")
    demo.add_argument("--sparkplug-primary-host", default=None, metavar="ID",
                      help="wait for this primary host's STATE online (e.g. `plant watch --host-id ID`)")
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.set_defaults(func=run_demo)


def _usage_error(args: argparse.Namespace) -> str | None:
    from edge.strategy.model import Strategy

    check_s = Strategy().check_interval_s
    tick_s = PERIOD_S * args.time_scale  # plant seconds per core tick
    if not 0 < tick_s <= check_s / 2:
        return (f"--time-scale {args.time_scale:g} gives a core tick of {tick_s:g} s of plant time; the ΔT check "
                f"interval ({check_s:g} s) needs at least two ticks: use a time scale in (0, {check_s / 2 / PERIOD_S:g}]")
    if args.modules < 1:
        return f"--modules {args.modules}: allowed: 1 or more"
    if not 0 <= args.robot_cycle_s <= 600:
        return f"--robot-cycle-s {args.robot_cycle_s:g}: allowed: 0..600 plant seconds"
    if args.slots is not None and not 1 <= args.slots <= MAX_SLOTS:
        return f"--slots {args.slots}: allowed: 1..{MAX_SLOTS}"
    top = MAX_STATIONS[args.protocol]
    if args.stations is not None and not 1 <= args.stations <= top:
        return f"--stations {args.stations}: allowed on {args.protocol}: 1..{top}"
    if not -1 <= args.short_module < args.modules:
        return f"--short-module {args.short_module}: allowed: -1 (none) or a battery of the batch, 0..{args.modules - 1}"
    if args.crash_supervisor_at is not None and not args.crash_supervisor_at >= 0:
        return f"--crash-supervisor-at {args.crash_supervisor_at:g}: allowed: wall seconds >= 0"
    for name in ("down_s", "plan_seconds", "rest_s", "max_seconds", "short_ohm"):
        if not getattr(args, name) > 0:
            return f"--{name.replace('_', '-')} {getattr(args, name):g}: allowed: a number > 0"
    if args.simulations < 1:
        return f"--simulations {args.simulations}: allowed: 1 or more"
    for name in ("http_port", "opcua_port"):
        if not 0 <= getattr(args, name) <= 65535:
            return f"--{name.replace('_', '-')} {getattr(args, name)}: allowed: a TCP port 0..65535 (0: a free one)"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (the kernel's choice)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_ports(http_port: int, opcua_port: int) -> tuple[int, int]:
    """The ports every supervisor start serves on: a 0 (a free one) chosen once here, so a supervisor
    restarted after --crash-supervisor-at serves where the first did (the operator's page reconnects,
    a SCADA client finds it again) rather than on another free port."""
    http_port = http_port or free_port()
    while not opcua_port or opcua_port == http_port:
        opcua_port = free_port()
    return http_port, opcua_port


def opcua_available() -> bool:
    """edge.opcua (issue 18's OPC UA server) is installed in this tree."""
    import importlib.util

    try:
        return importlib.util.find_spec("edge.opcua.server") is not None
    except ModuleNotFoundError:
        return False


SERVED_PREFIXES = {"http": "discharge-edge run: operator page on ", "opcua": "discharge-edge run: OPC UA on "}


def served_urls(log_path: Path) -> dict[str, str]:
    """What the supervisor said it serves (its last start's lines in OUT/supervisor.log)."""
    urls: dict[str, str] = {}
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return urls
    for line in text.splitlines():
        if line.startswith("--- start "):
            urls = {}
        for kind, prefix in SERVED_PREFIXES.items():
            if line.startswith(prefix):
                urls[kind] = line[len(prefix):].split()[0]
    return urls


def supervisor_said(log_path: Path, most: int = 3) -> list[str]:
    """The supervisor's own last messages (`discharge-edge run: ...`) of its last start in
    OUT/supervisor.log: why it ended, when it ended early."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    said: list[str] = []
    for line in text.splitlines():
        if line.startswith("--- start "):
            said = []
        elif line.startswith("discharge-edge run: "):
            said.append(line)
    return said[-most:]


def _announce(urls: dict[str, str], state_dir: Path, before: dict[str, str]) -> dict[str, str]:
    """Print the addresses in `urls` not already printed as they are in `before`; the next `before`."""
    token = ""
    try:
        token = json.loads((state_dir / "access.json").read_text()).get("operator", "")
    except (OSError, ValueError):
        pass
    if "http" in urls and urls["http"] != before.get("http"):
        print(f"discharge-edge demo: operator page {urls['http']}" + (f"#token={token}" if token else "")
              + f" (tokens: {state_dir / 'access.json'})", file=sys.stderr)
    if "opcua" in urls and urls["opcua"] != before.get("opcua"):
        print(f"discharge-edge demo: OPC UA {urls['opcua']}", file=sys.stderr)
    return {**before, **urls}


# -- what the bench measured (its truth) ---------------------------------------------------------------------
@dataclass
class BatteryTruth:
    """One battery while the bench held it: what the plant, not the controller, saw."""

    cell_id: int
    station: int
    loaded_s: float
    unloaded_s: float | None = None
    peak_cell_degc: float = -np.inf
    above_warning_s: float = 0.0
    initial_ah: float = 0.0
    residual_ah: float = 0.0


@dataclass
class BenchMeter:
    """Called after every bench step (on its thread): per-battery truth and the report's samples."""

    n_stations: int
    warning_degc: float
    trace_every_s: float = TRACE_EVERY_S
    line_above_warning_s: float = 0.0
    batteries: list[BatteryTruth] = field(default_factory=list)
    trace: dict[str, list] = field(default_factory=lambda: {k: [] for k in (
        "t_s", "hot_cell_degc", "current_a", "relief_share", "coolant_lpm", "loaded_id", "permit")})
    _on: dict[int, BatteryTruth] = field(default_factory=dict)
    _next_trace_s: float = 0.0

    def __call__(self, bench, dt_s: float) -> None:
        plant = bench.plant
        ids = bench.world.loaded_id if bench.world is not None else np.full(self.n_stations, NO_BATTERY)
        hot = np.where(plant.loaded, plant.temp_degc().max(axis=1), np.nan)
        for s in range(self.n_stations):
            on = self._on.get(s)
            if on is not None and on.cell_id != int(ids[s]):
                on.unloaded_s = plant.t_s
                del self._on[s]
                on = None
            if on is None and ids[s] != NO_BATTERY and plant.loaded[s]:
                on = BatteryTruth(int(ids[s]), s, plant.t_s, initial_ah=float(plant.initial_charge_ah[s]))
                self._on[s] = on
                self.batteries.append(on)
            if on is not None:
                on.peak_cell_degc = max(on.peak_cell_degc, float(hot[s]))
                if hot[s] > self.warning_degc:
                    on.above_warning_s += dt_s
        if np.nanmax(hot, initial=-np.inf) > self.warning_degc:
            self.line_above_warning_s += dt_s
        if plant.t_s + 1e-9 >= self._next_trace_s:
            self._next_trace_s = plant.t_s + self.trace_every_s
            residual = plant.residual_ah()
            for s, on in self._on.items():
                on.residual_ah = float(residual[s])
            cmd = bench.command
            self.trace["t_s"].append(plant.t_s)
            self.trace["hot_cell_degc"].append(hot.copy())
            self.trace["current_a"].append(np.asarray(plant.current_a, float).copy())
            self.trace["relief_share"].append(np.asarray(cmd.relief, float).max(axis=1))  # of the clamp, 0..1
            self.trace["coolant_lpm"].append(np.asarray(cmd.coolant_lpm, float).copy())
            self.trace["loaded_id"].append(np.asarray(ids, np.int64).copy())
            self.trace["permit"].append(np.asarray(cmd.discharge_on, bool).copy())


# -- the files the supervisor reads ---------------------------------------------------------------------------
def write_line_file(out: Path, map_path: Path, link: str, state_dir: Path, stations: int | None = None,
                    slots: int | None = None) -> Path:
    """lines/bench.yaml aimed at the demo: absolute maps and models, its own link and state dir;
    with `stations`, that many stations in channels of the size of the base line's first channel."""
    line = yaml.safe_load(BASE_LINE.read_text())
    if stations is not None and stations != line["stations"]["count"]:
        size = len(next(iter(line["channels"].values())))
        line["stations"]["count"] = stations
        line["channels"] = {_channel_name(i): list(range(i * size, min(stations, (i + 1) * size)))
                            for i in range(-(-stations // size))}
    if slots is not None:
        line.setdefault("placement", {})["slots"] = slots
    here = BASE_LINE.parent
    line["name"] = f"demo-{map_path.stem}"
    line["state_dir"] = str(state_dir)
    line["maps"] = {"rtcore": str(map_path), "supervisor": str(map_path)}
    line["rtcore_link"] = link
    line["models"] = {k: str((here / v).resolve()) for k, v in line["models"].items()}
    line.pop("operator_page", None)
    path = out / "line.yaml"
    path.write_text("# written by `discharge-edge demo` from lines/bench.yaml\n" + yaml.safe_dump(line, sort_keys=False))
    return path


def _channel_name(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"C{i + 1}"


def station_map(map_path: Path, stations: int | None, out: Path, slots: int | None = None) -> Path:
    """The bench map for `stations` and `slots` (None or the map's own counts: the map itself),
    written to OUT/map.yaml."""
    from edge.tagmap import load_tag_map
    from edge.tagmap.resize import dump_tag_map, resized

    tag_map = load_tag_map(map_path)
    own_stations = tag_map.tag("discharge_permit").count
    own_slots = tag_map.tag("vision_battery_id").count if tag_map.tag("vision_battery_id") is not None else None
    if stations in (None, own_stations) and slots in (None, own_slots):
        return map_path
    path = out / "map.yaml"
    path.write_text(dump_tag_map(resized(tag_map, stations or own_stations, slots=slots),
                                 header=f"written by `discharge-edge demo` ({stations or own_stations} stations, "
                                        f"{slots or own_slots} inbox slots) from {map_path}"))
    return path


def write_arrivals(cells_path: Path, n: int, inbox: Path) -> Path:
    """The batch's arrival-test results: cell_id and the feat_* columns of the first n rows (no
    truth), written whole and then renamed into the inbox (the supervisor never reads half a file)."""
    with open(cells_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        keep = [i for i, name in enumerate(header) if name == "cell_id" or name.startswith("feat_")]
        rows = [[row[i] for i in keep] for _, row in zip(range(n), reader)]
    inbox.mkdir(parents=True, exist_ok=True)
    part = inbox / ".arrivals.csv.part"
    with open(part, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([header[i] for i in keep])
        writer.writerows(rows)
    target = inbox / "arrivals.csv"
    os.replace(part, target)
    return target


# -- the supervisor process -----------------------------------------------------------------------------------
class SupervisorProcess:
    """`discharge-edge run` as a child process; each start appends to OUT/supervisor.log."""

    def __init__(self, argv: list[str], out: Path):
        self.argv, self.out = argv, out
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0
        self.stdout = ""

    def start(self) -> None:
        """Its JSON goes to a file (OUT/supervisor-<start>.json), never a pipe it could block on."""
        self.starts += 1
        self._json = self.out / f"supervisor-{self.starts}.json"
        with open(self.out / "supervisor.log", "a") as err, open(self._json, "w") as json_out:
            err.write(f"--- start {self.starts}: {' '.join(self.argv)}\n")
            err.flush()
            self.process = subprocess.Popen(self.argv, stdout=json_out, stderr=err, text=True,
                                            start_new_session=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, the store is as the last commit left it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10.0)
        self.kills += 1

    def finish(self, timeout_s: float) -> int:
        """The exit code of a run that ended by itself (its JSON read); SIGTERM, then SIGKILL, after timeout_s."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stdout = self._json.read_text()
        return self.process.returncode


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _core_snapshot(status, plant_t_s: float) -> dict:
    if status is None:
        return {"plant_t_s": round(plant_t_s, 1), "alive": False}
    return {"plant_t_s": round(plant_t_s, 1), "alive": bool(status.alive), "ticks": int(status.tick_count),
            "armed": bool(status.armed), "line_safe_state": bool(status.safe_state),
            "stations_isolated": [s for s, c in enumerate(status.station_cause) if c],
            "stations_permitted": [s for s, p in enumerate(status.station_permit) if p],
            "overruns": int(status.overruns), "bus_misses": int(status.bus_misses)}


def run_demo(args: argparse.Namespace) -> int:
    from edge.cli import read_input, refuse
    from edge.rtloop.handle import RtcoreError, RtcoreHandle, new_link_name
    from edge.strategy.model import Strategy
    from edge.tagmap import load_tag_map
    from tools.demo_report import write_report
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.faults import BatteryShort
    from tools.hil.plant import Plant, PlantConfig
    from tools.hil.server_bench import HilBench, open_server

    problem = _usage_error(args)
    if problem:
        return refuse("demo", problem)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    map_path = station_map(MAPS[args.protocol], args.stations, out, args.slots)
    tag_map = load_tag_map(map_path)
    n_stations = tag_map.tag("discharge_permit").count
    cells_path = Path(args.cells or default_cells_path())
    cells = read_input(cells_path, load_cells, limit=args.modules)
    refused = tuple(getattr(cells, "refused", ()))
    if len(cells) + len(refused) < args.modules:
        return refuse("demo", f"{cells_path} has {len(cells) + len(refused)} rows; --modules {args.modules} "
                              "needs that many")
    for refusal in refused:  # the supervisor refuses them too when they arrive, and says so in its events
        print(f"discharge-edge demo: {refusal.message(str(cells_path))}: the robot cannot load it", file=sys.stderr)
    if not len(cells):
        return refuse("demo", f"{cells_path}: none of the first {args.modules} rows is a battery the bench can load")
    logging.getLogger("tools").setLevel(logging.INFO)
    for stale in ("state", "records"):
        shutil.rmtree(out / stale, ignore_errors=True)
    for stale in (out / "supervisor.log", *out.glob("supervisor-*.json")):
        stale.unlink(missing_ok=True)
    state_dir = (out / "state").resolve()
    link = new_link_name("discharge-edge-demo")
    n_slots = tag_map.tag("vision_battery_id").count
    line_path = write_line_file(out, map_path, link, state_dir, n_stations, n_slots)
    strategy = Strategy()
    warning_degc = strategy.station_limits().warning_degc

    server = open_server(tag_map)
    if args.bench_priority:  # refused (no permission): logged, and the bench answers at normal priority
        server.serve_realtime(args.bench_priority)
    placeholders = cells.select([i % len(cells) for i in range(n_stations)])
    short_battery = None if args.short_module < 0 else int(np.asarray(cells["cell_id"], float)[args.short_module])
    shorts = () if short_battery is None else (
        BatteryShort(battery_id=short_battery, cell=0, r_short_ohm=args.short_ohm, onset_s=args.short_onset_s),)
    plant = Plant(placeholders, PlantConfig(), faults=shorts, empty=True)
    bench = HilBench(plant, server, batteries=cells, robot_cycle_s=args.robot_cycle_s)
    meter = BenchMeter(n_stations, warning_degc)
    bench.observers.append(meter)
    argv = [sys.executable, "-m", "edge.cli", "-v", "run", "--line", str(line_path), "--plc-port", str(server.port),
            "--time-scale", f"{args.time_scale:g}", "--start", "--until-idle", "--json",
            "--scan-s", f"{SUPERVISOR_SCAN_S:g}", "--rest-s", f"{args.rest_s:g}",
            "--simulations", str(args.simulations), "--plan-seconds", f"{args.plan_seconds:g}"]
    if args.serve:
        http_port, opcua_port = serve_ports(args.http_port, args.opcua_port)
        argv += ["--http-port", str(http_port)]
        if opcua_available():
            argv += ["--opcua-port", str(opcua_port)]
        else:
            print("discharge-edge demo: OPC UA not served: edge.opcua is not installed in this tree", file=sys.stderr)
    if args.sparkplug_broker:
        argv += ["--sparkplug-broker", args.sparkplug_broker]
        for option, value in (("--sparkplug-node", args.sparkplug_node),
                              ("--sparkplug-primary-host", args.sparkplug_primary_host)):
            if value:
                argv += [option, value]
    served: dict[str, str] = {}
    supervisor = SupervisorProcess(argv, out)
    clock_pairs: list[tuple[float, float]] = []  # (the supervisor's clock, plant time)
    crash: dict | None = None
    core_isolated_at: dict[int, float] = {}
    rt_summary: dict = {}
    started = time.monotonic()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # the `with` and `finally` below then stop every child
    log.info("demo: bench on 127.0.0.1:%d (%s), %d stations, %d batteries, time x%g", server.port, args.protocol,
             n_stations, args.modules, args.time_scale)
    bench.start(dt_s=BENCH_DT_S, time_scale=args.time_scale)
    exit_code = None
    try:
        with RtcoreHandle.spawn(server.tag_map, link=link, time_scale=args.time_scale,
                                state_dir=state_dir / "rtcore") as rt:
            rt.attach(timeout_s=30.0)
            rt.arm(timeout_s=10.0)  # the operator's reset: the core starts safe and not armed
            write_arrivals(cells_path, args.modules, state_dir / "inbox")
            supervisor.start()
            sup_started = time.monotonic()
            while time.monotonic() - started < args.max_seconds:
                time.sleep(0.2)
                clock_pairs.append((time.time() * args.time_scale, plant.t_s))
                status = rt.status()
                if status is not None:
                    for s, cause in enumerate(status.station_cause):
                        if cause and s not in core_isolated_at:
                            core_isolated_at[s] = plant.t_s
                if not rt.alive:
                    log.error("demo: the rtcore process ended (exit code %s)", rt.exitcode)
                    break
                if args.serve:
                    now_served = served_urls(out / "supervisor.log")
                    if now_served and now_served != served:
                        served = _announce(now_served, state_dir, served)
                since = time.monotonic() - sup_started
                if args.crash_supervisor_at is not None and crash is None and since >= args.crash_supervisor_at:
                    if supervisor.running:
                        crash = {"killed_at_wall_s": round(since, 1), "core_at_kill": _core_snapshot(status, plant.t_s)}
                        supervisor.kill()
                        log.warning("demo: supervisor killed (SIGKILL) at %.1f s; down for %g s", since, args.down_s)
                        time.sleep(args.down_s)
                        crash["core_at_restart"] = _core_snapshot(rt.status(), plant.t_s)
                        supervisor.start()
                    else:
                        crash = {"killed_at_wall_s": None, "note": "the supervisor had ended before the crash time"}
                if not supervisor.running:
                    break
            exit_code = supervisor.finish(timeout_s=10.0)
            if exit_code:  # say why here: the operator should not have to open OUT/supervisor.log
                print(f"discharge-edge demo: the supervisor ended with exit code {exit_code}"
                      + "".join(f"\n  {line}" for line in supervisor_said(out / "supervisor.log")), file=sys.stderr)
            status = rt.status()
            rt_final = _core_snapshot(status, plant.t_s)
            rt_summary = rt.stop(timeout_s=15.0)  # SIGTERM: the core writes its safe values and ends
    except RtcoreError as exc:
        return refuse("demo", f"rtcore: {exc}", 1)
    except KeyboardInterrupt:  # SIGINT, or SIGTERM (below): the children stop with the demo
        print("discharge-edge demo: interrupted; the supervisor, the rtcore process and the bench stopped",
              file=sys.stderr)
        return 130
    finally:
        if supervisor.running:
            supervisor.process.terminate()
            try:
                supervisor.process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                supervisor.process.kill()
        bench.stop()
        server.close()
    wall_s = time.monotonic() - started
    try:
        result = json.loads(supervisor.stdout) if supervisor.stdout.strip() else {}
    except json.JSONDecodeError:
        result = {}
    if crash is not None and crash.get("core_at_kill", {}).get("ticks") is not None:
        crash["core_ticks_while_down"] = crash["core_at_restart"].get("ticks", 0) - crash["core_at_kill"]["ticks"]
    report = write_report(
        out, result=result, meter=meter, clock_pairs=clock_pairs, rt_summary=rt_summary, rt_final=rt_final,
        core_isolated_at=core_isolated_at, crash=crash, cells=cells,
        run={"protocol": args.protocol, "modules": args.modules, "stations": n_stations,
             "cells": str(cells_path), "time_scale": args.time_scale, "wall_s": round(wall_s, 1),
             "robot_cycle_s": args.robot_cycle_s, "inbox_slots": n_slots,
             "short_battery": None if short_battery is None else str(short_battery),
             "short_onset_s": args.short_onset_s, "short_ohm": args.short_ohm,
             "supervisor_exit_code": exit_code, "supervisor_starts": supervisor.starts,
             "supervisor_kills": supervisor.kills, "warning_degc": warning_degc, "served": served,
             "temp_limit_degc": strategy.station_limits().temp_limit_degc})
    if args.json:
        print_json(report)
    else:
        _print_summary(report)
    return 0 if report["ok"] else 1


def _fmt(x, digits: int = 0) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _print_summary(report: dict) -> None:
    b, run = report["batch"], report["run"]
    print(f"discharge-edge demo: {run['modules']} batteries on {run['stations']} stations of the HIL bench "
          f"({run['protocol']}, 127.0.0.1), {b['plant_time_s']:.0f} s of plant time in {run['wall_s']:.0f} s")
    print(f"  batch time {_fmt(b['batch_time_s'])} s, time above warning {b['time_above_warning_s']:.0f} s, "
          f"isolations {b['isolations']}, supervisor restarts {b['supervisor_restarts']}, "
          f"recorded {b['batteries_recorded']}/{run['modules']} (each once: {b['each_recorded_once']})")
    rt = report["rtcore"]
    print(f"  real-time loop: {rt['ticks']} ticks, lateness p99 {rt['lateness_p99_us']} us, "
          f"overruns {rt['overruns']}, bus misses {rt['bus_misses']}, line safe state {rt['line_safe_state']}")
    hot = report["hot_battery"]
    if hot:
        print(f"  hot cell in battery {hot['cell_id']} (station {hot['station']}): {hot['outcome']} "
              f"{', '.join(hot['cause'])}, peak cell {hot['peak_cell_degc_truth']} degC")
    crash = report["supervisor_crash"]
    if crash:
        print(f"  supervisor killed at {crash.get('killed_at_wall_s')} s; the core meanwhile: "
              f"{crash.get('core_ticks_while_down')} ticks, at restart {crash.get('core_at_restart')}")
    for bat in report["batteries"]:
        print(f"  battery {bat['cell_id']:>6}: station {bat['station']}, tier {bat['tier']}, {bat['outcome']:9s} "
              f"{_fmt(bat['start_s'])}-{_fmt(bat['end_s'])} s, removed {_fmt(bat['charge_removed_ah'], 2)} Ah, "
              f"residual {_fmt(bat['residual_pct_truth'], 1)} %, peak {_fmt(bat['peak_temp_degc'], 1)} degC "
              f"{bat['reason']}")
    print(f"  report: {report['files']['json']}, plots: {report['files']['png']}, {report['files']['gantt']}")
