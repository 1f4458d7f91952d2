"""The protocol-side scenario files, played on the wire against the real loop (its own process)."""

from __future__ import annotations

import pytest

from tools.hil.expect import CheckStatus
from tools.hil.scenario import SCENARIO_DIR, load_scenario
from tools.hil.server_scenario import run_protocol_scenario

pytestmark = pytest.mark.hil

PROTOCOL_SCENARIOS = ["link_drop", "server_restart", "slow_responses"]


def cases():
    for name in PROTOCOL_SCENARIOS:
        yield pytest.param(name, "modbus", id=f"{name}-modbus")
        yield pytest.param(name, "logix", id=f"{name}-logix", marks=pytest.mark.slow)


@pytest.mark.parametrize("name,protocol", list(cases()))
def test_protocol_scenario_meets_its_expectations(name, protocol):
    scenario = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    checks = run_protocol_scenario(scenario, protocol=protocol)
    assert {c.name for c in checks} == set(scenario.expect)
    failed = [f"{c.name}: {c.detail}" for c in checks if c.status is CheckStatus.FAIL]
    assert not failed, failed
    assert any(c.status is CheckStatus.PASS for c in checks)


def test_a_plant_scenario_is_refused():
    with pytest.raises(ValueError, match="not a protocol scenario"):
        run_protocol_scenario(load_scenario(SCENARIO_DIR / "hot_cell.yaml"))
