"""Seeded instance generator (schema v1), for benchmarks and for operators sizing a test line.

Modules draw one of the paper's two test profiles (A: room-temperature discharge capacity, rate
discharge capacity, rate charge performance; B: room-temperature discharge capacity, low- and
high-temperature discharge capacity) plus a third mixed one (C: room discharge capacity, rate
discharge capacity, low-temperature discharge capacity). Unit lengths are the GB/T 31486 step
lengths at rated capacity (1I1 60 min, 2I1 30 min, 3I1 20 min) scaled by a per-module capacity
factor in [0.8, 1.2]; rests follow rule max_of_both (60 min room, 120 min low/high).
Wiring `fixed`: station i on channel i mod k; `full`: every station on every channel (a switch
matrix). k = ceil(modules / stations_per_channel).

    python -m edge.scheduling.generate 50 --wiring full --seed 3 -o line50.json

Tests: tests/edge/scheduling/test_schedule_generate.py.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from typing import Any

from edge.scheduling.instance import SCHEMA_ID

REST_CLASS_MIN = {"room": 60, "low": 120, "high": 120}
ITEMS: dict[str, tuple[str, list[tuple[str, str, int]]]] = {
    "rt_discharge_capacity": ("room", [("discharge", "1I1", 60), ("charge", "1I1", 60), ("discharge", "1I1", 60)]),
    "rt_rate_discharge_capacity": ("room", [("charge", "1I1", 60), ("discharge", "3I1", 20)]),
    "rt_rate_charge_performance": ("room", [("charge", "2I1", 30), ("discharge", "1I1", 60)]),
    "low_temp_discharge_capacity": ("low", [("charge", "1I1", 60), ("discharge", "1I1", 60)]),
    "high_temp_discharge_capacity": ("high", [("charge", "1I1", 60), ("discharge", "1I1", 60)]),
}
PROFILES = {
    "A": ["rt_discharge_capacity", "rt_rate_discharge_capacity", "rt_rate_charge_performance"],
    "B": ["rt_discharge_capacity", "low_temp_discharge_capacity", "high_temp_discharge_capacity"],
    "C": ["rt_discharge_capacity", "rt_rate_discharge_capacity", "low_temp_discharge_capacity"],
}
WIRINGS = ("fixed", "full")


def generate_instance(n_modules: int, wiring: str = "fixed", seed: int = 0, stations_per_channel: int = 4,
                      task_order: str = "fixed") -> dict[str, Any]:
    """A JSON-ready instance; the same arguments give the same instance."""
    if n_modules < 1 or stations_per_channel < 1:
        raise ValueError(f"n_modules and stations_per_channel must be >= 1, got {n_modules}, {stations_per_channel}")
    if wiring not in WIRINGS:
        raise ValueError(f"wiring must be one of {WIRINGS}, got {wiring!r}")
    rng = random.Random(seed)
    k = math.ceil(n_modules / stations_per_channel)
    stations = [f"S{i + 1}" for i in range(n_modules)]
    if wiring == "fixed":
        channels = [{"id": f"CH{c + 1}", "stations": stations[c::k]} for c in range(k)]
    else:
        channels = [{"id": f"CH{c + 1}", "stations": list(stations)} for c in range(k)]
    modules = [_module(i, stations[i], rng) for i in range(n_modules)]
    return {
        "schema": SCHEMA_ID,
        "name": f"generated-{n_modules}mod-{k}ch-{wiring}-seed{seed}",
        "time_unit": "min",
        "source": {"generator": "edge.scheduling.generate", "seed": seed, "wiring": wiring,
                   "stations_per_channel": stations_per_channel},
        "rest_rule": "max_of_both",
        "rest_classes_min": dict(REST_CLASS_MIN),
        "task_order": task_order,
        "channels": channels,
        "modules": modules,
    }


def _module(i: int, station: str, rng: random.Random) -> dict[str, Any]:
    profile = rng.choice(sorted(PROFILES))
    factor = rng.uniform(0.8, 1.2)
    mid = f"M{i + 1}"
    items = PROFILES[profile]
    tasks = []
    for j, item in enumerate(items):
        temp, steps = ITEMS[item]
        rest = REST_CLASS_MIN[temp]
        prev_rest = REST_CLASS_MIN[ITEMS[items[j - 1]][0]] if j else rest
        next_rest = REST_CLASS_MIN[ITEMS[items[j + 1]][0]] if j + 1 < len(items) else rest
        units = []
        for k, (op, rate, minutes) in enumerate(steps):
            # max_of_both: inside an item its class; across items the larger of the two classes
            before = max(rest, prev_rest) if k == 0 else rest
            after = max(rest, next_rest) if k == len(steps) - 1 else rest
            units.append({"id": f"{mid}.T{j + 1}.U{k + 1}", "op": op, "rate": rate,
                          "duration_min": max(1, round(minutes * factor)),
                          "min_rest_before_min": before, "min_rest_after_min": after})
        tasks.append({"item": item, "temperature": temp, "rest_class_min": rest, "units": units})
    return {"id": mid, "station": station, "profile": profile, "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edge.scheduling.generate", description=__doc__.splitlines()[0])
    ap.add_argument("modules", type=int)
    ap.add_argument("--wiring", choices=WIRINGS, default="fixed")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stations-per-channel", type=int, default=4)
    ap.add_argument("--task-order", choices=("fixed", "first_fixed"), default="fixed")
    ap.add_argument("-o", "--output", help="file to write (default: stdout)")
    args = ap.parse_args(argv)
    data = generate_instance(args.modules, args.wiring, args.seed, args.stations_per_channel, args.task_order)
    text = json.dumps(data, indent=1) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
