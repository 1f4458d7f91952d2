"""tools/plan_env.py: the RL environment process evaluates requested strategies and writes 'rl' records."""

import io
import json
import sys

from edge import REPO_ROOT
from edge.strategy.history import History
from edge.strategy.model import Strategy
from tools.plan_env import main

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def test_env_evaluates_and_writes_back(tmp_path, monkeypatch, capsys):
    requests = [{"tier": 1, "strategy": Strategy().to_dict()},
                {"tier": 1, "strategy": Strategy(segments=((0, 1.0),)).to_dict()}]
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(requests)))
    rc = main(["--cells", str(CELLS), "--limit", "3", "--tiers", "1", "--history", str(tmp_path / "h.sqlite")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)["results"]
    assert len(out) == 2 and out[0]["metrics"]["batch_time_s"] < out[1]["metrics"]["batch_time_s"]
    with History(tmp_path / "h.sqlite") as h:
        assert [r.source for r in h.all()] == ["rl", "rl"]


def test_env_refuses_a_bad_strategy_naming_the_request(tmp_path, monkeypatch, capsys):
    bad = {**Strategy().to_dict(), "pressure_kpa": 900.0}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps([{"tier": 1, "strategy": bad}])))
    rc = main(["--cells", str(CELLS), "--limit", "3", "--tiers", "1", "--history", str(tmp_path / "h.sqlite")])
    assert rc == 2 and "request 0.pressure_kpa" in capsys.readouterr().err
