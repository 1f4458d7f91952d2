"""Located YAML and the problem collector shared by the tag-map loader (and the line file's).

`read_yaml` turns a file into plain Python whose mappings remember their line numbers;
`Checker` collects `MapProblem`s (file, line, tag, what is allowed) instead of stopping at the
first.

Bounded input (`read_regular_bytes`, under `read_bounded_text`, which `read_yaml` reads through; the
vendor imports read through it too): only a regular file is opened for reading (a FIFO, a device
such as /dev/zero, a directory or a socket is refused before a byte is read; the open never blocks),
at most MAX_YAML_BYTES (2 MiB) are read, and text that is not UTF-8 is refused naming the line and
the byte offset. The YAML itself may not use anchors or aliases (`&a`, `*a`, `<<: *a`): an alias
bomb of 9 levels x 9 aliases (9^9 nodes from a few hundred bytes) is refused at its first anchor,
from the event stream, before anything is composed or expanded. Nesting deeper than MAX_YAML_DEPTH
is refused the same way. libyaml parses when PyYAML has it (CSafeLoader).
Tests: tests/edge/tagmap/test_load.py, tests/edge/tagmap/test_yaml_limits.py.
"""

from __future__ import annotations

import math
import os
import stat
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


MAX_YAML_BYTES = 2 * 1024 * 1024
"""The largest tag map or line file read: about 8000 tags of 250 bytes (the 128-station bench
map is about 200 kB); PyYAML's pure-Python parser takes seconds a megabyte."""
MAX_YAML_DEPTH = 64
"""Nested mappings and lists deeper than this are refused (a tag map is 4 deep)."""


class NotARegularFile(OSError):
    """A path that is a directory, a FIFO, a device or a socket: `kind` says which."""

    def __init__(self, path: Path, kind: str):
        super().__init__(f"{path}: not a regular file ({kind})")
        self.kind = kind


class FileTooLarge(ValueError):
    """A file over the reader's bound; `size_bytes` None when it grew past it while read."""

    def __init__(self, path: Path, size_bytes: int | None, limit_bytes: int):
        self.size_text = str(size_bytes) if size_bytes is not None else f"more than {limit_bytes}"  # bytes
        super().__init__(f"{path}: {self.size_text} bytes; the limit is {limit_bytes} bytes")
        self.size_bytes, self.limit_bytes = size_bytes, limit_bytes


def read_regular_bytes(path: Path, limit_bytes: int) -> bytes:
    """The bytes of a regular file of at most `limit_bytes`. Never blocks on a FIFO (opened
    non-blocking, checked before a read), never reads a device. NotARegularFile, FileTooLarge, or
    the OSError of the open or the read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(path, _file_kind(info.st_mode))
        if info.st_size > limit_bytes:
            raise FileTooLarge(path, info.st_size, limit_bytes)
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while size <= limit_bytes:
            chunk = os.read(fd, min(1 << 20, limit_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit_bytes:  # grew while we read
            raise FileTooLarge(path, None, limit_bytes)
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_bounded_text(path: Path, limit_bytes: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `limit_bytes` (`read_regular_bytes`);
    TagMapError naming the file otherwise (not a regular file, too large, not UTF-8 with its line
    and byte offset)."""
    def refuse(line: int, message: str):
        return TagMapError([MapProblem(path, line, None, message)])

    try:
        raw = read_regular_bytes(path, limit_bytes)
    except NotARegularFile as exc:
        raise refuse(0, f"not a regular file ({exc.kind}); a tag map or line file is a regular file, and nothing "
                        "else is read") from None
    except FileTooLarge as exc:
        raise refuse(0, f"{exc.size_text} bytes; the limit is {limit_bytes} bytes") from None
    except OSError as exc:
        raise refuse(0, f"cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise refuse(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                           "save the file as UTF-8") from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is no content


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a plain file"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it (a 2 MiB map composes in seconds, not a minute)."""
_OPENERS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSERS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _check_events(text: str) -> None:
    """Refuse anchors, aliases and deep nesting from the event stream, before anything is composed
    or constructed (a composed alias bomb is small; constructing it is what explodes)."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = f"alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{event.anchor}"
            raise yaml.composer.ComposerError(None, None, f"{kind}: anchors and aliases are not allowed "
                                              "(write each value out; this keeps a file's size its content's)",
                                              event.start_mark)
        if isinstance(event, _OPENERS):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  event.start_mark)
        elif isinstance(event, _CLOSERS):
            depth -= 1


EMPTY_MAP = "empty file; a tag map needs connection, scan_groups and tags"


def read_yaml(path: Path, empty: str = EMPTY_MAP) -> tuple[Any, list[MapProblem]]:
    """Located YAML from a bounded file (`read_bounded_text`): no anchors or aliases, no deep
    nesting. TagMapError naming the file and line for anything refused; `empty` is the problem
    of a file with no document (blank, or comments only)."""
    text = read_bounded_text(path)
    problems: list[MapProblem] = []
    loader = None
    try:
        _check_events(text)
        loader = _LOADER(text)
        node = loader.get_single_node()
        if node is None:
            raise TagMapError([MapProblem(path, 1, None, empty)])
        return to_python(loader, node, problems, path), problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise TagMapError([MapProblem(path, line, None, f"not valid YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:  # a reader error (a control character): not a marked one
        raise _reader_refusal(path, text, exc) from exc
    finally:
        if loader is not None:
            loader.dispose()


def _reader_refusal(path: Path, text: str, exc: yaml.YAMLError) -> TagMapError:
    """PyYAML's reader error (a control character in the text) with its line and byte offset."""
    position = getattr(exc, "position", None)
    if position is None:
        return TagMapError([MapProblem(path, 0, None, f"not valid YAML: {exc}")])
    offset = len(text[:position].encode("utf-8"))
    character = getattr(exc, "character", None)
    what = f"character U+{character:04X} is not allowed in YAML text" if isinstance(character, int) else str(exc)
    return TagMapError([MapProblem(path, text.count("\n", 0, position) + 1, None,
                                   f"not valid YAML at offset {offset}: {what}")])


def _shown(value: Any) -> str:
    """A refused value as a message shows it: `nothing` for an empty `key:`, else short."""
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Collects problems while turning located YAML into the frozen model."""

    def __init__(self, path: Path, problems: list[MapProblem]):
        self.path = path
        self.problems = problems

    def fail(self, line: int, message: str, tag: str | None = None) -> None:
        self.problems.append(MapProblem(self.path, line, tag, message))

    def mapping(self, value: Any, line: int, what: str, allowed: set[str], tag: str | None = None) -> Node | None:
        if not isinstance(value, Node):
            keys = f" of {', '.join(sorted(allowed))}" if allowed else ""
            self.fail(line, f"{what} must be a mapping{keys}, got {_shown(value)}", tag)
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
