"""What makes the rtcore process a service: latches kept across restarts, an event log, one instance.

- `LatchStore`: `<state dir>/<link>.latch.json`, the line latch and each isolated station
  (cause bits, marker), written atomically (temporary file, fsync, rename, fsync of the
  directory) on every latch and clear, and restored into the kernel at start.
- `EventLog`: `<state dir>/events.jsonl`, one JSON object a line per start, stop, arm, latch
  and clear (time, kind, cause names and bits, station, marker, value, text), rotated to
  `events.jsonl.1` when the next line would pass `max_bytes`, so it never holds more than
  about twice that. Each event is also logged (latch: ERROR, the others: WARNING).
- `default_state_dir()`: `$DISCHARGE_EDGE_STATE_DIR`, else `./state/rtcore` (the working directory's
  state dir, laid out as a line's: the supervisor gives its core `<line state dir>/rtcore`).
  Nothing is written outside the state dir (never in the home directory).
- `InstanceLock` (defined in link.py, beside the private directory it lives in).
Tests: tests/edge/rtloop/test_service.py.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge.rtloop.link import AlreadyRunning, InstanceLock, LinkError
from rtcore.spec import Flag

__all__ = ["AlreadyRunning", "EventLog", "InstanceLock", "LatchStore", "Latches", "LinkError", "default_state_dir",
           "flag_names"]

log = logging.getLogger(__name__)
events_log = logging.getLogger("edge.rtloop.events")

STATE_DIR_ENV = "DISCHARGE_EDGE_STATE_DIR"
LATCH_FILE_VERSION = 1


DEFAULT_STATE_DIR = Path("state") / "rtcore"
"""Relative to the working directory, as `plan`'s ./state (edge/strategy/cli.py)."""


def default_state_dir() -> Path:
    override = os.environ.get(STATE_DIR_ENV)
    return Path(override) if override else DEFAULT_STATE_DIR


def flag_names(bits: int) -> list[str]:
    """The names of the single Flag bits set in `bits` (unknown bits as `BIT<n>`), lowest first."""
    names = []
    for n in range(max(int(bits), 0).bit_length()):
        if bits >> n & 1:
            try:
                name = Flag(1 << n).name  # an IntFlag gives unknown bits a member without a name
            except ValueError:
                name = None
            names.append(name or f"BIT{n}")
    return names


def _ensure_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Latches:
    """The latches to keep across a restart: the line's cause bits, and per station (cause, marker)."""

    line_cause: int = 0
    stations: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.line_cause or self.stations)


class LatchStore:
    """`<state_dir>/<link_name>.latch.json`, replaced atomically on every save."""

    def __init__(self, state_dir: Path, link_name: str):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / f"{link_name}.latch.json"

    def load(self) -> Latches:
        """The stored latches; none when there is no file. An unreadable file is kept aside as
        `.bad` and read as a line latch (EXCEPTION): a restart must not silently clear a fault."""
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != LATCH_FILE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {LATCH_FILE_VERSION}")
            stations = {int(s): (int(v["cause_bits"]), int(v["marker"])) for s, v in data["stations"].items()}
            return Latches(int(data["line_cause_bits"]), stations)
        except FileNotFoundError:
            return Latches()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            bad = self.path.with_name(self.path.name + ".bad")
            log.error("rtcore: latch file %s is unreadable (%s); kept as %s; the line starts latched (EXCEPTION) "
                      "until an operator arms it", self.path, exc, bad)
            try:
                os.replace(self.path, bad)
            except OSError:
                pass
            return Latches(int(Flag.EXCEPTION), {})

    def save(self, latches: Latches) -> None:
        payload = {
            "version": LATCH_FILE_VERSION, "saved_unix_s": time.time(),
            "line_cause_bits": int(latches.line_cause), "line_cause": flag_names(latches.line_cause),
            "stations": {str(s): {"cause_bits": int(c), "cause": flag_names(c), "marker": int(m)}
                         for s, (c, m) in sorted(latches.stations.items())},
        }
        _write_atomically(self.path, json.dumps(payload, indent=1).encode() + b"\n")


def _write_atomically(path: Path, data: bytes) -> None:
    _ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class EventLog:
    """`<state_dir>/events.jsonl`: one JSON line an event, rotated to `events.jsonl.1` at `max_bytes`."""

    def __init__(self, state_dir: Path, max_bytes: int = 8 << 20):
        if max_bytes <= 0:
            raise ValueError(f"EventLog.max_bytes must be > 0, got {max_bytes}")
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / "events.jsonl"
        self.max_bytes = max_bytes

    def append(self, kind: str, *, cause: int = 0, station: int | None = None, marker: int | None = None,
               value: float | None = None, text: str = "") -> None:
        names = flag_names(cause)
        value = float(value) if value is not None and math.isfinite(float(value)) else None
        record = {"time_unix_s": round(time.time(), 6), "kind": kind, "cause": names, "cause_bits": int(cause),
                  "station": None if station is None else int(station),
                  "marker": None if marker is None or marker < 0 else int(marker), "value": value, "text": text}
        line = (json.dumps(record, allow_nan=False) + "\n").encode()
        self._log(record)
        try:
            _ensure_dir(self.state_dir)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:  # the event is in the log above; a full disk must not stop the loop
            log.error("rtcore: cannot write event to %s: %s", self.path, exc)

    @staticmethod
    def _log(record: dict) -> None:
        where = []
        if record["station"] is not None:
            where.append(f"station {record['station']}")
        if record["marker"] is not None:
            where.append(f"marker {record['marker']}")
        if record["value"] is not None:
            where.append(f"{record['value']:.2f} degC")
        causes = "|".join(record["cause"])
        text = record["text"] and (f"({record['text']})" if causes or where else record["text"])
        message = " ".join(p for p in (f"rtcore event {record['kind']}:", causes, ", ".join(where), text) if p)
        events_log.log(logging.ERROR if record["kind"] == "latch" else logging.WARNING, "%s", message)
