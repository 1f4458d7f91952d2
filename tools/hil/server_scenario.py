"""Protocol-side scenarios on the HIL bench: the network and the PLC misbehave under the real loop.

`run_protocol_scenario(scenario)` serves the bench's map on 127.0.0.1, starts the rtcore loop in
its own OS process against it, plays the scenario's events on the wire (link drop, PLC restart,
slow answers) and checks its `expect:` section. This process plays the supervisor: it sets the
discharge and, once the link is back, asks the loop to leave its safe state (the loop never leaves
it by itself). Plant time runs `time_scale` times faster than the wall, and so do the events'
times and durations; the expectations' reaction times are wall seconds of the loop.
Tests: tests/tools/hil/test_server_scenario.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.rtloop.handle import RtcoreHandle, new_link_name
from edge.tagmap import Access, Owner, load_tag_map
from tools.hil.expect import CheckStatus, ExpectationCheck
from tools.hil.scenario import ProtocolEventType, Scenario, ScenarioKind, build_plant
from tools.hil.server_bench import HilBench, open_server

log = logging.getLogger(__name__)

PERIOD_S = 0.1


@dataclass
class _Sample:
    t_s: float  # wall seconds since start
    tick_count: int
    safe_state: bool
    link_errors: int
    overruns: int
    plc_heartbeat: int  # rtcore_heartbeat as the PLC has it
    permit: bool
    outputs_in_limits: bool
    cell_temp_max_degc: float  # the plant's truth


def run_protocol_scenario(scenario: Scenario, protocol: str = "modbus", time_scale: float = 20.0,
                          settle_s: float = 3.0) -> list[ExpectationCheck]:
    if scenario.kind is not ScenarioKind.PROTOCOL:
        raise ValueError(f"{scenario.path}: not a protocol scenario")
    map_path = REPO_ROOT / "plc_tags" / f"hil_{protocol}.yaml"
    tag_map = load_tag_map(map_path)
    server = open_server(tag_map)
    plant = build_plant(scenario)
    bench = HilBench(plant, server)
    with open_bus(server.tag_map, Owner.SUPERVISOR) as supervisor:
        supervisor.write({"discharge_current_setpoint_a": (5.0,) * 8, "fixture_pressure_setpoint_kpa": (150.0,) * 8,
                          "coolant_base_lpm": (4.0,) * 8})
    events = [(e.at_s / time_scale, (e.at_s + e.duration_s) / time_scale, e) for e in scenario.protocol]
    end_s = max(stop for _, stop, _ in events) + settle_s
    bench.start(dt_s=0.1, time_scale=time_scale)
    outputs = [t for t in tag_map.tags if t.access is Access.WRITE]
    samples: list[_Sample] = []
    resets: list[float] = []
    active = set()
    try:
        with RtcoreHandle.spawn(server.tag_map, link=new_link_name("discharge-edge-scn"),
                                time_scale=time_scale) as rt:
            rt.attach(timeout_s=30.0)
            rt.arm()  # the core starts safe and not armed
            started = time.monotonic()  # the events' clock starts with the armed core
            while rt.alive and (now := time.monotonic() - started) < end_s:
                for k, (begin, stop, event) in enumerate(events):
                    if begin <= now and k not in active and now < stop:
                        active.add(k)
                        _start(server, event)
                    elif now >= stop and k in active:
                        active.discard(k)
                        _stop(server, event)
                status = rt.status()
                if status is not None:
                    values = server.get_many([t.name for t in outputs])
                    in_limits = all(_within(t, values[t.name]) for t in outputs)
                    samples.append(_Sample(now, status.tick_count, status.safe_state, status.link_errors,
                                           status.overruns, values["rtcore_heartbeat"],
                                           bool(np.any(values["discharge_permit"])), in_limits,
                                           float(plant.temp_degc().max())))
                    if (status.safe_state and not active and any(now >= stop for _, stop, _ in events)
                            and _quiet(samples, 0.5) and (not resets or now - resets[-1] > 1.0)):
                        rt.arm()  # the supervisor's policy: the link is back and quiet
                        resets.append(now)
                time.sleep(0.02)  # the sampling period
            rt.stop(timeout_s=15.0)  # SIGTERM: safe values; refused if the core ended without its summary
    finally:
        bench.stop()
        server.close()
    return _check(scenario, events, samples)


def _start(server, event) -> None:
    log.warning("scenario: %s starts", event.type.value)
    if event.type is ProtocolEventType.LINK_DROP:
        server.cut()
    elif event.type is ProtocolEventType.SERVER_RESTART:
        server.stop_plc()
    else:
        server.delay_s = event.delay_ms / 1e3


def _stop(server, event) -> None:
    log.warning("scenario: %s ends", event.type.value)
    if event.type is ProtocolEventType.LINK_DROP:
        server.restore()
    elif event.type is ProtocolEventType.SERVER_RESTART:
        server.start_plc()
    else:
        server.delay_s = 0.0


def _within(tag, value) -> bool:
    if tag.limits is None:
        return True
    values = value if isinstance(value, tuple) else (value,)
    return all(tag.limits.min <= v <= tag.limits.max for v in values)


def _quiet(samples: list[_Sample], for_s: float) -> bool:
    """No new link error for `for_s` wall seconds."""
    last = samples[-1]
    earlier = [s for s in samples if s.t_s <= last.t_s - for_s]
    return bool(earlier) and earlier[-1].link_errors == last.link_errors


def _check(scenario: Scenario, events, samples: list[_Sample]) -> list[ExpectationCheck]:
    t = np.array([s.t_s for s in samples])
    safe = np.array([s.safe_state for s in samples])
    ticks = np.array([s.tick_count for s in samples])
    beat = np.array([s.plc_heartbeat for s in samples])
    permit = np.array([s.permit for s in samples])
    begin, stop, _ = events[0]
    out = []

    def result(name, ok, detail):
        out.append(ExpectationCheck(name, CheckStatus.PASS if ok else CheckStatus.FAIL, detail))

    def first(mask, after):
        idx = np.flatnonzero(mask & (t >= after))
        return float(t[idx[0]] - after) if idx.size else None

    for key, spec in scenario.expect.items():
        if key == "safe_state_within_s_of_drop":
            delay = first(safe, begin)
            result(key, delay is not None and delay <= spec, f"safe state {delay} s after the event (limit {spec} s)")
        elif key == "heartbeat_timeout_s":
            gaps = np.diff(t[np.flatnonzero(np.diff(ticks) > 0) + 1]) if ticks.size > 2 else np.array([np.inf])
            worst = float(gaps.max()) if gaps.size else float("inf")
            result(key, worst <= spec, f"the loop's counter never stood still longer than {worst:.2f} s (limit {spec} s)")
        elif key == "resume_within_s":
            delay = first(~safe & permit, stop)
            result(key, delay is not None and delay <= spec, f"discharging again {delay} s after the event ended")
        elif key == "reconnect_within_s":
            moving = np.r_[False, np.diff(beat) > 0]
            delay = first(moving, stop)
            result(key, delay is not None and delay <= spec, f"heartbeat reaching the PLC again {delay} s after")
        elif key == "no_write_outside_limits":
            inside = all(s.outputs_in_limits for s in samples)
            result(key, inside == spec, f"every output seen on the PLC within its map limits: {inside}")
        elif key == "deadline_misses_reported":
            during = [s for s in samples if begin <= s.t_s <= stop]
            reported = bool(during) and (during[-1].link_errors > during[0].link_errors
                                         or during[-1].overruns > during[0].overruns)
            result(key, reported == spec, f"misses reported as link errors or overruns: {reported}")
        elif key == "max_consecutive_missed_ticks":
            gaps = np.diff(t[np.flatnonzero(np.diff(ticks) > 0) + 1]) if ticks.size > 2 else np.array([np.inf])
            missed = int(round(float(gaps.max()) / PERIOD_S)) - 1 if gaps.size else 10**6
            result(key, missed <= spec, f"at most {missed} ticks in a row without progress (limit {spec})")
        elif key == "max_peak_temp_degc":
            peak = max(s.cell_temp_max_degc for s in samples)
            result(key, peak <= spec, f"peak cell temperature {peak:.1f} degC (limit {spec})")
        else:
            out.append(ExpectationCheck(key, CheckStatus.UNCHECKED, "plant-side: checked by the SIL run"))
    return out
