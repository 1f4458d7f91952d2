"""Root conftest: every test says what kind it is, so that the Makefile's markers select real subsets.

A test with none of the kinds below fails at set-up, naming itself and the fix (a module's
`pytestmark = pytest.mark.<kind>`, or a decorator). The kinds are the markers registered in
pyproject.toml; `make test-unit`, `test-contract`, `test-hil`, `test-bench` and `test-slow` select them.
Tests: tests/test_markers.py.
"""

from __future__ import annotations

import pytest

KINDS = ("unit", "integration", "equivalence", "contract", "hil", "bench", "slow")


def test_kinds(item: pytest.Item) -> set[str]:
    """The kinds `item` is marked with (its own marks, its class's and its module's)."""
    return {mark.name for mark in item.iter_markers() if mark.name in KINDS}


test_kinds.__test__ = False  # a helper, not a test


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not test_kinds(item):
        pytest.fail(f"{item.nodeid}: no kind marker; add `pytestmark = pytest.mark.<kind>` to "
                    f"{item.path.name} (kinds: {', '.join(KINDS)})", pytrace=False)
