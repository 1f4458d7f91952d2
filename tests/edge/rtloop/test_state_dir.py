"""`rtcore run` keeps to its state dir: ./state/rtcore by default, never the home directory (issue 17)."""

from __future__ import annotations

import pytest

from edge.cli import main

pytestmark = pytest.mark.unit


def test_rtcore_run_without_state_dir_writes_under_the_working_directory_never_home(tmp_path, monkeypatch, capsys):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DISCHARGE_EDGE_STATE_DIR", raising=False)
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.chdir(work)
    bad_map = work / "empty.yaml"
    bad_map.write_text("")
    assert main(["rtcore", "run", "--map", str(bad_map), "--seconds", "0.1", "--link", "statedir17"]) == 1
    assert (work / "state" / "rtcore" / "rtcore.log").is_file()  # the log of the refused start
    assert "empty file" in (work / "state" / "rtcore" / "rtcore.log").read_text()
    assert list(home.iterdir()) == []
