"""The Logix bus calls a late answer a timeout whichever clock runs out first: ours or the driver's socket."""

from __future__ import annotations

import socket

import pytest
from pycomm3.exceptions import CommError

from edge.bus import Backoff, BusTimeout, open_bus
from edge.bus.logix import _caused_by_timeout
from edge.tagmap import Owner, load_tag_map
from tools.hil.server_logix import LogixPlcServer

from .conftest import HERE


def pycomm3_style(cause: BaseException) -> CommError:
    """The chain pycomm3 raises: CommError('failed to receive reply') from CommError(...) from cause."""
    try:
        try:
            try:
                raise cause
            except OSError as err:
                raise CommError("socket connection broken") from err
        except CommError as err:
            raise CommError("failed to receive reply") from err
    except CommError as err:
        return err


@pytest.mark.unit
def test_a_socket_timeout_anywhere_in_the_chain_is_a_timeout():
    assert _caused_by_timeout(pycomm3_style(socket.timeout("timed out")))
    assert not _caused_by_timeout(pycomm3_style(ConnectionResetError("reset by peer")))
    assert not _caused_by_timeout(CommError("cannot open a session"))


@pytest.mark.contract
def test_the_driver_socket_timing_out_first_still_reads_as_a_timeout():
    server = LogixPlcServer(load_tag_map(HERE / "contract_logix.yaml"))
    bus = open_bus(server.tag_map, Owner.RTCORE, backoff=Backoff(initial_s=0.05, cap_s=0.4))
    try:
        assert bus.read(["counter"])[0].quality.name == "GOOD"
        bus._driver._sock.sock.settimeout(0.02)  # far inside the map's 0.3 s deadline
        server.delay_s = 1.0
        with pytest.raises(BusTimeout, match="socket timeout"):
            bus.read(["counter"])
    finally:
        server.delay_s = 0.0
        bus.close()
        server.close()
