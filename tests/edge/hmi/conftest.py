"""The operator page's fixtures: the flow's rig (a real FlowEngine over an in-memory PLC, the
bench's robot cell, a stand-in core) with a running batch, a LineHub and the page served by uvicorn
on a free port of 127.0.0.1. The test's thread is the scan loop (the store's SQLite connections
belong to it); `drive(rig, hub, work)` runs `work` (the client: HTTP, a browser) on another thread
while the scans go on."""

from __future__ import annotations


import pytest

from edge.hmi.server import start_page
from edge.lineview.model import LineHub, apply, snapshot_of
from edge.lineview.serve import Endpoint, load_access
from tests.edge.lineview.driving import drive_while_scanning
from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Rig, currents


class Served:
    def __init__(self, rig, hub, page, access):
        self.rig, self.hub, self.page, self.access = rig, hub, page, access
        self.url = f"http://127.0.0.1:{page.port}"

    def token(self, role: str) -> str:
        return self.access.token(role)

    def scan(self) -> None:
        """One pass of the supervisor's loop: commands, the scan, the snapshot."""
        self.hub.carry_out(lambda c, r: apply(self.rig.engine, c, r))
        self.rig.scan()
        self.hub.publish(snapshot_of(self.rig.engine, report_path="/report"))

    def drive(self, work, timeout_scans: int = 3000, scan_wait_s: float = 0.02):
        """Run `work()` on a thread while scanning here (`scan_wait_s` between scans, answering
        commands at once); returns its result or raises its error."""
        return drive_while_scanning(self.scan, self.hub, work, max_scans=timeout_scans, scan_wait_s=scan_wait_s)


@pytest.fixture
def served(line, models, tmp_path):  # noqa: F811
    rig = Rig(line, models, tmp_path / "state")
    hub = LineHub()
    access = load_access(rig.engine.paths.state_dir)
    page = start_page(hub, Endpoint("127.0.0.1", 0), access, state_dir=rig.engine.paths.state_dir)
    s = Served(rig, hub, page, access)
    try:
        yield s
    finally:
        page.stop()
        rig.engine.close()


def run_batch(served, batteries: int = 5) -> list[str]:
    """A batch in the inbox, the line started and scanned until a station discharges."""
    rig = served.rig
    cells = rig.inbox("batch.csv", range(1, 1 + batteries))
    assert rig.engine.start()
    for _ in range(400):
        served.scan()
        if ((currents(rig) > 0) & (rig.plant.current_a > 0)).any():
            break
    served.scan()
    return cells
