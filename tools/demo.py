"""`discharge-edge demo`: the main job on the embedded default, the HIL bench on loopback.

1. The bench serves plc_tags/hil_modbus.yaml (or the Logix map, `--protocol logix`) on 127.0.0.1
   (a free port) with 8 modules from the shared cell data behind it, one with an internal short
   (a hot cell, `--short-module`) from `--short-onset-s`, in scaled time (`--time-scale` plant
   seconds per wall second). Its PLC program applies each station's permit and current limit and
   drops every station when the core's heartbeat goes stale.
2. The real-time loop runs in its own OS process (`rtcore` with its absolute-deadline clock,
   spawned by edge.rtloop.handle.RtcoreHandle from the served map)
   against the bench over the real protocol, every 100 ms of wall time. It starts safe and not
   armed.
3. This process is the supervisor: it writes one fixed strategy (current, clamp, base coolant)
   through its own bus, sends the real-time setpoints with each station's limits over the link,
   arms the core and samples the PLC's tags and the core's status until every station has
   finished (cut-off) or been isolated, or `--max-seconds` of wall time.
4. It writes a report: out/demo/report.json and out/demo/report.png (temperatures, relief,
   coolant, currents and each station's outcome), and prints a summary (or the JSON with --json).
Tests: tests/tools/test_demo.py.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from edge import REPO_ROOT
from edge.cli import print_json

log = logging.getLogger(__name__)

MAPS = {"modbus": REPO_ROOT / "plc_tags" / "hil_modbus.yaml", "logix": REPO_ROOT / "plc_tags" / "hil_logix.yaml"}
N_STATIONS = 8
PERIOD_S = 0.1  # the core's wall-clock tick


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the embedded default (HIL bench on loopback)")
    demo.add_argument("--protocol", choices=sorted(MAPS), default="modbus")
    demo.add_argument("--max-seconds", type=float, default=240.0,
                      help="wall seconds at most (the batch normally ends before: every station finished or isolated)")
    demo.add_argument("--time-scale", type=float, default=20.0, help="plant seconds per wall second")
    demo.add_argument("--current-a", type=float, default=10.0, help="discharge current per station (10 A = 2C)")
    demo.add_argument("--short-module", type=int, default=1, help="station whose module has the hot cell")
    demo.add_argument("--short-onset-s", type=float, default=30.0, help="plant time the hot cell's short starts")
    demo.add_argument("--short-ohm", type=float, default=0.25,
                      help="resistance of the internal short (0.25 ohm: the cell heats past the maximum safety whatever "
                           "relief and coolant do, and its station is isolated; 0.5 ohm: S14-S15 hold it near 49 degC)")
    demo.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from edge.bus import open_bus
    from edge.rtloop.handle import RtcoreHandle, new_link_name
    from edge.strategy.model import Strategy
    from edge.tagmap import Owner, load_tag_map
    from tools.demo_report import write_report
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.faults import InternalShort
    from tools.hil.plant import Plant, PlantConfig
    from tools.hil.server_bench import HilBench, open_server

    if not 0 <= args.short_module < N_STATIONS:
        log.error("--short-module must be in 0..%d", N_STATIONS - 1)
        return 2
    strategy = Strategy()
    tick_s = PERIOD_S * args.time_scale  # plant seconds per core tick
    if not 0 < tick_s <= strategy.check_interval_s / 2:
        log.error("--time-scale %g gives a core tick of %g s of plant time; the ΔT check interval (%g s) needs "
                  "at least two ticks: use a time scale in (0, %g]", args.time_scale, tick_s,
                  strategy.check_interval_s, strategy.check_interval_s / 2 / PERIOD_S)
        return 2
    logging.getLogger("tools").setLevel(logging.INFO)
    map_path = MAPS[args.protocol]
    tag_map = load_tag_map(map_path)
    server = open_server(tag_map)
    cells = load_cells(default_cells_path(), limit=N_STATIONS)
    hot = args.short_module
    plant = Plant(cells, PlantConfig(), faults=(InternalShort(module=hot, cell=0, r_short_ohm=args.short_ohm,
                                                               onset_s=args.short_onset_s),))
    bench = HilBench(plant, server)
    limits = strategy.station_limits()
    supervisor = open_bus(server.tag_map, Owner.SUPERVISOR)
    supervisor.write({"discharge_current_setpoint_a": (args.current_a,) * N_STATIONS,
                      "fixture_pressure_setpoint_kpa": (strategy.pressure_kpa,) * N_STATIONS,
                      "coolant_base_lpm": (4.0,) * N_STATIONS})
    log.info("demo: bench on 127.0.0.1:%d (%s), %d stations, time x%g", server.port, args.protocol, N_STATIONS,
             args.time_scale)
    bench.start(dt_s=0.1, time_scale=args.time_scale)
    trace: dict[str, list] = {k: [] for k in ("t_s", "temp_degc", "relief_kpa", "coolant_lpm", "current_a",
                                              "voltage_v", "current_limit_pct")}
    statuses = []
    isolated_at: dict[int, float] = {}
    isolated_at_degc: dict[int, float] = {}
    started = time.monotonic()
    try:
        # leaving the block stops a core still running with SIGTERM (its safe values), also on an error
        with RtcoreHandle.spawn(server.tag_map, link=new_link_name("discharge-edge-demo"),
                                time_scale=args.time_scale) as rt:
            rt.attach(timeout_s=30.0)
            rt.send_setpoints(strategy.setpoints(station_limits=(limits,) * N_STATIONS))
            rt.arm()  # the core starts safe and not armed
            while rt.alive and time.monotonic() - started < args.max_seconds:
                time.sleep(0.1)  # the sampling period of the report
                values = server.get_many(["marker_temp_degc", "relief_second_kpa", "coolant_flow_lpm",
                                          "station_current_a", "station_voltage_v", "current_limit_pct"])
                trace["t_s"].append(plant.t_s)
                for key, name in (("temp_degc", "marker_temp_degc"), ("relief_kpa", "relief_second_kpa"),
                                  ("coolant_lpm", "coolant_flow_lpm"), ("current_a", "station_current_a"),
                                  ("voltage_v", "station_voltage_v"), ("current_limit_pct", "current_limit_pct")):
                    trace[key].append(values[name])
                status = rt.status()
                if status is None or not status.alive:
                    continue
                statuses.append(status)
                for s, cause in enumerate(status.station_cause):
                    if cause and s not in isolated_at:  # isolated, also after its cut-off: the latch stands
                        isolated_at[s] = plant.t_s
                        isolated_at_degc[s] = round(float(status.station_hot_degc[s]), 2)
                ended = plant.tripped | np.isin(np.arange(N_STATIONS), list(isolated_at))
                if status.armed and ended.all():
                    break
            summary = rt.stop(timeout_s=15.0)  # SIGTERM: the core writes its safe values and ends
    finally:
        bench.stop()
        supervisor.close()
        server.close()
    arrays = {k: np.asarray(v, dtype=float) for k, v in trace.items()}
    report = write_report(args.out, arrays, summary, statuses[-1] if statuses else None, plant, hot,
                          args.short_onset_s, args.time_scale, limits, isolated_at,
                          {"protocol": args.protocol, "current_a": args.current_a,
                           "wall_s": round(time.monotonic() - started, 1)}, isolated_at_degc)
    if args.json:
        print_json(report)
    else:
        print(f"discharge-edge demo: {report['plant_time_s']:.0f} s of plant time on the HIL bench "
              f"({args.protocol}, 127.0.0.1) in {report['run']['wall_s']:.0f} s")
        rt_report = report["rtcore"]
        safe = f"yes ({', '.join(rt_report['safe_cause'])})" if rt_report["safe_state"] else "no"
        print(f"  real-time loop: {rt_report['ticks']} ticks, lateness p99 {rt_report['lateness_p99_us']:.0f} us, "
              f"overruns {rt_report['overruns']}, bus misses {rt_report['bus_misses']}, line safe state {safe}")
        h = report["hot_station"]
        print(f"  hot cell on station {hot}: first relief {h['first_relief_after_onset_s']} s after the short, "
              f"{h['outcome']}{' (' + ', '.join(h['causes']) + ')' if h['causes'] else ''} at "
              f"{h['end_s']} s ({h['isolated_at_degc']} degC), peak marker {h['peak_marker_temp_degc']:.1f} degC (limit {limits.temp_limit_degc})")
        for st in report["stations"]:
            print(f"  station {st['station']}: {st['outcome']:10s} end {st['end_s']:7.0f} s  "
                  f"removed {st['charge_removed_ah']:.2f} Ah  peak {st['peak_marker_temp_degc']:.1f} degC")
        print(f"  report: {report['files']['json']}, plot: {report['files']['png']}")
    return 0 if report["ok"] else 1
