"""The import arrows of DESIGN.md, checked by parsing every module (no imports are executed).

tools/, models/ -> edge/ -> rtcore/. rtcore imports the standard library and numpy only.
edge never imports models or tools. pycomm3 and pymodbus are each imported in exactly one
adapter file of the controller (edge/bus/); the bench's PLC simulator, which must speak the
protocol from the other end, has its own one server file in tools/hil/.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rtcore", "edge", "models", "tools")

FORBIDDEN = {
    "rtcore": {"edge", "models", "tools"},
    "edge": {"models", "tools"},
    "models": {"tools"},
    "tools": {"models"},
}
ADAPTERS = {
    "pycomm3": ["edge/bus/logix.py"],
    "pymodbus": ["edge/bus/modbus.py", "tools/hil/server_modbus.py"],
}


def imported_roots(path: Path) -> set[str]:
    """Top-level module names imported by `path` (absolute imports; relative ones stay inside)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*") if p.suffix in (".py", ".pyx", ".pxd"))


def test_imported_roots_sees_both_forms(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import a.b as c\nfrom d.e import f\nfrom . import g\n")
    assert imported_roots(sample) == {"a", "d"}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_arrow_points_the_wrong_way(package):
    wrong = []
    for path in python_files(package):
        if path.suffix != ".py":
            continue
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not wrong, "\n".join(wrong)


def test_rtcore_imports_stdlib_and_numpy_only():
    allowed = set(sys.stdlib_module_names) | {"numpy", "rtcore", "cython", "libc", "posix", "cpython"}
    wrong = []
    for path in python_files("rtcore"):
        if path.suffix == ".py":
            roots = imported_roots(path)
        else:  # .pyx/.pxd: cimport lines are not Python syntax; read them as text
            roots = {
                line.split()[1].split(".")[0]
                for line in path.read_text().splitlines()
                if line.strip().startswith(("import ", "cimport ", "from "))
            }
        if roots - allowed:
            wrong.append(f"{path.relative_to(ROOT)} imports {sorted(roots - allowed)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("library", sorted(ADAPTERS))
def test_protocol_library_lives_in_one_adapter(library):
    users = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in python_files(package)
        if path.suffix == ".py" and library in imported_roots(path)
    )
    assert users == ADAPTERS[library], f"{library} imported by {users}"
