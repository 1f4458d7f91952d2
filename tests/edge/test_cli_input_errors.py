"""Every `discharge-edge` subcommand given a bad file: missing, empty, wrong columns (or keys), not
UTF-8, a directory. Each ends with one clear message naming the file (and the line or field where
the reader knows it) and the command's documented exit code, never a traceback (issue 17; the one
path is edge.cli: `input_error`, `refuse_input`, `read_input`, `InputError`)."""

from __future__ import annotations

import pytest

from edge import REPO_ROOT
from edge.cli import InputError, input_error, main, read_input

pytestmark = pytest.mark.integration

SHARED = REPO_ROOT.parent / "shared"
CELLS = SHARED / "data" / "cells_train.csv"
PAPER = SHARED / "scheduling" / "paper_instance.json"
HIL_MAP = REPO_ROOT / "plc_tags" / "hil_modbus.yaml"

KINDS = ("missing", "empty", "wrong_columns", "not_utf8", "directory")
BODY = {"csv": "a,b\n1,2\n", "json": '{"foo": 1}\n', "yaml": "foo: 1\n"}


def _bad_file(tmp_path, kind: str, ext: str):
    path = tmp_path / f"{kind}.{ext}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong_columns":
        path.write_text(BODY[ext])
    elif kind == "not_utf8":
        first = CELLS.read_bytes().split(b"\n", 1)[0] if ext == "csv" else b"ok"
        path.write_bytes(first + b"\n\xff\xfe\x00 caf\xe9\n")  # the bad byte on line 2
    elif kind == "directory":
        path.mkdir()
    return path


# command -> (argv with {} for the file, the file's extension, documented exit code, what the
# message says per kind)
COMMANDS = {
    "tags_check": (["tags", "check", "{}"], "yaml", 1, {
        "missing": "cannot read: No such file", "empty": ":1: empty file", "wrong_columns": "missing top-level key",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "not a regular file (a directory)"}),
    "schedule_instance": (["schedule", "{}", "--time-limit", "1"], "json", 1, {
        "missing": "cannot read: No such file", "empty": "not JSON", "wrong_columns": "modules: required field missing",
        "not_utf8": "not UTF-8", "directory": "cannot read: Is a directory"}),
    "schedule_running": (["schedule", str(PAPER), "--time-limit", "1", "--running", "{}", "--now-min", "0"], "json", 1, {
        "missing": "cannot read: No such file", "empty": "not JSON", "wrong_columns": "expected a list of channels",
        "not_utf8": "not UTF-8", "directory": "cannot read: Is a directory"}),
    "grade_cells": (["grade", "--cells", "{}"], "csv", 2, {
        "missing": "cannot open: No such file", "empty": "empty file", "wrong_columns": ":1: no 'cell_id' column",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "plan_cells": (["plan", "--cells", "{}", "--no-policy"], "csv", 2, {
        "missing": "cannot open: No such file", "empty": "empty file", "wrong_columns": ":1: no 'cell_id' column",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "bench_discharge_cells": (["bench", "discharge", "--cells", "{}"], "csv", 2, {
        "missing": "cannot open: No such file", "empty": "empty file", "wrong_columns": ":1: no 'cell_id' column",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "hil_serve_map": (["hil", "serve", "--map", "{}", "--seconds", "0.1", "--port", "0"], "yaml", 1, {
        "missing": "cannot read: No such file", "empty": ":1: empty file", "wrong_columns": "missing top-level key",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "not a regular file (a directory)"}),
    "hil_serve_cells": (["hil", "serve", "--map", str(HIL_MAP), "--cells", "{}", "--seconds", "0.1", "--port", "0"],
                        "csv", 2, {
        "missing": "cannot open: No such file", "empty": "empty file", "wrong_columns": ":1: no 'cell_id' column",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "rtcore_run_map": (["rtcore", "run", "--map", "{}", "--seconds", "0.1", "--link", "inputerr17"], "yaml", 1, {
        "missing": "cannot read: No such file", "empty": ":1: empty file", "wrong_columns": "missing top-level key",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "not a regular file (a directory)"}),
    "tags_import_kepware": (["tags", "import", "kepware", "{}", "--out", "map.yaml"], "csv", 2, {
        "missing": "cannot open: No such file", "empty": ":1: empty file", "wrong_columns": ":1: no 'Tag Name' column",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "tags_import_studio5000": (["tags", "import", "studio5000", "{}", "--out", "map.yaml"], "csv", 2, {
        "missing": "cannot open: No such file", "empty": ":1: empty file", "wrong_columns": ":1: no 'TYPE,SCOPE,NAME",
        "not_utf8": ":2: not UTF-8 text (byte 0xff", "directory": "cannot open: Is a directory"}),
    "run_line": (["run", "--line", "{}"], "yaml", 1, {
        "missing": "cannot read: No such file", "empty": ":1: the file: empty", "wrong_columns": "missing",
        "not_utf8": ":2: the file: not UTF-8 text (byte 0xff", "directory": "not a regular file (a directory)"}),
}

NOT_YET: dict[tuple[str, str], str] = {}  # (command, kind) -> why a case cannot pass yet (strict xfail)


def _cases():
    for command in COMMANDS:
        for kind in KINDS:
            marks = [pytest.mark.xfail(strict=True, reason=NOT_YET[command, kind])] if (command, kind) in NOT_YET else []
            yield pytest.param(command, kind, id=f"{command}-{kind}", marks=marks)


@pytest.mark.parametrize("command, kind", list(_cases()))
def test_bad_input_file_is_one_clear_message_and_the_documented_exit_code(command, kind, tmp_path, monkeypatch,
                                                                            capsys, caplog):
    monkeypatch.chdir(tmp_path)  # anything written by mistake lands here, not in the repo
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "rtstate"))
    argv, ext, code, says = COMMANDS[command]
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / f"missing.{ext}" if kind == "missing" else _bad_file(tmp_path / "in", kind, ext)
    assert main([a.replace("{}", str(path)) for a in argv]) == code
    out, err = capsys.readouterr()
    text = out + err + caplog.text  # rtcore run logs its refusal (stderr and its rtcore.log)
    assert str(path) in text, text
    assert says[kind] in text, text
    assert "Traceback" not in text
    assert not (tmp_path / "state").exists()  # refused before anything is written (plan, bench: the history)


def test_read_input_turns_every_reader_error_into_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"a\nb\n\xe9\n")
    with pytest.raises(InputError, match=r"x\.txt:3: not UTF-8 text \(byte 0xe9 at offset 4\)") as exc:
        read_input(path, lambda p: p.read_text(encoding="utf-8"))
    assert exc.value.exit_code == 2
    with pytest.raises(InputError, match=r"nowhere\.txt: cannot open: No such file or directory"):
        read_input(tmp_path / "nowhere.txt", lambda p: p.read_text())
    with pytest.raises(InputError, match=r"^y: bad field 'z'$"):
        read_input("y", lambda p: (_ for _ in ()).throw(ValueError("bad field 'z'")))


def test_input_error_does_not_name_the_file_twice(tmp_path):
    assert input_error(tmp_path / "c.csv", ValueError(f"{tmp_path / 'c.csv'}:4: column x")) == f"{tmp_path / 'c.csv'}:4: column x"


def test_an_input_error_raised_under_a_command_ends_in_main_with_its_message_and_code(monkeypatch, capsys):
    import edge.grading.cli as grading_cli

    def broken(_args):
        raise InputError("f.csv:3: column feat_v_rest_V: refused", exit_code=2)

    monkeypatch.setattr(grading_cli, "run", broken)
    assert main(["grade", "--cells", "f.csv"]) == 2
    assert capsys.readouterr().err == "discharge-edge grade: f.csv:3: column feat_v_rest_V: refused\n"


def test_a_reader_that_closes_the_pipe_ends_the_command_quietly():
    """`discharge-edge grade ... --json | head -c 1` (far more than a pipe's buffer): no traceback."""
    import subprocess
    import sys

    from edge import REPO_ROOT

    cells = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
    script = f"{sys.executable} -m edge.cli grade --cells {cells} --json | head -c 1"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout == "{"
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
