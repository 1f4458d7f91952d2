"""`discharge-edge plan --cells FILE.csv --json`: grade, then plan each tier's strategy (S12).

Owns the subcommand (entry point `plan = "edge.strategy.cli:register"`) and `load_policy`. The
cells file needs `cell_id` and the `feat_*` columns only (any other column is ignored, truth
included); it is read once (edge.grading.features.read_cells_csv). A row the reader refuses (a
feature outside its physical range), or whose grade is absurd (edge.strategy.planner.sane_rows),
is named on stderr and in the report's `refused`, and is neither planned nor recorded; the other
rows are planned. The RL policy (the game tree's
prior) loads from models/shipped by default (`--policy DIR` for another folder, `--no-policy` to
plan with a uniform prior). The strategy history lives in the state dir: `--state-dir DIR` (default
`./state`, `DEFAULT_STATE_DIR`) holds `strategy_history.sqlite`; `--history FILE` names another file.
Nothing is written outside them. An unreadable history is set aside (renamed, named in a warning and
in the report's `history_set_aside`) and planning goes on with an empty one. Exit codes: 0 done, 1 a
model or the policy refused, 2 bad input (the cells file, absurd grades, a history path that is no
file), printed through edge.cli's one input-error path (`refuse_input`). Tests: tests/edge/strategy/test_planner.py, tests/edge/strategy/test_batch_sizes.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from edge.cli import INPUT_ERRORS, refuse_input
from edge.grading.features import read_cells_csv
from edge.grading.soc_model import ModelIntegrityError
from edge.grading.tiers import TierConfig
from edge.progress import add_progress_argument, progress_enabled, steps
from edge.strategy.history import HISTORY_FILE, History, HistoryError, HistoryRecordError
from edge.strategy.policy import SHIPPED_DIR, PolicyIntegrityError, RlPolicy

DEFAULT_STATE_DIR = Path("state")
"""Where `plan` and `bench discharge --plan` keep the strategy history unless told (relative to the
working directory: the project's own folder when run from it)."""


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    """`--state-dir DIR` (default ./state) and `--history FILE` (default DIR/strategy_history.sqlite)."""
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                        help=f"state dir holding the strategy history {HISTORY_FILE} (default %(default)s)")
    parser.add_argument("--history", type=Path, default=None,
                        help="SQLite strategy history (created if missing; default STATE_DIR/" + HISTORY_FILE + ")")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_finite(text: str) -> float:
    """argparse type: a finite number > 0 (a time budget, a step, a current)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def refused_rows(cells, command: str, refused: tuple | None = None) -> tuple:
    """The rows left out, each named on stderr with its file line: by default those the cells reader
    refused (edge.grading.features.Refusal: outside the physical ranges); they are not graded,
    planned or recorded."""
    refused = tuple(getattr(cells, "refused", ())) if refused is None else refused
    source = getattr(cells, "source", None) or getattr(cells, "path", "")
    for r in refused:
        print(f"discharge-edge {command}: {r.message(str(source))}", file=sys.stderr)
    return refused


def history_path(args: argparse.Namespace) -> Path:
    return args.history if args.history is not None else args.state_dir / HISTORY_FILE


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
    parser.add_argument("--limit", type=positive_int, default=None, help="use the first N rows")
    parser.add_argument("--tiers", type=positive_int, default=TierConfig.n_tiers)
    add_history_arguments(parser)
    parser.add_argument("--simulations", type=positive_int, default=16, help="game-tree simulations per tier")
    parser.add_argument("--seconds", type=positive_finite, default=120.0, help="game-tree time budget per tier")
    parser.add_argument("--no-tree", action="store_true", help="initial strategies only")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes planning tiers at once (0: one a core); with more than 1 every tier starts "
                             "from the history as it stood at the start (default %(default)s: one after the other)")
    add_policy_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    add_progress_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edge.strategy.planner import PlanInputError, grade_cells_table, plan_tiers, sane_rows  # the planner: on use

    try:
        cells = read_cells_csv(args.cells, limit=args.limit)
        grades = grade_cells_table(cells, args.tiers)
    except ModelIntegrityError as exc:
        print(f"discharge-edge plan: model refused: {exc}", file=sys.stderr)
        return 1
    except INPUT_ERRORS as exc:
        return refuse_input("plan", args.cells, exc)
    refused = refused_rows(cells, "plan")
    keep, absurd = sane_rows(cells, grades)
    refused += refused_rows(cells, "plan", absurd)
    if keep.size == 0:
        print(f"discharge-edge plan: {args.cells}: every battery refused, nothing to plan", file=sys.stderr)
        return 2
    if absurd:
        cells, grades = cells.subset(keep), grades.select(keep)
    policy, code = load_policy(args, "plan")
    if code:
        return code
    path = history_path(args)
    n_tiers = len(set(grades.tier.tolist()))
    try:
        with History(path) as history, steps(n_tiers, "plan", unit="tier", enabled=progress_enabled(args)) as bar:
            def tier_done(plan) -> None:
                bar.set_postfix_str(f"tier {plan.tier} cost {plan.score.cost:.4f}")
                bar.update()

            plans = plan_tiers(cells, grades, history, policy=policy, use_tree=not args.no_tree,
                               max_simulations=args.simulations, max_seconds=args.seconds, seed=args.seed,
                               workers=args.workers, on_tier=tier_done)
            set_aside = history.set_aside
    except (HistoryError, HistoryRecordError, PlanInputError) as exc:  # a history path that is no file, absurd grades
        print(f"discharge-edge plan: {exc}", file=sys.stderr)
        return 2
    models = dict(grades.models)
    if policy is not None:
        models["rl_policy"] = policy.meta["model_sha256"]
    report = {"cells": len(cells), "refused": [r.to_dict() for r in refused], "history": str(path),
              "history_set_aside": str(set_aside) if set_aside else None, "models": models,
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
