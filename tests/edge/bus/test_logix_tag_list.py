"""The Logix backend checks the map against the PLC's uploaded tag list and refreshes it."""

from __future__ import annotations

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import DataType, Owner, load_tag_map
from tools.hil.server_logix import LogixPlcServer

from .conftest import HERE

pytestmark = pytest.mark.contract

EXTRA = """\
  - name: late_tag
    address: LateTag
    type: DINT
    access: read
    owner: rtcore
    unit: ""
    scan_group: fast
"""


@pytest.fixture
def served():
    server = LogixPlcServer(load_tag_map(HERE / "contract_logix.yaml"))
    yield server
    server.close()


def client_map(served, tmp_path, text):
    path = tmp_path / "client.yaml"
    path.write_text(text)
    return load_tag_map(path).with_endpoint("127.0.0.1", served.port)


def test_a_type_mismatch_reads_bad_type_and_is_never_written(served, tmp_path):
    text = (HERE / "contract_logix.yaml").read_text()
    text = text.replace("address: Heartbeat\n    type: DINT", "address: Heartbeat\n    type: REAL")
    with open_bus(client_map(served, tmp_path, text), Owner.RTCORE) as bus:
        assert bus.read(["heartbeat"])[0].quality is Quality.BAD_TYPE
        assert bus.write({"heartbeat": 5.0})[0].quality is Quality.BAD_TYPE
        assert bus.remote_problems() == ["heartbeat: PLC tag 'Heartbeat' is DINT, the map says REAL"]
    assert served.get("heartbeat") == 0


def test_a_tag_added_by_a_program_download_is_found_on_refresh(served, tmp_path):
    text = (HERE / "contract_logix.yaml").read_text() + EXTRA
    with open_bus(client_map(served, tmp_path, text), Owner.RTCORE, tag_list_refresh_s=3600.0) as bus:
        assert bus.read(["late_tag"])[0].quality is Quality.BAD_TYPE
        assert bus.remote_problems() == ["late_tag: PLC has no tag 'LateTag'"]
        served.add_plc_tag("LateTag", DataType.DINT)
        assert bus.read(["late_tag"])[0].quality is Quality.BAD_TYPE  # the cached list is still old
        assert bus.remote_problems() == []  # an explicit check uploads it again
        assert bus.read(["late_tag"])[0].quality is Quality.GOOD


def test_the_tag_list_is_uploaded_again_after_its_refresh_period(served, tmp_path):
    text = (HERE / "contract_logix.yaml").read_text() + EXTRA
    with open_bus(client_map(served, tmp_path, text), Owner.RTCORE, tag_list_refresh_s=0.0) as bus:
        assert bus.read(["late_tag"])[0].quality is Quality.BAD_TYPE
        served.add_plc_tag("LateTag", DataType.DINT)
        assert bus.read(["late_tag"])[0].quality is Quality.GOOD


def test_a_long_tag_list_uploads_whole_across_pages(served, tmp_path):
    for i in range(60):  # about ten tags fit one reply: this takes several pages
        served.add_plc_tag(f"Extra_Tag_Number_{i}", DataType.DINT)
    text = (HERE / "contract_logix.yaml").read_text() + EXTRA.replace("LateTag", "Extra_Tag_Number_59")
    with open_bus(client_map(served, tmp_path, text), Owner.RTCORE) as bus:
        assert bus.remote_problems() == []
        assert len(bus._plc_tags) == 9 + 60
