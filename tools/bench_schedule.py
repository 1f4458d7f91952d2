"""Scheduling benchmark: the paper's colony, the `best` method and the lower bound side by side.

    .venv/bin/python -m tools.bench_schedule                      # 20/50/200 modules, both wirings
    .venv/bin/python -m tools.bench_schedule --sizes 20 50 --aco-limit 10 --best-limit 10
    .venv/bin/python -m tools.bench_schedule --paper-seeds 20     # the paper instance, 20 seeds

Instances come from edge.scheduling.generate (seeded; 4 stations per channel; `fixed` wiring
or every station on every channel). Columns: traditional makespan, the colony with the paper's
parameters (heuristic `rest`, and `wait` with --wait) under a wall-clock cap, `best`, the lower
bound and the gap of `best` to it; runtimes in wall seconds and CPU seconds (the machine may be
shared; CPU time is the steadier figure). Every plan is validated.
Tests of the pieces: tests/edge/scheduling/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace

from edge import REPO_ROOT
from edge.scheduling.aco import AcoParams, Heuristic
from edge.scheduling.best import solve
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict, load_instance
from edge.scheduling.plan import traditional_plan

PAPER = REPO_ROOT.parent / "shared" / "scheduling" / "paper_instance.json"


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def bench_instance(inst, aco_limit: float, best_limit: float, seed: int, with_wait: bool) -> dict:
    row = {"instance": inst.name, "modules": len(inst.modules), "channels": len(inst.channels),
           "units": len(inst.units), "traditional_min": traditional_plan(inst).makespan_min}
    variants = [("aco", Heuristic.REST)] + ([("aco_wait", Heuristic.WAIT)] if with_wait else [])
    for key, h in variants:
        sol, wall, cpu = timed(lambda: solve(inst, "aco", aco_limit, seed, aco=replace(AcoParams(), heuristic=h)))
        row.update({f"{key}_min": sol.makespan_min, f"{key}_wall_s": round(wall, 1), f"{key}_cpu_s": round(cpu, 1),
                    f"{key}_iterations": sol.plan.info["iterations"]})
    sol, wall, cpu = timed(lambda: solve(inst, "best", best_limit, seed))
    row.update({"best_min": sol.makespan_min, "best_wall_s": round(wall, 1), "best_cpu_s": round(cpu, 1),
                "bound_min": sol.lower_bound_min, "best_gap_pct": sol.gap_pct, "best_stages": sol.plan.info["stages"]})
    return row


def paper_seeds(n_seeds: int, heuristic: Heuristic) -> dict:
    inst = load_instance(PAPER)
    spans, walls, cpus, found = [], [], [], []
    for s in range(n_seeds):
        sol, wall, cpu = timed(lambda: solve(inst, "aco", None, s, aco=replace(AcoParams(), heuristic=heuristic)))
        spans.append(sol.makespan_min)
        walls.append(wall)
        cpus.append(cpu)
        found.append(sol.plan.info["found_at_iteration"])
    best, bw, bc = timed(lambda: solve(inst, "best", 10.0, 0))
    return {"instance": inst.name, "heuristic": heuristic.value, "seeds": n_seeds,
            "traditional_min": traditional_plan(inst).makespan_min,
            "aco_min": min(spans), "aco_median": statistics.median(spans), "aco_max": max(spans),
            "aco_found_at_iteration_median": statistics.median(found),
            "aco_wall_s_median": round(statistics.median(walls), 2), "aco_cpu_s_median": round(statistics.median(cpus), 2),
            "best_min": best.makespan_min, "bound_min": best.lower_bound_min, "best_wall_s": round(bw, 2),
            "best_proven_optimal": best.optimal}


def print_table(rows: list[dict], with_wait: bool) -> None:
    head = ["instance", "units", "trad", "aco", "s(wall/cpu)"]
    if with_wait:
        head += ["aco_wait", "s(wall/cpu)"]
    head += ["best", "s(wall/cpu)", "bound", "gap%"]
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for r in rows:
        cells = [r["instance"], r["units"], r["traditional_min"], r["aco_min"], f"{r['aco_wall_s']}/{r['aco_cpu_s']}"]
        if with_wait:
            cells += [r["aco_wait_min"], f"{r['aco_wait_wall_s']}/{r['aco_wait_cpu_s']}"]
        cells += [r["best_min"], f"{r['best_wall_s']}/{r['best_cpu_s']}", r["bound_min"], r["best_gap_pct"]]
        print(" | ".join(str(c) for c in cells), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.bench_schedule", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200])
    ap.add_argument("--wirings", nargs="+", default=["fixed", "full"], choices=["fixed", "full"])
    ap.add_argument("--seed", type=int, default=1, help="instance and solver seed")
    ap.add_argument("--aco-limit", type=float, default=30.0, help="wall-clock cap of the colony (s)")
    ap.add_argument("--best-limit", type=float, default=30.0, help="time limit of best (s)")
    ap.add_argument("--wait", action="store_true", help="also run the colony with heuristic 'wait'")
    ap.add_argument("--paper-seeds", type=int, default=0, help="only the paper instance over N seeds")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON lines too")
    args = ap.parse_args(argv)
    if args.paper_seeds:
        for h in Heuristic:
            print(json.dumps(paper_seeds(args.paper_seeds, h)), flush=True)
        return 0
    rows = []
    for n in args.sizes:
        for w in args.wirings:
            inst = instance_from_dict(generate_instance(n, w, seed=args.seed))
            rows.append(bench_instance(inst, args.aco_limit, args.best_limit, args.seed, args.wait))
            if args.json:
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print_table(rows, args.wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
