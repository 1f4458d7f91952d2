"""The real-time loop: tag bus in, rtcore tick, tag bus out, every period on an absolute deadline.

`RtLoop.step()` is one tick's work, with no clock (tests drive it directly); `RtLoop.run()`
paces it with rtcore's absolute-deadline clock.

Tick work. The read and the write are one request plan each (`TagBus.plan_read`/`plan_write`),
built at construction; every tick reads into preallocated input arrays, computes each output
with NumPy into the output's own buffer (clamp, non-finite and isolated elements to the safe
value) and hands the buffers to the write plan in place; the status published on the link
every tick carries the kernel's and the loop's arrays (the link copies them) and the timing
statistics kept incrementally (stats.py). What a tick still allocates is the bus's own: its
results and the raw values it sends.

Stations. The station is the unit of isolation: S comes from the count of the per-station
permit tag (or the current-limit tag); each station's permit, current limit, safe-state flag,
coolant and the relief of its zones are written from the kernel's per-station outputs. A station
the kernel isolated gets the safe values of its elements (permit off, limit 0, full relief and
coolant) while the others carry on. A map with a scalar permit (an older map) has one permit for
all stations: it is on only while no station is isolated.

Lifecycle. The loop starts not armed: every output at its safe value until `arm()` (a reset
request on the supervisor link), which also clears every latch. Latches are restored from a
`LatchStore` at construction and saved on every change; each latch and clear is an event.

Faults. Line-wide causes take every output to its safe value until the next arm: a frozen PLC
heartbeat or an output the PLC refuses (LINK_LOST at once), a streak of overruns, an exception in
the tick, and `link_blind_s` of consecutive bus misses. A single miss (a read or write that
raised BusError, typically a late answer) does not latch: the kernel skips that tick (no NaN is
fed, which would debounce into sensor faults), the current outputs are written again with a
fresh heartbeat, and the miss is counted; the miss that makes ceil(link_blind_s / period) in a
row latches LINK_LOST (0.25 s at 100 ms: the third; the bench PLC's watchdog is 0.5 s). Within
the blind time every tick tries to reconnect, whatever the bus's backoff. Each bus call's timeout
is `request_share` (40 %) of the period, never longer than the map's `timeout_s`. A BAD sensor tag becomes NaN inputs, which the
kernel debounces into a station fault. `write_safe_values()` is the stop: every output safe, one
more heartbeat. Tests: tests/edge/rtloop/test_loop.py, test_loop_station.py.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, fields, replace

import numpy as np

import rtcore
from edge.bus import BusError, Quality, TagBus
from edge.rtloop.link import RtSide, RtStatus
from edge.rtloop.stats import TickStats
from edge.tagmap import Tag, TagMap
from edge.tagmap.roles import BY_NAME, per_station_count, role_tag
from rtcore.spec import EXTERNAL_FAULTS, Flag

log = logging.getLogger(__name__)

HEARTBEAT_WRAP = 2_147_483_647  # a DINT counter


@dataclass(frozen=True)
class LoopTags:
    """Which tags of the map the loop reads and writes, one field per role (edge/tagmap/roles.py).

    The defaults are the roles' default tag names; `for_map(tag_map)` resolves every field still
    at its role's default to the tag playing that role in the map (its `roles:` section, else
    the tag of the role's name) or None when none does, and keeps a field set to another name.
    temps, pressures and heartbeat are required (ValueError naming the role and the file); every
    other tag is used when the map has it and skipped when it does not."""

    temps: str = "marker_temp_degc"  # (N,) read
    pressures: str = "zone_pressure_kpa"  # (Z,) read
    heartbeat: str = "rtcore_heartbeat"  # written every tick, also in the safe state
    plc_heartbeat: str | None = "plc_heartbeat"  # read; frozen = the PLC program stopped
    coolant_base: str | None = "coolant_base_lpm"  # (S,) read: the strategy's flow; relief's comes on top
    relief_first: str | None = "relief_first_kpa"  # (Z,)
    relief_second: str | None = "relief_second_kpa"  # (Z,)
    coolant: str | None = "coolant_flow_lpm"  # (S,), or one valve for the line
    permit: str | None = "discharge_permit"  # (S,), or one BOOL for every station
    current_limit: str | None = "current_limit_pct"  # (S,): current_limit_frac x the tag's limits.max
    station_safe_state: str | None = "station_safe_state"  # (S,) the station is isolated
    safe_state: str | None = "safe_state"  # the line's latch
    loaded_module: str | None = "station_loaded_id"  # (S,) read: a change is a new module (or none)
    # on the station, whose thermal history then restarts (Kernel.restart_station_history)

    @classmethod
    def for_map(cls, tag_map: TagMap, tags: "LoopTags | None" = None) -> "LoopTags":
        """`tags` (default: the roles' defaults) with each field at its role's default resolved
        through the map's roles; ValueError naming the role and the file for a required role no
        tag plays."""
        tags = tags if tags is not None else cls()
        resolved = {}
        for f in fields(cls):
            role_name, value = LOOP_ROLES[f.name], getattr(tags, f.name)
            if value != role_name:  # set to another tag by the caller: kept
                continue
            tag = role_tag(tag_map, role_name)
            if tag is None and f.name in REQUIRED_FIELDS:
                what = BY_NAME[role_name].what
                raise ValueError(f"{tag_map.source}: no tag plays role {role_name!r} ({what}); the real-time core "
                                 f"needs it: name a tag {role_name!r} or list the role under roles: "
                                 "(plc_tags/README.md)")
            resolved[f.name] = tag.name if tag is not None else None
        return replace(tags, **resolved) if resolved else tags


LOOP_ROLES = {"temps": "marker_temp_degc", "pressures": "zone_pressure_kpa", "heartbeat": "rtcore_heartbeat",
              "plc_heartbeat": "plc_heartbeat", "coolant_base": "coolant_base_lpm", "relief_first": "relief_first_kpa",
              "relief_second": "relief_second_kpa", "coolant": "coolant_flow_lpm", "permit": "discharge_permit",
              "current_limit": "current_limit_pct", "station_safe_state": "station_safe_state",
              "safe_state": "safe_state", "loaded_module": "station_loaded_id"}
"""LoopTags field -> the role it plays (edge/tagmap/roles.py)."""
REQUIRED_FIELDS = ("temps", "pressures", "heartbeat")


MODULE_SETTLE_MIN_TICKS = 2
"""The change tick and the next: a loaded id and temperatures read one PLC update apart."""


@dataclass(frozen=True)
class LoopSettings:
    period_s: float = 0.1  # wall-clock period of the tick
    time_scale: float = 1.0  # plant seconds per wall second (a bench in scaled time); 1 on a real line
    overrun_streak_limit: int = 3  # consecutive overruns that latch OVERRUN_STREAK
    plc_heartbeat_stale_ticks: int = 20  # ticks without a change of the PLC's counter: LINK_LOST (0: off)
    realtime_priority: int = 50  # SCHED_FIFO priority asked for (1..99); 0: do not ask (tests, tools)
    status_every_ticks: int = 1  # publish status on the link every N ticks
    link_blind_s: float = 0.25  # consecutive bus misses tolerated this long before LINK_LOST (< the PLC's watchdog)
    request_share: float = 0.4  # each bus call (read, write) may take this share of the period ...
    # ... and never more than the map's timeout_s: read + write fit in 80 % of the period
    module_settle_s: float = 1.0  # plant seconds after a module change during which the station's
    # thermal history restarts every tick (at least MODULE_SETTLE_MIN_TICKS ticks): see `settle_ticks`

    def __post_init__(self) -> None:
        checks = (("period_s", self.period_s > 0), ("time_scale", self.time_scale > 0),
                  ("link_blind_s", 0 <= self.link_blind_s < 60), ("request_share", 0 < self.request_share <= 0.5),
                  ("overrun_streak_limit", self.overrun_streak_limit >= 1),
                  ("module_settle_s", 0 <= self.module_settle_s <= 60),
                  ("plc_heartbeat_stale_ticks", self.plc_heartbeat_stale_ticks >= 0),
                  ("status_every_ticks", self.status_every_ticks >= 1))
        for name, ok in checks:
            if not (ok and math.isfinite(float(getattr(self, name)))):
                raise ValueError(f"LoopSettings.{name}: {getattr(self, name)!r} is out of range "
                                 "(period_s, time_scale > 0; link_blind_s in [0, 60); request_share in (0, 0.5]; "
                                 "module_settle_s in [0, 60]; "
                                 "overrun_streak_limit, status_every_ticks >= 1)")

    def blind_ticks(self) -> int:
        """Consecutive missed ticks that latch LINK_LOST: they reach link_blind_s (at least 1)."""
        return max(1, math.ceil(self.link_blind_s / self.period_s - 1e-9))

    def request_timeout_s(self, tag_map: TagMap) -> float:
        return min(tag_map.timeout_s, self.request_share * self.period_s)

    def settle_ticks(self) -> int:
        """Ticks, from the one that sees a station's new module, at which its thermal history
        restarts: module_settle_s of plant time, and never fewer than MODULE_SETTLE_MIN_TICKS.

        The loaded id and the temperatures are separate tags, in separate requests, and the PLC
        may update them between the two: a tick can see the new id with the old module's
        temperatures (or the new module's markers may still be reaching its temperature). Primed
        with those, the history saw the real temperatures a tick later as a rise of tens of
        degrees: relief opened on a cold station and, with the module resting above the
        strategy's relief_release_degc (an ambient of 35 degC against 33), held forever, so the
        clamp never reached its pressure (CI, stop 24: a demo that waited until killed). Restarting
        on the following ticks too primes it with settled readings. The over-temperature limit
        does not depend on the history: it protects the station throughout."""
        return max(MODULE_SETTLE_MIN_TICKS, math.ceil(self.module_settle_s / (self.period_s * self.time_scale) - 1e-9))


def station_count(tag_map: TagMap, tags: LoopTags | None = None) -> int:
    """S: the count of the per-station tags (current limit, station safe state, permit array; a
    scalar current limit or station-safe tag: one station), which must agree; a map with none of
    them has one zone a station (the layout before stations had zones). A scalar permit alone may
    stand for every station of a line. `tags`: the map's roles when None (LoopTags.for_map)."""
    tags = LoopTags.for_map(tag_map, tags)
    counted = per_station_count(tag_map, *(tag_map.tag(name) if name else None
                                           for name in (tags.current_limit, tags.station_safe_state, tags.permit)))
    if counted is not None:
        return counted
    pressures = tag_map.tag(tags.pressures)
    if pressures is None:
        raise ValueError(f"{tag_map.source}: the real-time loop needs tag {tags.pressures!r}")
    return pressures.count


class RtLoop:
    def __init__(self, bus: TagBus, kernel, tags: LoopTags | None = None, settings: LoopSettings = LoopSettings(),
                 link: RtSide | None = None, latches=None, events=None):
        """`tags`: the map's roles (LoopTags.for_map) when None; a LoopTags keeps the fields it
        sets to other tags and resolves the rest through the roles. `latches`
        (service.LatchStore) and `events` (service.EventLog) are optional."""
        self.bus = bus
        self.kernel = kernel
        self.tags = LoopTags.for_map(bus.tag_map, tags)
        self.settings = settings
        self.link = link
        self.latches = latches
        self.events = events
        self.stats = TickStats()
        self.tick_count = 0
        self.armed = False
        self.link_errors = 0  # bus calls that failed
        self.bus_misses = 0  # ticks whose read or write failed (the tick was skipped or not delivered)
        self.miss_streak = 0  # consecutive missed ticks now
        self.link_lost_latches = 0  # times LINK_LOST latched the line (any reason)
        self.plc_stale_latches = 0  # ... of them, for a frozen PLC heartbeat
        self.resets_done = 0
        self.station_resets_done = 0
        self.setpoints_applied = 0
        self.setpoints_rejected = 0
        self.heartbeat_ns = 0  # time.monotonic_ns() of the last status published
        self._written = False
        self._overrun_streak = 0
        self._last_miss = ""
        self._plc_heartbeat = None
        self._plc_heartbeat_age = 0
        self._blind_ticks = settings.blind_ticks()
        self._timeout_s = settings.request_timeout_s(bus.tag_map)
        self._resolve_tags(bus.tag_map)
        self._seen = self._latch_state()
        self._restore_latches()

    # -- the map --------------------------------------------------------------------------------
    def _resolve_tags(self, tag_map: TagMap) -> None:
        tags, source = self.tags, tag_map.source

        def need(name: str) -> Tag:
            tag = tag_map.tag(name)
            if tag is None:
                raise ValueError(f"{source}: the real-time loop needs tag {name!r}")
            return tag

        def optional(name: str | None) -> Tag | None:
            return tag_map.tag(name) if name else None

        self._n_markers = need(tags.temps).count
        self._n_zones = need(tags.pressures).count
        need(tags.heartbeat)
        self.n_stations = station_count(tag_map, tags)
        fixture = getattr(self.kernel, "fixture", None)
        if fixture is not None and (fixture.n_zones, fixture.n_stations) != (self._n_zones, self.n_stations):
            raise ValueError(f"{source}: the map has {self._n_zones} zones and {self.n_stations} stations; "
                             f"the kernel {fixture.n_zones} and {fixture.n_stations}")
        self._zone_station = (np.asarray(fixture.zone_station) if fixture is not None
                              else np.arange(self._n_zones) // (self._n_zones // self.n_stations))
        s, z = self.n_stations, self._n_zones
        self._relief = [t for t in (optional(tags.relief_first), optional(tags.relief_second)) if t is not None]
        self._coolant = optional(tags.coolant)
        self._permit = optional(tags.permit)
        self._limit = optional(tags.current_limit)
        self._station_safe_tag = optional(tags.station_safe_state)
        self._line_safe_tag = optional(tags.safe_state)
        expected = [(t, (z,)) for t in self._relief] + [(t, (s, 1)) for t in (
            self._coolant, self._permit, self._limit, self._station_safe_tag)]
        for tag, counts in expected:
            if tag is not None and tag.count not in counts:
                raise ValueError(f"{source}: tag {tag.name!r} has {tag.count} elements; the real-time loop "
                                 f"writes {' or '.join(map(str, counts))} ({s} stations, {z} zones)")
        if self._limit is not None and self._limit.limits is None:
            raise ValueError(f"{source}: tag {self._limit.name!r} needs limits: its max is full scale (100 %)")
        self._loaded = optional(tags.loaded_module)
        if self._loaded is not None and self._loaded.count != s:
            raise ValueError(f"{source}: tag {self._loaded.name!r} has {self._loaded.count} elements; the real-time "
                             f"loop reads one per station ({s})")
        self._loaded_ids: np.ndarray | None = None
        self._new_modules: tuple[int, ...] = ()
        self._settle_ticks = self.settings.settle_ticks()
        self._settling = np.zeros(s, dtype=np.int64)  # per station: ticks its history still restarts
        base = optional(tags.coolant_base)
        if base is not None and self._coolant is not None and base.count != self._coolant.count:
            raise ValueError(f"{source}: {base.name!r} has {base.count} elements, {self._coolant.name!r} "
                             f"{self._coolant.count}; the base flow is per coolant valve")
        self._coolant_base = np.zeros(self._coolant.count if self._coolant is not None else 1)
        self._inputs = [tags.temps, tags.pressures] + [
            n for n in (tags.plc_heartbeat, base.name if base is not None and self._coolant is not None else None,
                        tags.loaded_module)
            if n and tag_map.tag(n) is not None]
        self._outputs = {t.name: t for t in tag_map.outputs(self.bus.owner)}
        self._prepare(tag_map)

    def _prepare(self, tag_map: TagMap) -> None:
        """The read and write request plans, built once, and every buffer a tick fills in place."""
        tags, s, z = self.tags, self.n_stations, self._n_zones
        self._read_plan = self.bus.plan_read(self._inputs)
        at = {name: i for i, name in enumerate(self._read_plan.names)}
        self._at_temps, self._at_pressures = at[tags.temps], at[tags.pressures]
        self._at_base = at.get(tags.coolant_base) if tags.coolant_base else None
        self._at_loaded = at.get(tags.loaded_module) if tags.loaded_module else None
        self._at_beat = at.get(tags.plc_heartbeat) if tags.plc_heartbeat else None
        self._temps = np.zeros(self._n_markers)
        self._pressures = np.zeros(z)
        self._base_in = np.zeros(self._coolant_base.size)
        self._base_ok = np.zeros(self._coolant_base.size, dtype=bool)
        self._loaded_in = np.zeros(s)
        self._loaded_flags = np.zeros(s, dtype=bool)
        names = list(self._outputs) + ([tags.heartbeat] if tags.heartbeat not in self._outputs else [])
        self._write_plan = self.bus.plan_write(names)
        self._safe_row = [self._outputs[n].safe_value if n in self._outputs else 0 for n in names]
        self._at_heartbeat = self._write_plan.index[tags.heartbeat]
        self._at_line_safe = self._write_plan.index.get(self._line_safe_tag.name) if self._line_safe_tag else None
        self._isolated = np.zeros(s, dtype=bool)
        self._zone_isolated = np.zeros(z, dtype=bool)
        index = self._write_plan.index
        self._relief_out = [_Output(t, index[t.name], z) for t in self._relief]
        self._coolant_out = _Output(self._coolant, index[self._coolant.name], s) if self._coolant is not None else None
        self._limit_out = _Output(self._limit, index[self._limit.name], s) if self._limit is not None else None
        self._permit_out = np.zeros(s, dtype=bool)
        self._station_safe_out = np.zeros(s, dtype=bool)
        per_zone = z // s
        self._zones_in_blocks = bool(np.array_equal(self._zone_station, np.arange(z) // per_zone))
        self._status = {  # the per-station status published on the link every tick, filled in place
            "station_relief_max_kpa": np.zeros(s), "station_current_limit_frac": np.zeros(s),
            "station_permit": np.zeros(s, dtype=bool),
        }

    # -- one tick ------------------------------------------------------------------------------
    def step(self) -> int:
        """Read, tick, write; returns the kernel's flags. Never raises for plant or network faults."""
        self._apply_link()
        missed = False
        try:
            temps, pressures = self._read_inputs()
        except BusError as exc:  # no inputs this tick: the kernel skips it rather than see NaN
            missed = True
            self._note_bus_error(f"read failed: {exc}")
        except _LineFault as fault:
            self.plc_stale_latches += not self.kernel.safe_cause & fault.flag
            self._fault(fault.flag, fault.why)
        else:
            try:
                self._restart_settling()
                self.kernel.tick(temps, pressures)
            except Exception as exc:  # the loop must not die: this is what the EXCEPTION fault is for
                log.exception("rtcore tick raised")
                self._fault(Flag.EXCEPTION, f"tick raised {type(exc).__name__}: {exc}")
        missed |= not self._write_outputs()
        self._count_miss(missed)
        self._check_latches()
        self.tick_count += 1
        return int(self.kernel.flags)

    def _restart_settling(self) -> None:
        """Restart the thermal history of each station with a new module, on this tick and the
        next ones of its settle time (LoopSettings.settle_ticks)."""
        settling = self._settling
        for station in self._new_modules:
            settling[station] = self._settle_ticks
        if not settling.any():  # the usual tick: nothing allocated
            return
        for station in np.flatnonzero(settling).tolist():
            self.kernel.restart_station_history(station)
            settling[station] -= 1

    def _read_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        values = self.bus.read(self._read_plan, timeout_s=self._timeout_s)
        temps = _into(self._temps, values[self._at_temps])
        pressures = _into(self._pressures, values[self._at_pressures])
        if self._at_base is not None and self._coolant is not None:
            base = _into(self._base_in, values[self._at_base])
            np.isfinite(base, out=self._base_ok)
            np.copyto(self._coolant_base, base, where=self._base_ok)
        self._new_modules = self._modules_changed(values[self._at_loaded] if self._loaded and self._at_loaded is not None
                                                  else None)
        beat = values[self._at_beat] if self._at_beat is not None else None
        if beat is not None and self.settings.plc_heartbeat_stale_ticks:
            self._plc_heartbeat_age = self._plc_heartbeat_age + 1 if beat.value == self._plc_heartbeat else 0
            self._plc_heartbeat = beat.value
            if self._plc_heartbeat_age >= self.settings.plc_heartbeat_stale_ticks:
                raise _LineFault(Flag.LINK_LOST, f"PLC heartbeat {beat.value} unchanged for "
                                                 f"{self._plc_heartbeat_age} ticks")
        return temps, pressures

    def _modules_changed(self, loaded) -> tuple[int, ...]:
        """Stations whose module changed since the last read (none at the first read: the
        kernel primes every history at its first tick); an unreadable element keeps its last id."""
        if loaded is None:
            return ()
        ids, unread = _into(self._loaded_in, loaded), self._loaded_flags
        last = self._loaded_ids
        if last is None:
            self._loaded_ids = ids.copy()
            return ()
        np.isfinite(ids, out=unread)
        np.logical_not(unread, out=unread)
        np.copyto(ids, last, where=unread)
        np.not_equal(ids, last, out=unread)  # now: changed (a NaN last id never counts, below)
        if not unread.any():
            return ()
        changed = [int(st) for st in np.flatnonzero(unread & np.isfinite(last))]
        for station in changed:
            log.info("rtcore: station %d holds module %s now (was %s): its thermal history restarts",
                     station, _module_name(ids[station]), _module_name(last[station]))
        np.copyto(last, ids)
        return tuple(changed)

    def _write_outputs(self) -> bool:
        """Write this tick's outputs with a fresh heartbeat; False if the bus call failed."""
        self._fill_outputs()
        try:
            refused = [r for r in self.bus.write(self._write_plan, timeout_s=self._timeout_s)
                       if r.quality is not Quality.GOOD]
        except BusError as exc:
            self._note_bus_error(f"write failed: {exc}")
            return False
        if refused:  # outputs are clamped to the map's limits, so this is a map or PLC problem
            self._fault(Flag.LINK_LOST, f"outputs not accepted: {[(r.name, r.quality.value) for r in refused]}")
        return True

    def _note_bus_error(self, why: str) -> None:
        self.link_errors += 1
        log.warning("rtcore: bus miss (%d in a row before this tick; LINK_LOST at %d): %s", self.miss_streak,
                    self._blind_ticks, why)
        self._last_miss = why

    def _count_miss(self, missed: bool) -> None:
        if not missed:
            self.miss_streak = 0
            return
        self.bus_misses += 1
        self.miss_streak += 1
        self.stats.record_miss(self.miss_streak)
        if self.miss_streak < self._blind_ticks:
            self.bus.reconnect_now()  # every tick of the blind time gets its attempt, whatever the backoff
        else:
            self._fault(Flag.LINK_LOST, f"{self.miss_streak} ticks in a row without the PLC "
                                        f"({self.miss_streak * self.settings.period_s:.2f} s >= "
                                        f"link_blind_s {self.settings.link_blind_s} s); last: {self._last_miss}")

    # -- outputs ---------------------------------------------------------------------------------
    @property
    def last_written(self) -> dict:
        """The outputs of the last write (or the one being tried), by name."""
        plan = self._write_plan
        return dict(zip(plan.names, plan.values)) if self._written else {}

    def compose_outputs(self) -> dict:
        """Every output of this tick: the kernel's per station, or the safe values (line latched
        or not armed); the heartbeat is the tick count. Arrays are the loop's buffers, valid
        until the next tick."""
        self._fill_outputs()
        return dict(zip(self._write_plan.names, self._write_plan.values))

    def _fill_outputs(self) -> None:
        """This tick's outputs into the write plan's values, in place."""
        kernel, values = self.kernel, self._write_plan.values
        values[:] = self._safe_row
        if self.armed and not kernel.safe_state:
            self._station_outputs(values)
        values[self._at_heartbeat] = self.tick_count % HEARTBEAT_WRAP
        if self._at_line_safe is not None:
            values[self._at_line_safe] = bool(kernel.safe_state) or not self.armed
        self._written = True

    def _safe_values(self) -> dict:
        """Every output this owner drives at its safe value, and the heartbeat (the tick count)."""
        values = {name: tag.safe_value for name, tag in self._outputs.items()}
        values[self.tags.heartbeat] = self.tick_count % HEARTBEAT_WRAP
        return values

    def _station_outputs(self, values: list) -> None:
        """Per station from the kernel, into `values` (the write plan's): clamped to each tag's
        limits, a non-finite value at the safe value, an isolated station's elements safe."""
        kernel, s = self.kernel, self.n_stations
        isolated = self._isolated
        np.not_equal(np.asarray(kernel.station_safe), 0, out=isolated)
        np.take(isolated, self._zone_station, out=self._zone_isolated)
        for out, relief in zip(self._relief_out, (kernel.relief1_kpa, kernel.relief2_kpa)):
            values[out.at] = out.fill(np.asarray(relief), self._zone_isolated)
        if self._coolant_out is not None:
            out, flow = self._coolant_out, np.asarray(kernel.station_coolant_lpm, dtype=float)
            if out.tag.count == s:
                np.add(self._coolant_base, flow, out=out.sum)
                values[out.at] = out.fill(out.sum, isolated)
            else:  # one valve for the line
                values[out.at] = _clamp(out.tag, float(self._coolant_base[0]) + float(flow.sum()))
        if self._limit_out is not None:
            out = self._limit_out
            np.multiply(np.asarray(kernel.current_limit_frac), out.tag.limits.max, out=out.sum)
            limit = out.fill(out.sum, isolated)
            values[out.at] = limit if out.tag.count == s else float(out.buffer.min())
        if self._permit is not None:
            permits = np.logical_not(isolated, out=self._permit_out)
            values[self._write_plan.index[self._permit.name]] = (
                _shaped_array(self._permit, permits) if self._permit.count == s else bool(permits.all()))
        if self._station_safe_tag is not None:
            tag = self._station_safe_tag
            np.copyto(self._station_safe_out, isolated)
            values[self._write_plan.index[tag.name]] = (
                _shaped_array(tag, self._station_safe_out) if tag.count == s else bool(isolated.any()))

    def write_safe_values(self, timeout_s: float | None = None) -> bool:
        """The stop: every output this owner drives at its safe value, with one more heartbeat.

        Tried twice, each try connecting at once if the link is down (a late answer drops the
        connection; the reconnect backoff does not delay the stop).
        Returns True when the PLC took them."""
        values = self._safe_values()
        plan = self._write_plan
        plan.values[:] = [values[name] for name in plan.names]
        self._written = True
        self.tick_count += 1
        timeout_s = timeout_s if timeout_s is not None else max(self.bus.tag_map.timeout_s, self._timeout_s)
        for attempt in (1, 2):
            self.bus.reconnect_now()  # each try gets its connect attempt, whatever the reconnect backoff says
            try:
                refused = [r.name for r in self.bus.write(plan, timeout_s=timeout_s) if r.quality is not Quality.GOOD]
            except BusError as exc:
                log.error("rtcore: stop: safe values not written (try %d): %s", attempt, exc)
                continue
            if refused:
                log.error("rtcore: stop: the PLC refused the safe values of %s", refused)
                return False
            log.warning("rtcore: stop: safe values written on every output")
            return True
        return False

    # -- faults and latches ----------------------------------------------------------------------
    def _fault(self, flag: Flag, why: str) -> None:
        if flag is Flag.LINK_LOST and not self.kernel.safe_cause & Flag.LINK_LOST:
            self.link_lost_latches += 1
        if not self.kernel.safe_state:
            log.error("rtcore: line safe state: %s", why)
        self.kernel.raise_fault(int(flag))

    def note_overrun(self, overran: bool) -> None:
        self._overrun_streak = self._overrun_streak + 1 if overran else 0
        if self._overrun_streak >= self.settings.overrun_streak_limit:
            self._fault(Flag.OVERRUN_STREAK, f"{self._overrun_streak} overruns in a row")
            self._check_latches()

    def arm(self, why: str = "") -> None:
        """Let discharge begin (or resume): clears the line latch and every station latch."""
        self.kernel.reset()
        self.armed = True
        self._overrun_streak = 0
        self._plc_heartbeat_age = 0
        self.miss_streak = 0
        self.resets_done += 1
        log.warning("rtcore: armed%s; every latch cleared", f" ({why})" if why else "")
        if self.events is not None:
            self.events.append("arm", text=why)
        self._check_latches()

    def _latch_state(self) -> tuple[int, int, dict[int, tuple[int, int]]]:
        kernel = self.kernel
        stations = {int(s): (int(kernel.station_cause[s]), int(kernel.station_fault_marker[s]))
                    for s in np.flatnonzero(np.asarray(kernel.station_safe))}
        return int(kernel.safe_cause) if kernel.safe_state else 0, int(kernel.fault_marker), stations

    def _check_latches(self) -> None:
        """Compare the kernel's latches with the last ones: save them and log one event per change."""
        now = self._latch_state()
        if now == self._seen:
            return
        (line, marker, stations), (seen_line, _, seen_stations) = now, self._seen
        self._seen = now
        hot = np.asarray(self.kernel.station_hot_degc, dtype=float)
        if line != seen_line:
            value = float(np.nanmax(hot)) if np.isfinite(hot).any() else None
            self._event("latch" if line else "clear", line or seen_line, None, marker if line else None, value)
        for s in sorted(set(stations) | set(seen_stations)):
            cause, smarker = stations.get(s, (0, -1))
            if (cause, smarker) != seen_stations.get(s, (0, -1)):
                self._event("latch" if cause else "clear", cause or seen_stations[s][0], s,
                            smarker if cause else None, float(hot[s]))
        if self.latches is not None:
            try:
                self.latches.save(_latches(line, stations))
            except OSError as exc:  # a full disk must not stop the loop; the log says it
                log.error("rtcore: latches not saved: %s", exc)

    def _event(self, kind: str, cause: int, station: int | None, marker: int | None, value: float | None) -> None:
        marker = marker if marker is None or marker >= 0 else None
        value = value if value is None or math.isfinite(value) else None
        if self.events is not None:  # it logs the same line (latch: ERROR, clear: WARNING)
            try:
                self.events.append(kind, cause=cause, station=station, marker=marker, value=value)
            except OSError as exc:
                log.error("rtcore: event not kept: %s", exc)
            return
        names = ",".join(f.name for f in Flag if f and cause & int(f)) or "-"
        where = "line" if station is None else f"station {station}"
        log.log(logging.ERROR if kind == "latch" else logging.WARNING,
                "rtcore: %s %s: %s marker %s value %s", kind, where, names, marker, value)

    def _restore_latches(self) -> None:
        """Put the stored latches back in the kernel: a restart never clears a fault."""
        if self.latches is None:
            return
        stored = self.latches.load()
        if stored.line_cause:
            cause = int(stored.line_cause) & int(EXTERNAL_FAULTS) or int(Flag.EXCEPTION)
            self.kernel.raise_fault(cause)
            log.error("rtcore: line latch restored: %s", _names(cause))
        for station, (cause, marker) in sorted(stored.stations.items()):
            try:
                self.kernel.isolate_station(int(station), int(cause), int(marker))
                log.error("rtcore: station %d latch restored: %s marker %d", station, _names(cause), marker)
            except ValueError as exc:  # a map that changed under a stored latch: stop the line
                log.error("rtcore: stored latch of station %s does not fit this map (%s); line latched", station, exc)
                self.kernel.raise_fault(int(Flag.EXCEPTION))
        self._seen = self._latch_state()

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
            self.arm("reset requested on the supervisor link")
        poll_stations = getattr(self.link, "poll_station_resets", None)
        for station in poll_stations() if poll_stations is not None else ():
            self.reset_station(station)

    def reset_station(self, station: int) -> None:
        """Clear one station's latch (the line's, and arming, are left as they are)."""
        try:
            self.kernel.reset_station(int(station))
        except ValueError as exc:
            log.error("rtcore: station reset refused: %s", exc)
            return
        self.station_resets_done += 1
        log.warning("rtcore: station %d reset requested on the supervisor link", station)
        self._check_latches()

    def station_status(self, arrays: bool = False) -> dict:
        """Per station: cause bits, fault marker, hottest marker, current limit frac (as written),
        coolant, largest relief of its zones, permit as written. Tuples; with `arrays`, NumPy
        arrays (the kernel's and the loop's buffers, valid until the next tick: for the link,
        which copies them)."""
        kernel, s, out = self.kernel, self.n_stations, self._status
        values = self._write_plan.values if self._written else None
        relief = out["station_relief_max_kpa"]
        written = values[self._relief_out[-1].at] if values is not None and self._relief_out else None
        if written is None:
            relief.fill(0.0)
        elif self._zones_in_blocks:
            np.max(np.reshape(np.asarray(written, dtype=float), (s, -1)), axis=1, out=relief)
            np.maximum(relief, 0.0, out=relief)
        else:
            relief.fill(0.0)
            np.maximum.at(relief, self._zone_station, np.atleast_1d(np.asarray(written, dtype=float)))
        permit = values[self._write_plan.index[self._permit.name]] if values is not None and self._permit else None
        out["station_permit"][:] = False if permit is None else permit
        # as written: nothing flows while not armed or with the line safe, whatever the envelope says
        np.multiply(np.asarray(kernel.current_limit_frac), float(self.armed and not kernel.safe_state),
                    out=out["station_current_limit_frac"])
        status = {
            "station_cause": np.asarray(kernel.station_cause),
            "station_fault_marker": np.asarray(kernel.station_fault_marker),
            "station_hot_degc": np.asarray(kernel.station_hot_degc),
            "station_current_limit_frac": out["station_current_limit_frac"],
            "station_coolant_lpm": np.asarray(kernel.station_coolant_lpm),
            "station_relief_max_kpa": relief,
            "station_permit": out["station_permit"],
        }
        if arrays:
            return status
        kinds = {"station_cause": int, "station_fault_marker": int, "station_permit": bool}
        return {name: tuple(kinds.get(name, float)(v) for v in array.tolist()) for name, array in status.items()}

    def status(self, alive: bool = True, arrays: bool = False) -> RtStatus:
        """The status the link carries; per-station fields as tuples, or with `arrays` as the
        loop's arrays (`station_status`), which is how the loop publishes it every tick."""
        summary = self.stats.summary()
        self.heartbeat_ns = time.monotonic_ns()
        kernel = self.kernel
        return RtStatus(
            tick_count=self.tick_count, overruns=summary["overruns"],
            lateness_p50_ns=summary["lateness_p50_ns"], lateness_p99_ns=summary["lateness_p99_ns"],
            lateness_max_ns=summary["lateness_max_ns"], work_mean_ns=summary["work_mean_ns"],
            work_max_ns=summary["work_max_ns"], flags=int(kernel.flags),
            safe_state=bool(kernel.safe_state), safe_cause=int(kernel.safe_cause),
            fault_marker=int(kernel.fault_marker), link_errors=self.link_errors,
            setpoints_applied=self.setpoints_applied, setpoints_rejected=self.setpoints_rejected,
            resets_done=self.resets_done, station_resets_done=self.station_resets_done, alive=alive,
            heartbeat_ns=self.heartbeat_ns, armed=self.armed,
            bus_misses=self.bus_misses, n_stations=self.n_stations, **self.station_status(arrays),
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
                self.link.write_status(self.status(arrays=True))
            deadline_ns = next_deadline_ns
        if self.link is not None:
            self.link.write_status(self.status(alive=False))
        return self.summary()

    def summary(self) -> dict:
        """Timing and bus-miss counts of the run so far."""
        return {**self.stats.summary(), "link_errors": self.link_errors,
                "link_lost_latches": self.link_lost_latches, "plc_stale_latches": self.plc_stale_latches,
                "armed": self.armed}


class _LineFault(Exception):
    """A line-wide fault found while reading (a frozen PLC heartbeat): latches at once."""

    def __init__(self, flag: Flag, why: str):
        super().__init__(why)
        self.flag, self.why = flag, why


def _latches(line_cause: int, stations: dict[int, tuple[int, int]]):
    from edge.rtloop.service import Latches  # the service layer's record; only needed with a store

    return Latches(line_cause=line_cause, stations=dict(stations))


def _module_name(module_id: float) -> str:
    return "none" if not np.isfinite(module_id) or module_id < 0 else str(int(module_id))


def _names(cause: int) -> str:
    return ",".join(f.name for f in Flag if f and cause & int(f)) or "-"


class _Output:
    """A per-station or per-zone output tag and its buffers: the values written, a scratch sum,
    its limits and safe values as arrays."""

    def __init__(self, tag: Tag, at: int, count: int):
        self.tag, self.at = tag, at
        self.buffer = np.zeros(tag.count)
        self.sum = np.zeros(tag.count)
        self.finite = np.zeros(tag.count, dtype=bool)
        self.safe = np.asarray(_elements(tag), dtype=float)
        self.safe_first = float(self.safe[0])
        self.low, self.high = (tag.limits.min, tag.limits.max) if tag.limits else (-np.inf, np.inf)

    def fill(self, source: np.ndarray, isolated: np.ndarray):
        """`source` clamped to the limits, a non-finite element at the first safe value, an
        isolated element at its safe value: the buffer (a float for a scalar tag)."""
        buffer, finite = self.buffer, self.finite
        np.isfinite(source, out=finite)
        np.clip(source, self.low, self.high, out=buffer)
        np.logical_not(finite, out=finite)
        np.copyto(buffer, self.safe_first, where=finite)
        np.copyto(buffer, self.safe, where=isolated)
        return buffer if self.tag.is_array else float(buffer[0])


def _into(buffer: np.ndarray, value) -> np.ndarray:
    """A tag read into the loop's float64 buffer, in place; a BAD read is all NaN (the kernel
    debounces it into a fault)."""
    if not value.quality.usable or value.value is None:
        buffer.fill(math.nan)
    elif isinstance(value.value, tuple):
        buffer[:] = value.value
    else:
        buffer[0] = value.value
    return buffer


def _shaped_array(tag: Tag, elements: np.ndarray):
    """A per-station BOOL buffer as the tag takes it: the array, or its one element for a scalar."""
    return elements if tag.is_array else bool(elements[0])


def _elements(tag: Tag) -> tuple:
    """The tag's safe value, one element per count."""
    safe = tag.safe_value
    return tuple(safe) if isinstance(safe, (tuple, list)) else (safe,) * tag.count


def _clamp(tag: Tag, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        return float(_elements(tag)[0])
    return min(max(value, tag.limits.min), tag.limits.max) if tag.limits else value
