"""The stop's safe values get a connect attempt of their own, whatever the bus's backoff says.

Seen while reproducing the exit-code trial (test_run_exit_code.py): with the PLC gone past the
blind time, both tries of the stop's write ended at once in "not connected; next attempt in 2.00
s" without trying to connect. A PLC back by then (a link down for a while, up again as the
operator stops the core) would have been left with the core's last outputs, and `rtcore run`
would exit 4 for a write it never tried. `RtLoop.write_safe_values` lets each try of the stop's write connect at once.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from edge import REPO_ROOT
from edge.bus import Backoff, ConnectionLost, MemoryPlc, open_bus
from edge.rtloop.link import RtSide, SupervisorSide
from edge.rtloop.loop import LoopSettings
from edge.rtloop.process import run_rtcore
from edge.tagmap import Owner, load_tag_map
from rtcore.spec import Flag

from .served import wait_for

pytestmark = pytest.mark.integration

MAP = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
BACKOFF_S = 60.0  # far beyond the test: no attempt of the loop's own reaches the PLC again
WAIT_S = 20.0


def in_backoff(bus) -> bool:
    """The bus refuses to try before its backoff ends (what its own error says)."""
    try:
        bus.read(["plc_heartbeat"], timeout_s=0.05)
    except ConnectionLost as exc:
        return "next attempt in" in str(exc)
    return False


@pytest.fixture(autouse=True)
def private_shm(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))


def link_lost(side: SupervisorSide) -> bool:
    status = side.read_status()
    return status is not None and bool(status.safe_cause & int(Flag.LINK_LOST))


def test_the_stop_writes_the_safe_values_to_a_plc_back_within_the_backoff(tmp_path):
    name = f"stop-reconnect-{uuid.uuid4().hex[:8]}"
    rt_side = RtSide(name)
    side = SupervisorSide(name)
    plc = MemoryPlc(MAP)
    plc.set("marker_temp_degc", (25.0,) * MAP.tag("marker_temp_degc").count)
    plc.set("zone_pressure_kpa", (120.0,) * MAP.tag("zone_pressure_kpa").count)
    bus = open_bus(MAP, Owner.RTCORE, plc=plc, backoff=Backoff(initial_s=BACKOFF_S, cap_s=BACKOFF_S))
    stop = threading.Event()
    result: dict = {}

    def run():
        result.update(run_rtcore(bus, link=rt_side, duration_s=WAIT_S, stop=stop,
                                 settings=LoopSettings(plc_heartbeat_stale_ticks=0, realtime_priority=0)))

    core = threading.Thread(target=run)
    core.start()
    try:
        wait_for("the core ticking", lambda: (plc.get("rtcore_heartbeat") or 0) >= 3, WAIT_S)
        plc.online = False  # the link drops: LINK_LOST after the blind time, then the backoff
        plc.restart()
        wait_for("LINK_LOST latched", lambda: link_lost(side), WAIT_S)
        wait_for("the bus in its backoff", lambda: in_backoff(bus), WAIT_S)
        plc.online = True  # back, while the bus still waits out its backoff
        plc.set("safe_state", False)  # what the core last wrote stands until the stop's write
        plc.set("current_limit_pct", (100.0,) * MAP.tag("current_limit_pct").count)
        stop.set()
    finally:
        stop.set()
        core.join(timeout=WAIT_S)
        side.close()
    assert not core.is_alive()
    assert result["safe_state"] and result["link_lost_latches"] >= 1
    assert result["safe_values_written"] is True  # was False: the stop never tried to connect
    assert plc.get("safe_state") is True and plc.get("current_limit_pct") == (0.0,) * MAP.tag("current_limit_pct").count
