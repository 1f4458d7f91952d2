"""`discharge-edge bench ...`: measurements on the bench (tools/ side of the command line).

`bench discharge` refuses bad input with a message naming the file and line and exit code 2, never
a traceback: every error of the cells file (tools.hil.cells.load_cells), absurd grades of a row
(with --plan), a history path that is no file, out-of-range options. With --plan the strategy
history lives in the state dir (`--state-dir`, default ./state; `--history FILE` for another file),
as for `plan`. Tests: tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import print_json
from edge.strategy.cli import (INPUT_ERRORS, add_history_arguments, add_policy_arguments, input_error, positive_finite,
                               positive_int, refused_rows)

COMMAND = "discharge-edge bench discharge"
MAX_VIRTUAL_S = 86400.0
"""The longest SIL run `--max-time-s` may ask for (one virtual day; a batch ends in hours)."""


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="measure the controller on the bench")
    actions = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    rt = actions.add_parser("rtcore", help="the real-time loop's lateness under CPU and GIL load")
    rt.add_argument("--seconds", type=float, default=10.0)
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=run_rtcore_bench)
    dis = actions.add_parser("discharge", help="one batch in SIL: the traditional method against ours")
    dis.add_argument("--cells", type=Path, required=True, help="cells CSV (format of ../shared/data/cells_train.csv)")
    dis.add_argument("--limit", type=positive_int, default=None, help="use the first N rows")
    dis.add_argument("--dt-s", type=positive_finite, default=1.0, help="SIL step and tick (virtual seconds, at most 5)")
    dis.add_argument("--current-a", type=positive_finite, default=5.0, help="discharge current of the fixed strategy")
    dis.add_argument("--max-time-s", type=positive_finite, default=4 * 3600.0,
                     help=f"end of the SIL run, virtual seconds (at most {MAX_VIRTUAL_S:g})")
    dis.add_argument("--plan", action="store_true",
                     help="ours = grade -> tiers -> game-tree plan per tier (S12), with the ablations")
    add_history_arguments(dis)
    dis.add_argument("--simulations", type=positive_int, default=16, help="game-tree simulations per tier (with --plan)")
    add_policy_arguments(dis)
    dis.add_argument("--short-module", type=int, default=None,
                     help="an internal short (1 ohm, cell 0, from 60 s) in this module in every run; with --plan "
                          "the report adds the run without_relief (S14-S15 off)")
    dis.add_argument("--json", action="store_true")
    dis.set_defaults(func=run_discharge_bench)


def run_rtcore_bench(args: argparse.Namespace) -> int:
    from tools.bench_rtcore import bench_rtcore

    report = bench_rtcore(args.seconds)
    if args.json:
        print_json(report)
    else:
        for key, value in report.items():
            print(f"{key:24s} {value}")
    return 0


def run_discharge_bench(args: argparse.Namespace) -> int:
    from edge.batterymodel.sil import SilConfig
    from tools.hil.cells import load_cells

    try:
        SilConfig(dt_s=args.dt_s, max_time_s=args.max_time_s, record_every_s=max(args.dt_s, 10.0))
    except ValueError as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 2
    if args.max_time_s > MAX_VIRTUAL_S:
        print(f"{COMMAND}: --max-time-s must be in (0, {MAX_VIRTUAL_S:g}] s, got {args.max_time_s:g}", file=sys.stderr)
        return 2
    top_a = _max_current_a()
    if args.current_a > top_a:
        print(f"{COMMAND}: --current-a must be in (0, {top_a:g}] A (the loop map's discharge_current_setpoint_a), "
              f"got {args.current_a:g}", file=sys.stderr)
        return 2
    try:
        cells = load_cells(args.cells, limit=args.limit)
    except INPUT_ERRORS as exc:  # CellsFileError, a truth value out of range, not UTF-8, an oversized field
        print(f"{COMMAND}: {input_error(args.cells, exc)}", file=sys.stderr)
        return 2
    refused_rows(cells, "bench discharge")  # rows left out by the reader, named; the rest run
    faults = _faults(args, len(cells))
    if faults is None:
        return 2
    if args.plan:
        return _run_planned(args, cells, faults)
    from tools.bench_discharge import run_bench_discharge

    report = run_bench_discharge(cells, dt_s=args.dt_s, max_time_s=args.max_time_s, current_a=args.current_a,
                                 faults=faults)
    if args.json:
        print_json(report)
        return 0
    print(f"{len(cells)} modules, {args.current_a} A, SIL step {args.dt_s} s, budget {report['budget']}")
    _print_table(report, ("traditional", "ours"))
    return 0


def _max_current_a() -> float:
    from edge.strategy.loop_controller import LOOP_MAP
    from edge.tagmap import load_tag_map

    limits = load_tag_map(LOOP_MAP).tag("discharge_current_setpoint_a").limits
    return float(limits.max) if limits is not None else float("inf")


def _faults(args: argparse.Namespace, n_modules: int) -> tuple | None:
    if args.short_module is None:
        return ()
    from tools.hil.faults import InternalShort

    if not 0 <= args.short_module < n_modules:
        print(f"{COMMAND}: --short-module must be in 0..{n_modules - 1}", file=sys.stderr)
        return None
    return (InternalShort(module=args.short_module, cell=0, r_short_ohm=1.0, onset_s=60.0),)


KEYS = ("batch_time_s", "modules_finished", "modules_isolated", "residual_ah", "residual_pct", "peak_temp_degc",
        "time_above_warning_s", "relief_events", "coolant_mean_lpm")


SHORT = {"tiers_without_tree": "no tree", "tree_without_relief_correction": "no S15 corr.",
         "without_relief": "no S14-S15"}


def _print_table(report: dict, sides: tuple[str, ...]) -> None:
    print(f"{'':24s}" + "".join(f" {SHORT.get(s, s):>14s}" for s in sides))
    for key in KEYS:
        print(f"{key:24s}" + "".join(f" {report[s][key]:14.1f}" for s in sides))


def _run_planned(args: argparse.Namespace, cells, faults: tuple) -> int:
    from edge.grading.soc_model import ModelIntegrityError
    from edge.strategy.cli import history_path, load_policy
    from edge.strategy.history import History, HistoryError, HistoryRecordError
    from edge.strategy.planner import PlanInputError
    from tools.bench_discharge import run_bench_planned

    policy, code = load_policy(args, "bench discharge")
    if code:
        return code
    try:
        with History(history_path(args)) as history:
            report = run_bench_planned(cells, history, dt_s=args.dt_s, max_time_s=args.max_time_s,
                                       simulations=args.simulations, policy=policy, faults=faults)
    except ModelIntegrityError as exc:
        print(f"{COMMAND}: model refused: {exc}", file=sys.stderr)
        return 1
    except (HistoryError, HistoryRecordError, PlanInputError) as exc:
        print(f"{COMMAND}: {exc}", file=sys.stderr)
        return 2
    for r in report["refused"]:  # absurd grades: left out of every run
        print(f"{COMMAND}: {cells.path}:{r['line']}: cell_id {r['cell_id']}: refused: {r['reason']}", file=sys.stderr)
    if policy is not None:
        report["models"]["rl_policy"] = policy.meta["model_sha256"]
    if args.json:
        print_json(report)
        return 0
    print(f"{len(cells)} modules, tiers {report['tier_sizes']}, SIL step {args.dt_s} s")
    _print_table(report, tuple(k for k in ("traditional", "tiers_without_tree", "tree_without_relief_correction",
                                           "ours", "without_relief") if k in report))
    return 0
