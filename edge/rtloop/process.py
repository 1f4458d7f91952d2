"""The real-time process: build the kernel for a tag map, ask for real-time scheduling, run the loop.

`run_rtcore(...)` is the body of the rtcore OS process (started by `discharge-edge rtcore run`,
by the supervisor, or by `bench rtcore`); it never imports anything above edge/. The fixture
geometry is derived from the map: the marker points of a station lie along its module at
`marker_pitch_mm`, zones follow one another along the fixture, and marker i belongs to zone
i // (markers per zone). Tests: tests/edge/rtloop/.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rtcore
from edge.bus import TagBus
from edge.rtloop.link import RtSide
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.tagmap import TagMap
from rtcore.spec import Config, Fixture, Setpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FixtureLayout:
    marker_pitch_mm: float = 50.0  # between marker points of one station
    zone_pitch_mm: float = 250.0  # between stations
    zone_area_mm2: float = 150.0 * 200.0  # pressed area of one station's module


def build_fixture(n_markers: int, n_zones: int, layout: FixtureLayout = FixtureLayout()) -> Fixture:
    if n_markers % n_zones:
        raise ValueError(f"{n_markers} marker points do not split evenly over {n_zones} zones")
    per_zone = n_markers // n_zones
    index = np.arange(n_markers)
    zone = index // per_zone
    x_mm = zone * layout.zone_pitch_mm + (index % per_zone) * layout.marker_pitch_mm
    return Fixture(np.column_stack([x_mm, np.zeros(n_markers)]), zone, np.full(n_zones, layout.zone_area_mm2))


def build_kernel(tag_map: TagMap, tags: LoopTags, period_s: float, setpoints: Setpoints | None = None,
                 layout: FixtureLayout = FixtureLayout(), kernel_class=None, **config_fields):
    """A kernel sized from the map's temperature and pressure tags; `config_fields` go to Config."""
    n_markers, n_zones = tag_map.tag(tags.temps).count, tag_map.tag(tags.pressures).count
    config = Config(n_markers=n_markers, n_zones=n_zones, period_s=period_s, **config_fields)
    return (kernel_class or rtcore.Kernel)(config, build_fixture(n_markers, n_zones, layout), setpoints)


def request_realtime(priority: int) -> dict:
    """Ask for SCHED_FIFO and locked memory; log clearly what the system refused."""
    grant = rtcore.request_realtime(priority)
    if grant.fifo_granted and grant.mlock_granted:
        log.info("rtcore: %s", grant.message)
    else:
        log.warning("rtcore: running without full real-time guarantees: %s", grant.message)
    return {"sched_fifo": bool(grant.fifo_granted), "mlockall": bool(grant.mlock_granted)}


def run_rtcore(bus: TagBus, *, tags: LoopTags = LoopTags(), settings: LoopSettings = LoopSettings(),
               link_name: str | None = None, duration_s: float | None = None, stop=None,
               setpoints: Setpoints | None = None) -> dict:
    """Run the loop on `bus` until `duration_s` or `stop`; returns its timing summary and grants."""
    kernel = build_kernel(bus.tag_map, tags, settings.period_s * settings.time_scale, setpoints)
    link = RtSide(link_name) if link_name else None
    granted = request_realtime(settings.realtime_priority) if settings.realtime_priority else \
        {"sched_fifo": False, "mlockall": False}
    loop = RtLoop(bus, kernel, tags, settings, link)
    try:
        summary = loop.run(duration_s=duration_s, stop=stop)
    finally:
        bus.close()
        if link is not None:
            link.close()
        if granted["sched_fifo"]:  # back to normal scheduling: whatever runs next is not real-time
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    status = loop.status(alive=False)
    return {**summary, **granted, "compiled": rtcore.COMPILED, "safe_state": status.safe_state,
            "safe_cause": status.safe_cause, "link_errors": status.link_errors}


def _rtcore_main(map_text: str, source: str, link_name: str, seconds: float | None, time_scale: float, results) -> None:
    """Body of a spawned rtcore process: the map comes as YAML text (a bench's map on its own port)."""
    import tempfile

    from edge.bus import open_bus
    from edge.tagmap import Owner, load_tag_map

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s rtcore: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(source).name
        path.write_text(map_text)
        bus = open_bus(load_tag_map(path), Owner.RTCORE)
    results.put(run_rtcore(bus, settings=LoopSettings(time_scale=time_scale), link_name=link_name, duration_s=seconds))


def spawn_rtcore(map_path: Path, port: int, link_name: str, seconds: float | None, time_scale: float = 1.0):
    """Start the rtcore loop in its own OS process against `map_path` aimed at 127.0.0.1:`port`.

    Returns (process, results queue); the queue receives run_rtcore's summary when the loop ends.
    """
    import multiprocessing as mp
    import re

    text = Path(map_path).read_text()
    text, found = re.subn(r"port: \d+", f"port: {port}", text, count=1)
    if not found:
        raise ValueError(f"{map_path}: no endpoint port to aim at the bench")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=_rtcore_main, args=(text, str(map_path), link_name, seconds, time_scale, results),
                          name="rtcore")
    process.start()
    return process, results
