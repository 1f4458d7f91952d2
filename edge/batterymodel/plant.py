"""The fast battery model: a batch of modules on discharge stations, all stepped together.

Owns `Batteries` (what the model is built from, one entry per module), `Plant`, `PlantConfig`,
`Command` and `Observation` (tests: tests/edge/batterymodel/test_plant.py). Each module is
`cells_per_module` cells in series, built from its `Batteries` entry with a small seeded
cell-to-cell scatter. Each station discharges its module at a commanded current (CC) or through a
constant-resistance load (CR) until any cell reaches `cutoff_v` (the station trips, latched).

Two users build it: the planner (edge/strategy/rollout.py) from what grading estimated, and the
HIL bench (tools/hil/plant.py) from a cells file's truth, adding its faults through the hooks
`_scale_cells`, `_short_conductance`, `_after_step` and `_sensor_readings` (the model has none).

Signals (arrays: m = modules, z = fixture zones, k = marker sensors, n = cells per module):

    Command  discharge_on[m] bool, current_a[m] (CC request; NaN = CR through load_ohm[m]),
             load_ohm[m], pressure_kpa[m,z] clamp setpoint, relief[m,z] in [0, 1] (clamp target
             = max(setpoint·(1 - relief), min(setpoint, fixture.hold_kpa))), coolant_lpm[m]
    Observation  t_s, marker_temp_degc[m,k] (sensor noise, and the bench's sensor faults),
             pressure_kpa[m,z] applied (ripple included), module_voltage_v[m], cell_voltage_v[m,n],
             current_a[m], tripped[m], coolant_lpm[m]
    State    soc[m,n], temp_degc[m,n], residual_ah[m] (charge left, Ah, mean over the string)

Physics: cell_model.py (2-RC ECM with SOH ageing and electrode OCV), fixture.py (U-shaped stack
resistance that rises steeply as the clamp opens, the current the fixture's contacts let the
station deliver, clamp ripple, coolant film), thermal.py (cell chain, markers). Zones: a module
has `n_zones` fixture zones (2 by default); cell i sits in zone i·z // n, so relief of one zone
opens that zone's contacts (its resistance, its coolant film) and only its cells feel it; the
station's current is one for the string, so a relieved zone limits the whole module's current to
fixture.path_drop_max_v / ΣR (`plant.path_limit_a`). With `pressure_effects=False` the fixture
adds no resistance, never opens and limits nothing (the single-cell validation case).

Stations and their modules (a continuous line): `load_module(station, batteries_row)` puts a new
module on a station (fresh cells from that one-entry `Batteries`: its SOC, SOH, resistance and
windows with a scatter seeded by the station and how many modules it has held; temperatures,
coolant inlet and natural convection at its ambient; the tripped flag, the RC and diffusion
states, the clamp and its pressure cleared) and `unload_module(station)` leaves it empty. Only
that station's slice of the per-module arrays changes: every other station steps on bit for bit
as if nothing happened. An empty station (`loaded[s]` False; `Plant(..., loaded=...)` starts with
some empty) has no module: no current whatever the command, cell and module voltages 0, its
cells (and markers) held at the ambient of its last module, never tripped, and it counts neither
in `residual_ah()` nor in `initial_charge_ah` (0; `soc()` NaN). `modules_placed[s]` counts the
modules a station has held (1 for one loaded at the start). Tests: tests/edge/batterymodel/test_plant.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.batterymodel.arrays import nan_to_num
from edge.batterymodel.cell_model import CellBank, EcmParams
from edge.batterymodel.electrode import windows_for_soh
from edge.batterymodel.fixture import (FixtureConfig, actuate, coolant_h_w_m2k, deliverable_current_a,
                                       pressure_target_kpa, ripple_factor, stack_resistance_ohm)
from edge.batterymodel.thermal import MarkerMap, ThermalConfig, step_chain
from edge.grading.electrochem import ElectrodeWindows

KELVIN = 273.15


@dataclass(frozen=True)
class PlantConfig:
    cells_per_module: int = 6
    n_zones: int = 2
    """Fixture zones per station (plc_tags/hil_*.yaml: two); cell i sits in zone i·z // n."""
    cutoff_v: float = 2.5
    station_max_current_a: float = 15.0
    pressure_effects: bool = True
    coolant_temp_degc: float | None = None
    """Coolant inlet temperature; None = each module's ambient (`Batteries.t_amb_degc`)."""
    soc_scatter: float = 0.01
    cap_scatter: float = 0.01
    r_scatter: float = 0.03
    sensor_noise_k: float = 0.05
    seed: int = 0
    convection_from_feat: bool = False
    """Natural convection per module from `Batteries.h_natural_w_m2k` (the data's own h,
    feat_h_W_m2K) instead of thermal.h_natural_w_m2k: the single-cell validation against the data."""
    fixture: FixtureConfig = field(default_factory=FixtureConfig)
    thermal: ThermalConfig = field(default_factory=ThermalConfig)

    def __post_init__(self) -> None:
        if self.cells_per_module < 1:
            raise ValueError(f"plant.cells_per_module must be >= 1, got {self.cells_per_module}")
        if not 1 <= self.n_zones <= self.cells_per_module:
            raise ValueError(f"plant.n_zones must be in 1..cells_per_module, got {self.n_zones}")
        if not 2.0 <= self.cutoff_v <= 3.5:
            raise ValueError(f"plant.cutoff_v must be in [2.0, 3.5] V, got {self.cutoff_v}")
        for name in ("station_max_current_a",):
            if not getattr(self, name) > 0:
                raise ValueError(f"plant.{name} must be > 0")
        for name in ("soc_scatter", "cap_scatter", "r_scatter", "sensor_noise_k"):
            if not 0.0 <= getattr(self, name) <= 0.2:
                raise ValueError(f"plant.{name} must be in [0, 0.2], got {getattr(self, name)}")


@dataclass(frozen=True)
class Batteries:
    """What the model is built from, one entry per module (fractions, not %).

    `windows` (electrode windows from the degradation modes) default to `windows_for_soh(soh)`,
    `diff_factor` (graphite diffusivity) to the cell model's law of SOH."""

    soc: np.ndarray
    soh: np.ndarray
    r_contact_mohm: np.ndarray
    t_amb_degc: np.ndarray
    windows: ElectrodeWindows | None = None
    diff_factor: np.ndarray | None = None
    h_natural_w_m2k: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.soc).size
        for name in ("soh", "r_contact_mohm", "t_amb_degc", "diff_factor", "h_natural_w_m2k"):
            value = getattr(self, name)
            if value is not None and np.asarray(value).shape != (m,):
                raise ValueError(f"{self.source}: batteries.{name} has shape {np.shape(value)}, expected ({m},)")

    def __len__(self) -> int:
        return int(np.asarray(self.soc).size)

    def select(self, index) -> "Batteries":
        """The entries at `index` (an int, a slice or a list of ints), as a Batteries."""
        index = [index] if isinstance(index, (int, np.integer)) else index

        def pick(a):
            return None if a is None else np.asarray(a)[index]

        w = self.windows
        windows = None if w is None else type(w)(*(np.atleast_1d(np.asarray(a))[index] for a in
                                                   (w.cap_ah, w.x100, w.y100, w.q_neg_ah, w.q_pos_ah)))
        return Batteries(pick(self.soc), pick(self.soh), pick(self.r_contact_mohm), pick(self.t_amb_degc),
                         windows, pick(self.diff_factor), pick(self.h_natural_w_m2k), self.source)


@dataclass
class Command:
    discharge_on: np.ndarray
    current_a: np.ndarray
    load_ohm: np.ndarray
    pressure_kpa: np.ndarray
    relief: np.ndarray
    coolant_lpm: np.ndarray

    @classmethod
    def idle(cls, n_modules: int, n_zones: int, pressure_kpa: float = 150.0) -> "Command":
        """Discharge off, clamp at `pressure_kpa`, no relief, no coolant."""
        return cls(np.zeros(n_modules, bool), np.zeros(n_modules), np.full(n_modules, 1.0),
                   np.full((n_modules, n_zones), pressure_kpa), np.zeros((n_modules, n_zones)),
                   np.zeros(n_modules))

    def copy(self) -> "Command":
        return Command(*(np.array(getattr(self, f)) for f in
                         ("discharge_on", "current_a", "load_ohm", "pressure_kpa", "relief", "coolant_lpm")))


@dataclass(frozen=True)
class Observation:
    t_s: float
    marker_temp_degc: np.ndarray
    pressure_kpa: np.ndarray
    module_voltage_v: np.ndarray
    cell_voltage_v: np.ndarray
    current_a: np.ndarray
    tripped: np.ndarray
    coolant_lpm: np.ndarray


class Plant:
    """A batch of modules; `step(command, dt_s)` advances the physics, `observe()` reads the sensors.

    `loaded`: which stations start with their module (None = all; a bool mask of the modules or a
    list of station indices); the others start empty (their `batteries` entry is a placeholder)."""

    def __init__(self, batteries: Batteries, config: PlantConfig | None = None,
                 params: EcmParams | None = None, loaded=None) -> None:
        self.cfg = cfg = config or PlantConfig()
        self.params = params or EcmParams.load()
        b = batteries
        m, n = len(b), cfg.cells_per_module
        self.n_modules, self.n_cells = m, n
        self.loaded = _station_mask(loaded, m)
        self.modules_placed = self.loaded.astype(np.int64)
        self.markers = MarkerMap(cfg.thermal.marker_positions, n)
        rng = np.random.default_rng(cfg.seed)
        soh = np.repeat(np.asarray(b.soh, float), n)
        soc = np.clip(np.repeat(np.asarray(b.soc, float), n) + rng.normal(0, cfg.soc_scatter, m * n), 0.0, 1.0)
        cap_scale = 1.0 + rng.normal(0, cfg.cap_scatter, m * n)
        r_extra = np.clip(1.0 + rng.normal(0, cfg.r_scatter, m * n), 0.8, None)
        self._scale_cells(cap_scale, r_extra)
        w = b.windows if b.windows is not None else windows_for_soh(b.soh)
        w = type(w)(*(np.repeat(a, n) for a in (w.cap_ah, w.x100, w.y100, w.q_neg_ah, w.q_pos_ah)))
        dn = np.repeat(b.diff_factor, n) if b.diff_factor is not None else None
        self.bank = CellBank(self.params, w, soc, soh, np.repeat(np.asarray(b.r_contact_mohm, float), n) * 1e-3,
                             diff_factor=dn, cap_scale=cap_scale, r_scale_extra=r_extra)
        self.t_amb_k = np.asarray(b.t_amb_degc, float) + KELVIN
        if cfg.convection_from_feat and b.h_natural_w_m2k is None:
            raise ValueError(f"{b.source}: convection_from_feat needs each module's h_natural_w_m2k")
        self.h_natural_w_m2k = (np.asarray(b.h_natural_w_m2k, float).copy() if cfg.convection_from_feat
                                else np.full(m, cfg.thermal.h_natural_w_m2k))
        self.coolant_k = (np.full(m, cfg.coolant_temp_degc + KELVIN) if cfg.coolant_temp_degc is not None
                          else self.t_amb_k.copy())
        self.temp_k = np.repeat(self.t_amb_k, n).reshape(m, n)
        self.zone_of_cell = (np.arange(n) * cfg.n_zones) // n
        self.clamp_kpa = np.zeros((m, cfg.n_zones))  # the actuator's lagged pressure, before ripple
        self.pressure_kpa = np.zeros((m, cfg.n_zones))  # applied: clamp x ripple
        self._ripple_phase = np.random.default_rng(cfg.seed + 2).uniform(0.0, 2.0 * np.pi, (m, cfg.n_zones))
        self.path_limit_a = np.full(m, np.inf)  # what the fixture's contacts let the station deliver
        self.current_a = np.zeros(m)
        self.cell_current_a = np.zeros(m * n)
        self.cell_voltage_v = self.bank.evaluate(np.zeros(m * n), self.temp_k.ravel())["voltage_v"]
        self.tripped = np.zeros(m, bool)
        self.coolant_lpm = np.zeros(m)
        self.t_s = 0.0
        self._noise = np.random.default_rng(cfg.seed + 1)
        for s in np.flatnonzero(~self.loaded):
            self._clear_station(int(s))
        self.initial_charge_ah = self.residual_ah()

    # ---------------------------------------------------------------- stations and modules
    def _station(self, station) -> int:
        s = int(station)
        if not 0 <= s < self.n_modules:
            raise ValueError(f"station {station} outside 0..{self.n_modules - 1}")
        return s

    def _clear_station(self, s: int) -> None:
        """What a station without a module shows (module docstring)."""
        n = self.n_cells
        cells = slice(s * n, (s + 1) * n)
        self.loaded[s] = False
        self.current_a[s] = 0.0
        self.cell_current_a[cells] = 0.0
        self.cell_voltage_v[cells] = 0.0
        self.tripped[s] = False
        self.temp_k[s] = self.t_amb_k[s]
        self.clamp_kpa[s] = 0.0
        self.pressure_kpa[s] = 0.0
        self.path_limit_a[s] = np.inf
        for name in ("v1", "v2", "dz_surf"):
            getattr(self.bank, name)[cells] = 0.0

    def unload_module(self, station: int) -> None:
        """The station's module leaves; the station is empty (module docstring)."""
        s = self._station(station)
        self._clear_station(s)
        if hasattr(self, "initial_charge_ah"):
            self.initial_charge_ah[s] = 0.0

    def load_module(self, station: int, batteries: Batteries) -> None:
        """Put a fresh module built from the one-entry `batteries` on the station, replacing any
        module there; no other station's state changes (module docstring)."""
        s = self._station(station)
        if len(batteries) != 1:
            raise ValueError(f"{batteries.source}: load_module takes one battery, got {len(batteries)}")
        cfg, m, n, b = self.cfg, self.n_modules, self.n_cells, batteries
        cells = slice(s * n, (s + 1) * n)
        self.modules_placed[s] += 1
        rng = np.random.default_rng([cfg.seed, 7, s, int(self.modules_placed[s])])
        soh = np.repeat(np.asarray(b.soh, float), n)
        soc = np.clip(np.repeat(np.asarray(b.soc, float), n) + rng.normal(0, cfg.soc_scatter, n), 0.0, 1.0)
        cap_scale, r_extra = np.ones(m * n), np.ones(m * n)
        cap_scale[cells] = 1.0 + rng.normal(0, cfg.cap_scatter, n)
        r_extra[cells] = np.clip(1.0 + rng.normal(0, cfg.r_scatter, n), 0.8, None)
        self._scale_cells(cap_scale, r_extra)
        w = b.windows if b.windows is not None else windows_for_soh(np.asarray(b.soh, float))
        w = type(w)(*(np.repeat(np.atleast_1d(a), n) for a in (w.cap_ah, w.x100, w.y100, w.q_neg_ah, w.q_pos_ah)))
        dn = np.repeat(b.diff_factor, n) if b.diff_factor is not None else None
        new = CellBank(self.params, w, soc, soh, np.repeat(np.asarray(b.r_contact_mohm, float), n) * 1e-3,
                       diff_factor=dn, cap_scale=cap_scale[cells], r_scale_extra=r_extra[cells])
        bank = self.bank
        for name in ("cap_ah", "r_scale", "r_contact_ohm", "diff_gain_s", "diff_tau_s", "soc", "v1", "v2", "dz_surf"):
            getattr(bank, name)[cells] = getattr(new, name)
        grid = new.pos_flat.size // n
        bank.pos_flat[s * n * grid:(s + 1) * n * grid] = new.pos_flat
        bank.neg_flat[s * n * grid:(s + 1) * n * grid] = new.neg_flat
        t_amb_k = float(np.asarray(b.t_amb_degc, float)[0]) + KELVIN
        self.t_amb_k[s] = t_amb_k
        if cfg.convection_from_feat:
            if b.h_natural_w_m2k is None:
                raise ValueError(f"{b.source}: convection_from_feat needs the module's h_natural_w_m2k")
            self.h_natural_w_m2k[s] = float(np.asarray(b.h_natural_w_m2k, float)[0])
        if cfg.coolant_temp_degc is None:
            self.coolant_k[s] = t_amb_k
        self._clear_station(s)
        self.loaded[s] = True
        self.cell_voltage_v[cells] = new.evaluate(np.zeros(n), self.temp_k[s])["voltage_v"]
        self.initial_charge_ah[s] = new.charge_ah().mean()

    # ---------------------------------------------------------------- hooks (the bench's faults)
    def _scale_cells(self, cap_scale: np.ndarray, r_extra: np.ndarray) -> None:
        """Change the flat per-cell capacity and resistance factors in place before the bank is
        built (the model: no change)."""

    def _short_conductance(self) -> np.ndarray:
        """Conductance (S) across each cell, flat (the model: none)."""
        return np.zeros(self.n_modules * self.n_cells)

    def _after_step(self) -> None:
        """Called at the end of every step, with `t_s` already advanced (the model: nothing)."""

    def _sensor_readings(self, markers_degc: np.ndarray) -> np.ndarray:
        """The marker readings as the sensors report them (the model: as measured)."""
        return markers_degc

    # ---------------------------------------------------------------- physics
    def _check(self, cmd: Command) -> None:
        m, z = self.n_modules, self.cfg.n_zones
        for name, shape in (("discharge_on", (m,)), ("current_a", (m,)), ("load_ohm", (m,)),
                            ("pressure_kpa", (m, z)), ("relief", (m, z)), ("coolant_lpm", (m,))):
            if np.shape(getattr(cmd, name)) != shape:
                raise ValueError(f"command.{name} has shape {np.shape(getattr(cmd, name))}, expected {shape}")

    def step(self, cmd: Command, dt_s: float) -> None:
        """Advance the whole batch by dt_s under `cmd`."""
        if not 0 < dt_s <= 5.0:
            raise ValueError(f"dt_s must be in (0, 5] s, got {dt_s}")
        self._check(cmd)
        cfg, m, n = self.cfg, self.n_modules, self.n_cells
        relief = np.clip(nan_to_num(np.asarray(cmd.relief, float), nan=1.0), 0.0, 1.0)
        target = pressure_target_kpa(cmd.pressure_kpa, relief, cfg.fixture)
        self.clamp_kpa = actuate(self.clamp_kpa, target, dt_s, cfg.fixture)
        self.pressure_kpa = np.clip(self.clamp_kpa * ripple_factor(self.t_s + dt_s, self._ripple_phase, cfg.fixture),
                                    0.0, cfg.fixture.p_max_kpa)
        if cfg.pressure_effects:
            r_fix_zone = stack_resistance_ohm(self.pressure_kpa, cfg.fixture)
            r_fix = r_fix_zone[:, self.zone_of_cell]
        else:
            r_fix = np.zeros((m, n))
        closed = np.all(np.isfinite(r_fix), axis=1)
        r_fix = np.where(np.isfinite(r_fix), r_fix, 0.0)
        self.path_limit_a = deliverable_current_a(r_fix.sum(axis=1), cfg.fixture)

        temp = self.temp_k.ravel()
        ev = self.bank.evaluate(self.cell_current_a, temp)
        g_short = self._short_conductance()
        empty = ~self.loaded
        if empty.any():
            g_short = np.where(np.repeat(empty, n), 0.0, g_short)
        i_short = self.cell_voltage_v * g_short
        emf_eff = (ev["emf_v"] - i_short * ev["r0_ohm"]).reshape(m, n).sum(axis=1)
        r_string = ev["r0_ohm"].reshape(m, n).sum(axis=1) + r_fix.sum(axis=1)
        emf_eff = np.maximum(emf_eff, 0.0)
        i_cc = np.minimum(nan_to_num(cmd.current_a, nan=0.0), emf_eff / r_string)
        load = np.clip(nan_to_num(cmd.load_ohm, nan=np.inf), 1e-3, None)
        i_cr = emf_eff / (load + r_string)
        current = np.minimum(np.where(np.isnan(cmd.current_a), i_cr, i_cc), self.path_limit_a)
        on = np.asarray(cmd.discharge_on, bool) & closed & ~self.tripped & self.loaded
        current = np.where(on, np.clip(current, 0.0, cfg.station_max_current_a), 0.0)

        i_cell = np.repeat(current, n) + i_short
        volt = ev["emf_v"] - i_cell * ev["r0_ohm"]
        heat = (i_cell * (ev["ocv_t_v"] - volt) - i_cell * temp * ev["dudt_v_per_k"]
                + volt * i_short + (np.repeat(current, n) ** 2) * r_fix.ravel())
        vmin = volt.reshape(m, n).min(axis=1)
        self.tripped |= (current > 0) & (vmin <= cfg.cutoff_v)

        self.coolant_lpm = np.clip(nan_to_num(cmd.coolant_lpm, nan=cfg.fixture.flow_max_lpm),
                                   0.0, cfg.fixture.flow_max_lpm)
        h = self.h_natural_w_m2k[:, None] + (coolant_h_w_m2k(self.coolant_lpm[:, None], relief, cfg.fixture)
                                           [:, self.zone_of_cell] if cfg.pressure_effects else 0.0)
        h = np.broadcast_to(h, (m, n))
        self.temp_k = step_chain(self.temp_k, heat.reshape(m, n), h, self.coolant_k, dt_s,
                                 self.params.heat_capacity_j_per_k, self.params.cooling_area_m2,
                                 cfg.thermal.conduction_w_per_k)
        self.bank.advance(i_cell, ev["r1_ohm"], ev["r2_ohm"], dt_s)
        self.current_a = current
        self.cell_current_a = i_cell
        self.cell_voltage_v = volt
        if empty.any():
            self.temp_k[empty] = self.t_amb_k[empty, None]
            self.cell_voltage_v[np.repeat(empty, n)] = 0.0
        self.t_s += dt_s
        self._after_step()

    # ---------------------------------------------------------------- signals
    def observe(self) -> Observation:
        """What the line's sensors show (marker noise applied, and the bench's sensor faults)."""
        m, n = self.n_modules, self.n_cells
        markers = self.markers.read(self.temp_k - KELVIN)
        if self.cfg.sensor_noise_k > 0:
            markers = markers + self._noise.normal(0, self.cfg.sensor_noise_k, markers.shape)
        markers = self._sensor_readings(markers)
        cells_v = self.cell_voltage_v.reshape(m, n)
        return Observation(self.t_s, markers, self.pressure_kpa.copy(), cells_v.sum(axis=1),
                           cells_v.copy(), self.current_a.copy(),
                           self.tripped.copy(), self.coolant_lpm.copy())

    def residual_ah(self) -> np.ndarray:
        """Charge left per module (Ah at string current: mean over its cells of SOC·capacity)."""
        charge = self.bank.charge_ah().reshape(self.n_modules, self.n_cells).mean(axis=1)
        return np.where(self.loaded, charge, 0.0)

    def soc(self) -> np.ndarray:
        """SOC per cell [m, n]; NaN on an empty station."""
        return np.where(self.loaded[:, None], self.bank.soc.reshape(self.n_modules, self.n_cells), np.nan)

    def temp_degc(self) -> np.ndarray:
        return self.temp_k - KELVIN


def _station_mask(loaded, m: int) -> np.ndarray:
    """Which of m stations hold a module: None = all; a bool mask of m; or station indices."""
    if loaded is None:
        return np.ones(m, bool)
    a = np.asarray(loaded)
    if a.dtype == bool:
        if a.shape != (m,):
            raise ValueError(f"loaded has shape {a.shape}, expected ({m},)")
        return a.copy()
    mask = np.zeros(m, bool)
    for s in a.ravel().tolist():
        if not 0 <= int(s) < m or int(s) != s:
            raise ValueError(f"loaded: station {s} outside 0..{m - 1}")
        mask[int(s)] = True
    return mask
