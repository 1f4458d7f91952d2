"""`discharge-edge bench ...`: measurements on the bench (tools/ side of the command line)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli import print_json


def register(subparsers) -> None:
    bench = subparsers.add_parser("bench", help="measure the controller on the bench")
    actions = bench.add_subparsers(dest="bench_command", metavar="BENCH", required=True)
    rt = actions.add_parser("rtcore", help="the real-time loop's lateness under CPU and GIL load")
    rt.add_argument("--seconds", type=float, default=10.0)
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=run_rtcore_bench)
    dis = actions.add_parser("discharge", help="one batch in SIL: the traditional method against ours")
    dis.add_argument("--cells", type=Path, required=True, help="cells CSV (format of ../shared/data/cells_train.csv)")
    dis.add_argument("--limit", type=int, default=None, help="use the first N rows")
    dis.add_argument("--dt-s", type=float, default=1.0, help="SIL step and tick (virtual seconds)")
    dis.add_argument("--current-a", type=float, default=5.0, help="discharge current of the fixed strategy")
    dis.add_argument("--max-time-s", type=float, default=4 * 3600.0)
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
    from tools.bench_discharge import run_bench_discharge
    from tools.hil.cells import load_cells

    cells = load_cells(args.cells, limit=args.limit)
    report = run_bench_discharge(cells, dt_s=args.dt_s, max_time_s=args.max_time_s, current_a=args.current_a)
    if args.json:
        print_json(report)
        return 0
    keys = ("batch_time_s", "modules_finished", "residual_ah", "residual_pct", "peak_temp_degc",
            "time_above_warning_s", "relief_events")
    print(f"{len(cells)} modules, {args.current_a} A, SIL step {args.dt_s} s")
    print(f"{'':24s} {'traditional':>12s} {'ours':>12s}")
    for key in keys:
        print(f"{key:24s} {report['traditional'][key]:12.1f} {report['ours'][key]:12.1f}")
    return 0
