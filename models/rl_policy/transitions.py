"""Experience from the history: records of one tier whose strategies differ by one ACTION are a transition.

Owns `transitions_from_records` and `digest`. Only rollout records ('sil', 'rl') count. A transition (s, a, r, s', valid actions at s'):
s = state_vector(tier features, strategy), a = the ACTION that turns it into the other record's
strategy, r = clip(cost(s) - cost(s'), -1, 1) (the score's improvement), s' = the next state.
Tests: tests/models/test_rl_policy.py.
"""

from __future__ import annotations

import hashlib

import numpy as np

from edge.strategy.history import Record
from edge.strategy.model import StrategyError, check_strategy
from edge.strategy.policy import STATE_DIM, state_vector
from edge.strategy.tree import ACTIONS


def _group_key(r: Record) -> tuple:
    f = r.features
    return (r.tier, round(f.soc_mean_pct, 3), round(f.soh_mean, 4), round(f.r_mean_mohm, 3), f.n_modules)


def _next(strategy):
    out = []
    for i, action in enumerate(ACTIONS):
        try:
            out.append((i, check_strategy(action.apply(strategy))))
        except StrategyError:
            continue
    return out


def transitions_from_records(records: list[Record]) -> dict[str, np.ndarray]:
    groups: dict[tuple, dict[str, tuple]] = {}
    for r in records:
        if r.source not in ("sil", "rl"):  # bench records score the whole batch, on another scale
            continue
        g = groups.setdefault(_group_key(r), {})
        k = repr(r.strategy)
        if k not in g or r.cost < g[k][1].cost:
            g[k] = (r.strategy, r)
    s, a, rew, s2, m2 = [], [], [], [], []
    for g in groups.values():
        for strategy, rec in g.values():
            for i, nxt in _next(strategy):
                hit = g.get(repr(nxt))
                if hit is None:
                    continue
                mask = np.zeros(len(ACTIONS), bool)
                for j, nn in _next(nxt):
                    mask[j] = True
                s.append(state_vector(rec.features, strategy))
                a.append(i)
                rew.append(float(np.clip(rec.cost - hit[1].cost, -1.0, 1.0)))
                s2.append(state_vector(rec.features, nxt))
                m2.append(mask)
    if not s:
        return {"s": np.zeros((0, STATE_DIM), np.float32), "a": np.zeros(0, np.int64), "r": np.zeros(0, np.float32),
                "s2": np.zeros((0, STATE_DIM), np.float32), "mask2": np.zeros((0, len(ACTIONS)), bool)}
    return {"s": np.array(s, np.float32), "a": np.array(a, np.int64), "r": np.array(rew, np.float32),
            "s2": np.array(s2, np.float32), "mask2": np.array(m2, bool)}


def digest(t: dict[str, np.ndarray]) -> str:
    """sha256 of the training transitions (the 'training data' of the metadata)."""
    h = hashlib.sha256()
    for k in ("s", "a", "r", "s2", "mask2"):
        h.update(k.encode())
        h.update(np.ascontiguousarray(t[k]).tobytes())
    return h.hexdigest()
