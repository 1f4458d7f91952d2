"""The root conftest's rule: a test with no kind marker fails, a marked one runs; and every kind
the Makefile selects by selects tests of this suite. Tests: this file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge import REPO_ROOT

pytestmark = pytest.mark.integration  # each test runs pytest in a child process

INI = """[pytest]
addopts = -p no:cacheprovider --strict-markers
markers =
    unit: u
    integration: i
    equivalence: e
    contract: c
    hil: h
    bench: b
    slow: s
"""

SAMPLE = """import pytest

def test_unmarked():
    assert True

@pytest.mark.unit
def test_marked():
    assert True

class TestByClass:
    pytestmark = pytest.mark.hil

    def test_in_a_marked_class(self):
        assert True
"""


def run_pytest(folder, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", *args], cwd=folder, capture_output=True,
                          text=True, timeout=120)


def test_a_test_without_a_kind_fails_and_names_itself(tmp_path):
    (tmp_path / "conftest.py").write_text((REPO_ROOT / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    done = run_pytest(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "test_sample.py::test_unmarked: no kind marker; add `pytestmark = pytest.mark.<kind>` to test_sample.py" in done.stdout
    assert "ERROR test_sample.py::test_unmarked" in done.stdout
    assert "PASSED test_sample.py::test_marked" in done.stdout
    assert "PASSED test_sample.py::TestByClass::test_in_a_marked_class" in done.stdout
    assert "2 passed, 1 error" in done.stdout


def test_a_module_mark_covers_every_test_in_it(tmp_path):
    (tmp_path / "conftest.py").write_text((REPO_ROOT / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_sample.py").write_text("import pytest\npytestmark = pytest.mark.contract\n"
                                             + SAMPLE.replace("import pytest\n", ""))
    done = run_pytest(tmp_path)
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout


KINDS_OF_ITEMS = """
import json, sys
import pytest

class Kinds:
    def pytest_collection_finish(self, session):
        kinds = ("unit", "integration", "equivalence", "contract", "hil", "bench", "slow")
        print(json.dumps([sorted({m.name for m in i.iter_markers()} & set(kinds)) for i in session.items]))

sys.exit(pytest.main(["--collect-only", "-qq", "-p", "no:cacheprovider", "tests"], plugins=[Kinds()]))
"""


@pytest.fixture(scope="module")
def kinds_of_the_suite() -> list[list[str]]:
    done = subprocess.run([sys.executable, "-c", KINDS_OF_ITEMS], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("[[")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(lines[0])


@pytest.mark.parametrize("kind", ["unit", "contract", "hil", "bench", "slow"])
def test_each_make_target_selects_tests(kinds_of_the_suite, kind):
    """`make test-<kind>` selects by `-m <kind>`: each selects some tests and not every one."""
    selected = sum(kind in kinds for kinds in kinds_of_the_suite)
    assert 0 < selected < len(kinds_of_the_suite)
