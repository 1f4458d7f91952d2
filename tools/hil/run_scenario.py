"""Run plant-side scenarios in SIL under the traditional method and under ours; print metrics and checks.

`.venv/bin/python -m tools.hil.run_scenario [NAME ...] [--controller traditional|ours|both]
[--protocol modbus|logix|both]` (default: every plant-side scenario, both controllers); one JSON
object on stdout: per scenario and controller the SIL metrics and each expectation's status. A
placement scenario (S13, `placement_*.yaml`; `--placement` runs them all) runs on the served
bench with the supervisor's flow engine, per protocol (tools/hil/server_scenario.py
`run_placement_scenario`): its checks and what the bench saw. Both controllers get the same
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


def run_placement(name: str, protocol: str) -> dict:
    from tools.hil.server_scenario import run_placement_scenario

    checks, summary = run_placement_scenario(load_scenario(SCENARIO_DIR / f"{name}.yaml"), protocol)
    return {"checks": {c.name: {"status": c.status.value, "detail": c.detail} for c in checks},
            "settled_s": summary["settled_s"], "truth": {k: v for k, v in summary["truth"].items()},
            "rejected": {c: r["reason"] for c, r in summary["records"].items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenario names (files in tools/hil/scenarios)")
    ap.add_argument("--controller", choices=(*CONTROLLERS, "both"), default="both")
    ap.add_argument("--protocol", choices=("modbus", "logix", "both"), default="both",
                    help="for placement scenarios: the bench's protocol")
    ap.add_argument("--placement", action="store_true", help="run every placement scenario")
    a = ap.parse_args(argv)
    kinds = {s.name: s.kind for s in load_all()}
    names = a.names or [n for n, k in kinds.items() if k is (ScenarioKind.PLACEMENT if a.placement
                                                             else ScenarioKind.PLANT)]
    sides = CONTROLLERS if a.controller == "both" else (a.controller,)
    protocols = ("modbus", "logix") if a.protocol == "both" else (a.protocol,)
    try:
        out = {name: ({p: run_placement(name, p) for p in protocols} if kinds.get(name) is ScenarioKind.PLACEMENT
                      else {side: run_scenario(name, side) for side in sides}) for name in names}
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
