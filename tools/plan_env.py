"""The RL environment as a process: evaluate requested strategies of tiers in SIL, write them to the history.

`python -m tools.plan_env --cells FILE --limit N --tiers K --history H.sqlite < requests.json`
reads a JSON list of {"tier": t, "strategy": {...}} on stdin, grades the batch (S11, as
`discharge-edge plan` does), rolls each strategy out on its tier's representative sub-batch of the
plant model (tools/plan_rollout.py), scores it (edge/strategy/score.py against the traditional
method on the same sub-batch), appends a record with source 'rl' and prints one JSON object
{"results": [{tier, cost, metrics}]} on stdout. models/rl_policy/train.py talks to it over this
process boundary (models/ never imports tools/). Tests: tests/tools/test_plan_env.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.strategy.history import History
from edge.strategy.model import Strategy, StrategyError, check_strategy
from edge.strategy.score import score_metrics
from tools.hil.cells import load_cells
from tools.plan import grade_table, tier_features
from tools.plan_rollout import Rollout, model_cells, pick_representative


def evaluate_requests(cells_path: Path, limit: int | None, n_tiers: int, history: History, requests: list[dict],
                      rollout_modules: int = 4, dt_s: float = 2.0) -> list[dict]:
    cells = load_cells(cells_path, limit=limit)
    grades = grade_table(cells_path, cells, n_tiers)
    model = model_cells(cells, grades["soc_pct"], grades["soh_est"])
    envs: dict[int, tuple] = {}
    out = []
    for i, req in enumerate(requests):
        tier = int(req["tier"])
        strategy = check_strategy(Strategy.from_dict(req["strategy"], f"request {i}"), where=f"request {i}")
        if tier not in envs:
            rows = np.flatnonzero(grades["tier"] == tier)
            if rows.size == 0:
                raise StrategyError(f"request {i}: tier {tier} has no modules in {cells_path}")
            pick = rows[pick_representative(grades["soc_pct"][rows], grades["soh_est"][rows], grades["r_mohm"][rows],
                                            rollout_modules)]
            rollout = Rollout(model.select(pick), grades["soc_pct"][pick], grades["soh_est"][pick], dt_s=dt_s)
            envs[tier] = (tier_features(grades, rows), rollout, rollout.traditional()["batch_time_s"])
        feats, rollout, ref = envs[tier]
        metrics = rollout(strategy)
        score = score_metrics(metrics, ref_time_s=ref)
        history.append("rl", tier, feats, strategy, metrics, score.cost)
        out.append({"tier": tier, "cost": score.cost, "metrics": metrics})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan_env", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tiers", type=int, default=4)
    parser.add_argument("--history", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        requests = json.load(sys.stdin)
        with History(args.history) as history:
            results = evaluate_requests(args.cells, args.limit, args.tiers, history, requests)
    except (ValueError, KeyError, StrategyError) as exc:
        print(f"plan_env: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
