"""Checks of a scenario's `expect:` section against a SIL result.

Owns `check_expectations` and `ExpectationCheck` (tests: tests/tools/hil/test_hil_scenario.py).
Timing checks read the SIL trace, which scenario runs record every tick; a command recorded at
a tick is the controller's answer to that tick's observation:

* relief_within_s: from the first tick a finite marker of `module` reads >= trigger, some zone of
  that module must show relief > 0 within `within_s` (vacuously met if the trigger is never seen);
* coolant_within_s: likewise the module's coolant must be >= `min_increase_lpm` above its flow
  at the start of the run (a controller that answered before the trigger still passes);
* safe_state_within_s: within [after_s, after_s + within_s] the module's command must be the
  safe state (discharge off, relief >= 0.99 in every zone, coolant >= 99 % of the maximum flow);
* max_peak_temp_degc, max_time_above_warning_s, max_residual_pct, all_finished: on the metrics.
Protocol-side keys are reported UNCHECKED: the HIL server over the real protocols checks them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.hil.scenario import PROTOCOL_EXPECT, Scenario
from edge.batterymodel.sil import SilResult, Trace


class CheckStatus(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class ExpectationCheck:
    name: str
    status: CheckStatus
    detail: str


def _first_trigger(trace: Trace, module: int, trigger: float) -> int | None:
    temps = np.where(np.isfinite(trace.marker_temp_degc[:, module]), trace.marker_temp_degc[:, module], -np.inf)
    hits = np.flatnonzero(temps.max(axis=1) >= trigger)
    return int(hits[0]) if hits.size else None


def _window(trace: Trace, start: int, within_s: float) -> slice:
    end = np.searchsorted(trace.t_s, trace.t_s[start] + within_s + 1e-9, side="right")
    return slice(start, int(end))


def _reaction(trace: Trace, spec: dict[str, Any], signal: str) -> ExpectationCheck:
    name = f"{signal}_within_s"
    m = spec["module"]
    if not 0 <= m < trace.relief.shape[1]:
        return ExpectationCheck(name, CheckStatus.FAIL, f"module {m} not in the batch")
    k = _first_trigger(trace, m, spec["trigger_temp_degc"])
    if k is None:
        return ExpectationCheck(name, CheckStatus.PASS,
                                f"module {m} never read {spec['trigger_temp_degc']} degC: nothing to answer")
    w = _window(trace, k, spec["within_s"])
    if signal == "relief":
        ok = np.flatnonzero((trace.relief[w, m] > 0).any(axis=1))
    else:
        base = trace.coolant_lpm[0, m]
        ok = np.flatnonzero(trace.coolant_lpm[w, m] >= base + spec["min_increase_lpm"])
    t0 = trace.t_s[k]
    if ok.size:
        return ExpectationCheck(name, CheckStatus.PASS,
                                f"module {m}: trigger at {t0:.1f} s, answered after {trace.t_s[w][ok[0]] - t0:.2f} s")
    return ExpectationCheck(name, CheckStatus.FAIL,
                            f"module {m}: trigger at {t0:.1f} s, no {signal} answer within {spec['within_s']} s")


def _safe_state(trace: Trace, spec: dict[str, Any], flow_max_lpm: float) -> ExpectationCheck:
    m = spec["module"]
    start = int(np.searchsorted(trace.t_s, spec["after_s"] - 1e-9))
    if start >= trace.t_s.size:
        return ExpectationCheck("safe_state_within_s", CheckStatus.FAIL, f"run ended before {spec['after_s']} s")
    w = _window(trace, start, spec["within_s"])
    safe = (~trace.discharge_on[w, m] & (trace.relief[w, m] >= 0.99).all(axis=1)
            & (trace.coolant_lpm[w, m] >= 0.99 * flow_max_lpm))
    hit = np.flatnonzero(safe)
    if hit.size:
        return ExpectationCheck("safe_state_within_s", CheckStatus.PASS,
                                f"module {m} safe {trace.t_s[w][hit[0]] - spec['after_s']:.2f} s after {spec['after_s']} s")
    return ExpectationCheck("safe_state_within_s", CheckStatus.FAIL,
                            f"module {m} not in the safe state within {spec['within_s']} s of {spec['after_s']} s")


def _limit(name: str, value: float, limit: float) -> ExpectationCheck:
    status = CheckStatus.PASS if value <= limit else CheckStatus.FAIL
    return ExpectationCheck(name, status, f"{value:.2f} (limit {limit})")


def check_expectations(scenario: Scenario, result: SilResult) -> list[ExpectationCheck]:
    """One check per expectation of the scenario, in file order."""
    out = []
    met, tr = result.metrics, result.trace
    flow_max = scenario.plant.fixture.flow_max_lpm
    for key, spec in scenario.expect.items():
        if key in PROTOCOL_EXPECT:
            out.append(ExpectationCheck(key, CheckStatus.UNCHECKED, "protocol-side: checked by the HIL server"))
        elif key == "max_peak_temp_degc":
            out.append(_limit(key, met.peak_temp_degc, spec))
        elif key == "max_time_above_warning_s":
            out.append(_limit(key, met.time_above_warning_s, spec))
        elif key == "max_residual_pct":
            out.append(_limit(key, met.residual_pct, spec))
        elif key == "all_finished":
            done = met.modules_finished == met.modules
            out.append(ExpectationCheck(key, CheckStatus.PASS if done == spec else CheckStatus.FAIL,
                                        f"{met.modules_finished}/{met.modules} modules finished"))
        elif key == "relief_within_s":
            out.append(_reaction(tr, spec, "relief"))
        elif key == "coolant_within_s":
            out.append(_reaction(tr, spec, "coolant"))
        elif key == "safe_state_within_s":
            out.append(_safe_state(tr, spec, flow_max))
        else:  # the loader refuses unknown keys; this guards the two lists drifting apart
            raise KeyError(f"no check for expectation {key!r}")
    return out
