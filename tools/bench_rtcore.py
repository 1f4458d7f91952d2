"""`discharge-edge bench rtcore`: the real-time loop under load, measured.

The loop runs in its own OS process (edge.rtloop.handle.RtcoreHandle) against an in-memory PLC on
the HIL map, while another process burns a CPU and this (parent) process keeps the GIL busy in a
thread, the load the issue names. The parent reads the loop's status over the supervisor link while it
runs, as the supervisor would. Prints lateness p50/p99/max, work time and overruns.

`bench_tick_work(protocol, stations, seconds)`: the loop against the served HIL bench (a plant of
one module a station behind the bench PLC of the protocol, the map resized to `stations`), no
hog: a tick's work (read, kernel, write: the protocol's round trips included), overruns, bus
misses (tools.bench_soak's run, short). The issue-19 table is 8, 64 and 128 stations on each
protocol; goal <= 10 ms at 64 and <= 20 ms at 128 with 0 overruns. Measured 2026-11-29 (30 s
each, 2 shared cores at load 1.3-2.4 from other sessions, bench threads at SCHED_FIFO 40): work
mean Modbus 2.6 / 6.0 / 8.9 ms (max 14.3), EtherNet/IP 2.6 / 3.1 / 3.8 ms (max 12.8), 0 overruns.
Tests: tests/tools/test_bench_rtcore.py.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import time

from edge import REPO_ROOT
from edge.rtloop.stats import timing_us
from tools.cpu_load import burn_cpu, hold_gil

log = logging.getLogger(__name__)

DEFAULT_MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"


def bench_rtcore(seconds: float, map_path=DEFAULT_MAP) -> dict:
    from edge.rtloop.handle import RtcoreHandle, new_link_name
    from edge.tagmap import load_tag_map

    tag_map = load_tag_map(map_path)
    n_markers, n_zones = tag_map.tag("marker_temp_degc").count, tag_map.tag("zone_pressure_kpa").count
    plc_values = {"marker_temp_degc": tuple(25.0 + 0.1 * i for i in range(n_markers)),
                  "zone_pressure_kpa": (120.0,) * n_zones}
    ctx = mp.get_context("spawn")
    stop_burn = ctx.Event()
    burner = ctx.Process(target=burn_cpu, args=(stop_burn,), name="cpu-burner", daemon=True)
    stop_gil = threading.Event()
    hog = threading.Thread(target=hold_gil, args=(stop_gil,), name="gil-hog", daemon=True)
    burner.start()
    hog.start()
    seen_ticks = []
    try:
        # the memory PLC has no program to count its heartbeat: that check is off here
        with RtcoreHandle.spawn(tag_map, link=new_link_name("discharge-edge-bench"), seconds=seconds,
                                plc_values=plc_values, plc_heartbeat_stale_ticks=0) as rt:
            rt.attach(timeout_s=30.0)
            deadline = time.monotonic() + seconds + 30.0
            while rt.alive and time.monotonic() < deadline:
                status = rt.status()
                if status is not None and status.alive:
                    seen_ticks.append(status.tick_count)
                time.sleep(0.1)  # as often as a supervisor reads it
            summary = rt.join(timeout_s=30.0)
    finally:
        stop_gil.set()
        stop_burn.set()
        hog.join()
        burner.join(timeout=5.0)
    period_s = 0.1
    return {
        "seconds": seconds,
        "period_ms": period_s * 1e3,
        "ticks": summary["ticks"],
        "ticks_expected": int(seconds / period_s),
        "overruns": summary["overruns"],
        **timing_us(summary),
        "sched_fifo_granted": summary["sched_fifo"],
        "mlockall_granted": summary["mlockall"],
        "kernel_compiled": summary["compiled"],
        "safe_state_at_end": summary["safe_state"],
        "status_reads_over_link": len(seen_ticks),
        "load": "one process burning a CPU; a parent thread holding the GIL",
    }


TICK_WORK_STATIONS = (8, 64, 128)


def bench_tick_work(protocol: str, stations: int, seconds: float = 30.0, realtime: bool = True) -> dict:
    """Tick work of the loop at `stations` against the served bench over `protocol`, in µs."""
    from tools.bench_soak import soak

    report = soak(protocol, seconds=seconds, hogs=0, realtime=realtime, stations=stations)
    keys = ("protocol", "stations", "seconds", "ticks", "ticks_expected", "overruns", "bus_misses", "link_errors",
            "link_lost_latches", "work_mean_us", "work_max_us", "lateness_p99_us", "lateness_max_us",
            "plc_watchdog_trips", "sched_fifo_granted")
    return {key: report[key] for key in keys}
