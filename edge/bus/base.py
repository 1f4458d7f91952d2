"""The tag bus: the one way edge/ reaches a PLC.

`TagBus` is the public interface and does everything that is the same for every protocol:
resolving names against the tag map, checking a write (owner, access, limits, type) before
anything is sent (`check_write` gives that check alone, sending nothing), scaling raw <-> engineering units, timeouts on every call (the map's
`timeout_s`, or the caller's: the real-time loop sizes its own from its period), and
reconnecting: at once after a connection that served, then with a backoff that doubles to a cap.
A backend (memory.py, modbus.py, logix.py) implements only the private raw part: `_connect`,
`_disconnect`, `_read_raw`, `_write_raw`.

Results are values, not exceptions: every read or write returns one result per tag with a
`Quality` (and, where a backend says why, its `detail`: a backend answers a tag with a value, a
bare `Quality` or a `BadAnswer` carrying both). A lost connection or a timeout raises
`BusError` (the caller's cue to go safe).

Request plans. `plan_read(names)` and `plan_write(names)` resolve the names and build the
backend's requests (Modbus: the request list within the protocol's limits; Logix: the request
paths) once; a cyclic caller (the real-time loop) builds one of each at start and passes it to
`read(plan)` / `write(plan)` every tick, filling `plan.values` in place. A plain `read(names)` /
`write(mapping)` plans as it goes (the backend caches plans by tag list). A write's value is
checked and converted to raw once; arrays (tuples, lists or 1-D NumPy arrays) are checked and
scaled with NumPy, with the element-wise path kept only to name what a refused value broke.
Tests: tests/edge/bus/ (the contract suite runs against every backend; test_base.py the
conversions, test_request_plan.py the plans).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.tagmap import Access, DataType, Owner, Scaling, Tag, TagMap
from edge.tagmap.model import Value

log = logging.getLogger(__name__)


class Quality(enum.Enum):
    GOOD = "good"
    UNCERTAIN_LIMITS = "uncertain_limits"  # read outside the tag's limits; the value is delivered
    BAD_UNKNOWN_TAG = "bad_unknown_tag"  # not in the tag map: nothing was sent
    BAD_DEVICE = "bad_device"  # the PLC answered this tag with an error
    BAD_TYPE = "bad_type"  # the PLC's type or size differs from the map
    REFUSED_OWNER = "refused_owner"  # another process owns this output
    REFUSED_ACCESS = "refused_access"  # a read-only tag
    REFUSED_LIMITS = "refused_limits"  # outside the tag's limits, or not a value of its type

    @property
    def usable(self) -> bool:
        """The value can be used (GOOD, or UNCERTAIN with the caller's judgement)."""
        return self in (Quality.GOOD, Quality.UNCERTAIN_LIMITS)


@dataclass(frozen=True)
class TagValue:
    """One tag's read: value in engineering units (tuple for an array), or None if not usable."""

    name: str
    value: Value | None
    quality: Quality
    timestamp_ns: int  # time.time_ns() when the answer arrived (or when refused)
    detail: str = ""


@dataclass(frozen=True)
class WriteResult:
    name: str
    value: Value | None  # what was asked, in engineering units
    quality: Quality  # GOOD = the PLC accepted it
    timestamp_ns: int
    detail: str = ""


@dataclass(frozen=True)
class BadAnswer:
    """A backend's answer for one tag that carries no value, with why (for a person): what
    `_read_raw`/`_write_raw` give where a bare `Quality` would leave the reader guessing (Logix: the
    PLC's type named beside the map's). The bus hands `detail` on in TagValue/WriteResult."""

    quality: Quality
    detail: str = ""


class BusError(Exception):
    """The call could not be carried out; the caller must treat every value as stale."""


class ConnectionLost(BusError):
    """No connection to the PLC (refused, dropped, or waiting for the next reconnect attempt)."""


class BusTimeout(BusError):
    """The PLC did not answer in time; the connection was dropped and will be rebuilt."""


class Backoff:
    """Reconnect delay: `initial_s`, doubling after each failed attempt up to `cap_s`.

    A connection that served and then failed (a late answer, a drop) is rebuilt at the next
    call without waiting: one late answer must not stall a 100 ms loop for a backoff. Only a
    failed connect, or a failure before the new connection served once, starts the delay."""

    def __init__(self, initial_s: float = 0.05, cap_s: float = 5.0):
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.delay_s = 0.0
        self.next_attempt_s = 0.0  # time.monotonic() of the next allowed attempt

    def ready(self, now_s: float) -> bool:
        return now_s >= self.next_attempt_s

    def failed(self, now_s: float) -> None:
        self.delay_s = min(self.cap_s, self.delay_s * 2 if self.delay_s else self.initial_s)
        self.next_attempt_s = now_s + self.delay_s

    def succeeded(self) -> None:
        self.delay_s = 0.0
        self.next_attempt_s = 0.0


def eu_to_raw(tag: Tag, value: Value) -> Value:
    """Engineering units -> the PLC's raw value; ValueError if it is not a value of the tag's type.

    An array (tuple, list or 1-D NumPy array of count elements) is checked and scaled at once;
    a refused array goes through the element-wise path, which names the element at fault."""
    if tag.is_array and tag.count > 1:
        raw = _array_to_raw(tag, value)
        if raw is not None:
            return raw
    return _eu_to_raw_elements(tag, value)


def _array_to_raw(tag: Tag, value) -> tuple | None:
    """An array's raw values, or None when anything about it needs the element-wise check (and
    for 64-bit integers, which float64 cannot carry exactly)."""
    if tag.data_type.registers == 4 and tag.data_type.is_integer:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim != 1 or value.size != tag.count or value.dtype.kind not in "biuf":
            return None
        array = value
    elif isinstance(value, (tuple, list)) and len(value) == tag.count:
        kinds = set(map(type, value))
        if not kinds <= ({bool, int} if tag.data_type is DataType.BOOL else {float, int, np.float64}):
            return None  # a bool among numbers, a string, None ...: named by the element-wise check
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":  # an int too large for int64
            return None
    else:
        return None
    if tag.data_type is DataType.BOOL:
        if array.dtype.kind == "f" or not np.all((array == 0) | (array == 1)):
            return None
        return tuple(array.astype(bool).tolist())
    if array.dtype.kind == "b":
        return None
    eu = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(eu)):
        return None
    if tag.limits is not None and not np.all((eu >= tag.limits.min) & (eu <= tag.limits.max)):
        return None
    raw = (eu - tag.scaling.offset) / tag.scaling.gain  # Scaling.to_raw, element by element
    if tag.data_type.is_float:
        return tuple(raw.tolist())
    low, high = tag.data_type.raw_range
    whole = np.round(raw)  # half to even, as round()
    if not np.all((whole >= low) & (whole <= high)):
        return None
    return tuple(whole.astype(np.int64).tolist())


def _eu_to_raw_elements(tag: Tag, value: Value) -> Value:
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    if tag.data_type is DataType.STRING:
        return _string_raw(tag, value)
    if not tag.is_array and isinstance(value, (tuple, list)):
        raise ValueError(f"expected one value for a scalar tag, got {len(value)} elements")
    elements = value if tag.is_array else (value,)
    if not isinstance(elements, (tuple, list)) or len(elements) != tag.count:
        raise ValueError(f"expected {tag.count} elements, got {value!r}")
    out = []
    for element in elements:
        if tag.data_type is DataType.BOOL:
            if not isinstance(element, (bool, int)) or element not in (0, 1):
                raise ValueError(f"{element!r} is not a BOOL")
            out.append(bool(element))
            continue
        if isinstance(element, bool) or not isinstance(element, (int, float)) or not math.isfinite(element):
            raise ValueError(f"{element!r} is not a finite number")
        if tag.limits is not None and not tag.limits.contains(element):
            raise ValueError(f"{element} is outside limits {tag.limits.min}..{tag.limits.max} {tag.unit}")
        if tag.data_type.is_float:
            out.append(tag.scaling.to_raw(float(element)))
            continue
        low, high = tag.data_type.raw_range
        whole = _whole_raw(tag, element)
        if not low <= whole <= high:
            raise ValueError(f"{element} scales to {whole}, outside {tag.data_type.value}")
        out.append(whole)
    return tuple(out) if tag.is_array else out[0]


def _whole_raw(tag: Tag, element: float | int) -> int:
    """An integer tag's raw count for `element`: exact for an int without scaling (a 64-bit count
    is beyond float64), else rounded half to even as round()."""
    if isinstance(element, int) and tag.scaling == Scaling():
        return element
    return round(tag.scaling.to_raw(float(element)))


def _string_raw(tag: Tag, value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text (a STRING tag)")
    if not value.isascii() or "\0" in value:
        raise ValueError(f"{value!r} is not ASCII text without NUL")
    if len(value) > tag.string_chars:
        raise ValueError(f"{len(value)} characters; {tag.name} holds {tag.string_chars}")
    return value


def raw_to_eu(tag: Tag, raw: Value) -> tuple[Value, Quality]:
    """The PLC's raw value -> engineering units, with GOOD or UNCERTAIN_LIMITS."""
    if tag.data_type is DataType.STRING:
        return str(raw), Quality.GOOD
    elements = raw if tag.is_array else (raw,)
    if tag.data_type is DataType.BOOL:
        out = tuple(bool(e) for e in elements)
        return (out if tag.is_array else out[0]), Quality.GOOD
    if tag.is_array and len(elements) > 1 and not (tag.data_type.registers == 4 and tag.data_type.is_integer):
        return _array_to_eu(tag, elements)
    if not tag.data_type.is_float and tag.scaling == Scaling():
        eu = tuple(int(e) for e in elements)  # an unscaled integer stays a whole number
    else:
        eu = tuple(tag.scaling.to_eu(float(e)) for e in elements)
    quality = Quality.GOOD
    if tag.limits is not None and not all(tag.limits.contains(e) for e in eu):
        quality = Quality.UNCERTAIN_LIMITS  # NaN lands here too: it is inside no range
    return (eu if tag.is_array else eu[0]), quality


def _array_to_eu(tag: Tag, elements) -> tuple[tuple, Quality]:
    """raw_to_eu of a numeric array at once (same arithmetic: raw * gain + offset in float64)."""
    if not tag.data_type.is_float and tag.scaling == Scaling():
        whole = np.asarray(elements, dtype=np.int64)  # an unscaled integer stays a whole number
        eu, values = whole, tuple(whole.tolist())
    else:
        eu = np.asarray(elements, dtype=np.float64) * tag.scaling.gain + tag.scaling.offset
        values = tuple(eu.tolist())
    quality = Quality.GOOD
    if tag.limits is not None and not np.all((eu >= tag.limits.min) & (eu <= tag.limits.max)):
        quality = Quality.UNCERTAIN_LIMITS  # NaN lands here too: it is inside no range
    return values, quality


def plant_raw(tag: Tag, value: Value) -> Value:
    """Plant-side value -> raw, without the write limits: a sensor may read out of range.

    For PLC simulators (the memory PLC, the HIL bench servers); a bus write uses `eu_to_raw`.
    """
    if tag.data_type is DataType.STRING:
        return _string_raw(tag, value)
    elements = value if tag.is_array else (value,)
    if tag.data_type is DataType.BOOL:
        raw = tuple(bool(e) for e in elements)
    elif tag.data_type.is_float:
        raw = tuple(tag.scaling.to_raw(float(e)) for e in elements)
    else:
        low, high = tag.data_type.raw_range
        if not all(math.isfinite(e) for e in elements):
            raise ValueError(f"{tag.name}: a {tag.data_type.value} cannot hold {value!r}; a PLC analog card "
                             "reports a broken wire as an out-of-range count instead")
        raw = tuple(int(min(max(_whole_raw(tag, e), low), high)) for e in elements)
    return raw if tag.is_array else raw[0]


class TagBus(ABC):
    """Read and write the tags of one map on behalf of one owner (rtcore or supervisor)."""

    def __init__(self, tag_map: TagMap, owner: Owner, backoff: Backoff | None = None):
        self.tag_map = tag_map
        self.owner = owner
        self._backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._connected = False
        self._served = False  # the current connection answered at least once
        self._closed = False
        self._last_error = ""

    # -- public interface -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def plan_read(self, names: Sequence[str]) -> "ReadPlan":
        """The names resolved and the backend's requests built, once, for `read(plan)`."""
        names = (names,) if isinstance(names, str) else tuple(names)
        tags = tuple(self.tag_map.tag(n) for n in names)
        wanted = [t for t in tags if t is not None]
        return ReadPlan(names, tags, wanted, self._plan_requests(wanted, write=False) if wanted else None)

    def plan_write(self, names: Sequence[str]) -> "WritePlan":
        """The outputs written together, resolved and planned once, for `write(plan)`: set
        `plan.values` (one slot a name, in order) before each write."""
        names = (names,) if isinstance(names, str) else tuple(names)
        tags = tuple(self.tag_map.tag(n) for n in names)
        known = [t for t in tags if t is not None]
        return WritePlan(names, tags, self._plan_requests(known, write=True) if known and len(known) == len(tags) else None)

    def read(self, names: "Sequence[str] | ReadPlan", timeout_s: float | None = None) -> list[TagValue]:
        """Read tags by name (or a `plan_read` plan); one TagValue per name, in order. Raises
        BusError on a lost link."""
        plan = names if isinstance(names, ReadPlan) else self.plan_read(names)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.tag_map.timeout_s)
        with self._lock:
            raw = self._call(self._read_raw, (plan.wanted, plan.requests), deadline) if plan.wanted else {}
        now = time.time_ns()
        out = []
        for name, tag in zip(plan.names, plan.tags):
            if tag is None:
                out.append(TagValue(name, None, Quality.BAD_UNKNOWN_TAG, now, f"{name!r} is not in {self.tag_map.source}"))
                continue
            answer = raw[tag.name]
            if isinstance(answer, Quality):
                out.append(TagValue(name, None, answer, now))
            elif isinstance(answer, BadAnswer):
                out.append(TagValue(name, None, answer.quality, now, answer.detail))
            else:
                value, quality = raw_to_eu(tag, answer)
                out.append(TagValue(name, value, quality, now))
        return out

    def write(self, values: "Mapping[str, Value] | Iterable[tuple[str, Value]] | WritePlan",
              timeout_s: float | None = None) -> list[WriteResult]:
        """Write tags (a mapping, pairs, or a `plan_write` plan with its values set); each value
        is checked against the map and converted to raw once, and a refused one is never sent."""
        if isinstance(values, WritePlan):
            plan, items = values, list(zip(values.names, values.values))
        else:
            plan, items = None, list(values.items()) if isinstance(values, Mapping) else list(values)
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.tag_map.timeout_s)
        now = time.time_ns()
        results: dict[int, WriteResult] = {}
        to_send: list[tuple[Tag, Value]] = []
        positions: list[int] = []
        for i, (name, value) in enumerate(items):
            tag, checked = self._checked_raw(name, value)
            if tag is None:
                log.warning("%s: write refused: %s %s", self.tag_map.name, name, checked[1])
                results[i] = WriteResult(name, value, checked[0], now, checked[1])
                continue
            to_send.append((tag, checked))
            positions.append(i)
        if to_send:
            requests = plan.requests if plan is not None and len(to_send) == len(items) else None
            with self._lock:
                answers = self._call(self._write_raw, (to_send, requests), deadline)
            now = time.time_ns()
            for i, (tag, _) in zip(positions, to_send):
                answer = answers[tag.name]
                quality, detail = (answer.quality, answer.detail) if isinstance(answer, BadAnswer) else (answer, "")
                results[i] = WriteResult(tag.name, items[i][1], quality, now, detail)
        return [results[i] for i in range(len(items))]

    def check_write(self, name: str, value: Value) -> WriteResult:
        """What `write` would make of (name, value), without sending anything or needing the PLC:
        quality GOOD when the map lets this bus's owner write the value (a write tag it owns, of
        the tag's type and shape, inside its limits), else the refusal `write` would answer
        (BAD_UNKNOWN_TAG, REFUSED_ACCESS, REFUSED_OWNER, REFUSED_LIMITS) with why in `detail`.
        The same check `write` makes before it sends (a caller that checks first, such as a
        setpoint from the operator page, says why before anything is acted on)."""
        tag, checked = self._checked_raw(name, value)
        if tag is None:
            return WriteResult(name, value, checked[0], time.time_ns(), checked[1])
        return WriteResult(tag.name, value, Quality.GOOD, time.time_ns())

    def reconnect_now(self) -> None:
        """Let the next call try to connect at once, whatever the backoff says. The real-time
        loop does so within its blind time, so that every tick of it gets an attempt."""
        with self._lock:
            self._backoff.next_attempt_s = 0.0

    def safe_values(self) -> dict[str, Value]:
        """Every output this owner drives, at the safe value its map declares."""
        return {t.name: t.safe_value for t in self.tag_map.outputs(self.owner)}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connected:
                self._connected = False
                self._disconnect()

    def __enter__(self) -> "TagBus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- shared mechanics -------------------------------------------------------------------
    def _checked_raw(self, name: str, value: Value) -> tuple[Tag | None, Value | tuple[Quality, str]]:
        """(tag, raw value) for a write the map allows, or (None, (quality, why)) for a refused one."""
        tag = self.tag_map.tag(name)
        if tag is None:
            return None, (Quality.BAD_UNKNOWN_TAG, f"{name!r} is not in {self.tag_map.source}; nothing outside the map is written")
        if tag.access is not Access.WRITE:
            return None, (Quality.REFUSED_ACCESS, f"{name!r} is a read tag (line {tag.source_line})")
        if tag.owner is not self.owner:
            return None, (Quality.REFUSED_OWNER, f"{name!r} is owned by {tag.owner.value}, this bus writes for {self.owner.value}")
        try:
            return tag, eu_to_raw(tag, value)
        except ValueError as exc:
            return None, (Quality.REFUSED_LIMITS, str(exc))

    def _call(self, operation, argument, deadline: float):
        """Run one backend operation with connect-on-demand; a failure drops the connection."""
        if self._closed:
            raise ConnectionLost(f"{self.tag_map.name}: bus is closed")
        now = time.monotonic()
        if not self._connected:
            if not self._backoff.ready(now):
                wait_s = self._backoff.next_attempt_s - now
                raise ConnectionLost(f"{self.tag_map.name}: not connected; next attempt in {wait_s:.2f} s "
                                     f"(last error: {self._last_error})")
            try:
                self._connect(deadline)
            except BusError as exc:
                self._note_failure(exc)
                raise
            self._connected = True
            self._served = False
            log.info("%s: connected to %s", self.tag_map.name, self.tag_map.endpoint)
        try:
            result = operation(*argument, deadline)
        except BusError as exc:
            self._connected = False
            self._disconnect()
            self._note_failure(exc, retry_now=self._served)
            raise
        if not self._served:
            self._served = True
            self._backoff.succeeded()
        return result

    def _note_failure(self, exc: BusError, retry_now: bool = False) -> None:
        self._last_error = str(exc)
        if retry_now:  # the connection was good: rebuild it at the next call, no delay
            self._backoff.succeeded()
            log.warning("%s; reconnecting at the next call", exc)
            return
        self._backoff.failed(time.monotonic())
        log.warning("%s; retry in %.2f s", exc, self._backoff.delay_s)

    # -- backend part -----------------------------------------------------------------------
    @abstractmethod
    def _connect(self, deadline: float) -> None:
        """Open the connection before time.monotonic() reaches `deadline`, or raise BusError."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Drop the connection; never raises."""

    def _plan_requests(self, tags: list[Tag], write: bool):
        """The backend's requests for these tags (read or written together), or None; handed
        back to `_read_raw`/`_write_raw` with exactly these tags."""
        return None

    @abstractmethod
    def _read_raw(self, tags: list[Tag], requests, deadline: float) -> dict[str, "Value | Quality | BadAnswer"]:
        """Raw values (or a BAD quality, bare or as a BadAnswer with why) by tag name, for every
        tag asked; `requests` is `_plan_requests(tags)`'s, or None (plan them)."""

    @abstractmethod
    def _write_raw(self, items: list[tuple[Tag, Value]], requests, deadline: float) -> dict[str, "Quality | BadAnswer"]:
        """Send raw values; GOOD or a BAD quality (bare or a BadAnswer) by tag name; `requests`
        as for `_read_raw`."""


@dataclass(frozen=True, eq=False)
class ReadPlan:
    """Tags read together (TagBus.plan_read): names as asked, their tags (None: not in the map),
    the known ones, and the backend's requests for them."""

    names: tuple[str, ...]
    tags: tuple[Tag | None, ...]
    wanted: list[Tag]
    requests: object


class WritePlan:
    """Outputs written together (TagBus.plan_write); the caller sets `values[i]` for `names[i]`
    before each `TagBus.write(plan)`. The backend's requests serve a write where every value
    passes its checks; otherwise the values that do are planned as they come."""

    def __init__(self, names: tuple[str, ...], tags: tuple[Tag | None, ...], requests):
        self.names = names
        self.tags = tags
        self.requests = requests
        self.values: list = [None] * len(names)
        self.index = {name: i for i, name in enumerate(names)}
