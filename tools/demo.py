"""`discharge-edge demo`: the main job on the embedded default, the HIL bench on loopback.

1. The bench serves plc_tags/hil_modbus.yaml on 127.0.0.1 (a free port) with 8 modules from the
   shared cell data behind it, one with an internal short (a hot cell) from `--short-onset-s`,
   in scaled time (`--time-scale` plant seconds per wall second).
2. The real-time loop runs in its own OS process (`rtcore` with its absolute-deadline clock)
   against the bench over Modbus TCP, every 100 ms of wall time.
3. This process is the supervisor: it writes the discharge setpoints through its own bus,
   sends the real-time setpoints over the link, samples the PLC's tags and the loop's status.
4. It writes a report: out/demo/report.json and out/demo/report.png (temperatures, relief,
   coolant, currents), and prints a summary (or the JSON with --json).
Tests: tests/tools/test_demo.py.
"""

from __future__ import annotations

import argparse
import logging
import queue
import time
import uuid
from pathlib import Path

import numpy as np

from edge import REPO_ROOT
from edge.cli import print_json

log = logging.getLogger(__name__)

MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"
HOT_STATION = 1


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the embedded default (HIL bench on loopback)")
    demo.add_argument("--seconds", type=float, default=20.0, help="wall seconds to run")
    demo.add_argument("--time-scale", type=float, default=10.0, help="plant seconds per wall second")
    demo.add_argument("--current-a", type=float, default=5.0, help="discharge current per station (5 A = 1C)")
    demo.add_argument("--short-onset-s", type=float, default=30.0, help="plant time the hot cell's short starts")
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from edge.bus import open_bus
    from edge.rtloop.link import LinkError, SupervisorSide
    from edge.rtloop.process import spawn_rtcore
    from edge.tagmap import Owner, load_tag_map
    from rtcore.spec import Setpoints
    from tools.demo_report import write_report
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.faults import InternalShort
    from tools.hil.plant import Plant, PlantConfig
    from tools.hil.server_bench import HilBench, open_server

    logging.getLogger("tools").setLevel(logging.INFO)
    tag_map = load_tag_map(MAP)
    server = open_server(tag_map)
    cells = load_cells(default_cells_path(), limit=8)
    plant = Plant(cells, PlantConfig(), faults=(InternalShort(module=HOT_STATION, cell=0, r_short_ohm=0.5,
                                                               onset_s=args.short_onset_s),))
    bench = HilBench(plant, server)
    supervisor = open_bus(server.tag_map, Owner.SUPERVISOR)
    supervisor.write({"discharge_current_setpoint_a": (args.current_a,) * 8,
                      "fixture_pressure_setpoint_kpa": (150.0,) * 8, "coolant_base_lpm": (4.0,) * 8})
    log.info("demo: bench on 127.0.0.1:%d (Modbus TCP), %d stations, time x%g", server.port, 8, args.time_scale)
    bench.start(dt_s=0.1, time_scale=args.time_scale)
    link = f"discharge-edge-demo-{uuid.uuid4().hex[:8]}"
    rt, results = spawn_rtcore(MAP, server.port, link, args.seconds, args.time_scale)
    trace: dict[str, list] = {k: [] for k in ("t_s", "temp_degc", "relief_kpa", "coolant_lpm", "current_a", "voltage_v")}
    statuses = []
    link_side = None
    started = time.monotonic()
    try:
        while rt.is_alive() and time.monotonic() - started < args.seconds + 30:
            time.sleep(0.1)
            if link_side is None:
                try:
                    link_side = SupervisorSide(link)
                    link_side.send_setpoints(Setpoints(delta_t_threshold_degc=1.0, check_interval_s=4.0))
                except LinkError:
                    continue
            values = server.get_many(["marker_temp_degc", "relief_second_kpa", "coolant_flow_lpm",
                                      "station_current_a", "station_voltage_v"])
            trace["t_s"].append(plant.t_s)
            for key, name in (("temp_degc", "marker_temp_degc"), ("relief_kpa", "relief_second_kpa"),
                              ("coolant_lpm", "coolant_flow_lpm"), ("current_a", "station_current_a"),
                              ("voltage_v", "station_voltage_v")):
                trace[key].append(values[name])
            status = link_side.read_status()
            if status is not None and status.alive:
                statuses.append(status)
        rt.join(timeout=10)
        try:
            summary = results.get(timeout=5)
        except queue.Empty:
            raise RuntimeError(f"the rtcore process ended (exit code {rt.exitcode}) without a result; "
                               "its log is above on stderr") from None
    finally:
        if link_side is not None:
            link_side.close()
        bench.stop()
        supervisor.close()
        server.close()
        if rt.is_alive():
            rt.terminate()
    arrays = {k: np.asarray(v, dtype=float) for k, v in trace.items()}
    report = write_report(args.out, arrays, summary, statuses[-1] if statuses else None, plant, HOT_STATION,
                          args.short_onset_s, args.time_scale)
    if args.json:
        print_json(report)
    else:
        print(f"discharge-edge demo: {report['plant_time_s']:.0f} s of plant time on the HIL bench (Modbus TCP, 127.0.0.1)")
        safe = f"yes ({', '.join(report['rtcore']['safe_cause'])})" if summary["safe_state"] else "no"
        print(f"  real-time loop: {summary['ticks']} ticks, lateness p99 {report['rtcore']['lateness_p99_us']:.0f} us, "
              f"overruns {summary['overruns']}, safe state {safe}")
        print(f"  hot cell on station {HOT_STATION}: first relief {report['hot_station']['first_relief_after_onset_s']} s "
              f"after the short, peak marker {report['hot_station']['peak_marker_temp_degc']:.1f} degC")
        print(f"  charge removed {report['charge_removed_ah']:.2f} Ah over 8 modules")
        print(f"  report: {report['files']['json']}, plot: {report['files']['png']}")
    return 0 if report["ok"] else 1
