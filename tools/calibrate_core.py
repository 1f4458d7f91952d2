"""Calibrate the real-time core's S14-S15 on the SIL plant: thresholds per C-rate, then the gains.

`.venv/bin/python -m tools.calibrate_core [--quick] [--json] [--workers 2]`

(a) Normal heating (`normal_heating`): held-out modules (`NORMAL_TRAIN_ROWS` of
    ../shared/data/cells_train.csv, rows no scenario, bench run or validation uses, and
    `NORMAL_UNSEEN_ROWS` of tests/data/cells_unseen.csv) discharge without faults at each C-rate
    a tier strategy uses (0.5-3C) at the core's 100 ms tick, open loop: constant current c·5 A,
    clamp 150 kPa, the line's base coolant (4 L/min, the least cooling, so the fastest normal
    heating), no derating, a module stopped at its cut-off or at 55 °C (where the line would
    isolate it). For every candidate check interval (2-8 s) the largest marker rise ΔT over that
    interval is recorded per C-rate. In the same plant, copies of three of the modules carry an
    internal short (0.5, 1, 2 Ω from 300 s): the time from onset to the first ΔT >= θ on one of
    their markers is the detection time. θ(C, K) = factor·ΔT_max + margin (rounded up to 0.05 K);
    per C-rate the interval that detects the most of the three shorts within 120 s, then the
    fastest worst case, wins (`choose_thresholds`). The table goes to edge/strategy/calibration.py by hand (printed here).
(b) Gains (`grid_search`): internal shorts of several strengths and onsets on several modules
    (`CAL_FAULTS` on calibration modules, `HELDOUT_FAULTS` on held-out ones, never both), each
    module in its own station of one batch, under edge.strategy.loop_controller.LoopController (the
    real-time loop in SIL, dt 1 s) with the tier's station limits (warning 45, maximum safety 55)
    and θ, K of the C-rate (1C and 2C). Cost per shorted station (`case_cost`): its seconds above
    the warning, 1000 per K its hottest cell goes above 55.5 °C (isolation at 55 plus the
    sensor lag), 0.1 per K of peak and per % of charge left (ties). Stage 1: g₁ × g_c × relief
    release level; stage 2: κ × λ at the stage-1 best; stage 3: the relief hold time; costs
    within 1 % of the best are ties (`_pick`: the smallest gains in stage 1, the previous value
    in stages 2-3). Chosen on the calibration faults; reported on the held-out faults, in full
    batches where normal modules must finish, against S14-S15 off (`WITHOUT_RELIEF`) and κ = 0.
`--bench-short-module K [--limit N]` instead runs the no-plan bench batch (first N rows of
cells_train.csv, a 1 Ω short in module K as `bench discharge --short-module`) calibrated, with
S14-S15 off and with κ = 0, and prints the shorted module and the others (`bench_ablation`).
Bounded for a 2-core box: `--workers` at most 2, small batches; the full run takes minutes.
Tests: tests/tools/test_calibrate_core.py (a --quick run); the numbers: docs/calibration.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from edge import REPO_ROOT
from edge.strategy import calibration
from edge.strategy.model import NOMINAL_CAPACITY_AH, Strategy, TierLimits
from edge.strategy.loop_controller import LoopController, fixed_strategy
from tools.bench_discharge import WITHOUT_RELIEF, LineBudget
from tools.hil.cells import BenchCells, load_cells
from tools.hil.faults import InternalShort
from tools.hil.plant import Command, Plant, PlantConfig
from edge.batterymodel.sil import SilConfig, run_sil

TRAIN_CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
UNSEEN_CELLS = REPO_ROOT / "tests" / "data" / "cells_unseen.csv"

# Rows 0-199 and 500-699 validate the plant, 0-39 are the bench batch, the scenarios use rows
# 0-39 and a sample of 40 (mixed_batch: 848, 852, 884, ... none in 700-799): 700-799 are free.
NORMAL_TRAIN_ROWS = tuple(range(700, 716))
NORMAL_UNSEEN_ROWS = tuple(range(0, 8))
CAL_TRAIN_ROWS = (731, 721, 745)           # modules of the calibration faults (SOC 0.55-0.89, SOH 0.66-0.84)
HELDOUT_UNSEEN_ROWS = (14, 12, 23, 33)     # modules of the held-out faults (unseen; SOC 0.74-0.94, SOH 0.65-0.79)
HELDOUT_NORMAL_UNSEEN_ROWS = (40, 41, 43, 8)  # normal modules beside them, which must finish

C_RATES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
INTERVALS_S = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
DETECT_SHORTS_OHM = (0.5, 1.0, 2.0)
DETECT_ONSET_S = 300.0
NORMAL_DT_S = 0.1  # the core's tick: the marker noise is sampled as the core samples it
# the tier's limits (edge.strategy.model.TierLimits), not copies of them
STOP_DEGC = TierLimits().maximum.max_temp_degc        # maximum safety: the core stops the module
WARNING_DEGC = TierLimits().recommended.max_temp_degc  # recommended safety: time above it is counted
SENSOR_LAG_K = 0.5  # the hottest cell may pass STOP_DEGC by this much before the marker sees it
GRID_DT_S = 1.0
GAIN_C_RATES = (1.0, 2.0)

#: (r_short_ohm, onset_s): several strengths and onsets; the held-out ones differ in both.
CAL_FAULTS = ((0.5, 60.0), (1.0, 60.0), (2.0, 60.0), (1.0, 600.0))
HELDOUT_FAULTS = ((0.7, 120.0), (1.5, 120.0), (1.0, 900.0))


# ----------------------------------------------------------------------------- cells
def _cells(path, rows) -> BenchCells:
    table = load_cells(path, limit=max(rows) + 1)
    return table.select(list(rows))


def _concat(*tables: BenchCells) -> BenchCells:
    cols = {k: np.concatenate([t.columns[k] for t in tables]) for k in tables[0].columns
            if all(k in t.columns for t in tables)}
    return BenchCells(tables[0].path, cols)


def normal_cells(quick: bool) -> BenchCells:
    train = NORMAL_TRAIN_ROWS[:4] if quick else NORMAL_TRAIN_ROWS
    unseen = NORMAL_UNSEEN_ROWS[:2] if quick else NORMAL_UNSEEN_ROWS
    return _concat(_cells(TRAIN_CELLS, train), _cells(UNSEEN_CELLS, unseen))


# ----------------------------------------------------------------------------- (a) normal heating
class _OpenLoop:
    """Constant current, clamp 150 kPa, base coolant; a module stops at STOP_DEGC (the line would
    isolate it there) and stays stopped."""

    def __init__(self, n: int, n_zones: int, current_a: float, coolant_lpm: float):
        self.cmd = Command.idle(n, n_zones)
        self.cmd.current_a[:] = current_a
        self.cmd.coolant_lpm[:] = coolant_lpm
        self.cmd.discharge_on[:] = True

    def step(self, obs) -> Command:
        hot = np.nan_to_num(obs.marker_temp_degc, nan=-np.inf).max(axis=1) >= STOP_DEGC
        self.cmd.discharge_on &= ~hot
        return self.cmd


def normal_heating(c_rate: float, quick: bool = False, dt_s: float = NORMAL_DT_S, seed: int = 0) -> dict:
    """Largest marker ΔT per check interval of normal modules at `c_rate`, and the ΔT traces of
    shorted copies around their onset (for the detection time)."""
    normal = normal_cells(quick)
    n_norm = len(normal)
    shorts = DETECT_SHORTS_OHM
    cells = _concat(normal, normal.select(list(range(len(shorts)))))
    faults = tuple(InternalShort(n_norm + j, 0, r, DETECT_ONSET_S) for j, r in enumerate(shorts))
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    ctrl = _OpenLoop(plant.n_modules, plant.cfg.n_zones, c_rate * NOMINAL_CAPACITY_AH, LineBudget().coolant_base_lpm)
    ks = [int(round(s / dt_s)) for s in INTERVALS_S]
    kmax = max(ks)
    n_k = plant.markers.n_markers
    ring = np.zeros((kmax + 1, plant.n_modules, n_k))
    max_dt = np.zeros(len(ks))
    max_rate = 0.0
    window = (DETECT_ONSET_S - 30.0, DETECT_ONSET_S + 120.0)
    det_t, det_dt = [], []  # (ticks in window), (ticks, n shorts, n intervals)
    max_time = DETECT_ONSET_S + 150.0 if quick else 4 * 3600.0
    n_steps = int(math.ceil(max_time / dt_s))
    first = None
    for tick in range(n_steps):
        obs = plant.observe()
        temps = obs.marker_temp_degc
        if first is None:
            first = temps.copy()
            ring[:] = first  # the core fills its rings with the first sample
        ring[tick % (kmax + 1)] = temps
        running = ctrl.cmd.discharge_on & ~plant.tripped
        dts = np.stack([temps - ring[(tick - k) % (kmax + 1)] for k in ks])  # (K, m, markers)
        normal_rows = np.zeros(plant.n_modules, bool)
        normal_rows[:n_norm] = True
        if plant.t_s < DETECT_ONSET_S:
            normal_rows[n_norm:] = True  # the shorted copies are normal before the onset
        use = normal_rows & running
        if use.any():
            max_dt = np.maximum(max_dt, dts[:, use].max(axis=(1, 2)))
            max_rate = max(max_rate, float((dts[-1, use] / INTERVALS_S[-1]).max()))
        if window[0] <= plant.t_s <= window[1]:
            det_t.append(plant.t_s)
            det_dt.append(dts[:, n_norm:].max(axis=2).T)  # (shorts, K)
        ctrl.step(obs)
        plant.step(ctrl.cmd, dt_s)
        done = plant.tripped | ~ctrl.cmd.discharge_on
        if done[:n_norm].all() and plant.t_s > window[1]:
            break
    return {"c_rate": c_rate, "modules": n_norm, "seconds": round(plant.t_s, 1),
            "max_delta_t_degc": {f"{s:g}": round(float(v), 4) for s, v in zip(INTERVALS_S, max_dt)},
            "max_normal_rate_degc_per_s": round(max_rate, 4),
            "_det_t": np.array(det_t), "_det_dt": np.array(det_dt)}


def _theta(max_dt: float) -> float:
    raw = calibration.THETA_MARGIN_FACTOR * max_dt + calibration.THETA_MARGIN_DEGC
    return math.ceil(raw / 0.05 - 1e-9) * 0.05


def choose_thresholds(runs: list[dict]) -> list[dict]:
    """Per C-rate: θ per interval from the largest normal ΔT, the detection time of each short, the
    chosen interval (most shorts detected, then the shortest worst detection among them, then the
    mean, then the shorter interval)."""
    table = []
    for run in runs:
        t, dts = run["_det_t"], run["_det_dt"]  # dts: (ticks, shorts, K)
        rows = []
        for j, s in enumerate(INTERVALS_S):
            theta = _theta(run["max_delta_t_degc"][f"{s:g}"])
            delays = []
            for q in range(len(DETECT_SHORTS_OHM)):
                hit = np.flatnonzero((t >= DETECT_ONSET_S) & (dts[:, q, j] >= theta)) if t.size else []
                delays.append(round(float(t[hit[0]] - DETECT_ONSET_S), 2) if len(hit) else None)
            seen = [d for d in delays if d is not None]
            worst = max(seen) if len(seen) == len(delays) else math.inf
            mean = float(np.mean([d if d is not None else 1e3 for d in delays]))
            rows.append({"interval_s": s, "theta_degc": round(theta, 2),
                         "max_normal_delta_t_degc": run["max_delta_t_degc"][f"{s:g}"],
                         "detect_s": dict(zip((f"{r:g}" for r in DETECT_SHORTS_OHM), delays)),
                         "_key": (len(delays) - len(seen), max(seen, default=math.inf), mean, s)})
        best = min(rows, key=lambda r: r["_key"])
        worst = math.inf if best["_key"][0] else best["_key"][1]
        for r in rows:
            r.pop("_key")
        table.append({"c_rate": run["c_rate"], "theta_degc": best["theta_degc"], "check_interval_s": best["interval_s"],
                      "max_normal_delta_t_degc": best["max_normal_delta_t_degc"],
                      "worst_detect_s": None if math.isinf(worst) else worst, "candidates": rows})
    return table


# ----------------------------------------------------------------------------- (b) gains
@dataclass(frozen=True)
class Gains:
    relief_gain_kpa_per_degc_per_s: float = calibration.RELIEF_GAIN_KPA_PER_DEGC_PER_S
    coolant_gain_lpm_per_cm2_degc_per_s: float = calibration.COOLANT_GAIN_LPM_PER_CM2_DEGC_PER_S
    correction_gain: float = calibration.CORRECTION_GAIN
    coupling_decay_per_tick: float = calibration.COUPLING_DECAY_PER_TICK
    relief_hold_s: float = calibration.RELIEF_HOLD_S
    relief_release_degc: float = calibration.RELIEF_RELEASE_DEGC

    def replace(self, **kw) -> Gains:
        return Gains(**{**self.__dict__, **kw})


def fault_batch(cells: BenchCells, faults_of_module: dict[int, tuple[float, float]], c_rate: float, gains: Gains,
                thresholds: dict[float, tuple[float, float]], *, max_time_s: float, dt_s: float = GRID_DT_S,
                overrides: dict | None = None, seed: int = 0) -> list[dict]:
    """One batch under the real-time loop in SIL: module i carries faults_of_module[i] = (Ω, onset)
    in its cell 0 (others run normal). Per module: outcome, end, peak, seconds above warning."""
    theta, interval = thresholds[c_rate]
    strategy = Strategy(segments=((0.0, c_rate),), delta_t_threshold_degc=theta, check_interval_s=interval,
                        **gains.__dict__)
    faults = tuple(InternalShort(i, 0, r, onset) for i, (r, onset) in sorted(faults_of_module.items()))
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    budget = LineBudget(current_a=c_rate * NOMINAL_CAPACITY_AH)
    sp = strategy.setpoints(station_limits=(strategy.station_limits(),) * plant.n_modules, **(overrides or {}))
    ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s, setpoints=sp,
                          current_a=budget.current_a, pressure_kpa=budget.clamp_kpa,
                          coolant_lpm=budget.coolant_base_lpm, cells_per_module=plant.n_cells)
    res = run_sil(plant, ctrl, SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=dt_s,
                                         warning_temp_degc=WARNING_DEGC))
    tr = res.trace
    out = []
    for i, m in enumerate(res.metrics.per_module):
        relief_s = float((tr.relief[:, i] > 0).any(axis=1).sum() * dt_s)
        extra_l = float(np.clip(tr.coolant_lpm[:, i] - budget.coolant_base_lpm, 0, None).sum() * dt_s / 60.0)
        out.append({"module": i, "short": faults_of_module.get(i), "outcome": m.outcome, "end_s": m.end_s,
                    "peak_degc": round(m.peak_temp_degc, 2), "above_warning_s": m.time_above_warning_s,
                    "residual_pct": round(m.residual_pct, 2), "relief_s": relief_s,
                    "extra_coolant_l": round(extra_l, 2)})
    return out


def case_cost(row: dict) -> float:
    """Seconds above the warning, 1000 per K above STOP_DEGC + SENSOR_LAG_K (55.5 °C); as
    tie-breakers 0.1 per K of peak and 0.1 per % of charge left at the end of the window (relief's
    price: it limits the current)."""
    over_degc = row["peak_degc"] - (STOP_DEGC + SENSOR_LAG_K)
    return (row["above_warning_s"] + 1000.0 * max(0.0, over_degc) + 0.1 * row["peak_degc"]
            + 0.1 * row["residual_pct"])


def _fault_cells(train: bool, quick: bool) -> tuple[BenchCells, dict[int, tuple[float, float]]]:
    rows = (CAL_TRAIN_ROWS[:1] if quick else CAL_TRAIN_ROWS) if train else \
        (HELDOUT_UNSEEN_ROWS[:1] if quick else HELDOUT_UNSEEN_ROWS)
    faults = (CAL_FAULTS[:2] if quick else CAL_FAULTS) if train else (HELDOUT_FAULTS[:2] if quick else HELDOUT_FAULTS)
    table = _cells(TRAIN_CELLS if train else UNSEEN_CELLS, rows)
    cases = [(i, f) for i in range(len(rows)) for f in faults]
    cells = table.select([i for i, _ in cases])
    return cells, {k: f for k, (_, f) in enumerate(cases)}


def evaluate(args) -> dict:
    gains, thresholds, quick, train, overrides = args
    cells, faults = _fault_cells(train, quick)
    rows = []
    max_onset = max(f[1] for f in faults.values())
    for c in GAIN_C_RATES[:1] if quick else GAIN_C_RATES:
        for r in fault_batch(cells, faults, c, gains, thresholds, max_time_s=max_onset + (400.0 if quick else 900.0),
                             overrides=overrides):
            rows.append({**r, "c_rate": c})
    costs = [case_cost(r) for r in rows]
    return {"gains": gains.__dict__, "overrides": overrides or {}, "cost": round(float(np.mean(costs)), 3),
            "worst_peak_degc": max(r["peak_degc"] for r in rows),
            "mean_above_warning_s": round(float(np.mean([r["above_warning_s"] for r in rows])), 1),
            "isolated": sum(r["outcome"] == "isolated" for r in rows), "cases": len(rows), "rows": rows}


def _map(fn, items, workers: int):
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(min(workers, 2)) as pool:
        return pool.map(fn, items)


#: Candidates whose cost is within this share of the best are ties (the runs' noise is larger).
TIE_TOLERANCE = 0.01


def _pick(results: list[dict], prefer) -> Gains:
    """The best candidate; among ties (cost within TIE_TOLERANCE of the best) the one `prefer`
    ranks first."""
    best = min(r["cost"] for r in results)
    ties = [r for r in results if r["cost"] <= best * (1.0 + TIE_TOLERANCE) + 1e-9]
    return Gains(**min(ties, key=lambda r: prefer(Gains(**r["gains"])))["gains"])


def grid_search(thresholds: dict, quick: bool, workers: int) -> dict:
    """Stage 1 g₁ × g_c × release level (ties: the smallest g₁, then g_c: the least relief, whose
    price is current, and the least coolant); stage 2 κ × λ and stage 3 the hold time at the
    stage's best (ties: the nearest to the value before the stage: no change without evidence)."""
    base = Gains()
    if quick:
        stage1 = [base.replace(relief_gain_kpa_per_degc_per_s=g1, coolant_gain_lpm_per_cm2_degc_per_s=gc,
                               relief_release_degc=tr)
                  for g1, gc, tr in ((400.0, 0.05, 40.0), (3000.0, 2.0, 33.0))]
    else:
        stage1 = [base.replace(relief_gain_kpa_per_degc_per_s=g1, coolant_gain_lpm_per_cm2_degc_per_s=gc,
                               relief_release_degc=tr)
                  for g1 in (400.0, 1500.0, 3000.0, 6000.0) for gc in (0.05, 0.5, 2.0, 5.0) for tr in (40.0, 33.0)]
    res1 = _map(evaluate, [(g, thresholds, quick, True, None) for g in stage1], workers)
    best = _pick(res1, lambda g: (g.relief_gain_kpa_per_degc_per_s, g.coolant_gain_lpm_per_cm2_degc_per_s))
    stages = {"stage1_g1_gc_release": res1}
    if not quick:
        prior = best
        stage2 = [best.replace(correction_gain=k, coupling_decay_per_tick=lam)
                  for k in (0.0, 0.25, 0.5, 1.0) for lam in (0.1, 0.3, 1.0)]
        res2 = _map(evaluate, [(g, thresholds, quick, True, None) for g in stage2], workers)
        best = _pick(res2, lambda g: (abs(g.correction_gain - prior.correction_gain),
                                      abs(math.log(g.coupling_decay_per_tick / prior.coupling_decay_per_tick))))
        prior = best
        stage3 = [best.replace(relief_hold_s=h) for h in (1.0, 3.0, 10.0, 30.0)]
        res3 = _map(evaluate, [(g, thresholds, quick, True, None) for g in stage3], workers)
        best = _pick(res3, lambda g: abs(math.log(g.relief_hold_s / prior.relief_hold_s)))
        stages.update(stage2_kappa_lambda=res2, stage3_hold=res3)
    return {"best": best, "stages": stages}


def held_out(best: Gains, thresholds: dict, quick: bool, workers: int) -> dict:
    """The held-out faults (unseen modules, other strengths and onsets) in full batches beside
    normal modules (which must finish): calibrated, S14-S15 off, κ = 0."""
    jobs = [(name, c, quick, best, thresholds) for name in HELDOUT_VARIANTS
            for c in (GAIN_C_RATES[:1] if quick else GAIN_C_RATES)]
    results = _map(_held_out_job, jobs, workers)
    out = {}
    for (name, c, *_), rows in zip(jobs, results):
        shorted = [r for r in rows if r["short"] is not None]
        others = [r for r in rows if r["short"] is None]
        out.setdefault(name, {})[f"{c:g}C"] = {
            "shorted": shorted,
            "others_finished": f"{sum(r['outcome'] == 'finished' for r in others)}/{len(others)}",
            "others_above_warning_s": sum(r["above_warning_s"] for r in others),
            "others_isolated": sum(r["outcome"] == "isolated" for r in others),
            "mean_cost": round(float(np.mean([case_cost(r) for r in shorted])), 2),
            "worst_peak_degc": max(r["peak_degc"] for r in shorted),
            "mean_above_warning_s": round(float(np.mean([r["above_warning_s"] for r in shorted])), 1),
            "isolated": sum(r["outcome"] == "isolated" for r in shorted)}
    return out


HELDOUT_VARIANTS = {"calibrated": None, "without_relief": dict(WITHOUT_RELIEF), "kappa_0": {"correction_gain": 0.0}}


def _held_out_batch(quick: bool) -> tuple[BenchCells, dict]:
    cells, faults = _fault_cells(False, quick)
    normal = _cells(UNSEEN_CELLS, HELDOUT_NORMAL_UNSEEN_ROWS[:1] if quick else HELDOUT_NORMAL_UNSEEN_ROWS)
    return _concat(cells, normal), faults


def _held_out_job(args) -> list[dict]:
    name, c, quick, best, thresholds = args
    batch, faults = _held_out_batch(quick)
    return fault_batch(batch, faults, c, best, thresholds, overrides=HELDOUT_VARIANTS[name],
                       max_time_s=(1200.0 if quick else 4 * 3600.0) / c)


def calibrate(quick: bool = False, workers: int = 2) -> dict:
    start = time.perf_counter()
    rates = (1.0, 3.0) if quick else C_RATES
    runs = _map(_normal_job, [(c, quick) for c in rates], workers)
    table = choose_thresholds(runs)
    normal = [{k: v for k, v in r.items() if not k.startswith("_")} for r in runs]
    thresholds = {row["c_rate"]: (row["theta_degc"], row["check_interval_s"]) for row in table}
    for c in GAIN_C_RATES:  # the grid needs these rates even in a quick run
        thresholds.setdefault(c, calibration.threshold_for_c_rate(c))
    grid = grid_search(thresholds, quick, workers)
    best = grid["best"]
    report = {
        "quick": quick,
        "normal_heating": normal,
        "thresholds": [{k: v for k, v in row.items() if k != "candidates"} for row in table],
        "threshold_candidates": {f"{row['c_rate']:g}": row["candidates"] for row in table},
        "gains": best.__dict__,
        "grid": {name: sorted(({k: v for k, v in r.items() if k != "rows"} for r in res), key=lambda r: r["cost"])
                 for name, res in grid["stages"].items()},
        "held_out": held_out(best, thresholds, quick, workers),
    }
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def _bench_job(args) -> dict:
    name, limit, short_module, dt_s = args
    cells = load_cells(TRAIN_CELLS, limit=limit)
    fault = InternalShort(module=short_module, cell=0, r_short_ohm=1.0, onset_s=60.0)  # as bench --short-module
    plant = Plant(cells, PlantConfig(seed=0), (fault,))
    budget = LineBudget()
    sp = fixed_strategy(budget.current_a).setpoints(**(HELDOUT_VARIANTS[name] or {}))
    ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s, setpoints=sp,
                          current_a=budget.current_a, pressure_kpa=budget.clamp_kpa,
                          coolant_lpm=budget.coolant_base_lpm, cells_per_module=plant.n_cells)
    res = run_sil(plant, ctrl, SilConfig(dt_s=dt_s, max_time_s=4 * 3600.0, record_every_s=dt_s,
                                         warning_temp_degc=WARNING_DEGC), cell_ids=cells["cell_id"])
    m = res.metrics.per_module[short_module]
    tr = res.trace
    others = [x for x in res.metrics.per_module if x.station != short_module]
    return {"variant": name, "shorted": {"outcome": m.outcome, "end_s": m.end_s, "peak_degc": round(m.peak_temp_degc, 2),
                                         "above_warning_s": m.time_above_warning_s,
                                         "residual_pct": round(m.residual_pct, 2),
                                         "relief_s": float((tr.relief[:, short_module] > 0).any(axis=1).sum() * dt_s),
                                         "coolant_max_lpm": float(tr.coolant_lpm[:, short_module].max())},
            "others_finished": f"{sum(x.outcome == 'finished' for x in others)}/{len(others)}",
            "others_above_warning_s": sum(x.time_above_warning_s for x in others),
            "batch_time_s": res.metrics.batch_time_s, "peak_degc": round(res.metrics.peak_temp_degc, 2)}


def bench_ablation(limit: int = 40, short_module: int = 1, dt_s: float = 1.0, workers: int = 2) -> list[dict]:
    """The no-plan bench batch (first `limit` rows of cells_train.csv, 1 Ω short in cell 0 of
    `short_module` from 60 s, as `bench discharge --short-module`) under the fixed strategy:
    calibrated, S14-S15 off, κ = 0."""
    return _map(_bench_job, [(name, limit, short_module, dt_s) for name in HELDOUT_VARIANTS], workers)


def _normal_job(args):
    c, quick = args
    return normal_heating(c, quick)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few modules, two C-rates, a tiny grid (a test run)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--workers", type=int, default=2, choices=(1, 2))
    ap.add_argument("--bench-short-module", type=int, default=None, metavar="K",
                    help="instead: the no-plan bench batch with a short in module K, S14-S15 on / off / κ = 0")
    ap.add_argument("--limit", type=int, default=40, help="rows of the bench batch (with --bench-short-module)")
    a = ap.parse_args(argv)
    if a.bench_short_module is not None:
        print(json.dumps(bench_ablation(a.limit, a.bench_short_module, workers=a.workers), indent=1))
        return 0
    report = calibrate(a.quick, a.workers)
    if a.json:
        print(json.dumps(report, indent=1, default=float))
    else:
        for row in report["thresholds"]:
            print(f"{row['c_rate']:>4g}C  θ {row['theta_degc']:.2f} °C  K {row['check_interval_s']:g} s  "
                  f"normal ΔT max {row['max_normal_delta_t_degc']:.3f}  worst detection {row['worst_detect_s']} s")
        print("gains:", report["gains"])
        for name, by_rate in report["held_out"].items():
            for rate, r in by_rate.items():
                print(f"held-out {name} {rate}: worst peak {r['worst_peak_degc']} °C, mean above warning "
                      f"{r['mean_above_warning_s']} s, isolated {r['isolated']}, others finished {r['others_finished']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
