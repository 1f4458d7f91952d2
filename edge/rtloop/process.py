"""The real-time process: build the kernel for a tag map, ask for real-time scheduling, run the loop.

`run_rtcore(...)` is the body of the rtcore OS process (`discharge-edge rtcore run`, or a process
spawned by `handle.RtcoreHandle` for the supervisor, the demo, the scenarios and the benches); it
never imports anything above edge/. The fixture
geometry is derived from the map: S stations (the count of the per-station permit tag, see
`loop.station_count`), Z zones (the pressure tag), N markers (the temperature tag); marker i
lies in zone i // (N/Z), zone z belongs to station z // (Z/S). A station's markers lie along its
module at `marker_pitch_mm`, stations follow one another along the fixture at
`station_pitch_mm`, and the module's pressed area is shared by its zones. When the run ends
(duration, stop event, a signal, an exception) every output is written at its safe value.
Tests: tests/edge/rtloop/.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

import rtcore
from edge.bus import TagBus
from edge.rtloop.link import RtSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop, station_count
from edge.tagmap import TagMap
from rtcore.spec import Config, Fixture, Setpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixtureLayout:
    marker_pitch_mm: float = 50.0  # between marker points of one station
    station_pitch_mm: float = 250.0  # between stations
    module_area_mm2: float = 150.0 * 200.0  # pressed area of one station's module, shared by its zones


def build_fixture(n_markers: int, n_zones: int, n_stations: int | None = None,
                  layout: FixtureLayout = FixtureLayout()) -> Fixture:
    """The fixture of N markers, Z zones and S stations (None: one zone a station)."""
    n_stations = n_zones if n_stations is None else n_stations
    if n_markers % n_zones:
        raise ValueError(f"{n_markers} marker points do not split evenly over {n_zones} zones")
    if n_stations < 1 or n_zones % n_stations:
        raise ValueError(f"{n_zones} zones do not split evenly over {n_stations} stations")
    per_zone, zones_per_station = n_markers // n_zones, n_zones // n_stations
    per_station = per_zone * zones_per_station
    index = np.arange(n_markers)
    zone = index // per_zone
    station = index // per_station
    x_mm = station * layout.station_pitch_mm + (index % per_station) * layout.marker_pitch_mm
    return Fixture(np.column_stack([x_mm, np.zeros(n_markers)]), zone,
                   np.full(n_zones, layout.module_area_mm2 / zones_per_station),
                   zone_station=np.arange(n_zones, dtype=np.int32) // zones_per_station)


def build_kernel(tag_map: TagMap, tags: LoopTags, period_s: float, setpoints: Setpoints | None = None,
                 layout: FixtureLayout = FixtureLayout(), kernel_class=None, **config_fields):
    """A kernel sized from the map's temperature, pressure and per-station tags; `config_fields`
    go to Config. A map whose counts do not nest (N % Z, Z % S) is refused, naming the file."""
    for name in (tags.temps, tags.pressures):
        if tag_map.tag(name) is None:
            raise ValueError(f"{tag_map.source}: the real-time loop needs tag {name!r}")
    n_markers, n_zones = tag_map.tag(tags.temps).count, tag_map.tag(tags.pressures).count
    try:
        fixture = build_fixture(n_markers, n_zones, station_count(tag_map, tags), layout)
    except ValueError as exc:
        raise ValueError(f"{tag_map.source}: {exc}") from exc
    config = Config(n_markers=n_markers, n_zones=n_zones, period_s=period_s, **config_fields)
    return (kernel_class or rtcore.Kernel)(config, fixture, setpoints)


def request_realtime(priority: int) -> dict:
    """Ask for SCHED_FIFO and locked memory; log clearly what the system refused."""
    grant = rtcore.request_realtime(priority)
    if grant.fifo_granted and grant.mlock_granted:
        log.info("rtcore: %s", grant.message)
    else:
        log.warning("rtcore: running without full real-time guarantees: %s", grant.message)
    return {"sched_fifo": bool(grant.fifo_granted), "mlockall": bool(grant.mlock_granted)}


def run_rtcore(bus: TagBus, *, tags: LoopTags = LoopTags(), settings: LoopSettings = LoopSettings(),
               link_name: str | None = None, link: RtSide | None = None, duration_s: float | None = None,
               stop=None, setpoints: Setpoints | None = None, latches=None, events=None) -> dict:
    """Run the loop on `bus` until `duration_s` or `stop`; returns its timing summary and grants.

    The link is `link` (an RtSide the caller made) or a new one named `link_name`; this function
    closes it. `latches` (service.LatchStore) and `events` (service.EventLog) are optional; with
    events, the start and the stop are events too. However the loop ends, every output is
    written at its safe value before the bus closes (the SIGTERM path: the caller sets `stop`)."""
    try:
        kernel = build_kernel(bus.tag_map, tags, settings.period_s * settings.time_scale, setpoints)
        link = link if link is not None else (RtSide(link_name) if link_name else None)
        loop = RtLoop(bus, kernel, tags, settings, link, latches=latches, events=events)
    except BaseException:
        bus.close()
        if link is not None:
            link.close()
        raise
    granted = request_realtime(settings.realtime_priority) if settings.realtime_priority else \
        {"sched_fifo": False, "mlockall": False}
    if events is not None:
        events.append("start", text=f"{bus.tag_map.source}: {loop.n_stations} stations, period "
                                    f"{settings.period_s * 1e3:g} ms, not armed")
    written = False
    try:
        summary = loop.run(duration_s=duration_s, stop=stop)
    finally:
        try:
            written = loop.write_safe_values()
            if events is not None:
                events.append("stop", text="safe values written" if written else "safe values NOT written")
        finally:
            bus.close()
            if link is not None:
                link.close()
            if granted["sched_fifo"]:  # back to normal scheduling: whatever runs next is not real-time
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    status = loop.status(alive=False)
    return {**summary, **granted, "compiled": rtcore.COMPILED, "safe_state": status.safe_state,
            "safe_cause": status.safe_cause, "safe_values_written": written,
            "request_timeout_s": settings.request_timeout_s(bus.tag_map), "blind_ticks": settings.blind_ticks()}

