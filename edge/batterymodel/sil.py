"""Software-in-the-loop: the plant and any controller object on a virtual clock, in one process.

Owns the SIL loop, its trace and its metrics (tests: tests/tools/hil/test_hil_sil.py, benchmark in
tests/tools/hil/test_hil_bench.py). A controller is any object with

    step(observation: Observation, dt_s: float) -> Command

(edge/batterymodel/plant.py defines both); it is called every `dt_s` of virtual time (100 ms by default)
and sees only the observation, never the truth. The run ends when every station has tripped at
its cut-off voltage (the module is discharged) or has been isolated by the controller (a controller
with `isolated_stations() -> bool[m]`: a per-station safe state), or at `max_time_s`.

Metrics (`SilMetrics`): batch time (s, last trip; `max_time_s` if unfinished), modules finished,
residual charge (Ah total, and % of the charge at start), peak true cell temperature and peak
marker reading (°C), time above the warning temperature (s during which any cell of the batch is
above it, and module-seconds), relief events (a module's relief going from none in any zone to
some), and the
discharged charge (Ah).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from edge.batterymodel.arrays import nan_to_num
from edge.batterymodel.plant import Command, Observation, Plant
from edge.limits import WARNING_DEGC


class Controller(Protocol):
    def step(self, observation: Observation, dt_s: float) -> Command: ...


def isolated_stations(controller, n_modules: int) -> np.ndarray:
    """The stations a controller has isolated (a per-station safe state: the module stays where it
    is, discharge off, until an operator clears it); all False for a controller without the notion."""
    isolated = getattr(controller, "isolated_stations", None)
    if isolated is None:
        return np.zeros(n_modules, bool)
    return np.asarray(isolated(), bool).reshape(n_modules)


@dataclass(frozen=True)
class SilConfig:
    dt_s: float = 0.1
    max_time_s: float = 4 * 3600.0
    record_every_s: float = 1.0
    warning_temp_degc: float = WARNING_DEGC

    def __post_init__(self) -> None:
        if not 0 < self.dt_s <= 5.0:
            raise ValueError(f"sil.dt_s must be in (0, 5] s, got {self.dt_s}")
        if not self.max_time_s > 0:
            raise ValueError(f"sil.max_time_s must be > 0, got {self.max_time_s}")
        if self.record_every_s < self.dt_s - 1e-12:
            raise ValueError("sil.record_every_s must be >= dt_s")


@dataclass(frozen=True)
class SilMetrics:
    batch_time_s: float
    modules: int
    modules_finished: int
    residual_ah: float
    residual_pct: float
    discharged_ah: float
    peak_temp_degc: float
    peak_marker_degc: float
    time_above_warning_s: float
    module_time_above_warning_s: float
    relief_events: int
    warning_temp_degc: float
    modules_isolated: int = 0
    per_module: tuple["ModuleMetrics", ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["modules_list"] = out.pop("per_module")
        return out


@dataclass(frozen=True)
class ModuleMetrics:
    """One station's module at the end of a SIL run."""

    cell_id: int
    station: int
    outcome: str  # "isolated" (the core latched its station, at any time), "finished" (cut-off) or "unfinished"
    end_s: float  # plant time of the cut-off or the isolation; the run's end if unfinished
    residual_pct: float  # charge left, % of the module's charge at start
    peak_temp_degc: float  # hottest true cell temperature of the module
    time_above_warning_s: float


@dataclass(frozen=True)
class Trace:
    """Recorded every `record_every_s`: arrays with time as the first axis."""

    t_s: np.ndarray
    marker_temp_degc: np.ndarray  # (T, m, k) as observed (faults applied)
    cell_temp_max_degc: np.ndarray  # (T, m) true
    current_a: np.ndarray  # (T, m)
    soc: np.ndarray  # (T, m) mean over the module's cells
    pressure_kpa: np.ndarray  # (T, m, z) applied
    relief: np.ndarray  # (T, m, z) commanded
    coolant_lpm: np.ndarray  # (T, m) commanded
    discharge_on: np.ndarray  # (T, m) commanded


@dataclass(frozen=True)
class SilResult:
    metrics: SilMetrics
    trace: Trace


class _Recorder:
    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {k: [] for k in Trace.__dataclass_fields__}

    def add(self, plant: Plant, obs: Observation, cmd: Command) -> None:
        r = self.rows
        r["t_s"].append(np.float64(plant.t_s))
        r["marker_temp_degc"].append(obs.marker_temp_degc)
        r["cell_temp_max_degc"].append(plant.temp_degc().max(axis=1))
        r["current_a"].append(plant.current_a.copy())
        r["soc"].append(plant.soc().mean(axis=1))
        r["pressure_kpa"].append(plant.pressure_kpa.copy())
        r["relief"].append(np.clip(nan_to_num(np.asarray(cmd.relief, float), nan=1.0), 0, 1))
        r["coolant_lpm"].append(np.asarray(cmd.coolant_lpm, float).copy())
        r["discharge_on"].append(np.asarray(cmd.discharge_on, bool).copy())

    def trace(self) -> Trace:
        return Trace(**{k: np.array(v) for k, v in self.rows.items()})


def run_sil(plant: Plant, controller: Controller, config: SilConfig | None = None,
            cell_ids=None) -> SilResult:
    """Run the batch to the end (every station tripped or isolated) or to max_time_s; return metrics
    and trace. `cell_ids` (one per module) name the modules in the per-module metrics."""
    cfg = config or SilConfig()
    rec = _Recorder()
    every = max(1, int(round(cfg.record_every_s / cfg.dt_s)))
    m = plant.n_modules
    prev_relief = np.zeros(m, bool)
    relief_events = 0
    module_peak = plant.temp_degc().max(axis=1).astype(float)
    module_above = np.zeros(m)
    end_s = np.full(m, np.nan)
    isolated = np.zeros(m, bool)
    above_s = 0.0
    module_above_s = 0.0
    peak = float(plant.temp_degc().max())
    peak_marker = -np.inf
    n_steps = int(np.ceil(cfg.max_time_s / cfg.dt_s - 1e-9))
    finish_t = None
    for k in range(n_steps):
        obs = plant.observe()
        finite = obs.marker_temp_degc[np.isfinite(obs.marker_temp_degc)]
        if finite.size:
            peak_marker = max(peak_marker, float(finite.max()))
        cmd = controller.step(obs, cfg.dt_s)
        if k % every == 0:
            rec.add(plant, obs, cmd)
        plant.step(cmd, cfg.dt_s)
        relief_on = (nan_to_num(np.asarray(cmd.relief, float), nan=1.0) > 0.0).any(axis=1)
        relief_events += int(np.count_nonzero(relief_on & ~prev_relief))
        prev_relief = relief_on
        hot = plant.temp_degc().max(axis=1)
        peak = max(peak, float(hot.max()))
        np.maximum(module_peak, hot, out=module_peak)
        above = hot > cfg.warning_temp_degc
        n_hot = int(np.count_nonzero(above))
        above_s += cfg.dt_s if n_hot else 0.0
        module_above_s += cfg.dt_s * n_hot
        module_above += cfg.dt_s * above
        isolated |= isolated_stations(controller, m)  # once isolated, the latch stands until an operator clears it
        ended = plant.tripped | isolated
        end_s[ended & np.isnan(end_s)] = plant.t_s
        if ended.all():
            finish_t = plant.t_s
            rec.add(plant, plant.observe(), cmd)
            break
    residual = plant.residual_ah()
    initial = float(plant.initial_charge_ah.sum())
    start_ah = np.asarray(plant.initial_charge_ah, float)
    ids = np.arange(m) if cell_ids is None else np.asarray(cell_ids).reshape(m)
    per_module = tuple(
        ModuleMetrics(
            cell_id=int(ids[i]), station=i,
            outcome="isolated" if isolated[i] else "finished" if plant.tripped[i] else "unfinished",
            end_s=float(end_s[i] if np.isfinite(end_s[i]) else plant.t_s),
            residual_pct=float(100.0 * residual[i] / start_ah[i]) if start_ah[i] > 0 else 0.0,
            peak_temp_degc=float(module_peak[i]), time_above_warning_s=float(module_above[i]))
        for i in range(m))
    metrics = SilMetrics(
        batch_time_s=float(finish_t if finish_t is not None else plant.t_s),
        modules=plant.n_modules, modules_finished=int(plant.tripped.sum()),
        residual_ah=float(residual.sum()),
        residual_pct=float(100.0 * residual.sum() / initial) if initial > 0 else 0.0,
        discharged_ah=float(initial - residual.sum()),
        peak_temp_degc=peak, peak_marker_degc=float(peak_marker),
        time_above_warning_s=above_s, module_time_above_warning_s=module_above_s,
        relief_events=relief_events, warning_temp_degc=cfg.warning_temp_degc,
        modules_isolated=int(np.count_nonzero(isolated)), per_module=per_module,
    )
    return SilResult(metrics, rec.trace())


class HoldController:
    """A fixed command every tick (tests, and the 'do nothing' reference the scenarios must catch)."""

    def __init__(self, command: Command) -> None:
        self.command = command

    def step(self, observation: Observation, dt_s: float) -> Command:
        return self.command
