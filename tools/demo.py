"""`discharge-edge demo`: the main job on the embedded default, the HIL bench on loopback.

Until the bench's plant and the real-time loop are wired in (issues 3 and 4), the demo is the
spine's round trip: it serves both bench maps (plc_tags/hil_*.yaml) on 127.0.0.1 over Modbus TCP
and EtherNet/IP, has the plant side set sensor values, reads them through the tag bus as the
real-time core does, writes the core's safe outputs, reads them back on the PLC side, and
reports what it measured. Tests: tests/tools/test_demo.py.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

from edge import REPO_ROOT
from edge.bus import Quality, open_bus
from edge.cli import print_json
from edge.tagmap import Owner, load_tag_map

log = logging.getLogger(__name__)

MAPS = {"modbus": "hil_modbus.yaml", "logix": "hil_logix.yaml"}


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="run the main job on the embedded default (HIL bench on loopback)")
    demo.add_argument("--rounds", type=int, default=200, help="tag round trips per protocol")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.set_defaults(func=run_demo)


def round_trip(protocol: str, rounds: int) -> dict:
    from tools.hil.server_logix import LogixPlcServer
    from tools.hil.server_modbus import ModbusPlcServer

    server_cls = ModbusPlcServer if protocol == "modbus" else LogixPlcServer
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / MAPS[protocol])
    temps = tuple(25.0 + 0.5 * i for i in range(32))
    with server_cls(tag_map) as server, open_bus(server.tag_map, Owner.RTCORE) as bus:
        server.set("marker_temp_degc", temps)
        server.set("zone_pressure_kpa", (120.0,) * 8)
        inputs = ["marker_temp_degc", "zone_pressure_kpa", "plc_heartbeat"]
        safe = bus.safe_values()
        times_ms = []
        for tick in range(rounds):
            started = time.perf_counter()
            values = bus.read(inputs)
            written = bus.write({**safe, "rtcore_heartbeat": tick})
            times_ms.append((time.perf_counter() - started) * 1e3)
        read_ok = all(v.quality is Quality.GOOD for v in values)
        temps_match = all(abs(a - b) < 0.051 for a, b in zip(values[0].value, temps))  # 0.1 degC counts on Modbus
        plc_sees_safe = all(server.get(name) == value for name, value in safe.items() if name != "rtcore_heartbeat")
        return {
            "protocol": protocol,
            "endpoint": f"{server.tag_map.endpoint.host}:{server.port}",
            "rounds": rounds,
            "reads_good": read_ok and temps_match,
            "writes_good": all(w.quality is Quality.GOOD for w in written),
            "plc_sees_safe_outputs": plc_sees_safe,
            "heartbeat_on_plc": server.get("rtcore_heartbeat"),
            "round_trip_median_ms": round(statistics.median(times_ms), 3),
            "round_trip_max_ms": round(max(times_ms), 3),
        }


def run_demo(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.INFO)
    log.info("demo: the spine's loopback round trip (the plant and real-time loop are not wired in yet)")
    results = [round_trip(protocol, args.rounds) for protocol in MAPS]
    ok = all(r["reads_good"] and r["writes_good"] and r["plc_sees_safe_outputs"] for r in results)
    if args.json:
        print_json({"ok": ok, "job": "tag round trip on the HIL maps", "protocols": results})
    else:
        print("discharge-edge demo: tag round trip on the HIL bench maps, 127.0.0.1")
        for r in results:
            print(f"  {r['protocol']:6s} {r['endpoint']:>16s}  {r['rounds']} rounds  read {'ok' if r['reads_good'] else 'FAILED'}"
                  f"  safe outputs {'ok' if r['plc_sees_safe_outputs'] else 'FAILED'}"
                  f"  round trip median {r['round_trip_median_ms']:.2f} ms, max {r['round_trip_max_ms']:.2f} ms")
        print("OK" if ok else "FAILED")
    return 0 if ok else 1
