"""`discharge-edge schedule INSTANCE.json`: plan the test work of a line and print it.

    discharge-edge schedule INSTANCE.json [--json] [--method aco|best] [--time-limit S]
                                          [--seed N] [--heuristic rest|wait] [--gantt FILE.png]

Prints the makespan, the traditional makespan (each module alone on its channel), the lower
bound, the method and the plan (per channel the ordered units with start and end). Exit code 0
on a plan, 1 when the instance is invalid (the error names the file and field), 2 on bad usage.
Tests: tests/edge/scheduling/test_schedule_cli.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from edge.scheduling.aco import AcoParams, Heuristic
from edge.scheduling.best import Method, solve
from edge.scheduling.instance import InstanceError, load_instance
from edge.scheduling.plan import traditional_plan

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("schedule", help="plan module tests over channels and stations",
                              description=__doc__.splitlines()[0])
    p.add_argument("instance", help="instance JSON (schema discharge-edge/test-schedule-instance/v1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--method", choices=[m.value for m in Method], default=Method.BEST.value)
    p.add_argument("--time-limit", type=_positive, default=None, metavar="S",
                   help="seconds (best: total budget, default 10; aco: cap on top of t_max)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heuristic", choices=[h.value for h in Heuristic], default=Heuristic.REST.value,
                   help="colony heuristic for --method aco: rest (1/required rest, default) or wait")
    p.add_argument("--gantt", metavar="FILE.png", help="write a Gantt chart")
    p.set_defaults(func=run)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        instance = load_instance(args.instance)
    except InstanceError as exc:
        print(f"discharge-edge schedule: {exc}", file=sys.stderr)
        return 1
    aco = replace(AcoParams(), heuristic=Heuristic(args.heuristic))
    solution = solve(instance, args.method, args.time_limit, args.seed, aco=aco)
    traditional = traditional_plan(instance).makespan_min
    payload = {
        "instance": instance.name,
        "method": solution.plan.method,
        "makespan_min": solution.makespan_min,
        "traditional_makespan_min": traditional,
        "lower_bound_min": solution.lower_bound_min,
        "gap_to_bound_pct": solution.gap_pct,
        "reduction_vs_traditional_pct": round(100.0 * (traditional - solution.makespan_min) / traditional, 1),
        "proven_optimal": solution.optimal,
        "runtime_s": round(solution.runtime_s, 3),
        "seed": args.seed,
        "info": {k: v for k, v in solution.plan.info.items() if k != "seed"},
        "plan": solution.plan.to_dict(instance)["channels"],
    }
    if args.gantt:
        payload["gantt_png"] = str(_gantt(instance, solution.plan, args.gantt))
    if args.json:
        from edge.cli import print_json

        print_json(payload)
    else:
        _print_text(payload)
    return 0


def _gantt(instance, plan, path):
    from edge.scheduling.gantt import write_gantt

    return write_gantt(instance, plan, path)


def _print_text(d: dict) -> None:
    print(f"{d['instance']}: method {d['method']}, makespan {d['makespan_min']} min "
          f"(traditional {d['traditional_makespan_min']} min, -{d['reduction_vs_traditional_pct']}%), "
          f"lower bound {d['lower_bound_min']} min{' (optimal)' if d['proven_optimal'] else ''}, "
          f"{d['runtime_s']} s")
    for ch in d["plan"]:
        units = ", ".join(f"{u['unit']} {u['start_min']}-{u['end_min']}" for u in ch["units"])
        print(f"  {ch['channel']}: {units}")
    if "gantt_png" in d:
        print(f"  gantt: {d['gantt_png']}")
