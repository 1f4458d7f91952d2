"""The import arrows of DESIGN.md, checked by parsing every module (no imports are executed).

tools/, models/ -> edge/ -> rtcore/. rtcore imports the standard library and numpy only.
No module imports itself back through others: every import counts, at the top of a module or
inside a function, so an import moved into a function to dodge a circle is still a circle.
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

pytestmark = pytest.mark.unit

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


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports, anywhere in its body (functions included).

    `from a.b import c` points at a.b.c when that is a module, else at a.b; an import of a
    module outside `packages` is left out. Relative imports are resolved against the module."""
    paths = {module_name(root, p): p for package in packages for p in sorted((root / package).rglob("*.py"))}

    def known(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in paths.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                targets.update(known(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = targets - {None, module}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle once, as a path a -> ... -> a (strongly connected components, Tarjan, iterative)."""
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(_path_through(sorted(component), graph))
    return circles


def _path_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest way from the component's first module back to itself, for the message."""
    members, first = set(component), component[0]
    came_from, frontier = {first: None}, [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == first:
                    path = [node]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), first]
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    return component


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_import_graph_counts_imports_inside_functions_and_relative_ones(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def late():\n    from pkg import b\n",
        "pkg/b.py": "from .c import thing\nimport numpy\n",
        "pkg/c.py": "thing = 1\n",
        "pkg/sub/__init__.py": "from ..a import late\n",
    })
    graph = import_graph(root, ("pkg",))
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == {"pkg.c"}
    assert graph["pkg.sub"] == {"pkg.a"}
    assert import_circles(graph) == []


def test_a_circle_hidden_in_a_function_is_found(tmp_path):
    root = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/train.py": "from pkg.export import write\n",
        "pkg/export.py": "def write():\n    from pkg.train import fit\n",
        "pkg/plan.py": "import pkg.rollout\n",
        "pkg/rollout.py": "def go():\n    import pkg.bench\n",
        "pkg/bench.py": "from pkg import plan\n",
    })
    circles = import_circles(import_graph(root, ("pkg",)))
    assert sorted(circles) == [
        ["pkg.bench", "pkg.plan", "pkg.rollout", "pkg.bench"],
        ["pkg.export", "pkg.train", "pkg.export"],
    ]


def test_no_import_circles():
    circles = import_circles(import_graph(ROOT))
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)
