"""`discharge-edge bench ...`: measurements on the bench (tools/ side of the command line).

`bench discharge` refuses bad input with a message naming the file and line and exit code 2, never
a traceback, through edge.cli's one input-error path: every error of the cells file
(tools.hil.cells.load_cells), a file of more than `MAX_MODULES` (2 000) rows without `--limit`
(named with its row count), absurd grades of a row (with --plan), a history path that is no file,
out-of-range options. Rows the reader refuses (outside the physical ranges) are named on stderr
with their line and left out. Each run's progress goes to stderr every few seconds
(tools/bench_discharge.py states the bounds of time and memory). With --plan the strategy
history lives in the state dir (`--state-dir`, default ./state; `--history FILE` for another file),
as for `plan`. `bench all` runs every benchmark of issue 19 (tools/bench_all.py) and prints their
table (with --json one JSON object; --out keeps the JSON too). Tests: tests/tools/test_bench_discharge.py,
tests/tools/test_bench_discharge_bounds.py, tests/tools/test_bench_all.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.cli import EXIT_PROBLEM, EXIT_USAGE, INPUT_ERRORS, print_json, refuse, refuse_input
from edge.strategy.cli import add_history_arguments, add_policy_arguments, positive_finite, positive_int, refused_rows

COMMAND = "discharge-edge bench discharge"
MAX_MODULES = 2000
"""tools.bench_discharge.MAX_MODULES (kept here so the parser loads without the plant)."""
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
    dis.add_argument("--limit", type=positive_int, default=None,
                     help=f"use the first N rows (a batch is at most {MAX_MODULES} modules)")
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
    every = actions.add_parser("all", help="every benchmark of issue 19 (tick, loop, tick work by stations and "
                                           "protocol, grade, plan, schedule, SIL plant): one JSON object")
    every.add_argument("--json", action="store_true", help="print the JSON object (default: the table)")
    every.add_argument("--quick", action="store_true", help="short runs (the test's; figures only indicative)")
    every.add_argument("--compare", type=Path, default=None,
                       help="an earlier run's JSON (make bench: build/bench/last.json): each figure against it")
    every.add_argument("--out", type=Path, default=None, help="also write the JSON object to this file")
    every.set_defaults(func=run_all_bench)


def run_rtcore_bench(args: argparse.Namespace) -> int:
    from tools.bench_rtcore import bench_rtcore

    report = bench_rtcore(args.seconds)
    if args.json:
        print_json(report)
    else:
        for key, value in report.items():
            print(f"{key:24s} {value}")
    return 0


def run_all_bench(args: argparse.Namespace) -> int:
    """`bench all` (tools/bench_all.py): progress on stderr; on stdout the table (each figure
    against --compare's run when given) or, with --json, the JSON object; --out keeps the JSON."""
    import json

    from tools.bench_all import bench_all, compare, table

    before = None
    if args.compare is not None and args.compare.is_file():
        try:
            before = json.loads(args.compare.read_text())
        except (OSError, ValueError) as exc:
            print(f"discharge-edge bench all: --compare {args.compare}: unreadable, not compared: {exc}",
                  file=sys.stderr)
    report = bench_all(quick=args.quick)
    if args.out is not None:
        try:
            args.out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        except OSError as exc:
            print(f"discharge-edge bench all: --out {args.out}: cannot write: {exc.strerror}", file=sys.stderr)
            return 1
    if args.json:
        if before is not None:
            print(f"discharge-edge bench all: against {args.compare}:", file=sys.stderr)
            for line in compare(report, before):
                print(f"  {line}", file=sys.stderr)
        print_json(report)
    else:
        if before is not None:
            print(f"against {args.compare}:")
        print("\n".join(table(report, before)))
    return 0


def run_discharge_bench(args: argparse.Namespace) -> int:
    from edge.batterymodel.sil import SilConfig
    from tools.hil.cells import load_cells

    name = "bench discharge"
    try:
        SilConfig(dt_s=args.dt_s, max_time_s=args.max_time_s, record_every_s=max(args.dt_s, 10.0))
    except ValueError as exc:
        return refuse(name, str(exc))
    if args.max_time_s > MAX_VIRTUAL_S:
        return refuse(name, f"--max-time-s must be in (0, {MAX_VIRTUAL_S:g}] s, got {args.max_time_s:g}")
    top_a = _max_current_a()
    if args.current_a > top_a:
        return refuse(name, f"--current-a must be in (0, {top_a:g}] A (the loop map's discharge_current_setpoint_a), "
                            f"got {args.current_a:g}")
    if args.limit is not None and args.limit > MAX_MODULES:
        return refuse(name, f"--limit must be at most {MAX_MODULES} (a bench batch; one SIL station per module), "
                            f"got {args.limit}")
    try:  # at most one row past the maximum is read: a larger file is refused, never loaded whole
        cells = load_cells(args.cells, limit=args.limit or MAX_MODULES + 1)
    except INPUT_ERRORS as exc:  # CellsFileError, a truth value out of range, not UTF-8, an oversized field
        return refuse_input(name, args.cells, exc)
    if args.limit is None and len(cells) + len(cells.refused) > MAX_MODULES:
        return refuse(name, f"{args.cells}: {_count_rows(args.cells)} rows; a bench batch is at most {MAX_MODULES} "
                            f"modules (one SIL station each): use --limit {MAX_MODULES} or a smaller file")
    refused_rows(cells, name)  # rows left out by the reader, named with their line; the rest run
    faults = _faults(args, len(cells))
    if faults is None:
        return EXIT_USAGE
    if args.plan:
        return _run_planned(args, cells, faults)
    from tools.bench_discharge import run_bench_discharge

    report = run_bench_discharge(cells, dt_s=args.dt_s, max_time_s=args.max_time_s, current_a=args.current_a,
                                 faults=faults, progress=_progress)
    if args.json:
        print_json(report)
        return 0
    print(f"{len(cells)} modules, {args.current_a} A, SIL step {args.dt_s} s, budget {report['budget']}")
    _print_table(report, ("traditional", "ours"))
    return 0


def _progress(line: str) -> None:
    print(f"{COMMAND}: {line}", file=sys.stderr, flush=True)


def _count_rows(path: Path) -> str:
    """The file's data rows (its lines after the header), counted in blocks: bounded memory."""
    n, last = 0, b"\n"
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return str(n - (last == b"\n"))


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
        refuse("bench discharge", f"--short-module must be in 0..{n_modules - 1}")
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
                                       simulations=args.simulations, policy=policy, faults=faults,
                                       progress=_progress)
    except ModelIntegrityError as exc:
        return refuse("bench discharge", f"model refused: {exc}", EXIT_PROBLEM)
    except (HistoryError, HistoryRecordError, PlanInputError) as exc:
        return refuse("bench discharge", str(exc))
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
