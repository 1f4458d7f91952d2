"""`discharge-edge plan --cells FILE.csv --json`: grade, then plan each tier's strategy (S12).

Owns the subcommand (entry point `plan = "edge.strategy.cli:register"`) and `load_policy`. The
cells file needs `cell_id` and the `feat_*` columns only (any other column is ignored, truth
included); it is read once (edge.grading.features.read_cells_csv). The RL policy (the game tree's
prior) loads from models/shipped by default (`--policy DIR` for another folder, `--no-policy` to
plan with a uniform prior). Exit codes: 0 done, 1 a model or the policy refused, 2 bad input.
Tests: tests/edge/strategy/test_planner.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.grading.features import CellsFileError, read_cells_csv
from edge.grading.soc_model import ModelIntegrityError
from edge.grading.tiers import TierConfig
from edge.strategy.history import History
from edge.strategy.planner import DEFAULT_HISTORY, grade_cells_table, plan_tiers
from edge.strategy.policy import SHIPPED_DIR, PolicyIntegrityError, RlPolicy


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    """`--policy DIR` (default models/shipped) and `--no-policy`, for every command that plans."""
    parser.add_argument("--policy", type=Path, default=SHIPPED_DIR,
                        help="folder with rl_policy.onnx/.json, the game tree's prior (default %(default)s)")
    parser.add_argument("--no-policy", action="store_true", help="plan with a uniform prior (no RL policy)")


def load_policy(args: argparse.Namespace, command: str) -> tuple[RlPolicy | None, int]:
    """(policy or None, 0), or (None, 1) after printing why the policy was refused."""
    if args.no_policy:
        return None, 0
    try:
        return RlPolicy.load(args.policy), 0
    except PolicyIntegrityError as exc:
        print(f"discharge-edge {command}: policy refused: {exc} (--no-policy plans without it)", file=sys.stderr)
        return None, 1


def register(subparsers) -> None:
    parser = subparsers.add_parser("plan", help="grade, then plan a discharge strategy per tier (S12)")
    parser.add_argument("--cells", required=True, type=Path, help="CSV with cell_id and the feat_* columns")
    parser.add_argument("--limit", type=int, default=None, help="use the first N rows")
    parser.add_argument("--tiers", type=int, default=TierConfig.n_tiers)
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY, help="SQLite history (created if missing)")
    parser.add_argument("--simulations", type=int, default=16, help="game-tree simulations per tier")
    parser.add_argument("--seconds", type=float, default=120.0, help="game-tree time budget per tier")
    parser.add_argument("--no-tree", action="store_true", help="initial strategies only")
    add_policy_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cells = read_cells_csv(args.cells, limit=args.limit)
        grades = grade_cells_table(cells, args.tiers)
    except (CellsFileError, ValueError) as exc:
        print(f"discharge-edge plan: {exc}", file=sys.stderr)
        return 2
    except ModelIntegrityError as exc:
        print(f"discharge-edge plan: model refused: {exc}", file=sys.stderr)
        return 1
    policy, code = load_policy(args, "plan")
    if code:
        return code
    with History(args.history) as history:
        plans = plan_tiers(cells, grades, history, policy=policy, use_tree=not args.no_tree,
                           max_simulations=args.simulations, max_seconds=args.seconds, seed=args.seed)
    models = dict(grades.models)
    if policy is not None:
        models["rl_policy"] = policy.meta["model_sha256"]
    report = {"cells": len(cells), "history": str(args.history), "models": models,
              "tiers": [p.to_json() for p in plans.values()]}
    if args.json:
        from edge.cli import print_json

        print_json(report)
        return 0
    for t in report["tiers"]:
        segs = ", ".join(f"{s['c_rate']}C from {s['soc_from_pct']}%" for s in t["strategy"]["segments"])
        print(f"tier {t['tier']}: {t['n_modules']} modules, SOC {t['soc_mean_pct']}%, SOH {t['soh_mean']}: {segs}, "
              f"{t['strategy']['pressure_kpa']} kPa; predicted {t['predicted']['batch_time_s']:.0f} s "
              f"(traditional {t['predicted_traditional_batch_time_s']:.0f} s), cost {t['score_cost']}")
    return 0
