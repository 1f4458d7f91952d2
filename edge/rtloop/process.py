"""The real-time process: build the kernel for a tag map, ask for real-time scheduling, run the loop.

`run_rtcore(...)` is the body of the rtcore OS process (`discharge-edge rtcore run`, or a process
spawned by `handle.RtcoreHandle` for the supervisor, the demo, the scenarios and the benches); it
never imports anything above edge/. The tags are the map's roles (`LoopTags.for_map`,
edge/tagmap/roles.py). The fixture: S stations (the count of the per-station roles, see
`loop.station_count`), Z zones (the pressure role), N markers (the temperature role), each
station's geometry from the map's `fixture:` (one station's markers, their zones and the zone
areas; station s at x = s x station_pitch_mm), or a fixture handed in (the line file's). A map
without `fixture:` gets the even split (`roles.even_split_fixture`, documented in
plc_tags/README.md: marker i in zone i // (N/Z), markers 50 mm apart, a 150 x 200 mm module
shared by its zones), and the start logs that it does. When the run ends (duration, stop event,
a signal, an exception) every output is written at its safe value, with a connect attempt of its
own whatever the bus's backoff says (a PLC back by then takes them); the summary's
`safe_values_written` says whether the PLC took them (`rtcore run` exits 4 when not).
Tests: tests/edge/rtloop/ (test_roles_loop.py: a map of other names and its own fixture;
test_stop_reconnect.py: the stop's attempt; test_run_exit_code.py: the exit code).
"""

from __future__ import annotations

import logging
import os
import numpy as np

import rtcore
from edge.bus import TagBus
from edge.rtloop.link import RtSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop, station_count
from edge.tagmap import TagMap
from edge.tagmap.roles import MapFixture, even_split_fixture
from rtcore.spec import Config, Fixture, Setpoints

log = logging.getLogger(__name__)


def line_fixture(station: MapFixture, n_stations: int) -> Fixture:
    """The core's fixture of `n_stations` stations alike: station s's markers and zones numbered
    after those of the stations before it, its markers at x + s x station_pitch_mm."""
    m, z = station.markers_per_station, station.zones_per_station
    s = np.repeat(np.arange(n_stations), m)
    x = np.tile([p.x_mm for p in station.markers], n_stations) + s * station.station_pitch_mm
    y = np.tile([p.y_mm for p in station.markers], n_stations)
    zone = np.tile([p.zone for p in station.markers], n_stations) + s * z
    return Fixture(np.column_stack([x, y]), zone, np.tile(np.asarray(station.zone_area_mm2, float), n_stations),
                   zone_station=np.repeat(np.arange(n_stations, dtype=np.int32), z))


def build_fixture(n_markers: int, n_zones: int, n_stations: int | None = None) -> Fixture:
    """The even-split fixture of N markers, Z zones and S stations (None: one zone a station):
    what the core uses for a map without `fixture:` (roles.even_split_fixture)."""
    n_stations = n_zones if n_stations is None else n_stations
    if n_markers % n_zones:
        raise ValueError(f"{n_markers} marker points do not split evenly over {n_zones} zones")
    if n_stations < 1 or n_zones % n_stations:
        raise ValueError(f"{n_zones} zones do not split evenly over {n_stations} stations")
    return line_fixture(even_split_fixture(n_markers // n_stations, n_zones // n_stations), n_stations)


def map_fixture(tag_map: TagMap, tags: LoopTags | None = None) -> Fixture:
    """The core's fixture for `tag_map`: its `fixture:` repeated over its stations, else the even
    split. ValueError naming the file when the counts do not fit."""
    tags = LoopTags.for_map(tag_map, tags)
    n_markers, n_zones = tag_map.tag(tags.temps).count, tag_map.tag(tags.pressures).count
    n_stations = station_count(tag_map, tags)
    if tag_map.fixture is None:
        try:
            return build_fixture(n_markers, n_zones, n_stations)
        except ValueError as exc:
            raise ValueError(f"{tag_map.source}: {exc}") from exc
    if n_stations < 1 or n_zones % n_stations:
        raise ValueError(f"{tag_map.source}: {n_zones} zones do not split evenly over {n_stations} stations")
    station = tag_map.fixture
    for count, per_station, what, name in ((n_markers, station.markers_per_station, "markers", tags.temps),
                                           (n_zones, station.zones_per_station, "zones", tags.pressures)):
        if count != per_station * n_stations:
            raise ValueError(f"{tag_map.source}:{station.line}: fixture: {per_station} {what} a station x {n_stations} "
                             f"stations = {per_station * n_stations}; the tag {name!r} has {count}")
    return line_fixture(station, n_stations)


def build_kernel(tag_map: TagMap, tags: LoopTags | None, period_s: float, setpoints: Setpoints | None = None,
                 fixture: Fixture | None = None, kernel_class=None, **config_fields):
    """A kernel sized from the map's temperature, pressure and per-station roles, on `fixture`
    (the line file's) or the map's (`map_fixture`); `config_fields` go to Config. A map whose
    counts do not fit is refused, naming the file."""
    tags = LoopTags.for_map(tag_map, tags)
    n_markers, n_zones = tag_map.tag(tags.temps).count, tag_map.tag(tags.pressures).count
    if fixture is None:
        fixture = map_fixture(tag_map, tags)
    elif (fixture.n_markers, fixture.n_zones) != (n_markers, n_zones):
        raise ValueError(f"{tag_map.source}: the fixture has {fixture.n_markers} markers and {fixture.n_zones} zones; "
                         f"the map {n_markers} ({tags.temps}) and {n_zones} ({tags.pressures})")
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


def run_rtcore(bus: TagBus, *, tags: LoopTags | None = None, settings: LoopSettings = LoopSettings(),
               link_name: str | None = None, link: RtSide | None = None, duration_s: float | None = None,
               stop=None, setpoints: Setpoints | None = None, latches=None, events=None,
               fixture: Fixture | None = None) -> dict:
    """Run the loop on `bus` until `duration_s` or `stop`; returns its timing summary and grants.

    The link is `link` (an RtSide the caller made) or a new one named `link_name`; this function
    closes it. `latches` (service.LatchStore) and `events` (service.EventLog) are optional; with
    events, the start and the stop are events too. However the loop ends, every output is
    written at its safe value before the bus closes (the SIGTERM path: the caller sets `stop`).
    `fixture`: the line file's (LineConfig.rtcore_fixture); None: the map's, or the even split."""
    try:
        if fixture is None and bus.tag_map.fixture is None:
            log.warning("rtcore: %s has no fixture: section; the core assumes the even split (plc_tags/README.md)",
                        bus.tag_map.source)
        kernel = build_kernel(bus.tag_map, tags, settings.period_s * settings.time_scale, setpoints, fixture=fixture)
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
            written = loop.write_safe_values()  # each try connects at once, whatever the backoff says
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

