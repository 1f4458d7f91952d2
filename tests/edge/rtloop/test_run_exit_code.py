"""`rtcore run`'s exit code says whether the safe values were written at the stop.

The user trial this came from: `hil serve --map M`, `rtcore run --map M --seconds 8 --json`,
`rtcore reset`, then `kill -9` the bench: the summary said `"safe_values_written": false` and the
exit code was 0. A stop whose safe values the PLC did not take leaves the outputs' state unknown:
the exit code is EXIT_SAFE_VALUES_NOT_WRITTEN (4), documented in the module docstring and in
`rtcore run --help`, and stderr says it in words. Every wait is a bounded poll.
"""

from __future__ import annotations

import json
import uuid

import pytest

from edge.cli import main
from edge.rtloop import cli as rtcore_cli
from edge.rtloop.link import LinkError, SupervisorSide

from .served import Proc, serve, wait_for

pytestmark = pytest.mark.hil

WAIT_S = 20.0


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "state"))


def test_a_stop_without_the_safe_values_written_exits_4(tmp_path):
    bench, aimed = serve(tmp_path, "hil_modbus.yaml")
    core = None
    side = None
    try:
        link = f"exit4-{uuid.uuid4().hex[:8]}"
        core = Proc(tmp_path, "core", "rtcore", "run", "--map", str(aimed), "--seconds", "6", "--json",
                    "--link", link, "--state-dir", str(tmp_path / "rt"))

        def ticking():
            nonlocal side
            try:
                side = side or SupervisorSide(link)
            except LinkError:
                return None
            status = side.read_status()
            return status is not None and status.alive and status.tick_count >= 3

        wait_for("the core ticking", ticking, WAIT_S, explain=core.tail)
        assert main(["rtcore", "reset", "--link", link]) == 0  # armed, as in the trial
        bench.kill()  # kill -9: the PLC is gone, nothing will take the safe values
        code = core.popen.wait(timeout=WAIT_S + 6)
    finally:
        if side is not None:
            side.close()
        for proc in (core, bench):
            if proc is not None:
                proc.kill()
    summary = json.loads(core.out())
    assert summary["safe_values_written"] is False and summary["link_lost_latches"] >= 1
    assert code == 4, core.err()  # was 0
    assert rtcore_cli.EXIT_SAFE_VALUES_NOT_WRITTEN == 4
    assert "the PLC did not take the safe values at the stop: the outputs' state is unknown" in core.err()
    assert "safe values NOT written" in (tmp_path / "rt" / "events.jsonl").read_text()


def test_the_exit_codes_are_in_the_help_and_the_docstring(capsys):
    with pytest.raises(SystemExit) as done:
        main(["rtcore", "run", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 stopped (--seconds, SIGTERM, SIGINT) with every output's safe value written" in text
    assert ("4 stopped, but the PLC did not take the safe values (gone or refusing): the outputs' state is "
            "unknown") in text
    docstring = " ".join(rtcore_cli.__doc__.split())
    assert "4 (`run`) stopped without its safe values written" in docstring
    assert [code for code, _ in rtcore_cli.RUN_EXIT_CODES] == [0, 1, 3, 4]
