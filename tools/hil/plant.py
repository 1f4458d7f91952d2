"""The battery plant of the HIL bench: edge's fast battery model built from a cells file's truth,
plus the bench's fault injection.

Owns `Plant` (tests: tests/tools/hil/test_hil_plant.py) and `batteries_from_truth`. The physics,
`PlantConfig`, `Command` and `Observation` are edge/batterymodel/plant.py's (re-exported here for
the bench code); the planner builds the same model from what grading estimated instead. One row
of a cells file (format of `../shared/data/cells_train.csv`, `truth_*` columns) becomes one module:
truth SOC, SOH, contact resistance and ambient, the electrode windows of the row's degradation
modes (LLI, LAM) where the file has them, its graphite diffusivity `truth_dn_f` where it has it.
The faults (tools/hil/faults.py) act through the model's hooks: a weak cell scales its capacity
and resistance, an internal short puts a conductance across its cell from its onset, sensor
faults change the marker readings (never the physics).

Stations can start empty (`empty=True`, or `loaded=[...]` the stations that start with their
row's module) and take other rows later: `load_row(station, row)` (the model's `load_module` from
that row's truth) and `unload_module(station)`; the bench's robot (server_bench.py) does it on the
supervisor's request. A weak cell or an internal short belongs to the first module its station
holds (the row it started with, or the first one loaded on a station that started empty), not
to the ones after it; a `BatteryShort` belongs to a battery (its cell_id) on whichever station
holds it, from its onset after the load; sensor faults belong to the station.
"""

from __future__ import annotations

import numpy as np

from edge.batterymodel.cell_model import EcmParams
from edge.batterymodel.plant import KELVIN, Batteries, Command, Observation, PlantConfig
from edge.batterymodel.plant import Plant as ModelPlant
from edge.grading.electrochem import solve_windows
from tools.hil.cells import BenchCells
from tools.hil.faults import BatteryShort, Fault, InternalShort, SensorFaultInjector, WeakCell, check_indices

__all__ = ["Command", "Observation", "Plant", "PlantConfig", "batteries_from_truth"]


def batteries_from_truth(cells: BenchCells, convection_from_feat: bool = False) -> Batteries:
    """The model's modules from the rows' truth_* columns (and feat_h_W_m2K when asked for)."""
    windows = None
    if all(cells.has(c) for c in ("truth_lli", "truth_lam_ne", "truth_lam_pe")):
        windows = solve_windows(cells["truth_lli"], cells["truth_lam_ne"], cells["truth_lam_pe"])
    if convection_from_feat and not cells.has("feat_h_W_m2K"):
        raise ValueError(f"{cells.path}: convection_from_feat needs the column feat_h_W_m2K")
    return Batteries(soc=cells["truth_soc"], soh=cells["truth_soh"], r_contact_mohm=cells["truth_r_contact_mOhm"],
                     t_amb_degc=cells["truth_t_amb_C"], windows=windows,
                     diff_factor=cells["truth_dn_f"] if cells.has("truth_dn_f") else None,
                     h_natural_w_m2k=cells["feat_h_W_m2K"] if cells.has("feat_h_W_m2K") else None,
                     source=cells.path)


class Plant(ModelPlant):
    """The bench's batch: `Plant(cells, config, faults, params, empty=False, loaded=None)`, one
    station per row of `cells`; stepping and signals are the model's. `empty=True`: every station
    starts empty; `loaded`: the stations that start with their row (the rest empty)."""

    def __init__(self, cells: BenchCells, config: PlantConfig | None = None,
                 faults: tuple[Fault, ...] = (), params: EcmParams | None = None,
                 empty: bool = False, loaded=None) -> None:
        cfg = config or PlantConfig()
        check_indices(tuple(faults), len(cells), cfg.cells_per_module, len(cfg.thermal.marker_positions))
        if empty and loaded is not None:
            raise ValueError("give empty=True or the stations that start loaded, not both")
        self.cells = cells
        self.faults = tuple(faults)
        self._shorts = [f for f in self.faults if isinstance(f, InternalShort)]
        self._battery_shorts = [f for f in self.faults if isinstance(f, BatteryShort)]
        self._sensors = SensorFaultInjector(self.faults)
        super().__init__(batteries_from_truth(cells, cfg.convection_from_feat), cfg, params,
                         loaded=[] if empty else loaded)
        ids = np.asarray(cells["cell_id"], float).astype(np.int64)
        self.battery_at = np.where(self.loaded, ids, -1)  # the cell_id each station holds, -1 empty
        self.loaded_at_s = np.zeros(self.n_modules)

    def load_row(self, station: int, row: BenchCells) -> None:
        """Put the module of one cells-file row (its truth) on the station, replacing any there."""
        if len(row) != 1:
            raise ValueError(f"{row.path}: load_row takes one row, got {len(row)}")
        self.load_module(station, batteries_from_truth(row, self.cfg.convection_from_feat))
        self.battery_at[station] = int(np.asarray(row["cell_id"], float)[0])
        self.loaded_at_s[station] = self.t_s

    def unload_module(self, station: int) -> None:
        super().unload_module(station)
        self.battery_at[station] = -1

    def _first_module(self, station: int) -> bool:
        return self.modules_placed[station] == 1

    def _scale_cells(self, cap_scale: np.ndarray, r_extra: np.ndarray) -> None:
        for f in self.faults:
            if isinstance(f, WeakCell) and self._first_module(f.module):
                cap_scale[f.module * self.n_cells + f.cell] *= f.cap_factor
                r_extra[f.module * self.n_cells + f.cell] *= f.r_factor

    def _short_conductance(self) -> np.ndarray:
        g = super()._short_conductance()
        for f in self._shorts:
            if self.t_s >= f.onset_s and self._first_module(f.module):
                g[f.module * self.n_cells + f.cell] += 1.0 / f.r_short_ohm
        for f in self._battery_shorts:
            for s in np.flatnonzero(self.battery_at == f.battery_id):
                if self.t_s - self.loaded_at_s[s] >= f.onset_s:
                    g[s * self.n_cells + f.cell] += 1.0 / f.r_short_ohm
        return g

    def _after_step(self) -> None:
        self._sensors.latch(lambda: self.markers.read(self.temp_k - KELVIN), self.t_s)

    def _sensor_readings(self, markers_degc: np.ndarray) -> np.ndarray:
        return self._sensors.apply(markers_degc, self.t_s)
