"""Headless Chromium for the tests that look at a page (the report, the operator page), installed
or found through the project's own tools/ensure_chromium.sh."""

from __future__ import annotations

import subprocess

import pytest

from edge import REPO_ROOT


def headless_chromium() -> str:
    """The Chromium binary's path; skips the test when none can be had on this machine."""
    done = subprocess.run(["bash", str(REPO_ROOT / "tools" / "ensure_chromium.sh")], capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        pytest.skip(f"no headless Chromium: {done.stderr.strip()[-300:]}")
    return done.stdout.strip().splitlines()[-1]
