"""Bounded input: the YAML reader of tag maps (and line files) refuses what could stall it.

An alias bomb, a file over the size bound, text that is not UTF-8 or is binary, and anything that
is not a regular file (a FIFO, /dev/zero, a directory) are each refused with the file named, no
traceback and without reading more than the bound."""

from __future__ import annotations

import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from edge.tagmap import TagMapError, load_tag_map
from edge.tagmap.checker import MAX_YAML_BYTES, MAX_YAML_DEPTH, read_bounded_text, read_yaml

pytestmark = pytest.mark.unit

GOOD = Path(__file__).resolve().parents[3] / "tests" / "edge" / "bus" / "contract_modbus.yaml"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion-laughs shape: each level a list of `width` aliases of the level before."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append(f"tags: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def refusal(path: Path) -> str:
    with pytest.raises(TagMapError) as info:
        load_tag_map(path)
    message = str(info.value)
    assert message.startswith(str(path)), message  # the file is named
    return message


def test_the_9_by_9_alias_bomb_is_refused_small(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    tracemalloc.start()
    try:
        message = refusal(path)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "anchors and aliases are not allowed" in message and f"{path}:1:" in message
    assert peak_bytes < 5_000_000  # expanded, the bomb is 9^9 = 387 million nodes: gigabytes


@pytest.mark.parametrize("text,line", [
    ("connection: &c {name: x}\nother: 1\n", 1),  # an anchor alone
    ("a: 1\nb:\n  - x\n  - *a\n", 4),  # an alias of an undefined anchor: refused before PyYAML's own error
    ("base: &b {unit: kPa}\ntags:\n  - <<: *b\n    name: x\n", 1),  # a merge key
])
def test_any_anchor_or_alias_is_refused_at_its_line(tmp_path, text, line):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    message = refusal(path)
    assert f"{path}:{line}: not valid YAML: " in message and "anchors and aliases are not allowed" in message


def test_a_file_over_the_bound_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_YAML_BYTES + 1)  # sparse: nothing to read if we tried
    message = refusal(path)
    assert f"{MAX_YAML_BYTES + 1} bytes; the limit is {MAX_YAML_BYTES} bytes" in message
    assert MAX_YAML_BYTES == 2 * 1024 * 1024
    exactly = tmp_path / "exact.yaml"
    exactly.write_bytes(b"# " + b"x" * (MAX_YAML_BYTES - 3) + b"\n")
    assert len(read_bounded_text(exactly)) == MAX_YAML_BYTES  # the bound itself is allowed


def test_bad_utf8_names_the_byte_offset_and_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    data = "connection:\n  name: Zürich\n".encode("latin-1")
    path.write_bytes(data)
    message = refusal(path)
    offset = data.index(b"\xfc")
    assert f"{path}:2: not UTF-8 text (byte 0xfc at offset {offset})" in message


def test_a_binary_file_is_refused_without_a_traceback(tmp_path):
    path = tmp_path / "blob.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    message = refusal(path)
    assert "not UTF-8 text (byte 0x80 at offset 128)" in message
    nul = tmp_path / "nul.yaml"
    data = b"connection:\n  name: a\x00b\n"  # valid UTF-8, not YAML text
    nul.write_bytes(data)
    message = refusal(nul)
    assert f"{nul}:2: not valid YAML at offset {data.index(0)}: character U+0000 is not allowed" in message


def test_a_byte_order_mark_is_not_content(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes())
    assert load_tag_map(path).name == "contract-modbus"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "map.yaml"
    os.mkfifo(fifo)
    outcome: list = []

    def load():
        try:
            load_tag_map(fifo)
        except TagMapError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=30)  # a hang guard, not a timing: opening a FIFO for reading blocks without a writer
    if reader.is_alive():  # release the blocked open so the thread ends
        with open(fifo, "wb"):
            pass
        pytest.fail("the FIFO blocked the reader")
    assert outcome == [f"{fifo}:0: not a regular file (a FIFO); a tag map or line file is a regular file, and nothing else is read"]


@pytest.mark.parametrize("special,kind", [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_devices_are_refused_without_reading(special, kind):
    if not os.path.exists(special):
        pytest.skip(f"{special} is absent here")
    message = refusal(Path(special))
    assert f"not a regular file ({kind})" in message


def test_a_directory_is_refused(tmp_path):
    message = refusal(tmp_path)
    assert f"{tmp_path}:0: not a regular file (a directory)" in message


def test_a_symlink_to_a_regular_file_is_read(tmp_path):
    link = tmp_path / "link.yaml"
    link.symlink_to(GOOD)
    assert load_tag_map(link).name == "contract-modbus"
    dangling = tmp_path / "dangling.yaml"
    dangling.symlink_to(tmp_path / "missing.yaml")
    assert "cannot read: No such file or directory" in refusal(dangling)


def test_nesting_deeper_than_the_bound_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 200 + "]" * 200 + "\n")
    message = refusal(path)
    assert f"{path}:1: not valid YAML: nested deeper than {MAX_YAML_DEPTH} levels" in message
    path.write_text("a: " + "[" * 50000 + "]" * 50000 + "\n")  # beyond libyaml's own bound too: refused, no traceback
    assert f"{path}:1: not valid YAML: " in refusal(path)
    fine = tmp_path / "fine.yaml"
    fine.write_text("a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n")
    document, problems = read_yaml(fine)
    assert problems == [] and isinstance(document["a"], list)


def test_the_line_file_loader_gets_the_same_alias_refusal(tmp_path):
    from edge.supervisor.line import LineError, load_line

    path = tmp_path / "line.yaml"
    path.write_text(alias_bomb())
    with pytest.raises(LineError) as info:
        load_line(path)
    assert "anchors and aliases are not allowed" in str(info.value)
