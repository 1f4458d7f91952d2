"""The real-time loop: tag bus in, rtcore tick, tag bus out, every period on an absolute deadline.

`RtLoop.step()` is one tick's work, with no clock (tests drive it directly); `RtLoop.run()`
paces it with rtcore's absolute-deadline clock. Every failure ends in the safe state: a failed
read or write is LINK_LOST, a frozen PLC heartbeat too, a streak of overruns is
OVERRUN_STREAK, an exception in the tick is EXCEPTION; a BAD sensor tag becomes NaN inputs,
which the kernel debounces into a sensor fault. In the safe state every output the map gives
this owner is written at its safe value, while the heartbeat keeps counting and the safe-state
flag says why; only an explicit reset (from the supervisor link) leaves it.
Tests: tests/edge/rtloop/.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

import rtcore
from edge.bus import BusError, Quality, TagBus
from edge.rtloop.link import RtSide, RtStatus
from edge.rtloop.stats import TickStats
from edge.tagmap import Tag
from rtcore.spec import Flag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopTags:
    """Which tags of the map the loop reads and writes (the bench's names by default)."""

    temps: str = "marker_temp_degc"
    pressures: str = "zone_pressure_kpa"
    plc_heartbeat: str | None = "plc_heartbeat"
    relief_first: str = "relief_first_kpa"
    relief_second: str = "relief_second_kpa"
    coolant: str = "coolant_flow_lpm"
    coolant_base: str | None = "coolant_base_lpm"  # the strategy's flow (supervisor); relief's comes on top
    heartbeat: str = "rtcore_heartbeat"
    permit: str | None = "discharge_permit"
    safe_state: str | None = "safe_state"


@dataclass(frozen=True)
class LoopSettings:
    period_s: float = 0.1  # wall-clock period of the tick
    time_scale: float = 1.0  # plant seconds per wall second (a bench in scaled time); 1 on a real line
    overrun_streak_limit: int = 3  # consecutive overruns that latch OVERRUN_STREAK
    plc_heartbeat_stale_ticks: int = 20  # ticks without a change of the PLC's counter: LINK_LOST (0: off)
    realtime_priority: int = 50  # SCHED_FIFO priority asked for (1..99); 0: do not ask (tests, tools)
    status_every_ticks: int = 1  # publish status on the link every N ticks


class RtLoop:
    def __init__(self, bus: TagBus, kernel, tags: LoopTags = LoopTags(), settings: LoopSettings = LoopSettings(),
                 link: RtSide | None = None):
        self.bus = bus
        self.kernel = kernel
        self.tags = tags
        self.settings = settings
        self.link = link
        self.stats = TickStats()
        self.tick_count = 0
        self.link_errors = 0
        self.resets_done = 0
        self.setpoints_applied = 0
        self.setpoints_rejected = 0
        self._overrun_streak = 0
        self._plc_heartbeat = None
        self._plc_heartbeat_age = 0
        self._inputs = [n for n in (tags.temps, tags.pressures, tags.plc_heartbeat, tags.coolant_base) if n]
        self._coolant_base = np.zeros(self._tag(tags.coolant).count)
        self._n_markers = self._tag(tags.temps).count
        self._n_zones = self._tag(tags.pressures).count
        self._outputs = {t.name: t for t in bus.tag_map.outputs(bus.owner)}
        self.last_written: dict = {}

    def _tag(self, name: str) -> Tag:
        tag = self.bus.tag_map.tag(name)
        if tag is None:
            raise ValueError(f"{self.bus.tag_map.source}: the real-time loop needs tag {name!r}")
        return tag

    # -- one tick ------------------------------------------------------------------------------
    def step(self) -> int:
        """Read, tick, write; returns the kernel's flags. Never raises for plant or network faults."""
        self._apply_link()
        try:
            temps, pressures = self._read_inputs()
            self.kernel.tick(temps, pressures)
        except BusError as exc:
            self._fault(Flag.LINK_LOST, f"read failed: {exc}")
        except Exception as exc:  # the loop must not die: this is what the EXCEPTION fault is for
            log.exception("rtcore tick raised")
            self._fault(Flag.EXCEPTION, f"tick raised {type(exc).__name__}: {exc}")
        self._write_outputs()
        self.tick_count += 1
        return int(self.kernel.flags)

    def _read_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        values = {v.name: v for v in self.bus.read(self._inputs)}
        temps = _as_array(values[self.tags.temps], self._n_markers)
        pressures = _as_array(values[self.tags.pressures], self._n_zones)
        if self.tags.coolant_base:
            base = _as_array(values[self.tags.coolant_base], self._coolant_base.size)
            self._coolant_base = np.where(np.isfinite(base), base, self._coolant_base)
        if self.tags.plc_heartbeat and self.settings.plc_heartbeat_stale_ticks:
            beat = values[self.tags.plc_heartbeat].value
            self._plc_heartbeat_age = self._plc_heartbeat_age + 1 if beat == self._plc_heartbeat else 0
            self._plc_heartbeat = beat
            if self._plc_heartbeat_age >= self.settings.plc_heartbeat_stale_ticks:
                raise BusError(f"PLC heartbeat {beat} unchanged for {self._plc_heartbeat_age} ticks")
        return temps, pressures

    def _write_outputs(self) -> None:
        if self.kernel.safe_state:
            values = {name: tag.safe_value for name, tag in self._outputs.items()}
        else:
            values = self._kernel_outputs()
        values[self.tags.heartbeat] = self.tick_count % 2_147_483_647
        if self.tags.safe_state:
            values[self.tags.safe_state] = bool(self.kernel.safe_state)
        self.last_written = values
        try:
            refused = [r for r in self.bus.write(values) if r.quality is not Quality.GOOD]
        except BusError as exc:
            self._fault(Flag.LINK_LOST, f"write failed: {exc}")
            return
        if refused:  # outputs are clamped to the map's limits, so this is a map or PLC problem
            self._fault(Flag.LINK_LOST, f"outputs not accepted: {[(r.name, r.quality.value) for r in refused]}")

    def _kernel_outputs(self) -> dict:
        kernel, tags = self.kernel, self.tags
        relief1 = np.asarray(kernel.relief1_kpa)
        relief2 = np.asarray(kernel.relief2_kpa)
        coolant = self._tag(tags.coolant)
        flow_lpm = float(kernel.coolant_flow_lpm)
        base = self._coolant_base
        if coolant.count > 1:  # one valve a zone: share the inflow by each zone's area of action
            area = np.asarray(kernel.coolant_area_mm2, dtype=float)
            share = area / area.sum() if area.sum() > 0 else np.full(coolant.count, 1.0 / coolant.count)
            flow = tuple(_clamp(coolant, b + flow_lpm * s) for b, s in zip(base, share))
        else:
            flow = _clamp(coolant, float(base[0]) + flow_lpm)
        values = {
            tags.relief_first: tuple(_clamp(self._tag(tags.relief_first), v) for v in relief1),
            tags.relief_second: tuple(_clamp(self._tag(tags.relief_second), v) for v in relief2),
            tags.coolant: flow,
        }
        if tags.permit:
            values[tags.permit] = True
        return values

    def _fault(self, flag: Flag, why: str) -> None:
        if flag is Flag.LINK_LOST:
            self.link_errors += 1
        if not self.kernel.safe_state:
            log.error("rtcore: safe state: %s", why)
        self.kernel.raise_fault(int(flag))

    def note_overrun(self, overran: bool) -> None:
        self._overrun_streak = self._overrun_streak + 1 if overran else 0
        if self._overrun_streak >= self.settings.overrun_streak_limit:
            self._fault(Flag.OVERRUN_STREAK, f"{self._overrun_streak} overruns in a row")

    # -- the supervisor link ---------------------------------------------------------------------
    def _apply_link(self) -> None:
        if self.link is None:
            return
        setpoints, seq, reset = self.link.poll_setpoints()
        if setpoints is not None:
            try:
                self.kernel.set_setpoints(setpoints)
                self.setpoints_applied = seq
            except ValueError as exc:
                self.setpoints_rejected += 1
                log.error("rtcore: setpoints refused, the last valid ones stay: %s", exc)
        if reset:
            log.warning("rtcore: reset requested by the supervisor; leaving the safe state")
            self.kernel.reset()
            self._overrun_streak = 0
            self._plc_heartbeat_age = 0
            self.resets_done += 1

    def status(self, alive: bool = True) -> RtStatus:
        summary = self.stats.summary()
        return RtStatus(
            tick_count=self.tick_count, overruns=summary["overruns"],
            lateness_p50_ns=summary["lateness_p50_ns"], lateness_p99_ns=summary["lateness_p99_ns"],
            lateness_max_ns=summary["lateness_max_ns"], work_mean_ns=summary["work_mean_ns"],
            work_max_ns=summary["work_max_ns"], flags=int(self.kernel.flags),
            safe_state=bool(self.kernel.safe_state), safe_cause=int(self.kernel.safe_cause),
            fault_marker=int(self.kernel.fault_marker), link_errors=self.link_errors,
            setpoints_applied=self.setpoints_applied, setpoints_rejected=self.setpoints_rejected,
            resets_done=self.resets_done, alive=alive,
        )

    # -- paced by the clock ----------------------------------------------------------------------
    def run(self, duration_s: float | None = None, stop=None) -> dict:
        """Tick every period on absolute deadlines until `duration_s` passes or `stop` is set."""
        clock = rtcore
        period_ns = int(round(self.settings.period_s * 1e9))
        start_ns = clock.monotonic_ns()
        end_ns = start_ns + int(duration_s * 1e9) if duration_s is not None else None
        deadline_ns = start_ns + period_ns
        while (end_ns is None or deadline_ns <= end_ns) and not (stop is not None and stop.is_set()):
            clock.sleep_until_ns(deadline_ns)
            woke_ns = clock.monotonic_ns()
            self.step()
            done_ns = clock.monotonic_ns()
            next_deadline_ns = deadline_ns + period_ns
            overran = done_ns > next_deadline_ns
            if overran:  # skip the periods already missed rather than run a burst of late ticks
                missed = (done_ns - deadline_ns) // period_ns
                next_deadline_ns = deadline_ns + (missed + 1) * period_ns
            self.stats.record(woke_ns - deadline_ns, done_ns - woke_ns, overran)
            self.note_overrun(overran)
            if self.link is not None and self.tick_count % self.settings.status_every_ticks == 0:
                self.link.write_status(self.status())
            deadline_ns = next_deadline_ns
        if self.link is not None:
            self.link.write_status(self.status(alive=False))
        return self.stats.summary()


def _as_array(value, count: int) -> np.ndarray:
    """A tag read as float64 inputs; a BAD read is all NaN (the kernel debounces it into a fault)."""
    if not value.quality.usable or value.value is None:
        return np.full(count, math.nan)
    return np.asarray(value.value if isinstance(value.value, tuple) else (value.value,), dtype=np.float64)


def _clamp(tag: Tag, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        return float(tag.safe_value if not tag.is_array else tag.safe_value[0])
    return min(max(value, tag.limits.min), tag.limits.max) if tag.limits else value
