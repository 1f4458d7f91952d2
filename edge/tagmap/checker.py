"""Located YAML and the problem collector shared by the tag-map loader.

`read_yaml` turns a file into plain Python whose mappings remember their line numbers;
`Checker` collects `MapProblem`s (file, line, tag, what is allowed) instead of stopping at the
first. Tests: tests/edge/tagmap/test_load.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class MapProblem:
    file: Path
    line: int
    tag: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: tag {self.tag!r}: {self.message}" if self.tag else f"{where}: {self.message}"


class TagMapError(ValueError):
    """A tag map that must not be used; `problems` lists every problem found."""

    def __init__(self, problems: list[MapProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Node(dict):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict


def to_python(loader: yaml.SafeLoader, node: yaml.Node, problems: list, file: Path) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = Node()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                problems.append(MapProblem(file, key_node.start_mark.line + 1, None,
                                           f"duplicate key {key!r} (first on line {out.key_lines[key]})"))
            out[key] = to_python(loader, value_node, problems, file)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [to_python(loader, item, problems, file) for item in node.value]
    return loader.construct_object(node, deep=True)


def read_yaml(path: Path) -> tuple[Any, list[MapProblem]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TagMapError([MapProblem(path, 0, None, f"cannot read: {exc.strerror}")]) from exc
    loader = yaml.SafeLoader(text)
    problems: list[MapProblem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            raise TagMapError([MapProblem(path, 1, None, "empty file; a tag map needs connection, scan_groups and tags")])
        return to_python(loader, node, problems, path), problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise TagMapError([MapProblem(path, line, None, f"not valid YAML: {exc.problem}")]) from exc
    finally:
        loader.dispose()


class Checker:
    """Collects problems while turning located YAML into the frozen model."""

    def __init__(self, path: Path, problems: list[MapProblem]):
        self.path = path
        self.problems = problems

    def fail(self, line: int, message: str, tag: str | None = None) -> None:
        self.problems.append(MapProblem(self.path, line, tag, message))

    def mapping(self, value: Any, line: int, what: str, allowed: set[str], tag: str | None = None) -> Node | None:
        if not isinstance(value, Node):
            self.fail(line, f"{what} must be a mapping", tag)
            return None
        for key in value:
            if key not in allowed:
                self.fail(value.key_lines[key], f"unknown key {key!r} in {what}; allowed: {', '.join(sorted(allowed))}", tag)
        return value

    def enum(self, enum_cls, raw: Any, line: int, what: str, tag: str | None = None):
        try:
            return enum_cls(raw)
        except ValueError:
            allowed = ", ".join(e.value for e in enum_cls)
            self.fail(line, f"{what} is {raw!r}; allowed: {allowed}", tag)
            return None

    def number(self, raw: Any, line: int, what: str, tag: str | None = None) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            self.fail(line, f"{what} is {raw!r}; it must be a finite number", tag)
            return None
        return float(raw)
