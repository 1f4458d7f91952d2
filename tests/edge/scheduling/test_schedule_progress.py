"""`schedule`'s progress: a bar over its time budget on stderr; none under --json unless --progress."""

import json

import pytest

from edge.cli import main

pytestmark = pytest.mark.unit


def test_text_output_shows_the_budget_bar_on_stderr(paper_path, capsys):
    assert main(["schedule", str(paper_path), "--method", "aco", "--time-limit", "1"]) == 0
    out = capsys.readouterr()
    assert "schedule aco" in out.err and " s [left " in out.err
    assert "schedule aco" not in out.out and "method aco" in out.out


def test_json_is_quiet_on_stderr_unless_progress_is_asked(paper_path, capsys):
    assert main(["schedule", str(paper_path), "--json", "--method", "aco", "--time-limit", "1"]) == 0
    quiet = capsys.readouterr()
    assert json.loads(quiet.out)["method"] == "aco" and "schedule aco" not in quiet.err
    assert main(["schedule", str(paper_path), "--json", "--progress", "--method", "aco", "--time-limit", "1"]) == 0
    asked = capsys.readouterr()
    assert json.loads(asked.out)["method"] == "aco" and "schedule aco" in asked.err
