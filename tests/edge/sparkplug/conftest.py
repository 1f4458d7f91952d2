"""Sparkplug B fixtures: a Mosquitto on 127.0.0.1 (tools/ensure_mosquitto.sh, a free port) and
snapshots of a line (`line_snapshot`)."""

from __future__ import annotations

import pytest

from tools.bench_sparkplug import MosquittoBroker


@pytest.fixture(scope="session")
def mosquitto_installed() -> str:
    try:
        return MosquittoBroker.ensure_installed()
    except RuntimeError as exc:  # not root and not installed: say why rather than fail obscurely
        pytest.skip(str(exc))


@pytest.fixture
def broker(mosquitto_installed, tmp_path):
    """A broker of this test's own (restart it with `broker.restart()`)."""
    with MosquittoBroker(tmp_path / "mosquitto") as b:
        yield b
