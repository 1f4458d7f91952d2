"""The bench's line (lines/bench.yaml, without a state dir: each test gives its own) and its
models, loaded once a module for the supervisor's tests."""

import dataclasses

import pytest

from edge import REPO_ROOT
from edge.supervisor.line import load_line
from edge.supervisor.models import load_line_models


@pytest.fixture(scope="module")
def line():
    return dataclasses.replace(load_line(REPO_ROOT / "lines" / "bench.yaml"), state_dir=None)


@pytest.fixture(scope="module")
def models(line):
    return load_line_models(line.models.soc_gan_dir, line.models.rl_policy_dir)
