"""deploy/: the two systemd units pass `systemd-analyze verify` (no message about them at all: it
exits 0 on a bad key and only says so), their ExecStart lines parse as discharge-edge commands with
the config file's values, and the supervisor is ordered after the core it requires."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge import REPO_ROOT

pytestmark = pytest.mark.unit

DEPLOY = REPO_ROOT / "deploy"
UNITS = ("discharge-edge-rtcore.service", "discharge-edge-supervisor.service")
INSTALLED_BIN = "/opt/discharge-edge/.venv/bin/discharge-edge"
INSTALLED_CONF = "/etc/discharge-edge/discharge-edge.conf"


def local_copies(tmp_path: Path, edit=lambda text: text) -> list[Path]:
    """The units with this checkout's program and config file (verify checks that ExecStart exists)."""
    program = Path(sys.executable).with_name("discharge-edge")
    paths = []
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace(INSTALLED_BIN, str(program)).replace(
            INSTALLED_CONF, str(DEPLOY / "discharge-edge.conf"))
        path = tmp_path / name
        path.write_text(edit(text))
        paths.append(path)
    return paths


def verify(paths: list[Path]) -> str:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian: apt-get install systemd)")
    done = subprocess.run([analyze, "verify", "--man=no", *map(str, paths)], capture_output=True, text=True,
                          timeout=60)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if any(p.name in line for p in paths)]
    assert done.returncode == 0 or ours, done.stderr
    return "\n".join(ours)


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    assert verify(local_copies(tmp_path)) == ""


def test_verify_would_catch_a_bad_key(tmp_path):
    messages = verify(local_copies(tmp_path, lambda text: text.replace("Type=notify", "Type=notyfy")))
    assert "Failed to parse service type" in messages


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read_string((DEPLOY / name).read_text())
    return parser


def config() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "discharge-edge.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def exec_argv(name: str) -> list[str]:
    """ExecStart as systemd expands it: ${X} as one word, $X split at spaces (an empty one: no word)."""
    values = config()
    words = []
    for word in shlex.split(unit(name)["Service"]["ExecStart"]):
        if word.startswith("$") and not word.startswith("${"):
            words += values[word[1:]].split()
            continue
        for key, value in values.items():
            word = word.replace("${" + key + "}", value)
        assert "$" not in word, f"{name}: ExecStart uses {word}, which the config file does not set"
        words.append(word)
    return words


@pytest.mark.parametrize("name, command", [(UNITS[0], ["rtcore", "run"]), (UNITS[1], ["run"])])
def test_exec_start_is_a_discharge_edge_command_with_the_config_files_values(name, command):
    from edge.cli import build_parser

    argv = exec_argv(name)
    assert argv[0] == INSTALLED_BIN
    args = build_parser().parse_args(argv[1:])
    assert [args.command] + ([args.rtcore_command] if command[0] == "rtcore" else []) == command
    assert str(args.line) == config()["DISCHARGE_EDGE_LINE"]
    expected_state = Path(config()["DISCHARGE_EDGE_STATE"]) / ("rtcore" if command[0] == "rtcore" else "")
    assert args.state_dir == expected_state


def test_the_supervisor_starts_after_the_core_it_requires_both_notify_with_a_watchdog():
    core, supervisor = unit(UNITS[0]), unit(UNITS[1])
    assert UNITS[0] in supervisor["Unit"]["Requires"].split() and UNITS[0] in supervisor["Unit"]["After"].split()
    for u in (core, supervisor):
        assert u["Service"]["Type"] == "notify" and u["Service"]["WatchdogSec"].endswith("s")
        assert u["Service"]["EnvironmentFile"] == INSTALLED_CONF
    assert core["Service"]["LimitMEMLOCK"] == "infinity" and int(core["Service"]["LimitRTPRIO"]) >= 50
    assert core["Service"]["Restart"] == "always"
