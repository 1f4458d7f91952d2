"""tools/demo.py --serve: what the demo prints of the supervisor's addresses (from OUT/supervisor.log),
each once: the page's line with the operator's token, OPC UA's when it comes up; a restarted
supervisor's new address printed again."""

from __future__ import annotations

import json

import pytest

from tools.demo import _announce, served_urls

pytestmark = pytest.mark.unit


def test_each_address_is_announced_once_and_again_only_when_it_changes(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "access.json").write_text(json.dumps({"operator": "tok-op", "engineer": "tok-en"}))
    log = tmp_path / "supervisor.log"
    log.write_text("--- start 1: run\ndischarge-edge run: operator page on http://127.0.0.1:8080/\n")
    seen: dict[str, str] = {}
    seen = _announce(served_urls(log), state, seen)
    with log.open("a") as f:
        f.write("discharge-edge run: OPC UA on opc.tcp://127.0.0.1:4840/\n")
    seen = _announce(served_urls(log), state, seen)
    seen = _announce(served_urls(log), state, seen)  # nothing new
    with log.open("a") as f:
        f.write("--- start 2: run\ndischarge-edge run: operator page on http://127.0.0.1:8081/\n"
                "discharge-edge run: OPC UA on opc.tcp://127.0.0.1:4840/\n")
    seen = _announce(served_urls(log), state, seen)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"discharge-edge demo: operator page http://127.0.0.1:8080/#token=tok-op (tokens: {state / 'access.json'})",
        "discharge-edge demo: OPC UA opc.tcp://127.0.0.1:4840/",
        f"discharge-edge demo: operator page http://127.0.0.1:8081/#token=tok-op (tokens: {state / 'access.json'})",
    ]
    assert seen == {"http": "http://127.0.0.1:8081/", "opcua": "opc.tcp://127.0.0.1:4840/"}


def test_a_free_port_is_chosen_once_for_every_supervisor_start():
    import socket

    from tools.demo import serve_ports

    http_port, opcua_port = serve_ports(0, 0)
    assert 1024 <= http_port <= 65535 and 1024 <= opcua_port <= 65535
    for port in (http_port, opcua_port):  # free: a restarted supervisor can listen there again
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    assert serve_ports(8080, 4840) == (8080, 4840)


def test_why_the_supervisor_ended_is_taken_from_its_last_start(tmp_path):
    from tools.demo import supervisor_said

    log = tmp_path / "supervisor.log"
    log.write_text("--- start 1: run\ndischarge-edge run: line demo, 8 stations\n"
                   "--- start 2: run\nINFO edge.bus.base: connected\n"
                   "ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 18080)\n"
                   "discharge-edge run: serve: the operator page could not listen on 127.0.0.1:18080 (uvicorn exit 3)\n")
    assert supervisor_said(log) == [
        "discharge-edge run: serve: the operator page could not listen on 127.0.0.1:18080 (uvicorn exit 3)"]
    assert supervisor_said(tmp_path / "none.log") == []
