"""Stacked SIL runs: K copies of one model batch stepped as one plant, one controller per copy's slice.

Owns `stack_plant` (a `Plant` of m modules repeated K times: copy g holds modules g·m .. g·m+m-1,
each copy the same cells, scatter and clamp ripple as the original, and the same sensor noise every
step), `concat_plants` (several fresh plants side by side, each with its own noise: the planner's
reference runs of every tier in one run) and `run_sil_stacked` (the SIL loop of edge/batterymodel/sil.py over such a plant, with one
`SilMetrics` per copy). The planner rolls out all candidate strategies of a game-tree expansion
at once this way (edge/strategy/rollout.py `Rollout.many`): one NumPy step for K·m stations instead
of K Python simulations.

Equivalence with the scalar SIL (`run_sil` on the original plant with copy g's controller) holds
because every operation of the plant is per module or per cell, the noise is drawn for one copy
and repeated, and each copy's metrics freeze at the step its own last station ended, as
`run_sil` stops there: a copy that ended keeps stepping (tripped or isolated stations carry no
current) but nothing of it is counted any more. The metrics are equal to the last bit, except
that NumPy may sum a lone module's cells (a (1, n) array) in another order than rows of a (K, n)
one: a one-module batch can differ in the last bit of its residual. Only the model plant stacks (`type(plant) is
Plant`: the bench's plant with its faults and hooks does not). Tests:
tests/edge/batterymodel/test_stacked.py and tests/edge/strategy/test_rollout_stacked.py (the
stacked rollout against the scalar one, strategy by strategy).
"""

from __future__ import annotations

import copy

import numpy as np

from edge.batterymodel.arrays import nan_to_num
from edge.batterymodel.cell_model import CellBank
from edge.batterymodel.plant import Observation, Plant
from edge.batterymodel.sil import Controller, ModuleMetrics, SilConfig, SilMetrics, isolated_stations

_MODULE_ARRAYS = ("loaded", "modules_placed", "t_amb_k", "h_natural_w_m2k", "coolant_k", "temp_k", "clamp_kpa",
                  "pressure_kpa", "_ripple_phase", "path_limit_a", "current_a", "tripped", "coolant_lpm",
                  "initial_charge_ah")
_CELL_ARRAYS = ("cell_current_a", "cell_voltage_v")
_BANK_CELL_ARRAYS = ("cap_ah", "r_scale", "r_contact_ohm", "diff_gain_s", "diff_tau_s", "soc", "v1", "v2", "dz_surf")


class StackedPlant(Plant):
    """Plants side by side: K copies of one (`stack_plant`) or several fresh ones (`concat_plants`);
    `copies` (the groups), `group_sizes` (modules of each) say how it is cut."""

    copies: int
    group_sizes: tuple[int, ...]
    modules_per_copy: int | None
    _group_noise: list | None = None

    def observe(self) -> Observation:
        """As `Plant.observe`, each group's marker noise from its own plant's generator (K copies of
        one plant: drawn once and repeated), so each sees the noise its scalar plant would."""
        m, n = self.n_modules, self.n_cells
        markers = self.markers.read(self.temp_k - _KELVIN)
        if self.cfg.sensor_noise_k > 0:
            k = markers.shape[1]
            if self._group_noise is None:
                noise = self._noise.normal(0, self.cfg.sensor_noise_k, (self.modules_per_copy, k))
                markers = markers + np.tile(noise, (self.copies, 1))
            else:
                markers = markers + np.concatenate([rng.normal(0, self.cfg.sensor_noise_k, (size, k))
                                                    for rng, size in zip(self._group_noise, self.group_sizes)])
        cells_v = self.cell_voltage_v.reshape(m, n)
        return Observation(self.t_s, markers, self.pressure_kpa.copy(), cells_v.sum(axis=1),
                           cells_v.copy(), self.current_a.copy(), self.tripped.copy(), self.coolant_lpm.copy())


_KELVIN = 273.15


def _tile(a: np.ndarray, k: int) -> np.ndarray:
    return np.tile(a, (k,) + (1,) * (a.ndim - 1))


def stack_plant(plant: Plant, k: int) -> StackedPlant:
    """A plant of K·m modules: `plant` (fresh, not stepped) repeated K times (module docstring)."""
    if type(plant) is not Plant:
        raise TypeError(f"stack_plant: only the model plant stacks, not {type(plant).__name__} (its hooks are per run)")
    if k < 1:
        raise ValueError(f"stack_plant: k must be >= 1, got {k}")
    if plant.t_s != 0.0:
        raise ValueError("stack_plant: the plant must be fresh (t_s = 0)")
    out = copy.copy(plant)
    out.__class__ = StackedPlant
    m, n = plant.n_modules, plant.n_cells
    out.copies, out.modules_per_copy, out.n_modules, out.group_sizes = k, m, m * k, (m,) * k
    for name in _MODULE_ARRAYS:
        setattr(out, name, _tile(np.asarray(getattr(plant, name)), k))
    for name in _CELL_ARRAYS:
        setattr(out, name, np.tile(getattr(plant, name), k))
    bank = copy.copy(plant.bank)
    for name in _BANK_CELL_ARRAYS:
        setattr(bank, name, np.tile(getattr(plant.bank, name), k))
    bank.pos_flat, bank.neg_flat = np.tile(plant.bank.pos_flat, k), np.tile(plant.bank.neg_flat, k)
    bank.n = plant.bank.n * k
    bank.row0 = np.arange(bank.n) * (plant.bank.pos_flat.size // (m * n))
    out.bank = bank
    out._noise = copy.deepcopy(plant._noise)
    assert isinstance(bank, CellBank)
    return out


def _same_params(a, b) -> bool:
    if a is b:
        return True
    return all(np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))) for f in
               ("r0_ohm", "r1_ohm", "r2_ohm", "dudt_v_per_k", "tau1_s", "tau2_s", "current_exponent_g",
                "arrhenius_b_k", "heat_capacity_j_per_k", "cooling_area_m2"))


def concat_plants(plants: list[Plant]) -> StackedPlant:
    """Fresh model plants of one configuration side by side (group g = plants[g]'s modules), each
    keeping its cells, scatter, clamp ripple and noise generator: the planner's reference runs of
    every tier in one SIL run."""
    if not plants:
        raise ValueError("concat_plants: no plant")
    first = plants[0]
    for p in plants:
        if type(p) is not Plant:
            raise TypeError(f"concat_plants: only the model plant stacks, not {type(p).__name__}")
        if p.t_s != 0.0:
            raise ValueError("concat_plants: the plants must be fresh (t_s = 0)")
        if p.cfg != first.cfg or not _same_params(p.params, first.params):
            raise ValueError("concat_plants: the plants must share one PlantConfig and ECM parameters")
    out = copy.copy(first)
    out.__class__ = StackedPlant
    sizes = tuple(p.n_modules for p in plants)
    out.copies, out.modules_per_copy, out.group_sizes, out.n_modules = len(plants), None, sizes, sum(sizes)
    for name in _MODULE_ARRAYS:
        setattr(out, name, np.concatenate([np.asarray(getattr(p, name)) for p in plants]))
    for name in _CELL_ARRAYS:
        setattr(out, name, np.concatenate([getattr(p, name) for p in plants]))
    bank = copy.copy(first.bank)
    for name in (*_BANK_CELL_ARRAYS, "pos_flat", "neg_flat"):
        setattr(bank, name, np.concatenate([getattr(p.bank, name) for p in plants]))
    bank.n = sum(p.bank.n for p in plants)
    bank.row0 = np.arange(bank.n) * (first.bank.pos_flat.size // first.bank.n)
    out.bank = bank
    out._group_noise = [copy.deepcopy(p._noise) for p in plants]
    return out


def run_sil_stacked(plant: StackedPlant, controller: Controller, config: SilConfig | None = None,
                    cell_ids=None) -> list[SilMetrics]:
    """`run_sil` of each group of a stacked plant under its slice of one controller: one SilMetrics
    per group, equal to what `run_sil` gives that group's plant alone (module docstring). No trace.
    `cell_ids`: one per module of a copy (`stack_plant`), or one sequence per group."""
    cfg = config or SilConfig()
    k, sizes = plant.copies, np.asarray(plant.group_sizes)
    mm = plant.n_modules
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group = np.repeat(np.arange(k), sizes)

    def per_group_max(x):
        return np.maximum.reduceat(x, starts)

    prev_relief = np.zeros(mm, bool)
    relief_events = np.zeros(k, np.int64)
    module_peak = plant.temp_degc().max(axis=1).astype(float)
    module_above = np.zeros(mm)
    end_s = np.full(mm, np.nan)
    isolated = np.zeros(mm, bool)
    above_s = np.zeros(k)
    module_above_s = np.zeros(k)
    peak = per_group_max(module_peak)
    peak_marker = np.full(k, -np.inf)
    active = np.ones(k, bool)  # groups still running (their scalar run has not stopped)
    finish_t = np.full(k, np.nan)
    residual = np.zeros(mm)
    tripped_at_end = np.zeros(mm, bool)
    t_end = np.zeros(k)
    n_steps = int(np.ceil(cfg.max_time_s / cfg.dt_s - 1e-9))
    for _ in range(n_steps):
        obs = plant.observe()
        marker = per_group_max(np.where(np.isfinite(obs.marker_temp_degc), obs.marker_temp_degc, -np.inf).max(axis=1))
        peak_marker = np.where(active, np.maximum(peak_marker, marker), peak_marker)
        cmd = controller.step(obs, cfg.dt_s)
        plant.step(cmd, cfg.dt_s)
        live = active[group]
        relief_on = (nan_to_num(np.asarray(cmd.relief, float), nan=1.0) > 0.0).any(axis=1)
        relief_events += np.add.reduceat((relief_on & ~prev_relief & live).astype(np.int64), starts)
        prev_relief = relief_on
        hot = plant.temp_degc().max(axis=1)
        peak = np.where(active, np.maximum(peak, per_group_max(hot)), peak)
        module_peak = np.where(live, np.maximum(module_peak, hot), module_peak)
        above = (hot > cfg.warning_temp_degc) & live
        n_hot = np.add.reduceat(above.astype(np.int64), starts)
        above_s += np.where(n_hot > 0, cfg.dt_s, 0.0)
        module_above_s += cfg.dt_s * n_hot
        module_above += cfg.dt_s * above
        isolated |= isolated_stations(controller, mm) & live
        ended = plant.tripped | isolated
        end_s[ended & np.isnan(end_s) & live] = plant.t_s
        done = active & np.logical_and.reduceat(ended, starts)
        if done.any():
            rows = done[group]
            residual[rows] = plant.residual_ah()[rows]
            tripped_at_end[rows] = plant.tripped[rows]
            finish_t[done] = plant.t_s
            t_end[done] = plant.t_s
            active &= ~done
            if not active.any():
                break
    if active.any():  # unfinished groups end at max_time_s, as run_sil's loop does
        rows = active[group]
        residual[rows] = plant.residual_ah()[rows]
        tripped_at_end[rows] = plant.tripped[rows]
        t_end[active] = plant.t_s
    start_ah = np.asarray(plant.initial_charge_ah, float)
    out = []
    for g in range(k):
        m = int(sizes[g])
        sl = slice(int(starts[g]), int(starts[g]) + m)
        if cell_ids is None:
            ids = np.arange(m)
        elif plant.modules_per_copy is not None and np.ndim(cell_ids[0]) == 0:
            ids = np.asarray(cell_ids).reshape(m)
        else:
            ids = np.asarray(cell_ids[g]).reshape(m)
        res, start, iso, trip = residual[sl], start_ah[sl], isolated[sl], tripped_at_end[sl]
        initial = float(start.sum())
        per_module = tuple(
            ModuleMetrics(
                cell_id=int(ids[i]), station=i,
                outcome="isolated" if iso[i] else "finished" if trip[i] else "unfinished",
                end_s=float(end_s[sl][i] if np.isfinite(end_s[sl][i]) else t_end[g]),
                residual_pct=float(100.0 * res[i] / start[i]) if start[i] > 0 else 0.0,
                peak_temp_degc=float(module_peak[sl][i]), time_above_warning_s=float(module_above[sl][i]))
            for i in range(m))
        out.append(SilMetrics(
            batch_time_s=float(finish_t[g] if np.isfinite(finish_t[g]) else t_end[g]),
            modules=m, modules_finished=int(trip.sum()), residual_ah=float(res.sum()),
            residual_pct=float(100.0 * res.sum() / initial) if initial > 0 else 0.0,
            discharged_ah=float(initial - res.sum()), peak_temp_degc=float(peak[g]),
            peak_marker_degc=float(peak_marker[g]), time_above_warning_s=float(above_s[g]),
            module_time_above_warning_s=float(module_above_s[g]), relief_events=int(relief_events[g]),
            warning_temp_degc=cfg.warning_temp_degc, modules_isolated=int(np.count_nonzero(iso)),
            per_module=per_module))
    return out
