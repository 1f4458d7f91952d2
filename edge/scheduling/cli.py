"""`discharge-edge schedule INSTANCE.json`: plan the test work of a line and print it.

    discharge-edge schedule INSTANCE.json [--json] [--method aco|best] [--time-limit S]
                                          [--seed N] [--heuristic rest|wait] [--gantt FILE.png]
                                          [--running PLAN.json --now-min T [--overrun UNIT=MIN ...]]
                                          [--progress|--no-progress]

Prints the makespan, the traditional makespan (each module alone on its channel), the lower
bound, the method and the plan (per channel the ordered units with start and end).

Re-planning: with `--running PLAN.json` (what `--json` printed earlier) and `--now-min T`, the
units of that plan that started before T stay as they ran, everything else in INSTANCE.json
(which may hold new modules, tasks and wiring) is planned from T on; `--overrun UNIT=MIN`
gives a unit its new duration. Exit code 0
on a plan, 1 when the instance is invalid (the error names the file and field), 2 on bad usage
(a time limit that is not a finite number of seconds from 0.05 to 86400 included).

The time limit is the budget of the whole command from the moment it starts (loading,
planning, validation, the Gantt chart and output): every method returns its best plan by then.
While it plans, a bar on stderr shows the budget spent and the time left (edge/progress.py);
it is quiet under `--json` unless `--progress` asks for it.
Tests: tests/edge/scheduling/test_schedule_cli.py, test_schedule_progress.py, test_schedule_budget.py (limits, budgets),
test_schedule_input_errors.py, test_schedule_budget_slow.py (2 000 modules, marker slow).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from edge.progress import add_progress_argument, progress_enabled, time_budget
from edge.scheduling.aco import AcoParams, Heuristic
from edge.scheduling.best import DEFAULT_TIME_LIMIT_S, Method, solve
from edge.scheduling.budget import MAX_TIME_LIMIT_S, MIN_TIME_LIMIT_S, Deadline, TimeLimitError, check_time_limit_s
from edge.scheduling.instance import InstanceError, load_instance, read_json
from edge.scheduling.plan import PLAN_MAX_MIN, plan_from_json, traditional_plan
from edge.scheduling.replan import Disruption, replan

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("schedule", help="plan module tests over channels and stations",
                              description=__doc__.splitlines()[0])
    p.add_argument("instance", help="instance JSON (schema discharge-edge/test-schedule-instance/v1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--method", choices=[m.value for m in Method], default=Method.BEST.value)
    p.add_argument("--time-limit", type=_time_limit, default=None, metavar="S",
                   help=f"seconds for the whole command, loading included, from {MIN_TIME_LIMIT_S} to "
                        f"{MAX_TIME_LIMIT_S:.0f} (default {DEFAULT_TIME_LIMIT_S:.0f}); aco also ends at its t_max")
    p.add_argument("--seed", type=_seed, default=0, help=f"0 to {SEED_MAX} (default 0)")
    p.add_argument("--heuristic", choices=[h.value for h in Heuristic], default=Heuristic.REST.value,
                   help="colony heuristic for --method aco: rest (1/required rest, default) or wait")
    p.add_argument("--gantt", metavar="FILE.png", help="write a Gantt chart")
    p.add_argument("--running", metavar="PLAN.json", help="re-plan: the plan being run (--json output)")
    p.add_argument("--now-min", type=_now_min, metavar="T",
                   help=f"re-plan: minutes since the running plan began (0 to {PLAN_MAX_MIN - 1})")
    p.add_argument("--overrun", action="append", default=[], metavar="UNIT=MIN",
                   help="re-plan: a unit's new duration (repeatable)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def _time_limit(text: str) -> float:
    try:
        return check_time_limit_s(text, "seconds")
    except TimeLimitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


GANTT_S = 0.5                # matplotlib's import and the figure
GANTT_S_PER_UNIT = 80e-6     # measured 1.6 s for 14 000 units


def gantt_reserve_s(time_limit_s: float, n_units: int) -> float:
    """The part of the budget kept for `--gantt` (at most 30 % of it)."""
    return min(0.3 * time_limit_s, GANTT_S + GANTT_S_PER_UNIT * n_units)


SEED_MAX = 2**31 - 1     # CP-SAT takes a 32-bit seed


def _bounded_int(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text[:40]}")
    return value


def _seed(text: str) -> int:
    return _bounded_int(text, 0, SEED_MAX)


def _now_min(text: str) -> int:
    return _bounded_int(text, 0, PLAN_MAX_MIN - 1)


def run(args: argparse.Namespace) -> int:
    # the budget starts now: loading the files counts
    deadline = Deadline(DEFAULT_TIME_LIMIT_S if args.time_limit is None else args.time_limit)
    args.deadline = deadline
    try:
        instance = load_instance(args.instance)
    except InstanceError as exc:
        print(f"discharge-edge schedule: {exc}", file=sys.stderr)
        return 1
    aco = replace(AcoParams(), heuristic=Heuristic(args.heuristic))
    extra: dict = {}
    if args.running is None:
        if args.now_min is not None or args.overrun:
            print("discharge-edge schedule: --now-min and --overrun need --running PLAN.json", file=sys.stderr)
            return 2
        if args.gantt:   # the chart is drawn inside the budget too
            limit = DEFAULT_TIME_LIMIT_S if args.time_limit is None else args.time_limit
            deadline = deadline.until(deadline.end - gantt_reserve_s(limit, len(instance.units)))
        with _planning(args, deadline):
            solution = solve(instance, args.method, args.time_limit, args.seed, aco=aco, deadline=deadline)
    else:
        try:
            with _planning(args, deadline):
                solution, instance, extra = _replan(instance, args)
        except (ValueError, OSError) as exc:
            print(f"discharge-edge schedule: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, _Usage) else 1
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
        **extra,
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


def _planning(args: argparse.Namespace, deadline: Deadline):
    """The progress bar over what is left of the command's budget (stderr)."""
    return time_budget(max(deadline.left_s(), 0.0), f"schedule {args.method}", enabled=progress_enabled(args))


class _Usage(ValueError):
    pass


def _replan(instance, args):
    if args.now_min is None or args.now_min < 0:
        raise _Usage("--running needs --now-min T (minutes >= 0)")
    overruns = {}
    for item in args.overrun:
        uid, _, minutes = item.partition("=")
        if not minutes.isdigit():
            raise _Usage(f"--overrun {item!r}: expected UNIT=MINUTES")
        overruns[uid] = int(minutes)
    path = Path(args.running)
    try:
        data = read_json(path)
    except InstanceError as exc:
        raise ValueError(f"{path}: {'; '.join(exc.problems)}") from None
    running = plan_from_json(instance, data, str(path))
    res = replan(instance, running, Disruption(args.now_min, overruns=overruns), args.method,
                 args.time_limit, args.seed, deadline=args.deadline)
    extra = {"replanned_at_min": args.now_min, "kept_units": list(res.kept), "released_units": list(res.released)}
    return res.solution, res.instance, extra


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
