"""The serve section and the tokens file (edge/lineview/serve.py): defaults, every problem listed
with file and key, the port options over the section, the access file made 0600 with random
tokens, refused when loose, tokens to roles."""

from __future__ import annotations

import json
import os
import types

import pytest

from edge.lineview.model import Role
from edge.lineview.serve import Endpoint, ServeError, load_access, parse_serve, serve_config

pytestmark = pytest.mark.unit


def test_no_section_serves_nothing_and_options_serve_on_loopback():
    assert not parse_serve(None).any and not parse_serve({}).any
    line = types.SimpleNamespace(source="l.yaml")  # a LineConfig before line.py has serve
    assert not serve_config(line).any
    c = serve_config(line, http_port=0, opcua_port=4841)
    assert c.http == Endpoint("127.0.0.1", 0) and c.opcua == Endpoint("127.0.0.1", 4841)


def test_the_section_and_the_options_over_it():
    line = types.SimpleNamespace(source="l.yaml", serve={"http": {"host": "0.0.0.0", "port": 9000}, "opcua": True,
                                                         "access": "tokens.json", "sparkplug": {"broker": "x"}})
    c = serve_config(line)
    assert c.http == Endpoint("0.0.0.0", 9000) and c.opcua == Endpoint("127.0.0.1", 4840)
    assert c.sparkplug == {"broker": "x"} and str(c.access_file) == "tokens.json"
    assert serve_config(line, http_port=8081).http == Endpoint("0.0.0.0", 8081)
    c = parse_serve({"opcua": {"port": 4850, "security": "Basic256Sha256"}})
    assert c.opcua == Endpoint("127.0.0.1", 4850) and c.opcua_options == {"security": "Basic256Sha256"}
    assert c.http is None


def test_every_problem_is_listed_with_file_and_key():
    with pytest.raises(ServeError) as e:
        parse_serve({"http": {"host": "localhost", "port": 70000, "tls": 1}, "web": 1, "sparkplug": 3}, "l.yaml")
    text = str(e.value)
    for part in ("l.yaml: serve.web: unknown key", "serve.http.host: is 'localhost'", "serve.http.port: is 70000",
                 "serve.http.tls: unknown key", "serve.sparkplug: is 3"):
        assert part in text


def test_the_access_file(tmp_path):
    a = load_access(tmp_path)
    path = tmp_path / "access.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    tokens = json.loads(path.read_text())
    assert set(tokens) == {"operator", "engineer"} and tokens["operator"] != tokens["engineer"]
    assert a.role_of(tokens["operator"]) is Role.OPERATOR and a.role_of(tokens["engineer"]) is Role.ENGINEER
    assert a.role_of("x" * 32) is None and a.role_of(None) is None and a.role_of("") is None
    assert load_access(tmp_path).tokens == tokens  # kept, not made again
    os.chmod(path, 0o644)
    with pytest.raises(ServeError, match="mode 0644"):
        load_access(tmp_path)
    os.chmod(path, 0o600)
    path.write_text('{"operator": "short"}')
    with pytest.raises(ServeError, match="at least 16"):
        load_access(tmp_path)
    with pytest.raises(ServeError, match="missing"):
        load_access(tmp_path / "none", create=False)


def test_a_line_files_serve_section_with_its_lines(tmp_path):
    import yaml

    from edge.supervisor.line import load_line
    from tools.demo import MAPS, write_line_file

    path = write_line_file(tmp_path, MAPS["modbus"], "link-x", tmp_path / "state")
    text = path.read_text() + ("serve:\n  http: {host: 127.0.0.1, port: 8081}\n  opcua:\n    port: 4841\n"
                               "    anonymous: false\n")
    path.write_text(text)
    c = serve_config(load_line(path))
    assert c.http == Endpoint("127.0.0.1", 8081) and c.opcua == Endpoint("127.0.0.1", 4841)
    assert c.opcua_options == {"anonymous": False}
    lines = text.splitlines()
    path.write_text(text.replace("port: 8081", "port: http").replace("serve:\n", "serve:\n  web: 1\n"))
    with pytest.raises(ServeError) as e:
        serve_config(load_line(path))
    n_serve = lines.index("serve:") + 1
    assert f"{path}:{n_serve + 1}: serve.web: unknown key" in str(e.value)
    assert f"{path}:{n_serve + 2}: serve.http.port: is 'http'" in str(e.value)
    assert yaml.safe_load(path.read_text())["serve"]["web"] == 1


def test_serve_http_takes_the_operator_pages_address():
    page = types.SimpleNamespace(host="10.0.0.5", port=9000)
    line = types.SimpleNamespace(source="l.yaml", operator_page=page, serve={"http": True})
    assert serve_config(line).http == Endpoint("10.0.0.5", 9000)
    line.serve = {"http": {"port": 9100}}
    assert serve_config(line).http == Endpoint("10.0.0.5", 9100)
    line.serve = {}
    assert serve_config(line).http is None and not serve_config(line).any  # operator_page alone serves nothing
    assert serve_config(line, http_port=0).http == Endpoint("10.0.0.5", 0)
