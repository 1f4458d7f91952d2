"""The link between the supervisor and the real-time process: one private shared-memory block.

Setpoints go down, status comes up; neither side ever waits for the other. Each half is
written under a sequence lock (the writer makes the sequence odd, writes, makes it even; a
reader retries while it is odd or changed), so a reader never takes a half-written record and a
dead writer never blocks a reader: the real-time loop keeps the last valid setpoints when the
supervisor dies. The block starts with a magic, a layout version and a digest of the field
names, and a side whose layout differs refuses to attach, naming both.

Where it lives, and who may touch it: `link_dir()` = `/dev/shm/discharge-edge-<euid>/`
(`$DISCHARGE_EDGE_SHM_DIR` overrides it), a directory of mode 0700 owned by the user. The
real-time side creates the block `<dir>/<link>` with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, after
taking `InstanceLock` (an flock on `<dir>/<link>.lock` holding the pid): one instance per link.
A block left by a dead instance (no lock held) is removed and made anew. Neither side follows a
symbolic link, and both refuse a directory or block whose owner or mode is wrong; every refusal
is a LinkError naming the path and what was found.

`alive` is not trusted from the writer alone: the status carries `heartbeat_ns`
(CLOCK_MONOTONIC of the last write), and the reader says alive only while it is younger than
`ALIVE_WITHIN_NS`, so a process killed with -9 reads dead within a second.

Resets: `request_reset()` is the arm (the loop clears every latch and may discharge);
`request_reset(station)` asks to clear one station's latch only; it travels in its own record,
so a loop that reads only `poll_setpoints` never takes it for an arm.

Layout (little-endian): header | setpoints half | station-reset record | status half.
  setpoints: seq, resets, has_setpoints, the float fields of Setpoints, hotspot count,
             MAX_ZONES ratios, station-limit count, MAX_STATIONS x 4 doubles (StationLimits order)
  station reset: seq, request count, MAX_STATIONS-bit mask of the stations asked for
  status:    seq, the scalar fields of RtStatus (int64 each), then MAX_STATIONS entries of each
             per-station array (cause uint32, fault marker int32, hottest temp, current-limit
             fraction, coolant, max relief float64, permit uint8); n_stations of them are valid.
Tests: tests/edge/rtloop/test_link.py.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import mmap
import os
import stat
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtcore.spec import Setpoints, StationLimits

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
SHM_DIR_ENV = "DISCHARGE_EDGE_SHM_DIR"
MAGIC = b"DEDG"
LAYOUT_VERSION = 2
MAX_ZONES = 256
MAX_STATIONS = 128
ALIVE_WITHIN_NS = 1_000_000_000  # a heartbeat older than this: the writer is dead
_HEADER = struct.Struct("<4sII")  # magic, version, digest of the field names

_TUPLE_FIELDS = ("hotspot_ratio", "station_limits")
SETPOINT_FIELDS = tuple(f.name for f in dataclasses.fields(Setpoints) if f.name not in _TUPLE_FIELDS)
LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(StationLimits))
# seq, reset requests, has setpoints, the float fields, hotspot count, ratios, limit count, limits
_SETPOINTS = struct.Struct(f"<QQQ{len(SETPOINT_FIELDS)}dI{MAX_ZONES}dI{len(LIMIT_FIELDS) * MAX_STATIONS}d")
_SEQ_RESETS = struct.Struct("<QQ")
# seq, station reset requests, the stations asked for (a bit mask, MAX_STATIONS bits)
_STATION_RESET = struct.Struct(f"<QQ{MAX_STATIONS // 64}Q")


@dataclass(frozen=True)
class RtStatus:
    """What the real-time process reports each tick (per-station arrays hold n_stations entries)."""

    tick_count: int = 0
    overruns: int = 0
    lateness_p50_ns: int = 0
    lateness_p99_ns: int = 0
    lateness_max_ns: int = 0
    work_mean_ns: int = 0
    work_max_ns: int = 0
    flags: int = 0  # rtcore.spec.Flag bits of the last tick
    safe_state: bool = False  # the LINE latch
    safe_cause: int = 0  # the Flag bits that latched the line
    fault_marker: int = -1  # marker index behind the line's sensor fault, -1 if none
    link_errors: int = 0  # tag-bus calls that failed
    setpoints_applied: int = 0  # sequence number of the setpoints in force
    setpoints_rejected: int = 0  # setpoints refused (invalid); the last valid ones stay
    resets_done: int = 0  # reset requests (arm) carried out
    station_resets_done: int = 0  # station reset requests carried out
    alive: bool = True  # written False when the loop ends; the reader also needs a fresh heartbeat
    heartbeat_ns: int = 0  # CLOCK_MONOTONIC of the last write (stamped by RtSide.write_status)
    armed: bool = False  # an arm (reset request) has come since start: stations may discharge
    bus_misses: int = 0  # tag-bus reads/writes that missed (tolerated until link_blind_s)
    n_stations: int = 0
    station_cause: tuple[int, ...] = ()  # Flag bits that latched the station, 0 = not isolated
    station_fault_marker: tuple[int, ...] = ()  # marker behind the station's latch, -1 none
    station_hot_degc: tuple[float, ...] = ()  # hottest sanitized marker of the station
    station_current_limit_frac: tuple[float, ...] = ()  # envelope, [0, 1] of the current-limit tag's max
    station_coolant_lpm: tuple[float, ...] = ()  # relief coolant of the station
    station_relief_max_kpa: tuple[float, ...] = ()  # largest relief (first or second) over its zones
    station_permit: tuple[bool, ...] = ()  # discharge permit written to the PLC


# (field, numpy dtype, python type) of the per-station arrays, in layout order
STATION_ARRAYS = (
    ("station_cause", "<u4", int), ("station_fault_marker", "<i4", int), ("station_hot_degc", "<f8", float),
    ("station_current_limit_frac", "<f8", float), ("station_coolant_lpm", "<f8", float),
    ("station_relief_max_kpa", "<f8", float), ("station_permit", "u1", bool),
)
_ARRAY_NAMES = {name for name, _, _ in STATION_ARRAYS}
_SCALAR_FIELDS = tuple(f.name for f in dataclasses.fields(RtStatus) if f.name not in _ARRAY_NAMES)
_BOOL_FIELDS = {f.name for f in dataclasses.fields(RtStatus) if f.type in ("bool", bool)}
_STATUS_SCALARS = struct.Struct("<Q" + "q" * len(_SCALAR_FIELDS))
_DIGEST = zlib.crc32(",".join(SETPOINT_FIELDS + LIMIT_FIELDS + _SCALAR_FIELDS
                              + tuple(f"{n}:{d}" for n, d, _ in STATION_ARRAYS)).encode())
_SETPOINTS_AT = _HEADER.size
_STATION_RESET_AT = _SETPOINTS_AT + _SETPOINTS.size
_STATUS_AT = _STATION_RESET_AT + _STATION_RESET.size
_ARRAYS_AT = []
_at = _STATUS_AT + _STATUS_SCALARS.size
for _name, _dtype, _ in STATION_ARRAYS:
    _ARRAYS_AT.append(_at)
    _at += np.dtype(_dtype).itemsize * MAX_STATIONS
SIZE = _at


class LinkError(RuntimeError):
    """The link cannot be used; the message names the path and what was wrong."""


class AlreadyRunning(LinkError):
    """Another rtcore holds the link's instance lock."""

    def __init__(self, link_name: str, pid: int | None):
        self.link_name, self.pid = link_name, pid
        super().__init__(f"rtcore already running on link {link_name} (pid {pid if pid is not None else 'unknown'})")


# -- the private directory ---------------------------------------------------------------------
def link_dir() -> Path:
    """The private directory of this user's links."""
    override = os.environ.get(SHM_DIR_ENV)
    return Path(override) if override else SHM_DIR / f"discharge-edge-{os.geteuid()}"


def link_path(name: str) -> Path:
    _check_name(name)
    return link_dir() / name


def _check_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or name in (".", "..") or name.startswith("."):
        raise LinkError(f"link name {name!r} must be a plain name (no '/', not starting with '.')")


def _refuse(what: str, path: Path, st: os.stat_result, want_mode: int) -> LinkError:
    return LinkError(f"refusing {what} {path}: owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}; "
                     f"it must belong to uid {os.geteuid()} with mode {want_mode:04o} (no access for group or "
                     f"others). Remove it if it is not yours to keep.")


def _check_private(what: str, path: Path, st: os.stat_result, want_mode: int, is_type) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise LinkError(f"refusing {what} {path}: it is a symbolic link (a link is never followed)")
    if not is_type(st.st_mode):
        kind = "directory" if is_type is stat.S_ISDIR else "regular file"
        raise LinkError(f"refusing {what} {path}: it is not a {kind}")
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise _refuse(what, path, st, want_mode)


def _open_private_dir(create: bool, link_name: str) -> int:
    """An fd on the checked private directory (created when `create`); LinkError otherwise."""
    path = link_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise LinkError(f"cannot create the link directory {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LinkError(f"no rtcore running on link {link_name} ({path} does not exist): "
                        "is the rtcore process running?") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            _check_private("link directory", path, os.lstat(path), 0o700, stat.S_ISDIR)
        raise LinkError(f"cannot open the link directory {path}: {exc.strerror}") from None
    try:
        _check_private("link directory", path, os.fstat(fd), 0o700, stat.S_ISDIR)
    except LinkError:
        os.close(fd)
        raise
    return fd


# -- one instance per link -----------------------------------------------------------------------
_HELD: dict[tuple[str, str], InstanceLock] = {}  # locks this process holds, by (dir, link)
_OPEN_RT: set[tuple[str, str]] = set()  # links this process serves (an RtSide is open)


class InstanceLock:
    """One rtcore per link: an exclusive flock on `<link dir>/<link>.lock`, which holds the pid.

    Raises AlreadyRunning ("rtcore already running on link X (pid N)") when another process
    holds it. The kernel drops the lock when the process dies, however it dies.
    """

    def __init__(self, link_name: str):
        _check_name(link_name)
        self.link_name = link_name
        self.key = (str(link_dir()), link_name)
        if self.key in _HELD:
            raise AlreadyRunning(link_name, os.getpid())
        lock_name = f"{link_name}.lock"
        self.path = link_dir() / lock_name
        dir_fd = _open_private_dir(True, link_name)
        try:
            try:
                fd = os.open(lock_name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise LinkError(f"refusing lock file {self.path}: it is a symbolic link") from None
                raise LinkError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        finally:
            os.close(dir_fd)
        try:
            _check_private("lock file", self.path, os.fstat(fd), 0o600, stat.S_ISREG)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(link_name, _read_pid(fd)) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _HELD[self.key] = self

    def release(self) -> None:
        if self._fd is None:
            return
        _HELD.pop(self.key, None)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None  # the holder has not written it yet


# -- the block ----------------------------------------------------------------------------------
class _Block:
    """The block mapped into memory (POSIX shared memory without a resource tracker)."""

    def __init__(self, name: str, create: bool):
        _check_name(name)
        self.name = name
        self.path = link_dir() / name
        dir_fd = _open_private_dir(create, name)
        try:
            fd = self._create(dir_fd) if create else self._attach(dir_fd)
        finally:
            os.close(dir_fd)
        try:
            self.ino = os.fstat(fd).st_ino
            if create:
                os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self.buf = memoryview(self._map)
        self.arrays = [np.frombuffer(self._map, dtype=d, count=MAX_STATIONS, offset=at)
                       for (_, d, _), at in zip(STATION_ARRAYS, _ARRAYS_AT)]
        if create:
            _HEADER.pack_into(self.buf, 0, MAGIC, LAYOUT_VERSION, _DIGEST)
            return
        magic, version, digest = _HEADER.unpack_from(self.buf, 0)
        if (magic, version, digest) != (MAGIC, LAYOUT_VERSION, _DIGEST):
            self.close(unlink=False)
            if magic == b"\0" * 4:
                raise LinkError(f"link {self.path} is being set up; try again")
            raise LinkError(f"link {self.path} has layout {magic!r} v{version} digest {digest:#x}; "
                            f"this build speaks {MAGIC!r} v{LAYOUT_VERSION} digest {_DIGEST:#x}")

    def _create(self, dir_fd: int) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            return self._open_new(dir_fd, flags)
        except FileExistsError:
            pass
        # Our instance lock is held, so whatever sits there belongs to no running instance.
        _check_private("link", self.path, os.stat(self.name, dir_fd=dir_fd, follow_symlinks=False), 0o600,
                       stat.S_ISREG)
        log.warning("removing the stale link %s of an rtcore that is gone", self.path)
        os.unlink(self.name, dir_fd=dir_fd)
        try:
            return self._open_new(dir_fd, flags)
        except FileExistsError:
            raise LinkError(f"link {self.path} appeared again while it was being replaced; refusing it") from None

    def _open_new(self, dir_fd: int, flags: int) -> int:
        try:
            fd = os.open(self.name, flags, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            raise
        except OSError as exc:
            raise LinkError(f"cannot create link {self.path}: {exc.strerror}") from None
        os.fchmod(fd, 0o600)
        return fd

    def _attach(self, dir_fd: int) -> int:
        try:
            fd = os.open(self.name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            raise LinkError(f"no rtcore running on link {self.name} ({self.path} does not exist): "
                            "is the rtcore process running?") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkError(f"refusing link {self.path}: it is a symbolic link "
                                "(a link is never followed)") from None
            raise LinkError(f"cannot open link {self.path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            _check_private("link", self.path, st, 0o600, stat.S_ISREG)
            if st.st_size != SIZE:
                raise LinkError(f"link {self.path} is {st.st_size} bytes; this build (layout v{LAYOUT_VERSION}) "
                                f"expects {SIZE}")
        except BaseException:
            os.close(fd)
            raise
        return fd

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

    def seq(self, offset: int) -> int:
        return struct.unpack_from("<Q", self.buf, offset)[0]

    def close(self, unlink: bool) -> None:
        self.arrays = []
        self.buf.release()
        self._map.close()
        if unlink:  # only our own block: a later instance may have made a new one
            try:
                if os.stat(self.path, follow_symlinks=False).st_ino == self.ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass


# -- setpoints codec ------------------------------------------------------------------------------
def _encode_setpoints(setpoints: Setpoints, resets: int, has_setpoints: bool) -> list:
    ratios = tuple(float(r) for r in setpoints.hotspot_ratio)
    if len(ratios) > MAX_ZONES:
        raise LinkError(f"hotspot_ratio has {len(ratios)} zones; the link carries at most {MAX_ZONES}")
    limits = tuple(setpoints.station_limits)
    if len(limits) > MAX_STATIONS:
        raise LinkError(f"station_limits has {len(limits)} stations; the link carries at most {MAX_STATIONS}")
    flat = [float(getattr(lim, f)) for lim in limits for f in LIMIT_FIELDS]
    return [resets, int(has_setpoints), *(float(getattr(setpoints, f)) for f in SETPOINT_FIELDS),
            len(ratios), *ratios, *(0.0,) * (MAX_ZONES - len(ratios)),
            len(limits), *flat, *(0.0,) * (len(LIMIT_FIELDS) * MAX_STATIONS - len(flat))]


def _decode_setpoints(record: tuple) -> Setpoints:
    n = len(SETPOINT_FIELDS)
    at = 3
    floats = record[at:at + n]
    at += n
    count = min(record[at], MAX_ZONES)
    ratios = tuple(record[at + 1:at + 1 + count])
    at += 1 + MAX_ZONES
    n_limits, k = min(record[at], MAX_STATIONS), len(LIMIT_FIELDS)
    flat = record[at + 1:at + 1 + n_limits * k]
    limits = tuple(StationLimits(*flat[s * k:(s + 1) * k]) for s in range(n_limits))
    return Setpoints(**dict(zip(SETPOINT_FIELDS, floats)), hotspot_ratio=ratios, station_limits=limits)


class RtSide:
    """The real-time process's end: creates the block, reads setpoints, writes status.

    Takes the link's InstanceLock unless this process already holds it (`rtcore run` takes it
    first, before it touches anything), and keeps it until close().
    """

    def __init__(self, name: str):
        _check_name(name)
        key = (str(link_dir()), name)
        if key in _OPEN_RT:
            raise AlreadyRunning(name, os.getpid())
        self._own_lock = None if key in _HELD else InstanceLock(name)
        try:
            self._block = _Block(name, create=True)
        except BaseException:
            if self._own_lock is not None:
                self._own_lock.release()
            raise
        self._key = key
        _OPEN_RT.add(key)
        self._seen_seq = 0
        self._seen_resets = 0
        self._seen_station_resets = 0

    @property
    def path(self) -> Path:
        return self._block.path

    def poll_setpoints(self) -> tuple[Setpoints | None, int, bool]:
        """(new setpoints or None, their sequence, a reset was requested)."""
        block = self._block
        seq, resets = _SEQ_RESETS.unpack_from(block.buf, _SETPOINTS_AT)
        if seq == self._seen_seq and resets == self._seen_resets and block.seq(_SETPOINTS_AT) == seq:
            return None, seq, False  # nothing new: the usual tick, without decoding the record
        record = block.read(_SETPOINTS, _SETPOINTS_AT)
        if record is None or record[0] == 0:
            return None, self._seen_seq, False
        seq, resets, has_setpoints = record[0], record[1], record[2]
        reset = resets != self._seen_resets
        self._seen_resets = resets
        if seq == self._seen_seq:
            return None, seq, reset
        self._seen_seq = seq
        return (_decode_setpoints(record) if has_setpoints else None), seq, reset

    def poll_station_resets(self) -> tuple[int, ...]:
        """Stations whose reset (clear of their latch only) was asked since the last call."""
        block = self._block
        if _SEQ_RESETS.unpack_from(block.buf, _STATION_RESET_AT)[1] == self._seen_station_resets:
            return ()
        record = block.read(_STATION_RESET, _STATION_RESET_AT)
        if record is None:
            return ()  # being written: next tick
        self._seen_station_resets = record[1]
        return tuple(s for s in range(MAX_STATIONS) if record[2 + s // 64] >> (s % 64) & 1)

    def write_status(self, status: RtStatus) -> None:
        """Publish `status`; heartbeat_ns is stamped now (CLOCK_MONOTONIC)."""
        n = int(status.n_stations) or len(status.station_cause)
        if n > MAX_STATIONS:
            raise LinkError(f"{n} stations; the link carries at most {MAX_STATIONS}")
        columns = []
        for name, _, _ in STATION_ARRAYS:
            values = getattr(status, name)
            if len(values) not in (0, n):
                raise ValueError(f"RtStatus.{name} has {len(values)} entries; n_stations is {n}")
            columns.append(values)
        scalars = [time.monotonic_ns() if f == "heartbeat_ns" else n if f == "n_stations" else int(getattr(status, f))
                   for f in _SCALAR_FIELDS]
        block = self._block
        seq = block.seq(_STATUS_AT)
        struct.pack_into("<Q", block.buf, _STATUS_AT, seq + 1)  # odd: writing
        _STATUS_SCALARS.pack_into(block.buf, _STATUS_AT, seq + 1, *scalars)
        for view, values in zip(block.arrays, columns):
            view[:n] = values if len(values) else 0
        struct.pack_into("<Q", block.buf, _STATUS_AT, seq + 2)  # even: done

    def close(self) -> None:
        """Remove the block (ours only), then drop the lock if this side took it."""
        if self._key not in _OPEN_RT:
            return
        _OPEN_RT.discard(self._key)
        self._block.close(unlink=True)
        if self._own_lock is not None:
            self._own_lock.release()


class SupervisorSide:
    """The supervisor's end: attaches to the block, sends setpoints and resets, reads status."""

    def __init__(self, name: str):
        self._block = _Block(name, create=False)
        self._resets = 0

    @property
    def path(self) -> Path:
        return self._block.path

    def send_setpoints(self, setpoints: Setpoints) -> None:
        record = self._block.read(_SETPOINTS, _SETPOINTS_AT)
        self._resets = max(self._resets, record[1] if record else 0)
        self._block.write(_SETPOINTS, _SETPOINTS_AT, *_encode_setpoints(setpoints, self._resets, True))

    def request_reset(self, station: int | None = None) -> None:
        """Arm and clear every latch (station None), or clear one station's latch; the loop does
        it at its next tick. The setpoints in force stay."""
        if station is not None:
            if not 0 <= station < MAX_STATIONS:
                raise LinkError(f"station {station} is outside 0..{MAX_STATIONS - 1}")
            record = self._block.read(_STATION_RESET, _STATION_RESET_AT)
            count = (record[1] if record else 0) + 1
            mask = [0] * (MAX_STATIONS // 64)
            mask[station // 64] = 1 << (station % 64)
            self._block.write(_STATION_RESET, _STATION_RESET_AT, count, *mask)
            return
        record = self._block.read(_SETPOINTS, _SETPOINTS_AT)
        self._resets = max(self._resets, record[1] if record else 0) + 1
        if record and record[2]:
            values = [self._resets, *record[2:]]
        else:
            values = _encode_setpoints(Setpoints(), self._resets, False)
        self._block.write(_SETPOINTS, _SETPOINTS_AT, *values)

    def read_status(self, tries: int = 50) -> RtStatus | None:
        """The last status, or None while a live writer keeps it busy; `alive` needs a fresh heartbeat.

        When a new core has replaced the block (a restart after a crash; only a core holding the
        link's lock replaces it), this side attaches to the new one first: a supervisor follows
        restarts."""
        self._follow_replacement()
        return self._read_status(tries)

    def _follow_replacement(self) -> bool:
        try:
            if os.stat(self._block.path, follow_symlinks=False).st_ino == self._block.ino:
                return False  # still ours (the old block stays mapped, so its inode is not reused)
            new = _Block(self._block.name, create=False)
        except (OSError, LinkError):
            return False
        self._block.close(unlink=False)
        self._block = new
        log.info("link %s: a new rtcore replaced the block; attached to it", new.path)
        return True

    def _read_status(self, tries: int) -> RtStatus | None:
        block = self._block
        for attempt in range(tries):
            first = block.seq(_STATUS_AT)
            if first % 2 == 0:
                scalars = _STATUS_SCALARS.unpack_from(block.buf, _STATUS_AT)
                arrays = [view.copy() for view in block.arrays]
                if block.seq(_STATUS_AT) == first:
                    return _make_status(scalars, arrays, torn=False)
            time.sleep(0.0002 if attempt else 0)
        # Still odd after ~10 ms: a writer died in the middle of a write (kill -9). Take what is there.
        if block.seq(_STATUS_AT) % 2:
            return _make_status(_STATUS_SCALARS.unpack_from(block.buf, _STATUS_AT),
                                [view.copy() for view in block.arrays], torn=True)
        return None

    def close(self) -> None:
        self._block.close(unlink=False)


def _make_status(scalars: tuple, arrays: list, torn: bool) -> RtStatus:
    values = dict(zip(_SCALAR_FIELDS, scalars[1:]))
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    n = max(0, min(int(values["n_stations"]), MAX_STATIONS))
    values["n_stations"] = n
    for (name, _, kind), column in zip(STATION_ARRAYS, arrays):
        values[name] = tuple(kind(v) for v in column[:n].tolist())
    age_ns = time.monotonic_ns() - values["heartbeat_ns"]
    values["alive"] = values["alive"] and not torn and values["heartbeat_ns"] > 0 and age_ns < ALIVE_WITHIN_NS
    return RtStatus(**values)


def heartbeat_age_s(status: RtStatus) -> float | None:
    """Seconds since the status was written (None if it never was)."""
    return (time.monotonic_ns() - status.heartbeat_ns) / 1e9 if status.heartbeat_ns else None
