"""`run` checks the serve: section's OPC UA and Sparkplug options with the line file, before it
loads models or opens a store (edge/supervisor/cli.py _check_serve_options)."""

import pytest

from edge import REPO_ROOT
from edge.cli import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("serve, says", [
    ("  opcua: {port: 0, anonymus: true}\n", "serve.opcua.anonymus: unknown key"),
    ("  sparkplug: {broker: mqtt://127.0.0.1:1883, grup: plant}\n", "serve.sparkplug.grup: unknown key"),
])
def test_a_misspelt_serve_option_is_refused_naming_the_line_file_before_anything_starts(tmp_path, capsys, serve,
                                                                                         says):
    text = (REPO_ROOT / "lines" / "bench.yaml").read_text()
    text = text.replace("state_dir: ../build/state/hil-bench", f"state_dir: {tmp_path / 'state'}")
    text = text.replace("../", f"{REPO_ROOT}/")
    path = tmp_path / "line.yaml"
    path.write_text(text + "\nserve:\n" + serve)
    assert main(["run", "--line", str(path), "--until-idle"]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and says in err, err
    assert not (tmp_path / "state").exists()  # refused before the store or the access file is made


def test_sparkplug_ids_from_the_command_line_go_over_the_line_files_and_need_a_broker():
    import argparse

    from edge.lineview.serve import ServeConfig
    from edge.supervisor.cli import _with_sparkplug_ids

    args = argparse.Namespace(sparkplug_node="line-b", sparkplug_primary_host="plant-host")
    config = _with_sparkplug_ids(ServeConfig(sparkplug={"broker": "mqtt://127.0.0.1:1883", "node": "line-a"}), args)
    assert config.sparkplug == {"broker": "mqtt://127.0.0.1:1883", "node": "line-b", "primary_host": "plant-host"}
    with pytest.raises(ValueError, match="need a broker"):
        _with_sparkplug_ids(ServeConfig(), args)
    untouched = ServeConfig(sparkplug={"broker": "mqtt://127.0.0.1:1883"})
    assert _with_sparkplug_ids(untouched, argparse.Namespace(sparkplug_node=None, sparkplug_primary_host=None)) \
        is untouched
