"""Run plant-side scenarios in SIL under the traditional method and under ours; print metrics and checks.

`.venv/bin/python -m tools.hil.run_scenario [NAME ...] [--controller traditional|ours|both]`
(default: every plant-side scenario, both controllers); one JSON object on stdout: per scenario
and controller the SIL metrics and each expectation's status. Both controllers get the same
fixed strategy, coolant budget and current limits (tools/bench_discharge.LineBudget); "ours" is
the real-time loop (edge/rtloop: S14-S15, the per-station envelope and isolation) on an
in-memory PLC, with the tier's station limits (warning 45 °C, maximum safety 55 °C) and the
calibrated θ, check interval and gains of the fixed strategy (tools/bench_discharge.fixed_strategy,
docs/calibration.md). A protocol-side scenario is refused here: it needs the HIL server. The
traditional method is expected to fail several checks: the scenarios state what a correct
controller must show. Tests: tests/tools/hil/test_hil_scenario.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from tools.bench_discharge import LineBudget, LoopController, fixed_strategy
from edge.strategy.baseline import BaselineController
from tools.hil.expect import check_expectations
from tools.hil.scenario import SCENARIO_DIR, ScenarioKind, build_plant, load_all, load_scenario
from edge.batterymodel.sil import run_sil

CONTROLLERS = ("traditional", "ours")


def _controller(kind: str, plant, dt_s: float):
    budget = LineBudget()
    if kind == "traditional":
        return BaselineController(plant.n_modules, plant.cfg.n_zones, budget.baseline())
    strategy = fixed_strategy(budget.current_a)  # calibrated θ, K·Δt and gains at the budget's C-rate
    setpoints = strategy.setpoints(station_limits=(strategy.station_limits(),) * plant.n_modules)
    return LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s, setpoints=setpoints,
                          current_a=budget.current_a, pressure_kpa=budget.clamp_kpa,
                          coolant_lpm=budget.coolant_base_lpm, cells_per_module=plant.n_cells)


def run_scenario(name: str, controller: str = "traditional") -> dict:
    if controller not in CONTROLLERS:
        raise ValueError(f"controller must be one of {CONTROLLERS}, got {controller!r}")
    sc = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    if sc.kind is not ScenarioKind.PLANT:
        raise ValueError(f"{sc.path}: a {sc.kind.value} scenario runs on the HIL server, not in SIL")
    plant = build_plant(sc)
    res = run_sil(plant, _controller(controller, plant, sc.run.dt_s), sc.run)
    metrics = res.metrics.to_dict()
    return {"metrics": metrics,
            "checks": {c.name: {"status": c.status.value, "detail": c.detail}
                       for c in check_expectations(sc, res)}}


def run_baseline(name: str) -> dict:
    """The traditional method alone (kept for callers of the first version)."""
    return run_scenario(name, "traditional")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenario names (files in tools/hil/scenarios)")
    ap.add_argument("--controller", choices=(*CONTROLLERS, "both"), default="both")
    a = ap.parse_args(argv)
    names = a.names or [s.name for s in load_all() if s.kind is ScenarioKind.PLANT]
    sides = CONTROLLERS if a.controller == "both" else (a.controller,)
    try:
        out = {name: {side: run_scenario(name, side) for side in sides} for name in names}
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
