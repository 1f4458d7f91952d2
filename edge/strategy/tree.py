"""Game-tree optimisation of one tier's strategy (S12).

Owns `Action`/`ACTIONS` (the discrete modifications), `plan_tree` and `TreeResult`.
Tests: tests/edge/strategy/test_tree.py, tests/edge/strategy/test_tree_prefetch.py.

Root = the initial strategy. Children = the strategy after one discrete modification (`ACTIONS`;
a modification that leaves the maximum-safety limits is not a child). Each child has a prior
P (from `prior(strategy) -> probabilities over ACTIONS`, the RL policy served from ONNX, or
uniform) and a value from `evaluate(strategy) -> value` (higher better: -cost of the SIL rollouts,
edge/strategy/score.py). One simulation: from the root select the child maximising the PUCT
score  Q̂(c) + c_puct · P(c) · sqrt(N(parent)) / (1 + N(c))  (Q̂ = mean backed-up value,
min-max normalised over the tree; unvisited children get their parent's Q̂), down to a node not
yet expanded or at `max_depth`; expand it, evaluate it, back the value up the path (N += 1,
W += v). Budget: `max_simulations` and `max_seconds` (whichever ends first); ties broken by a
seeded generator. The importance of a node is its mean backed-up value Q (visits break ties);
the optimised path is the greedy descent by importance from the root to a leaf (a node with no
visited child); the optimised strategy applies that path up to the node of the best own
evaluation along it (never worse than the root's own evaluation).

Batched evaluation (`prefetch`, optional): before the tree evaluates a node it has not seen, it
hands `prefetch` that node's strategy with every sibling not yet evaluated and, when the node
will be expanded, its children (but only the node on the budget's last simulation): the planner rolls them out in one stacked SIL run and caches them
(edge/strategy/rollout.py `Rollout.many`), so that the later evaluations are cache hits. The
search itself is unchanged: the same values give the same tree, path and strategy with or without
`prefetch` (tests/edge/strategy/test_tree_prefetch.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge.strategy.model import Strategy, StrategyError, TierLimits, check_strategy


@dataclass(frozen=True)
class Action:
    name: str
    apply: Callable[[Strategy], Strategy]


def _scale_segment(i: int | None, factor: float) -> Callable[[Strategy], Strategy]:
    def f(s: Strategy) -> Strategy:
        segs = tuple((soc, round(c * factor, 3) if i is None or k == i else c) for k, (soc, c) in enumerate(s.segments))
        return s.replace(segments=segs)
    return f


def _shift(name: str, delta: float) -> Callable[[Strategy], Strategy]:
    return lambda s: s.replace(**{name: round(getattr(s, name) + delta, 3)})


def _derate_shift(delta: float) -> Callable[[Strategy], Strategy]:
    return lambda s: s.replace(derate_start_degc=s.derate_start_degc + delta, derate_stop_degc=s.derate_stop_degc + delta)


ACTIONS: tuple[Action, ...] = (
    Action("rate_up_all", _scale_segment(None, 1.15)),
    Action("rate_down_all", _scale_segment(None, 1 / 1.15)),
    Action("rate_up_high_soc", _scale_segment(0, 1.15)),
    Action("rate_down_low_soc", _scale_segment(-1, 1 / 1.15)),
    Action("taper_v_up", _shift("taper_v_per_cell", 0.1)),
    Action("taper_v_down", _shift("taper_v_per_cell", -0.1)),
    Action("end_rate_down", lambda s: s.replace(end_c_rate=round(s.end_c_rate * 0.7, 3))),
    Action("pressure_up", _shift("pressure_kpa", 25.0)),
    Action("pressure_down", _shift("pressure_kpa", -25.0)),
    Action("coolant_up", _shift("coolant_base_lpm", 4.0)),
    Action("derate_up", _derate_shift(1.0)),
    Action("derate_down", _derate_shift(-1.0)),
)
ACTION_NAMES = tuple(a.name for a in ACTIONS)


@dataclass
class Node:
    strategy: Strategy
    action: str | None
    prior: float
    depth: int
    children: list[Node] = field(default_factory=list)
    visits: int = 0
    total: float = 0.0
    own_value: float | None = None
    expanded: bool = False

    @property
    def q(self) -> float:
        return self.total / self.visits if self.visits else float("nan")


@dataclass(frozen=True)
class TreeResult:
    strategy: Strategy
    value: float
    root_value: float
    path: tuple[str, ...]
    simulations: int
    evaluations: int
    nodes: int
    elapsed_s: float


def uniform_prior(strategy: Strategy) -> np.ndarray:
    return np.full(len(ACTIONS), 1.0 / len(ACTIONS))


def _key(s: Strategy) -> str:
    return repr(s)


def plan_tree(root_strategy: Strategy, evaluate: Callable[[Strategy], float],
              prior: Callable[[Strategy], np.ndarray] = uniform_prior, limits: TierLimits = TierLimits(),
              max_simulations: int = 24, max_seconds: float = 60.0, max_depth: int = 4, c_puct: float = 1.5,
              seed: int = 0, prefetch: Callable[[list[Strategy]], None] | None = None) -> TreeResult:
    """Optimise `root_strategy` within the budget; see the module docstring."""
    if max_simulations < 1 or max_seconds <= 0 or max_depth < 1:
        raise ValueError("plan_tree: max_simulations >= 1, max_seconds > 0 and max_depth >= 1 required")
    check_strategy(root_strategy, limits, "root strategy")
    rng = np.random.default_rng(seed)
    cache: dict[str, float] = {}
    prefetched: set[str] = set()
    start = time.perf_counter()

    def value_of(s: Strategy) -> float:
        k = _key(s)
        if k not in cache:
            cache[k] = float(evaluate(s))
        return cache[k]

    def warm(node: Node, parent: Node | None) -> None:
        """Hand `prefetch` the node, its unevaluated siblings and its children-to-be (docstring); no
        look-ahead on the last simulation of the budget (nothing would use it)."""
        batch = [node.strategy]
        if sims + 1 < max_simulations:
            if parent is not None:
                batch += [c.strategy for c in parent.children if c is not node and c.own_value is None]
            if node.depth < max_depth:
                batch += _children(node.strategy, limits)
        todo = {}
        for b in batch:
            if _key(b) not in cache and _key(b) not in prefetched:
                todo.setdefault(_key(b), b)
        prefetched.update(todo)
        prefetch(list(todo.values()))

    root = Node(root_strategy, None, 1.0, 0)
    lo, hi = math.inf, -math.inf
    nodes = 1
    sims = 0
    while sims < max_simulations and time.perf_counter() - start < max_seconds:
        path = [root]
        node = root
        while node.expanded and node.children and node.depth < max_depth:
            node = _select(node, c_puct, lo, hi, rng)
            path.append(node)
        if node.own_value is None:
            if prefetch is not None and _key(node.strategy) not in cache and _key(node.strategy) not in prefetched:
                warm(node, path[-2] if len(path) > 1 else None)
            node.own_value = value_of(node.strategy)
        if not node.expanded and node.depth < max_depth:
            nodes += _expand(node, prior, limits)
        v = node.own_value
        lo, hi = min(lo, v), max(hi, v)
        for n in path:
            n.visits += 1
            n.total += v
        sims += 1
        if root.expanded and not root.children:
            break
    best_path, best = _optimised_path(root)
    return TreeResult(best.strategy, float(best.own_value), float(root.own_value), best_path, sims, len(cache),
                      nodes, time.perf_counter() - start)


def _children_with_actions(strategy: Strategy, limits: TierLimits) -> list[tuple[int, Strategy]]:
    """(index in ACTIONS, child) of each distinct child within the maximum-safety limits."""
    seen = {_key(strategy)}
    out = []
    for i, action in enumerate(ACTIONS):
        try:
            child = check_strategy(action.apply(strategy), limits)
        except StrategyError:
            continue
        if _key(child) in seen:
            continue
        seen.add(_key(child))
        out.append((i, child))
    return out


def _children(strategy: Strategy, limits: TierLimits) -> list[Strategy]:
    return [c for _, c in _children_with_actions(strategy, limits)]


def _expand(node: Node, prior: Callable[[Strategy], np.ndarray], limits: TierLimits) -> int:
    p = np.asarray(prior(node.strategy), float)
    if p.shape != (len(ACTIONS),) or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"prior must give {len(ACTIONS)} finite non-negative numbers, got {p}")
    for i, child in _children_with_actions(node.strategy, limits):
        node.children.append(Node(child, ACTIONS[i].name, float(p[i]), node.depth + 1))
    total = sum(c.prior for c in node.children)
    for c in node.children:
        c.prior = c.prior / total if total > 0 else 1.0 / len(node.children)
    node.expanded = True
    return len(node.children)


def _select(node: Node, c_puct: float, lo: float, hi: float, rng: np.random.Generator) -> Node:
    span = hi - lo if hi > lo else 1.0
    parent_q = (node.q - lo) / span if node.visits else 0.5
    sqrt_n = math.sqrt(max(node.visits, 1))
    scores = []
    for c in node.children:
        q = (c.q - lo) / span if c.visits else parent_q
        scores.append(q + c_puct * c.prior * sqrt_n / (1 + c.visits))
    scores = np.array(scores)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return node.children[int(rng.choice(best))]


def _optimised_path(root: Node) -> tuple[tuple[str, ...], Node]:
    """Greedy descent by importance (Q, then visits); the best own evaluation along it."""
    names: list[str] = []
    node, best, best_names = root, root, ()
    while True:
        visited = [c for c in node.children if c.visits and c.own_value is not None]
        if not visited:
            break
        node = max(visited, key=lambda c: (c.q, c.visits))
        names.append(node.action)
        if node.own_value > best.own_value:
            best, best_names = node, tuple(names)
    return best_names, best
