"""`discharge-edge plan --cells FILE.csv --json`: grade, then plan each tier's strategy (S12).

Owns the subcommand (entry point `plan = "tools.plan:register"`), `grade_table` (S11 grading
through edge.grading's API) and `plan_batch`: per tier, the initial strategy (the lowest-cost
history record near the tier's features, else `default_strategy`), the game tree
(edge.strategy.tree) over SIL rollouts of a representative sub-batch of the tier on the plant
model built from the estimates (tools/plan_rollout.py), the optimised strategy with its predicted
metrics and score; every evaluated rollout is appended to the SQLite history.
Exit codes: 0 done, 1 model refused, 2 bad input. Tests: tests/tools/test_plan.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from edge.grading.cli import grade_cells
from edge.grading.features import CellsFileError, feature_matrix, read_cells_csv
from edge.grading.soc_model import ModelIntegrityError, SocModel
from edge.grading.tiers import TierConfig
from edge.strategy.history import History, TierFeatures
from edge.strategy.model import Strategy, TierLimits, check_strategy
from edge.strategy.score import score_metrics
from edge.strategy.tree import plan_tree, uniform_prior
from tools.hil.cells import CellTable, load_cells
from tools.plan_rollout import Rollout, model_cells, pick_representative

log = logging.getLogger(__name__)

DEFAULT_HISTORY = Path.home() / ".discharge-edge" / "strategy_history.sqlite"


def default_strategy(features: TierFeatures) -> Strategy:
    """Expert start when the history has nothing: 2C above 50 % SOC, 1.6C below, derating 40-44 °C;
    the ΔT threshold and check interval calibrated for its highest C-rate, the calibrated S14-S15
    gains (edge/strategy/calibration.py)."""
    return Strategy(segments=((50.0, 2.0), (0.0, 1.6))).with_calibrated_thresholds()


def grade_table(cells_path: Path, cells: CellTable, n_tiers: int = TierConfig.n_tiers) -> dict:
    """S11 grading of the rows of `cells` (same file): soc_pct, soh_est, r_mohm, tier arrays."""
    table = read_cells_csv(cells_path)
    x = feature_matrix(table)[: len(cells)]
    model = SocModel.load()
    report = grade_cells(model, table.cell_ids[: len(cells)], x, TierConfig(n_tiers=min(n_tiers, len(cells))))
    rows = report["cells"]
    return {"soc_pct": np.array([c["soc_pct"] for c in rows]), "soh_est": np.array([c["soh_est"] for c in rows]),
            "r_mohm": cells["feat_r0p1s_mOhm"].copy(), "tier": np.array([c["tier"] for c in rows], int),
            "model_sha256": report["model"]["model_sha256"]}


def tier_features(grades: dict, rows: np.ndarray) -> TierFeatures:
    return TierFeatures(float(grades["soc_pct"][rows].mean()), float(grades["soh_est"][rows].mean()),
                        float(grades["r_mohm"][rows].mean()), int(rows.size))


def plan_batch(cells: CellTable, grades: dict, history: History, *, policy=None, use_tree: bool = True,
               max_simulations: int = 16, max_seconds: float = 120.0, rollout_modules: int = 4,
               rollout_dt_s: float = 2.0, seed: int = 0, limits: TierLimits = TierLimits()) -> dict[int, dict]:
    """Plan every tier; returns {tier: {strategy, predicted metrics, score, tree stats, rows}}.
    `policy` (edge.strategy.policy.RlPolicy) gives the tree its prior per tier; None: uniform."""
    plans = {}
    model = model_cells(cells, grades["soc_pct"], grades["soh_est"])
    for tier in sorted(set(grades["tier"].tolist())):
        rows = np.flatnonzero(grades["tier"] == tier)
        feats = tier_features(grades, rows)
        pick = rows[pick_representative(grades["soc_pct"][rows], grades["soh_est"][rows], grades["r_mohm"][rows],
                                        rollout_modules)]
        rollout = Rollout(model.select(pick), grades["soc_pct"][pick], grades["soh_est"][pick], dt_s=rollout_dt_s,
                          seed=seed)
        ref_time_s = rollout.traditional()["batch_time_s"]
        best = history.best_for(feats)
        initial = check_strategy(best.strategy, limits) if best is not None else default_strategy(feats)

        def evaluate(strategy: Strategy) -> float:
            metrics = rollout(strategy)
            score = score_metrics(metrics, limits, ref_time_s)
            history.append("sil", tier, feats, strategy, metrics, score.cost)
            evaluated[repr(strategy)] = (metrics, score)
            return score.value

        evaluated: dict[str, tuple] = {}
        start = time.perf_counter()
        if use_tree:
            prior = policy.prior_for(feats) if policy is not None else uniform_prior
            result = plan_tree(initial, evaluate, prior, limits, max_simulations=max_simulations,
                               max_seconds=max_seconds, seed=seed)
            strategy, path, sims = result.strategy, list(result.path), result.simulations
        else:
            evaluate(initial)
            strategy, path, sims = initial, [], 0
        metrics, score = evaluated[repr(strategy)]
        plans[int(tier)] = {
            "rows": rows, "features": feats, "strategy": strategy, "initial_from_history": best is not None,
            "predicted": metrics, "score": score, "ref_time_s": ref_time_s, "path": path, "simulations": sims,
            "rollouts": rollout.calls, "planning_s": time.perf_counter() - start, "sub_batch_rows": pick,
        }
        log.info("tier %d: %d modules, cost %.3f (%s), path %s, %.1f s", tier, rows.size, score.cost,
                 "feasible" if score.feasible else "; ".join(score.violations), path, plans[int(tier)]["planning_s"])
    return plans


def plans_to_json(plans: dict[int, dict]) -> list[dict]:
    out = []
    for tier, p in plans.items():
        f = p["features"]
        out.append({
            "tier": tier, "n_modules": f.n_modules, "soc_mean_pct": round(f.soc_mean_pct, 2),
            "soh_mean": round(f.soh_mean, 4), "r_mean_mohm": round(f.r_mean_mohm, 2),
            "strategy": p["strategy"].to_dict(), "initial_from_history": p["initial_from_history"],
            "predicted": {k: p["predicted"][k] for k in ("batch_time_s", "residual_pct", "peak_temp_degc",
                                                          "time_above_warning_s", "relief_events")},
            "predicted_traditional_batch_time_s": p["ref_time_s"],
            "score_cost": round(p["score"].cost, 4), "violations": list(p["score"].violations),
            "tree_path": p["path"], "simulations": p["simulations"], "rollouts": p["rollouts"],
            "planning_s": round(p["planning_s"], 2),
        })
    return out


def register(subparsers) -> None:
    parser = subparsers.add_parser("plan", help="grade, then plan a discharge strategy per tier (S12)")
    parser.add_argument("--cells", required=True, type=Path, help="cells CSV (format of ../shared/data/cells_train.csv)")
    parser.add_argument("--limit", type=int, default=None, help="use the first N rows")
    parser.add_argument("--tiers", type=int, default=TierConfig.n_tiers)
    parser.add_argument("--history", type=Path, default=DEFAULT_HISTORY, help="SQLite history (created if missing)")
    parser.add_argument("--simulations", type=int, default=16, help="game-tree simulations per tier")
    parser.add_argument("--seconds", type=float, default=120.0, help="game-tree time budget per tier")
    parser.add_argument("--no-tree", action="store_true", help="initial strategies only")
    parser.add_argument("--policy", type=Path, default=None, help="folder with rl_policy.onnx/.json (prior)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        cells = load_cells(args.cells, limit=args.limit)
        grades = grade_table(args.cells, cells, args.tiers)
    except (CellsFileError, ValueError) as exc:
        print(f"discharge-edge plan: {exc}", file=sys.stderr)
        return 2
    except ModelIntegrityError as exc:
        print(f"discharge-edge plan: model refused: {exc}", file=sys.stderr)
        return 1
    policy = None
    if args.policy is not None:
        from edge.strategy.policy import PolicyIntegrityError, RlPolicy

        try:
            policy = RlPolicy.load(args.policy)
        except PolicyIntegrityError as exc:
            print(f"discharge-edge plan: policy refused: {exc}", file=sys.stderr)
            return 1
    with History(args.history) as history:
        plans = plan_batch(cells, grades, history, policy=policy, use_tree=not args.no_tree,
                           max_simulations=args.simulations, max_seconds=args.seconds, seed=args.seed)
    report = {"cells": len(cells), "history": str(args.history), "tiers": plans_to_json(plans)}
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
