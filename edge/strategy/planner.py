"""Planning per tier (S12): grade a batch from its arrival tests, then plan each tier's strategy.

The API the supervisor calls (documented in edge/strategy/README.md):

    grade_cells_table(cells, n_tiers=4, model=None) -> Grades
    plan_tiers(cells, grades, history, *, policy=None, max_simulations=16, max_seconds=120.0, seed=0,
               rollout_modules=4, use_tree=True, limits=TierLimits(), rollout_dt_s=2.0) -> dict[int, TierPlan]

`cells` is an edge.grading.features.CellTable read once (`read_cells_csv`); only `cell_id` and the
`feat_*` columns are used (`arrival_columns` drops every other column first, truth included).
Per tier: the initial strategy (the lowest-cost history record near the tier's features, else
`default_strategy`), the game tree (edge.strategy.tree) over SIL rollouts of a representative
sub-batch of the tier on the battery model built from the grade (edge/strategy/rollout.py), the
optimised strategy with its predicted metrics and score; every evaluated rollout is appended to the
SQLite history (source 'sil'). `evaluate_requests` is the RL environment
(models/rl_policy/train.py): requested strategies of tiers, scored the same way, written as 'rl'.
Only sane grades are planned on (`sane_rows`: every battery's SOC, SOH, resistance and ambient
inside the history's physical ranges, edge.strategy.history.FEATURE_RANGES; the SOH model can
answer 276 or -162 for features inside their physical ranges): callers leave the others out with
`sane_rows` and report them (`GradeRefusal`: file line, field, value); `plan_tiers` refuses a batch
still holding one with `PlanInputError`, before any rollout, so that neither a plan nor a history
record is made of it. Any batch size plans, 1 to
thousands (a tier of one module is its own sub-batch).
Tests: tests/edge/strategy/test_planner.py, tests/edge/strategy/test_batch_sizes.py.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from edge.batterymodel.plant import Batteries
from edge.grading.cli import grade_cells
from edge.grading.features import FEATURE_PREFIX, CellTable, Refusal, feature_matrix
from edge.grading.soc_model import SocModel
from edge.grading.tiers import TierConfig
from edge.strategy.history import FEATURE_RANGES, History, TierFeatures, check_features
from edge.strategy.model import Strategy, StrategyError, TierLimits, check_strategy
from edge.strategy.rollout import (Grades, Rollout, RolloutMetrics, many_rollout_batteries, pick_representative,
                                   traditional_many)
from edge.strategy.score import Score, score_metrics
from edge.strategy.tree import plan_tree, uniform_prior

log = logging.getLogger(__name__)

AMBIENT_RANGE_DEGC = (-40.0, 80.0)
"""A sane ambient at arrival (the cell's operating range, wide)."""
PREDICTED_KEYS = ("batch_time_s", "residual_pct", "peak_temp_degc", "time_above_warning_s", "relief_events")
"""The predicted metrics a plan reports (`TierPlan.to_json`)."""


class PlanInputError(ValueError):
    """Grades that cannot be planned on (the message names the file, line, field and value)."""


@dataclass(frozen=True)
class TierPlan:
    """One tier's plan: the strategy to apply, what its rollout predicts, and how it was found."""

    tier: int
    rows: np.ndarray
    """Row indices of the tier's batteries in the graded batch."""
    features: TierFeatures
    strategy: Strategy
    initial_from_history: bool
    metrics: RolloutMetrics
    """The applied strategy's rollout on the sub-batch."""
    score: Score
    reference: RolloutMetrics
    """The traditional method's rollout on the same sub-batch (the score's reference time)."""
    path: tuple[str, ...]
    simulations: int
    rollouts: int
    planning_s: float
    """Wall time of the tier's tree (the tiers' reference rollouts run before, together, in one SIL run)."""
    sub_batch_rows: np.ndarray
    rollouts_run: int = 0
    """Strategies rolled out, the tree's look-ahead included (`rollouts`: those it used)."""
    sil_runs: int = 0
    """Stacked SIL runs of the tree (the reference not counted: one run for every tier's)."""

    def to_json(self) -> dict:
        f, metrics = self.features, self.metrics.to_dict()
        return {
            "tier": self.tier, "n_modules": f.n_modules, "soc_mean_pct": round(f.soc_mean_pct, 2),
            "soh_mean": round(f.soh_mean, 4), "r_mean_mohm": round(f.r_mean_mohm, 2),
            "strategy": self.strategy.to_dict(), "initial_from_history": self.initial_from_history,
            "predicted": {k: metrics[k] for k in PREDICTED_KEYS},
            "predicted_traditional_batch_time_s": self.reference.batch_time_s,
            "score_cost": round(self.score.cost, 4), "violations": list(self.score.violations),
            "tree_path": list(self.path), "simulations": self.simulations, "rollouts": self.rollouts,
            "planning_s": round(self.planning_s, 2), "rollouts_run": self.rollouts_run, "sil_runs": self.sil_runs,
        }


def arrival_columns(cells: CellTable) -> CellTable:
    """The table with `cell_id` and the `feat_*` columns only: what a line measures on arrival."""
    return CellTable(cells.source, cells.cell_ids,
                     {k: v for k, v in cells.columns.items() if k.startswith(FEATURE_PREFIX)}, cells.lines)


def grade_cells_table(cells: CellTable, n_tiers: int = TierConfig.n_tiers, model: SocModel | None = None) -> Grades:
    """S11 grading of every row of `cells` (feat_* columns only): SOC with its interval, SOH with its
    spread, the measured resistance and ambient, the tier. `model` defaults to the shipped SOC model
    (raises edge.grading.soc_model.ModelIntegrityError when it is refused)."""
    cells = arrival_columns(cells)
    model = model or SocModel.load()
    x = feature_matrix(cells)
    report = grade_cells(model, cells.cell_ids, x, TierConfig(n_tiers=min(n_tiers, len(cells))))
    rows = report["cells"]

    def column(key: str) -> np.ndarray:
        return np.array([c[key] for c in rows], float)

    return Grades(cell_ids=cells.cell_ids.copy(), soc_pct=column("soc_pct"), soc_lo_pct=column("soc_lo_pct"),
                  soc_hi_pct=column("soc_hi_pct"), soc_level=float(report["soc_interval_level"]),
                  soh_est=column("soh_est"), soh_sd=float(model.meta["soh_model"]["sd"]),
                  r_mohm=cells.columns["feat_r0p1s_mOhm"].copy(), t_amb_degc=cells.columns["feat_t_amb_C"].copy(),
                  tier=column("tier").astype(int), models={"soc_gan": report["model"]["model_sha256"]})


#: A battery whose grade is absurd: the same record as a row the cells reader refused (file line,
#: cell_id, field, why), so that callers report both alike.
GradeRefusal = Refusal


def sane_rows(cells: CellTable, grades: Grades) -> tuple[np.ndarray, tuple[GradeRefusal, ...]]:
    """(row indices of the batteries whose grade can be planned on, a GradeRefusal for each other).
    Absurd: SOC, SOH or the measured resistance outside the history's physical ranges
    (edge.strategy.history.FEATURE_RANGES), an ambient outside `AMBIENT_RANGE_DEGC`, or a figure
    that is not finite; the first such field of a battery is named."""
    checks = (("soc_pct", grades.soc_pct, FEATURE_RANGES["soc_mean_pct"]),
              ("soh_est", grades.soh_est, FEATURE_RANGES["soh_mean"]),
              ("feat_r0p1s_mOhm", grades.r_mohm, FEATURE_RANGES["r_mean_mohm"]),
              ("feat_t_amb_C", grades.t_amb_degc, AMBIENT_RANGE_DEGC))
    lines = cells.lines if cells.lines is not None else np.arange(len(cells)) + 2
    refused: dict[int, GradeRefusal] = {}
    for name, values, (lo, hi) in checks:
        values = np.asarray(values, float)
        for i in np.flatnonzero(~(np.isfinite(values) & (values >= lo) & (values <= hi))):
            refused.setdefault(int(i), GradeRefusal(int(lines[i]), str(cells.cell_ids[i]), name,
                                                    f"{name} {values[i]:g} outside [{lo:g}, {hi:g}] (graded, "
                                                    "not planned)"))
    keep = np.array([i for i in range(len(cells)) if i not in refused], dtype=np.int64)
    return keep, tuple(refused[i] for i in sorted(refused))


def check_grades(cells: CellTable, grades: Grades) -> None:
    """Raise PlanInputError naming every battery (file:line, up to 10) whose grade is absurd (`sane_rows`)."""
    _, refused = sane_rows(cells, grades)
    if refused:
        more = f" (and {len(refused) - 10} more)" if len(refused) > 10 else ""
        raise PlanInputError("not planned, absurd grades: "
                             + "; ".join(r.message(cells.source) for r in refused[:10]) + more)


def default_strategy(features: TierFeatures) -> Strategy:
    """Expert start when the history has nothing: 2C above 50 % SOC, 1.6C below, derating 40-44 °C;
    the ΔT threshold and check interval calibrated for its highest C-rate, the calibrated S14-S15
    gains (edge/strategy/calibration.py)."""
    return Strategy(segments=((50.0, 2.0), (0.0, 1.6))).with_calibrated_thresholds()


def tier_features(grades: Grades, rows: np.ndarray) -> TierFeatures:
    return TierFeatures(float(grades.soc_pct[rows].mean()), float(grades.soh_est[rows].mean()),
                        float(grades.r_mohm[rows].mean()), int(rows.size))


def tier_rollout(grades: Grades, tier: int, rollout_modules: int = 4, dt_s: float = 2.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, Rollout]:
    """(the tier's rows, its sub-batch rows, the rollout of that sub-batch)."""
    rows = np.flatnonzero(grades.tier == tier)
    if rows.size == 0:
        raise StrategyError(f"tier {tier} has no batteries")
    pick = rows[pick_representative(grades.soc_pct[rows], grades.soh_est[rows], grades.r_mohm[rows], rollout_modules)]
    return rows, pick, Rollout(grades.select(pick), dt_s=dt_s, seed=seed)


def plan_workers(n_tiers: int, workers: int = 1) -> int:
    """How many processes plan the tiers: `workers` (0: one a core this process may run on), never
    more than the tiers; 1 plans in this process."""
    if workers == 0:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            workers = os.cpu_count() or 1
    return max(1, min(int(workers), n_tiers))


@dataclass(frozen=True)
class _TierJob:
    """What one tier's planning needs, picklable (a worker process gets it)."""

    grades: Grades
    tier: int
    rows: np.ndarray
    pick: np.ndarray
    features: TierFeatures
    initial: Strategy
    from_history: bool
    policy_dir: str | None
    policy_sha256: str | None
    max_simulations: int
    max_seconds: float
    seed: int
    use_tree: bool
    limits: TierLimits
    dt_s: float
    batteries: Batteries
    reference: RolloutMetrics
    """The traditional method on the sub-batch (all tiers' in one SIL run before the trees)."""


_POLICIES: dict[str, object] = {}


def _worker_policy(job: _TierJob, policy):
    """The job's policy: the caller's own in-process; a worker loads it from its folder once and
    checks it is the same model (sha256) the caller loaded."""
    if policy is not None or job.policy_dir is None:
        return policy
    if job.policy_dir not in _POLICIES:
        from edge.strategy.policy import RlPolicy

        _POLICIES[job.policy_dir] = RlPolicy.load(job.policy_dir)
    loaded = _POLICIES[job.policy_dir]
    if loaded.meta.get("model_sha256") != job.policy_sha256:
        raise RuntimeError(f"{job.policy_dir}: the policy changed while planning (sha256 "
                           f"{loaded.meta.get('model_sha256')} != {job.policy_sha256})")
    return loaded


def _plan_tier(job: _TierJob, policy=None) -> tuple[TierPlan, list[tuple]]:
    """Plan one tier (in this process or a worker): its TierPlan and the history records of every
    evaluation the tree used, in order, as (strategy, metrics dict, cost) for the caller to append."""
    start = time.perf_counter()
    policy = _worker_policy(job, policy)
    rollout = Rollout(job.grades.select(job.pick), dt_s=job.dt_s, seed=job.seed, batteries=job.batteries)
    reference = job.reference
    limits = job.limits
    evaluated: dict[str, tuple[RolloutMetrics, Score]] = {}
    records: list[tuple] = []

    def evaluate(strategy: Strategy) -> float:
        metrics = rollout.many([strategy])[0]
        score = score_metrics(metrics.to_dict(), limits, reference.batch_time_s)
        records.append((strategy, metrics.to_dict(), score.cost))
        evaluated[repr(strategy)] = (metrics, score)
        return score.value

    if job.use_tree:
        prior = policy.prior_for(job.features) if policy is not None else uniform_prior
        result = plan_tree(job.initial, evaluate, prior, limits, max_simulations=job.max_simulations,
                           max_seconds=job.max_seconds, seed=job.seed, prefetch=rollout.many)
        strategy, path, sims = result.strategy, tuple(result.path), result.simulations
    else:
        evaluate(job.initial)
        strategy, path, sims = job.initial, (), 0
    metrics, score = evaluated[repr(strategy)]
    plan = TierPlan(tier=job.tier, rows=job.rows, features=job.features, strategy=strategy,
                    initial_from_history=job.from_history, metrics=metrics, score=score, reference=reference,
                    path=path, simulations=sims, rollouts=len(records), planning_s=time.perf_counter() - start,
                    sub_batch_rows=job.pick, rollouts_run=rollout.calls, sil_runs=rollout.runs)
    return plan, records


def plan_tiers(cells: CellTable, grades: Grades, history: History, *, policy=None, max_simulations: int = 16,
               max_seconds: float = 120.0, seed: int = 0, rollout_modules: int = 4, use_tree: bool = True,
               limits: TierLimits = TierLimits(), rollout_dt_s: float = 2.0,
               workers: int = 1, on_tier: Callable[[TierPlan], None] | None = None) -> dict[int, TierPlan]:
    """Plan every tier of the graded batch (module docstring). `policy` (edge.strategy.policy.RlPolicy)
    gives the tree its prior per tier; None: uniform. With `workers` 1 (the default) the tiers are
    planned one after the other in this process, each from the history holding the records of the
    tiers before it; with more (0: one a core, `plan_workers`), that many spawned processes plan
    them at once, each from the history as it stood at the start (so a later tier may start
    elsewhere: not the same plans). Records are appended tier by tier in tier order either way;
    `on_tier(plan)` is called as each tier's plan is recorded (a progress bar)."""
    if len(grades) != len(cells) or not np.array_equal(grades.cell_ids, cells.cell_ids):
        raise ValueError(f"{cells.source}: the grades are not of these cells")
    check_grades(cells, grades)

    tiers = sorted(set(grades.tier.tolist()))
    picks = {}
    for tier in tiers:
        rows = np.flatnonzero(grades.tier == tier)
        picks[tier] = rows, rows[pick_representative(grades.soc_pct[rows], grades.soh_est[rows], grades.r_mohm[rows],
                                                     rollout_modules)]
    models = dict(zip(tiers, many_rollout_batteries([grades.select(picks[t][1]) for t in tiers], seed)))
    start = time.perf_counter()
    references = dict(zip(tiers, traditional_many([Rollout(grades.select(picks[t][1]), dt_s=rollout_dt_s, seed=seed,
                                                           batteries=models[t]) for t in tiers])))
    log.info("the traditional method on every tier's sub-batch: one SIL run, %.2f s", time.perf_counter() - start)

    def job_for(tier: int) -> _TierJob:
        rows, pick = picks[tier]
        feats = check_features(tier_features(grades, rows), f"{cells.source}: tier {tier}")
        best = history.best_for(feats)
        initial = check_strategy(best.strategy, limits) if best is not None else default_strategy(feats)
        return _TierJob(
            grades=grades, tier=int(tier), rows=rows, pick=pick, features=feats, initial=initial,
            from_history=best is not None,
            policy_dir=str(policy.metadata_path.parent) if policy is not None else None,
            policy_sha256=policy.meta.get("model_sha256") if policy is not None else None,
            max_simulations=max_simulations, max_seconds=max_seconds, seed=seed, use_tree=use_tree, limits=limits,
            dt_s=rollout_dt_s, batteries=models[tier], reference=references[tier])

    def record(job: _TierJob, plan: TierPlan, records: list[tuple]) -> None:
        history.append_many("sil", job.tier, job.features, records)
        plans[job.tier] = plan
        log.info("tier %d: %d modules, cost %.3f (%s), path %s, %.1f s (%d SIL runs, %d strategies rolled out)",
                 job.tier, job.rows.size, plan.score.cost,
                 "feasible" if plan.score.feasible else "; ".join(plan.score.violations), list(plan.path),
                 plan.planning_s, plan.sil_runs, plan.rollouts_run)
        if on_tier is not None:
            on_tier(plan)

    plans: dict[int, TierPlan] = {}
    n = plan_workers(len(tiers), workers)
    if n <= 1:  # tier by tier: each starts from the history with the records of the tiers before it
        for tier in tiers:
            job = job_for(tier)
            record(job, *_plan_tier(job, policy))
    else:  # every tier from the history as it stood at the start
        jobs = [job_for(tier) for tier in tiers]
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            for job, result in zip(jobs, pool.map(_plan_tier, jobs)):
                record(job, *result)
    return plans


def evaluate_requests(grades: Grades, history: History, requests: list[dict], rollout_modules: int = 4,
                      dt_s: float = 2.0) -> list[dict]:
    """The RL environment: roll each {"tier", "strategy"} request out on its tier's sub-batch, score it
    against the traditional method there, append an 'rl' record; [{tier, cost, metrics}]."""
    envs: dict[int, tuple[TierFeatures, Rollout, float]] = {}
    out = []
    for i, req in enumerate(requests):
        tier = int(req["tier"])
        strategy = check_strategy(Strategy.from_dict(req["strategy"], f"request {i}"), where=f"request {i}")
        if tier not in envs:
            try:
                rows, _, rollout = tier_rollout(grades, tier, rollout_modules, dt_s)
            except StrategyError as exc:
                raise StrategyError(f"request {i}: {exc}") from None
            envs[tier] = (tier_features(grades, rows), rollout, rollout.traditional().batch_time_s)
        feats, rollout, ref = envs[tier]
        metrics = rollout(strategy).to_dict()
        score = score_metrics(metrics, ref_time_s=ref)
        history.append("rl", tier, feats, strategy, metrics, score.cost)
        out.append({"tier": tier, "cost": score.cost, "metrics": metrics})
    return out
