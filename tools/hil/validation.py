"""Validation of the plant's cell model against the physics data (the step-3 discharge).

Owns the check of issue 4's first "done when": for cells of `cells_train.csv`, replay the arrival
test of `timeseries_train.csv.gz` (rest 10 s, 5 A pulse 10 s, rest 60 s, then 5 A to 2.5 V =
step 3) through the plant itself (tools/hil/plant.py as single-cell modules, one thermal node,
`pressure_effects=False`: the data have none) with the cell's `truth_*` columns, the data's
convection `feat_h_W_m2K` and ambient `truth_t_amb_C`, and compare step 3:

    voltage RMSE %  = 100 · sqrt(mean(((V_model - V_data) / V_data)²))  over the step-3 samples
    ΔT error K      = (T_end - T_start)_model - (T_end - T_start)_data    over step 3

The model's voltage carries the cell's `truth_hyst_mV` offset, as the measurement does. The
current is each step's mean measured current. All selected cells run together as one vectorised
batch on a common clock. Run: `.venv/bin/python -m tools.hil.validation --n 50 --first 500`.
Tests: tests/tools/hil/test_hil_validation.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.batterymodel.cell_model import EcmParams
from tools.hil.cells import BenchCells, default_cells_path, default_timeseries_path, load_cells
from tools.hil.plant import Command, Plant, PlantConfig
from edge.batterymodel.thermal import ThermalConfig

DT_S = 0.5
TAIL_S = 900.0
"""How long the replay may run past the data's cut-off to find the model's own."""


@dataclass(frozen=True)
class CellValidation:
    cell_id: int
    soh: float
    soc: float
    v_rmse_pct: float
    v_rmse_mv: float
    dtemp_data_k: float
    dtemp_model_k: float
    t_end_data_s: float
    t_end_model_s: float

    @property
    def dtemp_err_k(self) -> float:
        return self.dtemp_model_k - self.dtemp_data_k


def load_timeseries(path: Path | str, cell_ids: set[int] | None = None) -> dict[int, np.ndarray]:
    """`cell_id -> array (rows, [step, t_s, I_A, V_V, T_C])` from the timeseries file."""
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    if data.ndim != 2 or data.shape[1] != 6:
        raise ValueError(f"{path}: expected 6 columns cell_id,step,t_s,I_A,V_V,T_C")
    out: dict[int, np.ndarray] = {}
    ids = data[:, 0].astype(int)
    order = np.argsort(ids, kind="stable")
    ids, data = ids[order], data[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], ids.size]
    for s, e in zip(starts, ends):
        cid = int(ids[s])
        if cell_ids is None or cid in cell_ids:
            out[cid] = data[s:e, 1:]
    return out


def _steps(series: np.ndarray) -> dict[int, tuple[float, float, float]]:
    """Per step: (start time, end time, mean current)."""
    out = {}
    for step in range(4):
        rows = series[series[:, 0] == step]
        if rows.size == 0:
            raise ValueError(f"time series lacks step {step}")
        out[step] = (float(rows[0, 1]), float(rows[-1, 1]), float(rows[:, 2].mean()))
    return out


def validation_plant(cells: BenchCells, params: EcmParams) -> Plant:
    """The plant as a bench of single cells: no pressure effects, no scatter, the data's h."""
    cfg = PlantConfig(cells_per_module=1, n_zones=1, cutoff_v=2.0, pressure_effects=False,
                      soc_scatter=0.0, cap_scatter=0.0, r_scatter=0.0, sensor_noise_k=0.0,
                      convection_from_feat=True, thermal=ThermalConfig(marker_positions=(0.0,)))
    return Plant(cells, cfg, params=params)


def simulate_arrival(cells: BenchCells, series: list[np.ndarray], params: EcmParams,
                     dt_s: float = DT_S) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Replay steps 0-3 on the plant for all cells at once; per cell (t_s, V_V, T_C, t_cutoff_s).

    The station's own trip is set below the data's 2.5 V; the replay stops each cell's step-3
    current when its voltage reaches 2.5 V, as the data generator's experiment does.
    """
    n = len(cells)
    steps = [_steps(s) for s in series]
    t1s = np.array([s[1][0] for s in steps]); t1e = np.array([s[1][1] for s in steps])
    t3s = np.array([s[3][0] for s in steps]); t3e = np.array([s[3][1] for s in steps])
    i1 = np.array([s[1][2] for s in steps]); i3 = np.array([s[3][2] for s in steps])
    plant = validation_plant(cells, params)
    hyst_v = cells["truth_hyst_mV"] * 1e-3 if cells.has("truth_hyst_mV") else np.zeros(n)
    times = np.arange(0.0, float(t3e.max()) + TAIL_S + dt_s, dt_s)
    v_hist = np.empty((times.size, n)); temp_hist = np.empty((times.size, n))
    cutoff = np.full(n, np.nan)
    cmd = Command.idle(n, 1)
    cmd.discharge_on[:] = True
    for k, t in enumerate(times):
        temp_hist[k] = plant.temp_degc()[:, 0]
        cmd.current_a = (np.where((t >= t1s) & (t < t1e), i1, 0.0)
                         + np.where((t >= t3s) & np.isnan(cutoff), i3, 0.0))
        plant.step(cmd, dt_s)  # the voltage it reports is the one at t under the new current
        volt = plant.cell_voltage_v
        v_hist[k] = volt + hyst_v
        cutoff[np.isnan(cutoff) & (t >= t3s) & (volt <= 2.5) & (plant.current_a > 0)] = t
    return [(times, v_hist[:, c], temp_hist[:, c], float(cutoff[c])) for c in range(n)]


def validate(cells: BenchCells, timeseries: dict[int, np.ndarray], params: EcmParams | None = None
             ) -> list[CellValidation]:
    """Compare the model with the data on step 3 for every cell of `cells`."""
    params = params or EcmParams.load()
    ids = [int(c) for c in cells["cell_id"]]
    missing = [c for c in ids if c not in timeseries]
    if missing:
        raise ValueError(f"no time series for cells {missing[:5]}")
    series = [timeseries[c] for c in ids]
    sims = simulate_arrival(cells, series, params)
    out = []
    for j, (cid, s, (t, v, temp, t_cut)) in enumerate(zip(ids, series, sims)):
        s3 = s[s[:, 0] == 3]
        vm = np.interp(s3[:, 1], t, v)
        rel = (vm - s3[:, 3]) / s3[:, 3]
        tm0, tm1 = np.interp([s3[0, 1], s3[-1, 1]], t, temp)
        out.append(CellValidation(
            cell_id=cid, soh=float(cells["truth_soh"][j]), soc=float(cells["truth_soc"][j]),
            v_rmse_pct=float(100 * np.sqrt(np.mean(rel**2))),
            v_rmse_mv=float(1e3 * np.sqrt(np.mean((vm - s3[:, 3]) ** 2))),
            dtemp_data_k=float(s3[-1, 4] - s3[0, 4]), dtemp_model_k=float(tm1 - tm0),
            t_end_data_s=float(s3[-1, 1] - s3[0, 1]), t_end_model_s=float(t_cut - s3[0, 1]),
        ))
    return out


def summarise(results: list[CellValidation]) -> dict[str, float]:
    v = np.array([r.v_rmse_pct for r in results])
    dt = np.abs(np.array([r.dtemp_err_k for r in results]))
    te = np.array([r.t_end_model_s - r.t_end_data_s for r in results])
    return {
        "cells": len(results),
        "v_rmse_pct_mean": float(v.mean()), "v_rmse_pct_p95": float(np.percentile(v, 95)),
        "v_rmse_pct_max": float(v.max()), "v_within_2pct": int((v <= 2.0).sum()),
        "dtemp_err_k_mean_abs": float(dt.mean()), "dtemp_err_k_p95_abs": float(np.percentile(dt, 95)),
        "dtemp_err_k_max_abs": float(dt.max()), "dtemp_within_1p5k": int((dt <= 1.5).sum()),
        "t_end_err_s_mean": float(np.nanmean(te)), "t_end_err_s_max_abs": float(np.nanmax(np.abs(te))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=Path, default=None, help="cells CSV (default: ../shared/data)")
    ap.add_argument("--timeseries", type=Path, default=None)
    ap.add_argument("--first", type=int, default=500, help="first row to validate")
    ap.add_argument("--n", type=int, default=50, help="number of rows")
    ap.add_argument("--per-cell", action="store_true", help="print one line per cell on stderr")
    a = ap.parse_args(argv)
    cells = load_cells(a.cells or default_cells_path()).select(slice(a.first, a.first + a.n))
    ts = load_timeseries(a.timeseries or default_timeseries_path(), {int(c) for c in cells["cell_id"]})
    results = validate(cells, ts)
    if a.per_cell:
        for r in results:
            print(f"cell {r.cell_id:4d} soh {r.soh:.3f} soc {r.soc:.3f} V {r.v_rmse_pct:.2f} % "
                  f"dT data {r.dtemp_data_k:5.1f} model {r.dtemp_model_k:5.1f} K "
                  f"t_end {r.t_end_data_s:6.0f}/{r.t_end_model_s:6.0f} s", file=sys.stderr)
    print(json.dumps(summarise(results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
