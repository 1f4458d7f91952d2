"""Every "Tests:" pointer in a module docstring names a test file or folder that exists.

A pointer is the text after "Tests:" up to the end of its paragraph. In it, a path starting with
tests/ stands for itself; a bare test_*.py or conftest.py lies in the folder of the path before it
("Tests: tests/edge/bus/test_contract.py, test_request_plan.py"). Tests: this file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rtcore", "edge", "models", "tools")
NAME = re.compile(r"(?<![\w/.])((?:tests/[\w./-]*)|(?:test_\w+\.py)|(?:conftest\.py))")

pytestmark = pytest.mark.unit

def pointers(docstring: str) -> list[str]:
    """The test paths a docstring's "Tests:" paragraphs name, relative to the repository."""
    found = []
    for match in re.finditer(r"Tests?:(.*?)(?:\n\s*\n|\Z)", docstring, flags=re.S):
        folder = None
        for name in NAME.findall(match.group(1)):
            name = name.rstrip(".,;:)")
            if name.startswith("tests/"):
                found.append(name)
                folder = name if name.endswith("/") else name.rpartition("/")[0] + "/"
            elif folder is not None:
                found.append(folder + name)
    return found


def docstrings(root: Path = ROOT) -> list[tuple[Path, str]]:
    out = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            doc = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
            if doc and "Tests" in doc:
                out.append((path, doc))
    out.append((root / "conftest.py", ast.get_docstring(ast.parse((root / "conftest.py").read_text())) or ""))
    return out


def test_pointers_read_paths_folders_and_names_beside_them():
    doc = ("Owns x.\nTests: tests/edge/bus/test_contract.py, test_request_plan.py (limits),\n"
           "tests/edge/ (all) and base.py is not one.\n\nLater: tests/not/this.py")
    assert pointers(doc) == ["tests/edge/bus/test_contract.py", "tests/edge/bus/test_request_plan.py", "tests/edge/"]
    assert pointers("Tests: this file.") == []


def stale_pointers() -> set[tuple[str, str]]:
    return {(str(path.relative_to(ROOT)), name) for path, doc in docstrings()
            for name in pointers(doc) if not (ROOT / name).exists()}


def test_every_pointer_exists():
    stale = sorted(stale_pointers())
    assert not stale, "stale Tests: pointers:\n" + "\n".join(f"{module}: {name}" for module, name in stale)


def test_the_modules_say_where_their_tests_are():
    """The rule is kept: most modules point at their tests (a floor that catches the parser going blind)."""
    assert sum(bool(pointers(doc)) for _, doc in docstrings()) >= 100
