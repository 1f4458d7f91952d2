"""The line file is read bounded (edge/supervisor/line.py through
`edge.tagmap.checker.read_bounded_text`): a FIFO, /dev/zero, a directory and a file over 2 MiB
are refused at once, naming the file, by `load_line` and by both commands that take `--line`
(`run --line`, `rtcore run --line`), which used to block on a FIFO and read /dev/zero until memory
ran out. Each call runs on a thread joined with a bound, so a regression fails instead of hanging."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from edge.cli import main
from edge.tagmap.checker import MAX_YAML_BYTES
from edge.supervisor.line import LineError, load_line

pytestmark = pytest.mark.unit

BOUND_S = 20.0  # far above the milliseconds a refusal takes; a blocked read never returns


def bounded(call):
    """call() on a daemon thread; its result or exception, AssertionError when it has not ended."""
    out: dict = {}

    def run():
        try:
            out["value"] = call()
        except BaseException as exc:  # handed back to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(BOUND_S)
    assert not thread.is_alive(), f"still reading after {BOUND_S:g} s"
    if "error" in out:
        raise out["error"]
    return out["value"]


def refusal(path: Path) -> str:
    with pytest.raises(LineError) as err:
        bounded(lambda: load_line(path))
    (problem,) = err.value.problems
    return str(problem)


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "line.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_blocking(fifo):
    assert refusal(fifo) == f"{fifo}:0: the file: not a regular file (a FIFO); a tag map or line file is a " \
                            "regular file, and nothing else is read"


def test_dev_zero_is_refused_without_reading_it():
    assert refusal(Path("/dev/zero")) == ("/dev/zero:0: the file: not a regular file (a character device); a tag map "
                                          "or line file is a regular file, and nothing else is read")


def test_a_directory_is_refused(tmp_path):
    assert refusal(tmp_path) == (f"{tmp_path}:0: the file: not a regular file (a directory); a tag map or line "
                                 "file is a regular file, and nothing else is read")


def test_a_file_over_the_bound_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    assert refusal(path) == f"{path}:0: the file: {MAX_YAML_BYTES + 1} bytes; the limit is {MAX_YAML_BYTES} bytes"


def test_a_file_at_the_bound_is_read(tmp_path):
    path = tmp_path / "comment.yaml"
    path.write_bytes(b"#" * (MAX_YAML_BYTES - 1) + b"\n")  # only a comment: read whole, then empty
    assert refusal(path).endswith(":1: the file: empty; a line file needs name, maps, stations, channels, fixture, "
                                  "routes, limits")


@pytest.mark.parametrize("argv", [["run", "--line"], ["rtcore", "run", "--line"]], ids=["run", "rtcore-run"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_both_commands_refuse_a_fifo_and_dev_zero_with_exit_1(argv, kind, fifo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "rtstate"))
    path = fifo if kind == "fifo" else Path("/dev/zero")
    assert bounded(lambda: main(argv + [str(path)])) == 1
    err = capsys.readouterr().err
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert f"{path}:0: the file: not a regular file ({what})" in err
    assert "Traceback" not in err
