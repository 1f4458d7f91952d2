"""`discharge-edge hil serve --map FILE`: the HIL bench on 127.0.0.1 for a controller to connect to.

The bench serves the map's PLC over its protocol (the map's `connection.protocol`), on the
map's port unless `--port` says otherwise (0 = any free port), with a plant of one module per
station built from rows of a cells file (format of ../shared/data/cells_train.csv, truth_*
columns), stepping in real time or `--time-scale` times faster. Every battery of the file is
available to the bench's robot (the loading handshake: plc_tags/README.md); the stations start
loaded with the rows from `--first-row` on, or empty with `--empty`. It runs until SIGINT/SIGTERM
or `--seconds`; `--priority P` runs the bench's threads at SCHED_FIFO P (below the core's 50: a
bench sharing its cores with other load still answers as a PLC does). Any map with the roles serves (tools/hil/bench_map.py: tags by role, any markers
a station, the plant's markers from the map's fixture or the even split). Exit codes: 0 served,
1 a map it cannot serve (its problems and its roles' problems, as `tags check` names them, or
what the bench lacks) or a
cells file too short for the stations, 2 a cells file it cannot read, 3 the plant died while
serving (the server closes with it: never a live server over a dead plant; the cause on stderr);
each a message through edge.cli's one input-error path, never a traceback. Tests: tests/tools/hil/test_server_bench.py,
tests/edge/test_cli_input_errors.py.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from edge.cli import EXIT_PROBLEM, INPUT_ERRORS, print_json, refuse, refuse_input
from edge.tagmap import TagMapError, load_tag_map
from edge.tagmap.roles import role_problems
from tools.hil.bench_map import bench_layout

log = logging.getLogger(__name__)

COMMAND = "hil serve"
EXIT_PLANT_DIED = 3
"""The plant thread died while serving: the server was closed with it, the cause on stderr."""


def register(subparsers) -> None:
    hil = subparsers.add_parser("hil", help="the hardware-in-the-loop bench")
    actions = hil.add_subparsers(dest="hil_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve the bench's PLC on 127.0.0.1 with the plant behind it")
    serve.add_argument("--map", type=Path, required=True, help="tag map to serve (plc_tags/hil_*.yaml)")
    serve.add_argument("--cells", type=Path, default=None, help="cells CSV (default: ../shared/data/cells_train.csv)")
    serve.add_argument("--first-row", type=int, default=0, help="first row of the cells file to put on station 0")
    serve.add_argument("--empty", action="store_true",
                       help="start with every station empty (the supervisor loads them through the loading tags)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default: the map's; 0: any free port)")
    serve.add_argument("--time-scale", type=float, default=1.0, help="plant seconds per wall second")
    serve.add_argument("--seconds", type=float, default=None, help="stop after this many wall seconds")
    serve.add_argument("--priority", type=int, default=0, choices=range(0, 100), metavar="0..99",
                       help="run the server's and the plant's threads at SCHED_FIFO this priority, below the "
                            "core's 50, so other load does not starve the bench as it cannot starve a PLC (0: off)")
    serve.add_argument("--json", action="store_true")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.plant import Plant
    from tools.hil.server_bench import HilBench, bench_plant_config, open_server

    try:
        tag_map = load_tag_map(args.map)
    except TagMapError as exc:
        return refuse(COMMAND, f"refusing to serve: the tag map has problems:\n{exc}", EXIT_PROBLEM)
    except INPUT_ERRORS as exc:  # not UTF-8
        return refuse_input(COMMAND, args.map, exc, EXIT_PROBLEM)
    problems = role_problems(tag_map)  # what `tags check` refuses: a map its processes cannot run
    if problems:
        return refuse(COMMAND, "refusing to serve: the tag map's roles have problems:\n"
                      + "\n".join(str(p) for p in problems), EXIT_PROBLEM)
    try:
        config = bench_plant_config(tag_map)
        n_stations = bench_layout(tag_map, config.cells_per_module).n_stations
    except ValueError as exc:
        return refuse(COMMAND, f"refusing to serve: {exc}", EXIT_PROBLEM)
    cells_path = args.cells or default_cells_path()
    try:
        available = load_cells(cells_path)
    except INPUT_ERRORS as exc:
        return refuse_input(COMMAND, cells_path, exc)
    for refusal in available.refused:  # rows outside the physical ranges: not available to the robot
        refuse(COMMAND, refusal.message(available.path))
    if not 0 <= args.first_row <= len(available) - n_stations:
        return refuse(COMMAND, f"refusing to serve: {available.path} has {len(available)} rows; {n_stations} "
                      f"stations from row {args.first_row} do not fit", EXIT_PROBLEM)
    cells = available.select(list(range(args.first_row, args.first_row + n_stations)))
    port = tag_map.endpoint.port if args.port is None else args.port
    try:
        server = open_server(tag_map, port=port)
    except ValueError as exc:  # a map the protocol server cannot serve (names the file and line)
        return refuse(COMMAND, f"refusing to serve: {exc}", EXIT_PROBLEM)
    except OSError as exc:
        return refuse(COMMAND, f"cannot listen on {tag_map.endpoint.host}:{port}: {exc}", EXIT_PROBLEM)
    try:
        bench = HilBench(Plant(cells, config, empty=args.empty), server, batteries=available)
    except ValueError as exc:  # what the bench's PLC cannot run (the robot cell's counts, ...): named, no traceback
        server.close()
        return refuse(COMMAND, f"refusing to serve: {exc}", EXIT_PROBLEM)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.priority:
        server.serve_realtime(args.priority)
    bench.start(time_scale=args.time_scale, on_failure=lambda _exc: stop.set(), priority=args.priority)
    endpoint = f"{server.tag_map.endpoint.host}:{server.port}"
    log.warning("HIL bench serving %s (%s) on %s, %d stations x %d zones x %d markers (%s), %d batteries "
                "available, time scale %g", tag_map.source, tag_map.protocol.value, endpoint, n_stations,
                bench.layout.zones_per_station, bench.layout.markers_per_station, "empty" if args.empty else "loaded",
                len(available), args.time_scale)
    try:
        stop.wait(args.seconds)
    finally:
        bench.stop()
        server.close()
    if bench.failure is not None:
        exc = bench.failure
        return refuse(COMMAND, f"the plant stopped after {bench.steps} steps ({bench.plant.t_s:.2f} s of plant "
                      f"time): {type(exc).__name__}: {exc}; the PLC server was closed with it "
                      f"({tag_map.source})", EXIT_PLANT_DIED)
    report = {"map": str(tag_map.source), "protocol": tag_map.protocol.value, "endpoint": endpoint,
              "stations": n_stations, "zones_per_station": bench.layout.zones_per_station,
              "markers_per_station": bench.layout.markers_per_station,
              "marker_positions": "fixture" if bench.layout.from_fixture else "even split",
              "batteries_available": len(available),
              "loaded_ids": [int(i) for i in bench.loader.loaded_id] if bench.loader is not None else None,
              "plant_steps": bench.steps, "plant_time_s": round(bench.plant.t_s, 3)}
    if args.json:
        print_json(report)
    else:
        print(f"served {endpoint} for {report['plant_time_s']} s of plant time ({bench.steps} steps)")
    return 0
