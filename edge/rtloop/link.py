"""The link between the supervisor and the real-time process: one shared-memory block.

Setpoints go down, status comes up; neither side ever waits for the other. Each half is
written under a sequence lock (the writer makes the sequence odd, writes, makes it even; a
reader retries while it is odd or changed), so a reader never takes a half-written record and a
dead writer never blocks a reader: the real-time loop keeps the last valid setpoints when the
supervisor dies. The block starts with a magic, a layout version and a digest of the field
names, and a side whose layout differs refuses to attach, naming both.

Layout (little-endian): header | setpoints half | status half. Tests: tests/edge/rtloop/test_link.py.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from rtcore.spec import Setpoints

SHM_DIR = Path("/dev/shm")
MAGIC = b"DEDG"
LAYOUT_VERSION = 1
MAX_ZONES = 64
_HEADER = struct.Struct("<4sII")  # magic, version, digest of the field names

SETPOINT_FIELDS = tuple(f.name for f in dataclasses.fields(Setpoints) if f.name != "hotspot_ratio")
# seq, reset_requests, the float fields, number of hotspot ratios, the ratios
_SETPOINTS = struct.Struct(f"<QQ{len(SETPOINT_FIELDS)}dI{MAX_ZONES}d")


@dataclass(frozen=True)
class RtStatus:
    """What the real-time process reports each tick."""

    tick_count: int = 0
    overruns: int = 0
    lateness_p50_ns: int = 0
    lateness_p99_ns: int = 0
    lateness_max_ns: int = 0
    work_mean_ns: int = 0
    work_max_ns: int = 0
    flags: int = 0  # rtcore.spec.Flag bits of the last tick
    safe_state: bool = False
    safe_cause: int = 0  # the Flag bits that latched the safe state
    fault_marker: int = -1  # marker index behind a sensor fault, -1 if none
    link_errors: int = 0  # tag-bus calls that failed
    setpoints_applied: int = 0  # sequence number of the setpoints in force
    setpoints_rejected: int = 0  # setpoints refused (invalid); the last valid ones stay
    resets_done: int = 0  # reset requests carried out
    alive: bool = True  # False once the loop has ended


_STATUS_FIELDS = tuple(f.name for f in dataclasses.fields(RtStatus))
_STATUS = struct.Struct("<Q" + "q" * len(_STATUS_FIELDS))
_DIGEST = zlib.crc32(",".join(SETPOINT_FIELDS + _STATUS_FIELDS).encode())
_SETPOINTS_AT = _HEADER.size
_STATUS_AT = _SETPOINTS_AT + _SETPOINTS.size
SIZE = _STATUS_AT + _STATUS.size


class LinkError(RuntimeError):
    pass


def _decode_setpoints(record: tuple) -> Setpoints:
    n = len(SETPOINT_FIELDS)
    floats, count = record[2:2 + n], min(record[2 + n], MAX_ZONES)
    return Setpoints(**dict(zip(SETPOINT_FIELDS, floats)), hotspot_ratio=tuple(record[3 + n:3 + n + count]))


class _Block:
    """A file in /dev/shm mapped into memory (POSIX shared memory without a resource tracker)."""

    def __init__(self, name: str, create: bool):
        if "/" in name or not name:
            raise LinkError(f"link name {name!r} must be a plain name, without '/'")
        self.name = name
        self.path = SHM_DIR / name
        self._owner = create
        try:
            fd = os.open(self.path, os.O_RDWR | (os.O_CREAT | os.O_TRUNC if create else 0), 0o600)
        except FileNotFoundError as exc:
            raise LinkError(f"no real-time link named {name!r}: is the rtcore process running?") from exc
        try:
            if create:
                os.ftruncate(fd, SIZE)
            elif os.fstat(fd).st_size != SIZE:
                raise LinkError(f"link {name!r} is {os.fstat(fd).st_size} bytes; this build expects {SIZE}")
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self.buf = memoryview(self._map)
        if create:
            _HEADER.pack_into(self.buf, 0, MAGIC, LAYOUT_VERSION, _DIGEST)
        else:
            magic, version, digest = _HEADER.unpack_from(self.buf, 0)
            if (magic, version, digest) != (MAGIC, LAYOUT_VERSION, _DIGEST):
                self.close()
                raise LinkError(f"link {name!r} has layout {magic!r} v{version} digest {digest:#x}; "
                                f"this build speaks {MAGIC!r} v{LAYOUT_VERSION} digest {_DIGEST:#x}")

    def write(self, layout: struct.Struct, offset: int, *values) -> None:
        seq = struct.unpack_from("<Q", self.buf, offset)[0]
        struct.pack_into("<Q", self.buf, offset, seq + 1)  # odd: writing
        layout.pack_into(self.buf, offset, seq + 1, *values)
        struct.pack_into("<Q", self.buf, offset, seq + 2)  # even: done

    def read(self, layout: struct.Struct, offset: int, tries: int = 100) -> tuple | None:
        for _ in range(tries):
            first = struct.unpack_from("<Q", self.buf, offset)[0]
            if first % 2:
                continue
            record = layout.unpack_from(self.buf, offset)
            if struct.unpack_from("<Q", self.buf, offset)[0] == first:
                return record
        return None  # a writer kept it busy; the caller keeps what it had

    def close(self) -> None:
        self.buf.release()
        self._map.close()
        if self._owner:
            self.path.unlink(missing_ok=True)


class RtSide:
    """The real-time process's end: creates the block, reads setpoints, writes status."""

    def __init__(self, name: str):
        self._block = _Block(name, create=True)
        self._seen_seq = 0
        self._seen_resets = 0

    def poll_setpoints(self) -> tuple[Setpoints | None, int, bool]:
        """(new setpoints or None, their sequence, a reset was requested)."""
        record = self._block.read(_SETPOINTS, _SETPOINTS_AT)
        if record is None or record[0] == 0:
            return None, self._seen_seq, False
        seq, resets = record[0], record[1]
        reset = resets != self._seen_resets
        self._seen_resets = resets
        if seq == self._seen_seq:
            return None, seq, reset
        self._seen_seq = seq
        return _decode_setpoints(record), seq, reset

    def write_status(self, status: RtStatus) -> None:
        self._block.write(_STATUS, _STATUS_AT, *(int(getattr(status, f)) for f in _STATUS_FIELDS))

    def close(self) -> None:
        self._block.close()


class SupervisorSide:
    """The supervisor's end: attaches to the block, sends setpoints and resets, reads status."""

    def __init__(self, name: str):
        self._block = _Block(name, create=False)
        self._resets = 0

    def send_setpoints(self, setpoints: Setpoints) -> None:
        ratios = tuple(setpoints.hotspot_ratio)
        if len(ratios) > MAX_ZONES:
            raise LinkError(f"hotspot_ratio has {len(ratios)} zones; the link carries at most {MAX_ZONES}")
        self._write(setpoints, self._resets)

    def request_reset(self) -> None:
        """Ask the loop to leave its safe state (it does so at its next tick)."""
        record = self._block.read(_SETPOINTS, _SETPOINTS_AT)
        self._resets = (record[1] if record else self._resets) + 1
        current = _decode_setpoints(record) if record and record[0] else Setpoints()
        self._write(current, self._resets)

    def _write(self, setpoints: Setpoints, resets: int) -> None:
        ratios = tuple(setpoints.hotspot_ratio)
        padded = ratios + (0.0,) * (MAX_ZONES - len(ratios))
        floats = [float(getattr(setpoints, f)) for f in SETPOINT_FIELDS]
        self._block.write(_SETPOINTS, _SETPOINTS_AT, resets, *floats, len(ratios), *padded)

    def read_status(self) -> RtStatus | None:
        record = self._block.read(_STATUS, _STATUS_AT)
        if record is None:
            return None
        values = dict(zip(_STATUS_FIELDS, record[1:]))
        values["safe_state"] = bool(values["safe_state"])
        values["alive"] = bool(values["alive"])
        return RtStatus(**values)

    def close(self) -> None:
        self._block.close()
