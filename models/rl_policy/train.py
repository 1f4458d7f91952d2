"""Train the RL policy: history records first, then a set number of explore-evaluate-update iterations.

`python -m models.rl_policy.train --history H.sqlite --cells FILE --limit N --tiers K --iterations I --out DIR`

1. Experience = transitions between history records (models/rl_policy/transitions.py): the
   records are the first experience (planning and bench runs put them there).
2. Bellman updates (fitted Q iteration, models/rl_policy/qnet.py) on all transitions.
3. Explore: for every tier of the history, from its best record, the ε-greedy action under Q
   (untried first) gives a new strategy; all are evaluated by the planner's environment
   (edge.strategy.planner.evaluate_requests: SIL rollouts on the battery model built from the grade
   of `--cells`, graded once), which writes them back to the history as 'rl' records.
4. Repeat 1-3 `--iterations` times; fit once more and export (models/rl_policy/export.py).
Tests: tests/models/test_rl_policy.py. Model card: MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from edge.limits import SHIPPED_MODELS_DIR
from edge.grading.features import read_cells_csv
from edge.strategy.history import History
from edge.strategy.model import StrategyError, check_strategy
from edge.strategy.planner import evaluate_requests, grade_cells_table
from edge.strategy.policy import state_vector
from edge.strategy.tree import ACTIONS
from models.rl_policy.export import export_policy
from models.rl_policy.qnet import QNet, fit_bellman
from models.rl_policy.transitions import transitions_from_records

log = logging.getLogger(__name__)


def fit(records, seed: int, sweeps: int = 20) -> tuple[QNet, dict, list[float]]:
    torch.manual_seed(seed)
    t = transitions_from_records(records)
    qnet = QNet()
    losses = fit_bellman(qnet, t["s"], t["a"], t["r"], t["s2"], t["mask2"], sweeps=sweeps, seed=seed) if len(t["a"]) else []
    return qnet, t, losses


def propose(qnet: QNet, records, rng: np.random.Generator, epsilon: float) -> list[dict]:
    """One new strategy per tier: ε-greedy under Q from the tier's best record, skipping tried ones."""
    tried = {(r.tier, repr(r.strategy)) for r in records}
    best: dict[int, object] = {}
    for r in records:
        if r.tier not in best or r.cost < best[r.tier].cost:
            best[r.tier] = r
    requests = []
    for tier, rec in sorted(best.items()):
        with torch.no_grad():
            q = qnet(torch.tensor(state_vector(rec.features, rec.strategy)[None, :]))[0].numpy()
        order = list(np.argsort(-q)) if rng.random() > epsilon else list(rng.permutation(len(ACTIONS)))
        for i in order:
            try:
                nxt = check_strategy(ACTIONS[int(i)].apply(rec.strategy))
            except StrategyError:
                continue
            if (tier, repr(nxt)) not in tried:
                requests.append({"tier": tier, "strategy": nxt.to_dict()})
                break
    return requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.rl_policy.train")
    parser.add_argument("--history", type=Path, required=True)
    parser.add_argument("--cells", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tiers", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--epsilon", type=float, default=0.2)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SHIPPED_MODELS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    grades = grade_cells_table(read_cells_csv(args.cells, limit=args.limit), args.tiers)
    log_rows = []
    with History(args.history) as history:
        start_records = history.count()
        for it in range(args.iterations):
            records = history.all()
            qnet, t, losses = fit(records, args.seed + it)
            requests = propose(qnet, records, rng, args.epsilon)
            results = evaluate_requests(grades, history, requests) if requests else []
            row = {"iteration": it, "records": len(records), "transitions": int(len(t["a"])),
                   "loss_last": losses[-1] if losses else None, "evaluated": len(results),
                   "costs": [round(r["cost"], 4) for r in results]}
            log.info("%s", row)
            log_rows.append(row)
        records = history.all()
    qnet, t, losses = fit(records, args.seed)
    training = {"history_records_at_start": start_records, "history_records_at_end": len(records),
                "iterations": args.iterations, "epsilon": args.epsilon, "gamma": 0.5, "transitions": int(len(t["a"])),
                "final_loss": losses[-1] if losses else None, "log": log_rows, "seed": args.seed,
                "cells": str(args.cells), "limit": args.limit, "tiers": args.tiers}
    path = export_policy(qnet, t, args.out, args.temperature, training)
    log.info("exported %s (%d transitions)", path, len(t["a"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
