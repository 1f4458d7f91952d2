"""Run plant-side scenarios in SIL under the traditional method and print metrics and checks.

`.venv/bin/python -m tools.hil.run_scenario [NAME ...]` (default: every plant-side scenario);
one JSON object on stdout: per scenario the SIL metrics and each expectation's status. A
protocol-side scenario is refused here: it needs the HIL server. The baseline is expected to
fail several checks: the scenarios state what a correct controller must show.
Tests: tests/tools/hil/test_hil_scenario.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from tools.hil.baseline import BaselineController
from tools.hil.expect import check_expectations
from tools.hil.scenario import SCENARIO_DIR, ScenarioKind, build_plant, load_all, load_scenario
from tools.hil.sil import run_sil


def run_baseline(name: str) -> dict:
    sc = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    if sc.kind is not ScenarioKind.PLANT:
        raise ValueError(f"{sc.path}: a {sc.kind.value} scenario runs on the HIL server, not in SIL")
    plant = build_plant(sc)
    res = run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), sc.run)
    return {"metrics": res.metrics.to_dict(),
            "checks": {c.name: {"status": c.status.value, "detail": c.detail}
                       for c in check_expectations(sc, res)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenario names (files in tools/hil/scenarios)")
    a = ap.parse_args(argv)
    names = a.names or [s.name for s in load_all() if s.kind is ScenarioKind.PLANT]
    try:
        out = {name: run_baseline(name) for name in names}
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
