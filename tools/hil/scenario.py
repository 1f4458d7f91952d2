"""Fault scenarios of the HIL bench: YAML files in tools/hil/scenarios/, their loader and checker.

Owns `Scenario` (frozen, validated; every error names the file and the key), `load_scenario`,
`build_plant` and `check_expectations` (tests: tests/tools/hil/test_hil_scenario.py). A file:

    name, description, kind: plant | protocol | placement
    batch:  cells: default | PATH ; one of rows: [..] | first: I, n: N | sample: {n: N, seed: S}
            overrides: [{module: M, truth_soc: .., truth_t_amb_C: .., truth_r_contact_mOhm: ..}]
    plant:  PlantConfig scalars (cells_per_module, n_zones, seed, sensor_noise_k, ...)
    faults: [{type: internal_short|weak_cell|sensor, ...}]        (physics and sensors)
    protocol: [{type: link_drop|server_restart|slow_response, at_s, ...}]   (for the HIL server)
    placement: {robot_cycle_s, camera: {noise_mm, seat_sd_mm, confidence_pct, frame_period_s, seed},
            faults: [{type: reversed_battery|low_confidence|robot_mishap, module: M, ...}]}  (S13)
    run:    {dt_s, max_time_s, warning_temp_degc}
    expect: what a correct controller must show; each key below is checked on a SIL trace.

Plant-side expectations (checked here): max_peak_temp_degc, max_time_above_warning_s,
max_residual_pct, all_finished, relief_within_s, coolant_within_s, safe_state_within_s.
Protocol-side ones (heartbeat_timeout_s, resume_within_s, reconnect_within_s, ...) parse and
validate here; the HIL server over Modbus/EtherNet-IP checks them, so SIL reports them unchecked.
Placement ones (placed, rejected, no_order_hanging, clamp_before_current, min_refused_frames)
are checked by tools/hil/server_scenario.py `run_placement_scenario` from the bench's truth.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tools.hil.cells import BenchCells, default_cells_path, load_cells
from tools.hil.faults import (ROBOT_MISHAPS, Fault, InternalShort, LowConfidence, ReversedBattery, RobotMishapFault,
                              SensorFault, SensorFaultMode, WeakCell)
from tools.hil.robot_cell import CameraConfig
from tools.hil.plant import Plant, PlantConfig
from edge.batterymodel.sil import SilConfig

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioKind(enum.Enum):
    PLANT = "plant"
    PROTOCOL = "protocol"
    PLACEMENT = "placement"


class ProtocolEventType(enum.Enum):
    LINK_DROP = "link_drop"
    SERVER_RESTART = "server_restart"
    SLOW_RESPONSE = "slow_response"


@dataclass(frozen=True)
class ProtocolEvent:
    type: ProtocolEventType
    at_s: float
    duration_s: float
    delay_ms: float = 0.0


@dataclass(frozen=True)
class BatchSpec:
    cells_path: Path
    rows: tuple[int, ...]
    overrides: tuple[tuple[int, str, float], ...] = ()


PLANT_EXPECT = {
    "max_peak_temp_degc": float, "max_time_above_warning_s": float, "max_residual_pct": float,
    "all_finished": bool, "relief_within_s": dict, "coolant_within_s": dict, "safe_state_within_s": dict,
}
PROTOCOL_EXPECT = {
    "heartbeat_timeout_s": float, "safe_state_within_s_of_drop": float, "resume_within_s": float,
    "reconnect_within_s": float, "max_consecutive_missed_ticks": int, "deadline_misses_reported": bool,
    "no_write_outside_limits": bool,
}
PLACEMENT_EXPECT = {
    "placed": list, "rejected": dict, "no_order_hanging": bool, "clamp_before_current": bool,
    "min_refused_frames": int,
}
EXPECT_FIELDS = {
    "relief_within_s": {"module": int, "trigger_temp_degc": float, "within_s": float},
    "coolant_within_s": {"module": int, "trigger_temp_degc": float, "within_s": float, "min_increase_lpm": float},
    "safe_state_within_s": {"module": int, "after_s": float, "within_s": float},
}
OVERRIDABLE = ("truth_soc", "truth_t_amb_C", "truth_r_contact_mOhm")
"""SOH is not overridable: capacity and OCV follow the row's degradation modes."""


@dataclass(frozen=True)
class Scenario:
    path: str
    name: str
    description: str
    kind: ScenarioKind
    batch: BatchSpec
    plant: PlantConfig
    faults: tuple[Fault, ...]
    protocol: tuple[ProtocolEvent, ...]
    run: SilConfig
    expect: dict[str, Any]
    placement: PlacementSpec | None = None


@dataclass(frozen=True)
class PlacementSpec:
    """S13 on the bench: the robot's cycle, the camera, and faults by batch index (`module`)."""

    robot_cycle_s: float
    camera: CameraConfig
    faults: tuple[tuple[str, int, dict], ...]  # (type, module, other fields)

    def bench_faults(self, battery_ids) -> tuple:
        """The faults for the bench, by battery id (`battery_ids[module]`)."""
        out = []
        for kind, module, kw in self.faults:
            b = int(battery_ids[module])
            out.append({"reversed_battery": ReversedBattery, "low_confidence": LowConfidence,
                        "robot_mishap": RobotMishapFault}[kind](b, **kw))
        return tuple(out)


class ScenarioError(ValueError):
    pass


def _need(d: dict, key: str, typ: type, where: str) -> Any:
    if key not in d:
        raise ScenarioError(f"{where}: missing key '{key}'")
    return _typed(d[key], typ, f"{where}.{key}")


def _typed(value: Any, typ: type, where: str) -> Any:
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ in (bool, dict, list, str) and isinstance(value, typ):
        return value
    raise ScenarioError(f"{where}: expected {typ.__name__}, got {value!r}")


def _check_keys(d: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise ScenarioError(f"{where}: unknown keys {extra} (allowed: {sorted(allowed)})")


def _batch(raw: dict, where: str, base_dir: Path) -> BatchSpec:
    _check_keys(raw, {"cells", "rows", "first", "n", "sample", "overrides"}, where)
    cells = raw.get("cells", "default")
    path = default_cells_path() if cells == "default" else (base_dir / str(cells)).resolve()
    if "rows" in raw:
        rows = tuple(_typed(r, int, f"{where}.rows") for r in _typed(raw["rows"], list, f"{where}.rows"))
    elif "first" in raw:
        first, n = _need(raw, "first", int, where), _need(raw, "n", int, where)
        rows = tuple(range(first, first + n))
    elif "sample" in raw:
        s = _typed(raw["sample"], dict, f"{where}.sample")
        n, seed = _need(s, "n", int, f"{where}.sample"), _need(s, "seed", int, f"{where}.sample")
        pool = _need(s, "pool", int, f"{where}.sample") if "pool" in s else 1000
        if not 0 < n <= pool:
            raise ScenarioError(f"{where}.sample: n must be in 1..pool ({pool}), got {n}")
        rows = tuple(int(r) for r in np.sort(np.random.default_rng(seed).choice(pool, n, replace=False)))
    else:
        raise ScenarioError(f"{where}: give one of rows, first+n, sample")
    if not rows or min(rows) < 0:
        raise ScenarioError(f"{where}: rows must be non-negative and not empty")
    overrides = []
    for k, o in enumerate(_typed(raw.get("overrides", []), list, f"{where}.overrides")):
        w = f"{where}.overrides[{k}]"
        o = _typed(o, dict, w)
        _check_keys(o, {"module", *OVERRIDABLE}, w)
        mod = _need(o, "module", int, w)
        if not 0 <= mod < len(rows):
            raise ScenarioError(f"{w}.module: {mod} outside 0..{len(rows) - 1}")
        overrides += [(mod, key, _typed(o[key], float, f"{w}.{key}")) for key in OVERRIDABLE if key in o]
    return BatchSpec(path, rows, tuple(overrides))


def _fault(raw: dict, where: str) -> Fault:
    kind = _need(raw, "type", str, where)
    args = {k: v for k, v in raw.items() if k != "type"}
    spec = {"internal_short": (InternalShort, {"module": int, "cell": int, "r_short_ohm": float, "onset_s": float}),
            "weak_cell": (WeakCell, {"module": int, "cell": int, "cap_factor": float, "r_factor": float}),
            "sensor": (SensorFault, {"module": int, "marker": int, "mode": str, "onset_s": float,
                                     "duration_s": float, "value_degc": float})}
    if kind not in spec:
        raise ScenarioError(f"{where}.type: unknown fault {kind!r} (allowed: {sorted(spec)})")
    cls, types = spec[kind]
    _check_keys(args, set(types), where)
    kw = {k: _typed(v, types[k], f"{where}.{k}") for k, v in args.items()}
    if kind == "sensor":
        try:
            kw["mode"] = SensorFaultMode(_need(kw, "mode", str, where))
        except ValueError:
            raise ScenarioError(f"{where}.mode: {kw['mode']!r} not one of "
                                f"{[m.value for m in SensorFaultMode]}") from None
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _protocol_event(raw: dict, where: str) -> ProtocolEvent:
    _check_keys(raw, {"type", "at_s", "duration_s", "delay_ms"}, where)
    try:
        typ = ProtocolEventType(_need(raw, "type", str, where))
    except ValueError:
        raise ScenarioError(f"{where}.type: not one of {[t.value for t in ProtocolEventType]}") from None
    ev = ProtocolEvent(typ, _need(raw, "at_s", float, where), _need(raw, "duration_s", float, where),
                       _typed(raw.get("delay_ms", 0.0), float, f"{where}.delay_ms"))
    if ev.at_s < 0 or ev.duration_s <= 0:
        raise ScenarioError(f"{where}: at_s must be >= 0 and duration_s > 0")
    if typ is ProtocolEventType.SLOW_RESPONSE and ev.delay_ms <= 0:
        raise ScenarioError(f"{where}.delay_ms: a slow_response needs delay_ms > 0")
    return ev


def _placement(raw: dict, where: str, n_modules: int) -> PlacementSpec:
    _check_keys(raw, {"robot_cycle_s", "camera", "faults"}, where)
    cycle = _typed(raw.get("robot_cycle_s", 8.0), float, f"{where}.robot_cycle_s")
    if not 0.0 <= cycle <= 600.0:
        raise ScenarioError(f"{where}.robot_cycle_s: {cycle} outside 0..600 s")
    cam_raw = _typed(raw.get("camera", {}), dict, f"{where}.camera")
    cam_keys = {"noise_mm": float, "seat_sd_mm": float, "confidence_pct": float, "confidence_sd_pct": float,
                "frame_period_s": float, "feed_s": float, "seed": int}
    _check_keys(cam_raw, set(cam_keys), f"{where}.camera")
    try:
        camera = CameraConfig(**{k: _typed(v, cam_keys[k], f"{where}.camera.{k}") for k, v in cam_raw.items()})
    except ValueError as exc:
        raise ScenarioError(f"{where}.camera: {exc}") from None
    spec = {"reversed_battery": {}, "low_confidence": {"confidence_pct": float},
            "robot_mishap": {"mishap": str, "orders": int, "at_frac": float}}
    faults = []
    for k, f in enumerate(_typed(raw.get("faults", []), list, f"{where}.faults")):
        w = f"{where}.faults[{k}]"
        f = _typed(f, dict, w)
        kind = _need(f, "type", str, w)
        if kind not in spec:
            raise ScenarioError(f"{w}.type: unknown placement fault {kind!r} (allowed: {sorted(spec)})")
        _check_keys(f, {"type", "module", *spec[kind]}, w)
        module = _need(f, "module", int, w)
        if not 0 <= module < n_modules:
            raise ScenarioError(f"{w}.module: {module} outside 0..{n_modules - 1}")
        kw = {key: _typed(v, spec[kind][key], f"{w}.{key}") for key, v in f.items() if key not in ("type", "module")}
        if kind == "robot_mishap" and kw.get("mishap") not in ROBOT_MISHAPS:
            raise ScenarioError(f"{w}.mishap: {kw.get('mishap')!r} not one of {list(ROBOT_MISHAPS)}")
        try:
            {"reversed_battery": ReversedBattery, "low_confidence": LowConfidence,
             "robot_mishap": RobotMishapFault}[kind](0, **kw)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{w}: {exc}") from None
        faults.append((kind, module, kw))
    return PlacementSpec(cycle, camera, tuple(faults))


def _expect(raw: dict, kind: ScenarioKind, where: str) -> dict[str, Any]:
    if kind is ScenarioKind.PLACEMENT:
        allowed = dict(PLACEMENT_EXPECT)
    else:
        allowed = dict(PLANT_EXPECT, **(PROTOCOL_EXPECT if kind is ScenarioKind.PROTOCOL else {}))
    _check_keys(raw, set(allowed), where)
    if not raw:
        raise ScenarioError(f"{where}: a scenario must state at least one expectation")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        value = _typed(value, allowed[key], f"{where}.{key}")
        if key in EXPECT_FIELDS:
            _check_keys(value, set(EXPECT_FIELDS[key]), f"{where}.{key}")
            value = {f: _need(value, f, t, f"{where}.{key}") for f, t in EXPECT_FIELDS[key].items()}
        out[key] = value
    return out


def load_scenario(path: Path | str) -> Scenario:
    """Parse and validate one scenario file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from exc
    where = str(path)
    raw = _typed(raw, dict, where)
    _check_keys(raw, {"name", "description", "kind", "batch", "plant", "faults", "protocol", "run", "expect",
                      "placement"}, where)
    try:
        kind = ScenarioKind(_need(raw, "kind", str, where))
    except ValueError:
        raise ScenarioError(f"{where}.kind: must be one of {[k.value for k in ScenarioKind]}") from None
    batch = _batch(_need(raw, "batch", dict, where), f"{where}.batch", path.parent)
    plant_raw = _typed(raw.get("plant", {}), dict, f"{where}.plant")
    scalar = {f.name: f.type for f in fields(PlantConfig) if f.name not in ("fixture", "thermal")}
    _check_keys(plant_raw, set(scalar), f"{where}.plant")
    try:
        plant = replace(PlantConfig(), **plant_raw)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}.plant: {exc}") from None
    faults = tuple(_fault(_typed(f, dict, f"{where}.faults[{k}]"), f"{where}.faults[{k}]")
                   for k, f in enumerate(_typed(raw.get("faults", []), list, f"{where}.faults")))
    protocol = tuple(_protocol_event(_typed(e, dict, f"{where}.protocol[{k}]"), f"{where}.protocol[{k}]")
                     for k, e in enumerate(_typed(raw.get("protocol", []), list, f"{where}.protocol")))
    if kind is ScenarioKind.PROTOCOL and not protocol:
        raise ScenarioError(f"{where}.protocol: a protocol scenario needs at least one event")
    if kind is ScenarioKind.PLANT and protocol:
        raise ScenarioError(f"{where}.protocol: only protocol scenarios carry protocol events")
    placement = None
    if kind is ScenarioKind.PLACEMENT:
        placement = _placement(_need(raw, "placement", dict, where), f"{where}.placement", len(batch.rows))
    elif "placement" in raw:
        raise ScenarioError(f"{where}.placement: only placement scenarios carry a placement section")
    run_raw = _typed(raw.get("run", {}), dict, f"{where}.run")
    _check_keys(run_raw, {"dt_s", "max_time_s", "warning_temp_degc"}, f"{where}.run")
    try:
        run = SilConfig(record_every_s=float(run_raw.get("dt_s", 0.1)),
                        **{k: float(v) for k, v in run_raw.items()})
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}.run: {exc}") from None
    return Scenario(where, _need(raw, "name", str, where), str(raw.get("description", "")), kind, batch,
                    plant, faults, protocol, run, _expect(_need(raw, "expect", dict, where), kind, f"{where}.expect"),
                    placement)


def load_all(directory: Path = SCENARIO_DIR) -> list[Scenario]:
    return [load_scenario(p) for p in sorted(directory.glob("*.yaml"))]


def batch_cells(scenario: Scenario) -> BenchCells:
    """The scenario's rows from its cells file, with the overrides applied."""
    spec = scenario.batch
    table = load_cells(spec.cells_path, limit=max(spec.rows) + 1)
    if max(spec.rows) >= len(table):
        raise ScenarioError(f"{scenario.path}.batch: row {max(spec.rows)} beyond {spec.cells_path} ({len(table)} rows)")
    table = table.select(list(spec.rows))
    for module, key, value in spec.overrides:
        table.columns[key][module] = value
    return table


def build_plant(scenario: Scenario) -> Plant:
    return Plant(batch_cells(scenario), scenario.plant, scenario.faults)
