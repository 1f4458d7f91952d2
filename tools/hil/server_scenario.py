"""Protocol-side scenarios on the HIL bench: the network and the PLC misbehave under the real loop.

`run_protocol_scenario(scenario)` serves the bench's map on 127.0.0.1, starts the rtcore loop in
its own OS process against it, plays the scenario's events on the wire (link drop, PLC restart,
slow answers) and checks its `expect:` section. This process plays the supervisor: it sets the
discharge and, once the link is back, asks the loop to leave its safe state (the loop never leaves
it by itself). Plant time runs `time_scale` times faster than the wall, and so do the events'
times and durations; the expectations' reaction times are wall seconds of the loop.
`run_placement_scenario(scenario, protocol)` runs an S13 scenario (vision and robot faults) on
the served bench with the supervisor's flow engine and checks it from the bench's truth
(`ClampWatch`: no current before the clamp held its setpoint).
Tests: tests/tools/hil/test_server_scenario.py, test_placement_scenarios.py.
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
from tools.hil.plant import Plant
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


# -- S13 placement scenarios -----------------------------------------------------------------------------
@dataclass
class ClampWatch:
    """A bench observer (the truth): per station, whether the clamp reached the PLC's pressure
    setpoint (every zone >= (1 - tolerance) x setpoint) since its battery came; every step with
    current and permit before that is a violation (t_s, station, battery, zone kPa, setpoint kPa)."""

    tolerance_pct: float = 5.0
    clamped: dict = None
    violations: list = None

    def __post_init__(self):
        self.clamped, self.violations = {}, []

    def __call__(self, bench, dt_s: float) -> None:
        ids = bench.world.loaded_id
        setpoint = np.asarray(bench.command.pressure_kpa, float)  # (stations, zones), before relief
        pressure = np.asarray(bench.plant.pressure_kpa, float)
        for s, b in enumerate(ids):
            b = int(b)
            if b < 0:
                self.clamped.pop(s, None)
                continue
            key = (s, b)
            if not self.clamped.get(key):
                self.clamped[key] = bool((pressure[s] >= setpoint[s] * (1 - self.tolerance_pct / 100)).all()
                                         and setpoint[s].min() > 0)
            on = bool(bench.command.discharge_on[s]) and bench.plant.current_a[s] > 0
            if on and not self.clamped.get(key):
                self.violations.append((round(bench.plant.t_s, 2), s, b, pressure[s].round(1).tolist(),
                                        setpoint[s].round(1).tolist()))


def run_placement_scenario(scenario: Scenario, protocol: str = "modbus", max_turns: int | None = None,
                           after_s: float = 5.0, clamp_tolerance_pct: float | None = None,
                           clamp_tau_s: float | None = None) -> tuple[list[ExpectationCheck], dict]:
    """An S13 scenario on the served bench: the supervisor's flow engine (in this process, a
    stand-in core writing permits and its heartbeat over the same protocol) places the batch
    through the bench's camera and robot, one supervisor scan, core write and PLC/plant step of
    1 s per turn, until every battery is discharging on a station or recorded, with the robot
    idle, plus `after_s`. `clamp_tolerance_pct` overrides the line's (the truth keeps 5 %: a test
    that the check can fail). Returns the checks and a summary (records, the truth)."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from edge.strategy.planner import default_strategy
    from edge.supervisor.flow import FlowEngine, FlowSettings
    from edge.supervisor.line import load_line
    from edge.supervisor.models import load_line_models
    from edge.supervisor.stations import StationState
    from tools.hil.scenario import batch_cells

    if scenario.kind is not ScenarioKind.PLACEMENT:
        raise ValueError(f"{scenario.path}: not a placement scenario")
    spec = scenario.placement
    cells = batch_cells(scenario)
    ids = [int(c) for c in np.asarray(cells["cell_id"], float)]
    tag_map = dataclasses.replace(load_tag_map(REPO_ROOT / "plc_tags" / f"hil_{protocol}.yaml"), timeout_s=2.0)
    base = load_line(REPO_ROOT / "lines" / "bench.yaml")
    server = open_server(tag_map)
    plant_cfg = scenario.plant
    if clamp_tau_s is not None:
        plant_cfg = dataclasses.replace(plant_cfg, fixture=dataclasses.replace(plant_cfg.fixture,
                                                                               actuator_tau_s=clamp_tau_s))
    plant = Plant(cells.select([0] * base.stations.count), plant_cfg, empty=True)
    bench = HilBench(plant, server, batteries=cells, robot_cycle_s=spec.robot_cycle_s, camera=spec.camera,
                     placement_faults=spec.bench_faults(ids))
    watch = ClampWatch(base.placement.clamp_tolerance_pct)
    bench.observers.append(watch)
    from edge.supervisor.line import Channel

    # a channel per station: any tiers the batch grades into are placed at once (this is about placement)
    line = dataclasses.replace(base, supervisor_map=server.tag_map, rtcore_map=server.tag_map,
                               channels=tuple(Channel(f"S{s}", (s,)) for s in range(base.stations.count)))
    if clamp_tolerance_pct is not None:
        line = dataclasses.replace(line, placement=dataclasses.replace(line.placement,
                                                                       clamp_tolerance_pct=clamp_tolerance_pct))
    models = load_line_models(line.models.soc_gan_dir, line.models.rl_policy_dir)
    clock = {"t": 0.0}
    n = base.stations.count
    core = open_bus(server.tag_map, Owner.RTCORE)
    engine = None
    with tempfile.TemporaryDirectory(prefix="placement-") as tmp:
        try:
            engine = FlowEngine(line, Path(tmp) / "state", models, settings=FlowSettings(scan_s=1.0, rest_s=10.0),
                                clock=lambda: clock["t"],
                                planner=lambda c, g: {int(t): default_strategy(None) for t in set(g.tier.tolist())})
            _write_arrivals(cells, engine.paths.inbox / "arrivals.csv")
            engine.start()
            turns, settled_at = max_turns or int(scenario.run.max_time_s), None
            for beat in range(1, turns + 1):
                engine.scan()
                core.write({"discharge_permit": (True,) * n, "current_limit_pct": (100.0,) * n,
                            "relief_second_kpa": (0.0,) * (n * base.stations.zones), "rtcore_heartbeat": beat})
                bench.step(1.0)
                clock["t"] += 1.0
                if settled_at is None and _settled(engine, ids, StationState):
                    settled_at = clock["t"]
                if settled_at is not None and clock["t"] >= settled_at + after_s:
                    break
            records = {b.cell_id: b.record for b in engine.store.batteries()}
            stations = {r.battery_id: r.state.value for r in engine.store.stations() if r.battery_id}
            truth = {"placed": [b for _, _, b in bench.world.placed], "reject_lane": list(bench.world.reject_lane),
                     "lost": list(bench.robot.lost), "robot": bench.robot.status_tags(),
                     "order_seq": int(server.get_many(["robot_order_seq"])["robot_order_seq"]),
                     "clamp_violations": watch.violations, "plant_time_s": bench.plant.t_s,
                     "frames_refused": engine.cell.frames_refused}
        finally:
            if engine is not None:
                engine.close()
            core.close()
            server.close()
    summary = {"records": records, "stations": stations, "truth": truth, "settled_s": settled_at}
    return _check_placement(scenario, ids, summary), summary


def _write_arrivals(cells, path) -> None:
    import csv

    cols = ["cell_id"] + [c for c in cells.columns if c.startswith("feat_")]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in range(len(cells)):
            w.writerow([int(cells["cell_id"][i])] + [repr(float(cells[c][i])) for c in cols[1:]])


def _settled(engine, ids, St) -> bool:
    recorded = {b.cell_id for b in engine.store.batteries()}
    discharging = {r.battery_id for r in engine.store.stations() if r.state is St.DISCHARGING}
    return (not engine.cell.handshake.busy and all(str(b) in recorded | discharging for b in ids))


def _check_placement(scenario: Scenario, ids: list[int], summary: dict) -> list[ExpectationCheck]:
    records, stations, truth = summary["records"], summary["stations"], summary["truth"]
    out = []

    def result(name, ok, detail):
        out.append(ExpectationCheck(name, CheckStatus.PASS if ok else CheckStatus.FAIL, detail))

    for key, spec in scenario.expect.items():
        if key == "placed":
            bad = [m for m in spec if not (stations.get(str(ids[m])) == "discharging" and ids[m] in truth["placed"])]
            result(key, not bad, f"batch modules {spec} discharging on a station (supervisor and bench truth); "
                                 f"not: {bad}")
        elif key == "rejected":
            bad = []
            for m, reason in spec.items():
                r = records.get(str(ids[int(m)]))
                if (r is None or r["outcome"] != "rejected" or reason not in r["reason"]
                        or ids[int(m)] in truth["placed"]
                        or ids[int(m)] not in truth["reject_lane"] + truth["lost"]):
                    bad.append((m, r and r["reason"]))
            result(key, not bad, f"rejected with the reason, never on a station, in the reject lane or lost; "
                                 f"not: {bad}")
        elif key == "no_order_hanging":
            robot = truth["robot"]
            idle = (robot["robot_done_seq"] == truth["order_seq"] and robot["robot_holding_id"] == -1
                    and robot["robot_state"] in (0, 3))
            result(key, idle == spec, f"robot done_seq {robot['robot_done_seq']}, order_seq {truth['order_seq']}, "
                                      f"state {robot['robot_state']}, holding {robot['robot_holding_id']}")
        elif key == "clamp_before_current":
            v = truth["clamp_violations"]
            result(key, (not v) == spec, f"{len(v)} steps with current before the clamp: {v[:3]}")
        elif key == "min_refused_frames":
            result(key, truth["frames_refused"] >= spec, f"{truth['frames_refused']} fresh frames refused "
                                                        f"(at least {spec})")
        else:
            out.append(ExpectationCheck(key, CheckStatus.UNCHECKED, "not a placement expectation"))
    every = [b for b in ids if str(b) not in records and stations.get(str(b)) != "discharging"]
    result("every_battery_placed_or_rejected", not every, f"left neither placed nor recorded: {every}")
    return out
