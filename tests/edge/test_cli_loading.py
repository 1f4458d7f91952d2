"""The command line loads only the command it runs (edge/cli.py build_parser), and --json is one write."""

import io
import json
import os
import subprocess
import sys

import pytest

from edge import REPO_ROOT
from edge.cli import _command_in, build_parser, print_json

pytestmark = pytest.mark.unit


def test_the_command_is_the_first_word_that_is_not_an_option():
    assert _command_in(["-v", "grade", "--cells", "x.csv"]) == "grade"
    assert _command_in(["--help"]) is None and _command_in([]) is None


def test_one_command_registers_alone_and_help_or_an_unknown_word_registers_all():
    def names(parser):
        return set(parser._subparsers._group_actions[0].choices)

    every = names(build_parser())
    assert {"grade", "run", "tags", "demo"} <= every
    assert names(build_parser("grade")) == {"grade"}
    assert names(build_parser("nosuch")) == every


def test_running_grade_does_not_import_the_other_commands_modules():
    code = ("import sys; from edge.cli import build_parser; build_parser('grade').parse_args(['grade', '--help'])")
    probe = ("import sys, runpy\n"
             "try:\n"
             f"    exec({code!r})\n"
             "except SystemExit:\n"
             "    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('edge.supervisor', 'tools', 'ortools', "
             "'edge.hmi', 'asyncua'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_print_json_writes_one_object_in_one_write(monkeypatch):
    writes = []

    class Out(io.StringIO):
        def write(self, text):
            writes.append(text)
            return super().write(text)

    out = Out()
    monkeypatch.setattr(sys, "stdout", out)
    print_json({"batteries": list(range(1000)), "peak_temp_degc": 41.5})
    assert len(writes) == 1
    assert json.loads(out.getvalue()) == {"batteries": list(range(1000)), "peak_temp_degc": 41.5}


def test_grade_runs_numpy_with_one_blas_thread_and_other_commands_keep_theirs():
    probe = ("import os, sys\n"
             "os.environ.pop('OPENBLAS_NUM_THREADS', None)\n"
             "from edge.cli import main\n"
             "try:\n"
             "    main([sys.argv[1], '--cells', 'nowhere.csv'])\n"
             "except SystemExit:\n"
             "    pass\n"
             "print(os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    for command, want in (("grade", "1"), ("plan", "None")):
        done = subprocess.run([sys.executable, "-c", probe, command], capture_output=True, text=True, cwd=REPO_ROOT,
                              timeout=120, env={k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"})
        assert done.stdout.split()[0] == want, (command, done.stdout, done.stderr)


def test_own_commands_are_read_from_the_distribution_as_importlib_metadata_lists_them():
    from importlib.metadata import entry_points

    from edge.cli import COMMAND_GROUP, _own_command

    listed = {ep.name: ep.value for ep in entry_points(group=COMMAND_GROUP)}
    assert len(listed) >= 15
    for name, target in listed.items():
        assert _own_command(name) == (name, target)
    assert _own_command("nosuch") is None


def test_running_a_command_does_not_import_importlib_metadata():
    probe = ("import sys\n"
             "from edge.cli import build_parser\n"
             "build_parser('tags')\n"
             "print('importlib.metadata' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_an_entry_point_whose_module_or_function_is_missing_is_a_command_that_names_it(tmp_path, monkeypatch, capsys):
    from edge import cli

    info = tmp_path / "discharge_edge-9.9.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[discharge_edge.commands]\n"
                                           "gone = edge.no_such_module:register\n"
                                           "typo = edge.grading.cli:registr\n", encoding="utf-8")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    for name, cause in (("gone", "edge.no_such_module"), ("typo", "registr")):
        args = cli.build_parser(name).parse_args([name])
        assert args.func(args) == 2
        assert cause in capsys.readouterr().err
