"""Live tags: read and watch a PLC's tags through a map, and check a map against the live PLC.

Owns what `discharge-edge tags read`, `tags watch` and `tags check --live` do (the argparse is
edge/tagmap/cli.py's). Everything here only reads: the bus is opened behind `LiveReader`, which
has no write, so no request that changes the PLC is ever sent (the tests count the bench's
requests by function code).

Naming a tag (`resolve`): a tag name of the map first, then a role name (edge.tagmap.roles'
`role_tag`: the tag the map's `roles:` names, or the role's default tag), either with `[i]` for one element of an array (`marker_temp_degc[3]`,
`plc_heartbeat`). Anything else is refused with `UnknownTag`, naming the map's file and the
names near it (tags and roles).

A reading (`Reading`) carries the value in the tag's unit, its quality (edge.bus `Quality`; an
element's own quality is its own limits' verdict), the wall time of the answer (shown ISO 8601
UTC) and the monotonic time it arrived, from which its age is told when shown. Text shows an
array compactly (`format_value`: equal neighbours as `v ×n`, a long array cut in the middle with
its size and range); JSON shows every element, a NaN or infinite value as null (its quality says
so where the tag has limits).

- `tags read`: one read of every tag named, in one request plan. `--json`: one object
  (`read_json`): map, endpoint, protocol, `tags` (one entry a TAG as typed: tag, name, role,
  index, value, quality, unit, time_utc, age_s, detail).
- `tags watch`: the same read every `--every` seconds on absolute deadlines (a read that
  overruns skips the deadlines it missed and counts them), `--count` samples or until Ctrl-C,
  which ends it cleanly (exit 0, the bus closed). `--json` prints JSON lines: one object a
  sample, flushed as it is taken (the object of `tags read --json` plus `sample`, from 1, and
  `t_s`, monotonic seconds since the watch began; each tag adds `unchanged_s`, how long its value
  has stood still), so a watch can be piped into a reader while it runs and a Ctrl-C never cuts
  one in half. That is the one exception to "one JSON object" (edge/cli.py), because a watch
  has no end.
- A PLC that does not answer (refused, nothing listening, no answer within `--timeout`, default
  DEFAULT_TIMEOUT_S: a person waits for a reading, the map's own `timeout_s` is sized for the
  100 ms loop) raises `NoAnswer`: the commands exit EXIT_NO_ANSWER (3) with the endpoint and the
  cause, never hang. A watch stops at the first sample without an answer.

`check_live(tag_map)` (`tags check --live`): every tag read once on its own (an address or tag
the PLC refuses is a problem of that tag; Logix: the controller's tag list compared, type and
size); every input (access read) checked against its limits (an out-of-range reading names
its elements and values) and its type (a REAL that is NaN, infinite, or of a magnitude no
measurement has, below 1e-20 or above 1e20: integer registers read as a REAL, or another
byte order); the heartbeat role (`plc_heartbeat`) read until it changes, at most
HEARTBEAT_WAIT_S (2 s, the core's 20 stale ticks of 100 ms: a PLC slower than that would latch
the core's LINK_LOST anyway); a map without it is noted, not refused (the roles check decides
whether it is needed). When inputs read wrong, a problem of the map (its line 1) says how many
did: the PLC's layout is not this map's (another line's map, shifted registers, another byte
order). Each problem names file:line and tag; notes (the slowest answer beside the map's
`timeout_s`, a heartbeat role missing) are not problems.

Tests: tests/edge/tagmap/test_live.py (both protocols over loopback against the served bench),
test_live_units.py (naming, showing, judging, pacing without a PLC), test_cli.py.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from edge.bus import BusError, Quality, TagValue, open_bus
from edge.tagmap.checker import MapProblem
from edge.tagmap.model import Access, DataType, Owner, Protocol, Tag, TagMap
from edge.tagmap.roles import ROLES, role_tag

EXIT_NO_ANSWER = 3
"""The PLC did not answer: nothing listens, the connection is refused, or no answer in time."""
DEFAULT_TIMEOUT_S = 1.0
HEARTBEAT_ROLE = "plc_heartbeat"
HEARTBEAT_WAIT_S = 2.0
"""How long `check_live` waits for the PLC's heartbeat to change: the core latches LINK_LOST
after 20 ticks of 100 ms without a change (edge/rtloop/loop.py `plc_heartbeat_stale_ticks`)."""
HEARTBEAT_READ_EVERY_S = 0.05
REAL_MAGNITUDE = (1e-20, 1e20)
"""A nonzero REAL reading outside these magnitudes is no measurement in any unit a map uses:
two integer registers read as a REAL give about 1e-38, a word-swapped REAL often 1e-41 or 1e30."""
SHOWN_ELEMENTS = 8
_SPEC_RE = re.compile(r"^([^\[\]\s]+)(?:\[(\d+)\])?$")


class UnknownTag(ValueError):
    """A TAG that is neither a tag nor a role of the map (or an element it does not have)."""


class NoAnswer(BusError):
    """The PLC did not answer; the message names the endpoint and the cause."""


# -- naming a tag -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """A TAG as typed, resolved: the map's tag, one element of it or None (all), the role it plays."""

    spec: str
    tag: Tag
    index: int | None = None
    role: str | None = None


def role_names() -> tuple[str, ...]:
    """The roles a TAG may name: edge.tagmap.roles' catalogue."""
    return tuple(r.name for r in ROLES)


def resolve(tag_map: TagMap, spec: str) -> Selection:
    """`spec` (a tag name, a role, either with `[i]`) in the map; UnknownTag names near names."""
    match = _SPEC_RE.match(spec.strip())
    name, index = (match.group(1), match.group(2)) if match else (spec, None)
    tag, role = tag_map.tag(name), None
    if tag is None and match and name in role_names():
        tag, role = role_tag(tag_map, name), name
        if tag is None:
            raise UnknownTag(f"{spec!r}: no tag of {tag_map.source} plays the role {name!r}")
    if tag is None:
        near = near_names(tag_map, name)
        hint = f"near: {', '.join(near)}" if near else _some_names(tag_map)
        raise UnknownTag(f"{spec!r} is not a tag or role of {tag_map.source}; {hint}")
    if index is None:
        return Selection(spec, tag, None, role)
    element = int(index)
    if not tag.is_array:
        raise UnknownTag(f"{spec!r}: {tag.name} (line {tag.source_line} of {tag_map.source}) is a scalar; name it without [i]")
    if element >= tag.count:
        raise UnknownTag(f"{spec!r}: {tag.name} (line {tag.source_line} of {tag_map.source}) has {tag.count} "
                         f"elements, 0..{tag.count - 1}")
    return Selection(spec, tag, element, role)


def near_names(tag_map: TagMap, name: str, n: int = 5) -> list[str]:
    """Tag and role names near `name`: close spellings first, then names that contain it."""
    names = [t.name for t in tag_map.tags] + [r for r in role_names() if role_tag(tag_map, r) is not None]
    names = list(dict.fromkeys(names))
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    within = [x for x in names if name.lower() in x.lower() and x not in close]
    return (close + within)[:n]


def _some_names(tag_map: TagMap) -> str:
    names = [t.name for t in tag_map.tags]
    shown = ", ".join(names[:8])
    return f"it has {len(names)} tags: {shown}{', ...' if len(names) > 8 else ''}"


# -- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """One TAG's reading: value in the tag's unit (the element's, for `name[i]`), or None."""

    selection: Selection
    value: object
    quality: Quality
    time_ns: int  # wall clock of the answer (time.time_ns())
    at_s: float  # time.monotonic() when the answer arrived
    detail: str = ""


class LiveReader:
    """Reads the selected tags of one map, and nothing else: it has no write. The bus is the
    supervisor's only because a bus has an owner; an owner matters to writes alone."""

    def __init__(self, tag_map: TagMap, selections: Sequence[Selection], timeout_s: float = DEFAULT_TIMEOUT_S):
        self.tag_map = tag_map
        self.selections = tuple(selections)
        self.timeout_s = timeout_s
        self.endpoint = f"{tag_map.endpoint.host}:{tag_map.endpoint.port}"
        self._bus = open_bus(tag_map, Owner.SUPERVISOR)
        self._names = list(dict.fromkeys(s.tag.name for s in self.selections))
        self._plan = None
        self.slowest_s = 0.0  # the longest read, for check_live's note

    def read_tags(self, names: Sequence[str] | None = None) -> list[TagValue]:
        """The bus's TagValues of `names` (default: the selection's tags); NoAnswer if none came."""
        started = time.monotonic()
        try:
            if names is None:
                if self._plan is None:
                    self._plan = self._bus.plan_read(self._names)
                values = self._bus.read(self._plan, self.timeout_s)
            else:
                values = self._bus.read(list(names), self.timeout_s)
        except BusError as exc:
            raise NoAnswer(f"no answer from the PLC at {self.endpoint} ({self.tag_map.protocol.value}, "
                           f"timeout {self.timeout_s:g} s): {exc}") from exc
        self.slowest_s = max(self.slowest_s, time.monotonic() - started)
        return values

    def read(self) -> list[Reading]:
        """One reading per selection, in order, from one read of their tags."""
        values = {v.name: v for v in self.read_tags()}
        at_s = time.monotonic()
        return [_reading(s, values[s.tag.name], at_s) for s in self.selections]

    def remote_problems(self) -> list[str]:
        """Logix: '<tag>: <why>' for each mapped tag the controller's tag list contradicts."""
        try:
            return self._bus.remote_problems(self.timeout_s)
        except BusError as exc:
            raise NoAnswer(f"no answer from the PLC at {self.endpoint}: {exc}") from exc

    def close(self) -> None:
        self._bus.close()

    def __enter__(self) -> "LiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reading(selection: Selection, value: TagValue, at_s: float) -> Reading:
    tag = selection.tag
    if selection.index is None or value.value is None:
        return Reading(selection, value.value, value.quality, value.timestamp_ns, at_s, value.detail)
    element = value.value[selection.index]
    quality = value.quality
    if quality is Quality.UNCERTAIN_LIMITS and tag.limits is not None and _inside(tag, element):
        quality = Quality.GOOD  # another element is out; this one is not
    return Reading(selection, element, quality, value.timestamp_ns, at_s, value.detail)


def _inside(tag: Tag, value) -> bool:
    return isinstance(value, (int, float)) and tag.limits.contains(value)


# -- showing a reading ---------------------------------------------------------------------------
def time_utc(time_ns: int) -> str:
    """ISO 8601 UTC to the millisecond: 2026-11-29T05:40:12.346Z."""
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_scalar(value, data_type: DataType | None = None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        digits = 15 if data_type is not None and data_type.value == "LREAL" else 7
        return f"{value:.{digits}g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def format_value(value, tag: Tag | None = None) -> str:
    """A value for a person: a scalar as it is, an array in brackets with equal neighbours as
    `v ×n`; past SHOWN_ELEMENTS runs the middle is cut, and the size and range are added."""
    data_type = tag.data_type if tag is not None else None
    if value is None:
        return "-"
    if not isinstance(value, (tuple, list)):
        return format_scalar(value, data_type)
    runs: list[list] = []
    for element in value:
        if runs and (runs[-1][0] == element or _both_nan(runs[-1][0], element)):
            runs[-1][1] += 1
        else:
            runs.append([element, 1])
    shown = [format_scalar(v, data_type) + (f" ×{n}" if n > 1 else "") for v, n in runs]
    if len(shown) > SHOWN_ELEMENTS:
        shown = shown[:SHOWN_ELEMENTS - 2] + ["…"] + shown[-2:]
    text = "[" + ", ".join(shown) + "]"
    if len(runs) > SHOWN_ELEMENTS:
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool) and not _is_nan(v)]
        span = (f", {format_scalar(min(numbers), data_type)}..{format_scalar(max(numbers), data_type)}"
                if numbers else "")
        text += f" ({len(value)} values{span})"
    return text


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _both_nan(a, b) -> bool:
    return _is_nan(a) and _is_nan(b)


def json_value(value):
    """A value for JSON: arrays as lists, NaN and infinities as null."""
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reading_json(reading: Reading, now_s: float) -> dict:
    selection = reading.selection
    return {"tag": selection.spec, "name": selection.tag.name, "role": selection.role, "index": selection.index,
            "value": json_value(reading.value), "quality": reading.quality.value, "unit": selection.tag.unit,
            "time_utc": time_utc(reading.time_ns), "age_s": round(max(0.0, now_s - reading.at_s), 6),
            "detail": reading.detail}


def reading_text(reading: Reading, now_s: float) -> str:
    selection = reading.selection
    name = selection.spec
    if selection.role is not None:
        name += f" (role of {selection.tag.name})" if selection.tag.name != selection.role else " (role)"
    unit = f" {selection.tag.unit}" if selection.tag.unit and reading.value is not None else ""
    detail = f"  {reading.detail}" if reading.detail else ""
    return (f"{name} = {format_value(reading.value, selection.tag)}{unit}  {reading.quality.value}  "
            f"{time_utc(reading.time_ns)}  age {max(0.0, now_s - reading.at_s):.3f} s{detail}")


def header(tag_map: TagMap) -> dict:
    return {"map": str(tag_map.source), "endpoint": f"{tag_map.endpoint.host}:{tag_map.endpoint.port}",
            "protocol": tag_map.protocol.value}


def read_json(tag_map: TagMap, readings: Sequence[Reading], now_s: float) -> dict:
    return {**header(tag_map), "tags": [reading_json(r, now_s) for r in readings]}


# -- watching ----------------------------------------------------------------------------------
@dataclass
class WatchState:
    """What a watch carries from sample to sample: since when each value stood still."""

    started_s: float
    samples: int = 0
    skipped: int = 0  # deadlines missed by a read that overran
    _since: dict = field(default_factory=dict)  # spec -> (value, monotonic time it last changed)

    def unchanged_s(self, reading: Reading) -> float:
        key = reading.selection.spec
        last = self._since.get(key)
        if last is None or not _same(last[0], reading.value):
            self._since[key] = (reading.value, reading.at_s)
            return 0.0
        return reading.at_s - last[1]


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or _both_nan(a, b)


def watch(reader: LiveReader, every_s: float, count: int | None,
          emit: Callable[[WatchState, list[Reading]], None], sleep: Callable[[float], None] = time.sleep) -> WatchState:
    """Read every `every_s` on absolute deadlines, `count` times (None: until interrupted) and
    hand each sample to `emit`. NoAnswer propagates; KeyboardInterrupt is the caller's to catch."""
    state = WatchState(started_s=time.monotonic())
    next_s = state.started_s
    while count is None or state.samples < count:
        readings = reader.read()
        state.samples += 1
        emit(state, readings)
        if count is not None and state.samples >= count:
            break
        next_s += every_s
        now = time.monotonic()
        if now > next_s:  # the read overran: the missed deadlines are skipped, not caught up
            missed = math.ceil((now - next_s) / every_s)
            state.skipped += missed
            next_s += missed * every_s
        sleep(max(0.0, next_s - time.monotonic()))
    return state


def sample_json(tag_map: TagMap, state: WatchState, readings: Sequence[Reading], now_s: float) -> dict:
    tags = []
    for reading in readings:
        entry = reading_json(reading, now_s)
        entry["unchanged_s"] = round(state.unchanged_s(reading), 6)
        tags.append(entry)
    return {**header(tag_map), "sample": state.samples, "t_s": round(now_s - state.started_s, 6), "tags": tags}


def sample_text(state: WatchState, readings: Sequence[Reading], now_s: float) -> list[str]:
    lines = []
    for reading in readings:
        steady = state.unchanged_s(reading)
        lines.append(f"#{state.samples} +{now_s - state.started_s:.3f} s  {reading_text(reading, now_s)}"
                     f"  unchanged {steady:.3f} s")
    return lines


# -- the live check ------------------------------------------------------------------------------
@dataclass
class LiveReport:
    problems: list[MapProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_live(tag_map: TagMap, timeout_s: float = DEFAULT_TIMEOUT_S,
               heartbeat_wait_s: float = HEARTBEAT_WAIT_S) -> LiveReport:
    """How the PLC behind `tag_map` differs from it (module docstring); reads only."""
    report = LiveReport()
    endpoint = f"{tag_map.endpoint.host}:{tag_map.endpoint.port}"
    with LiveReader(tag_map, (), timeout_s) as reader:
        try:
            _check_tags(tag_map, reader, report)
            _check_heartbeat(tag_map, reader, report, heartbeat_wait_s)
        except NoAnswer as exc:
            report.problems.append(MapProblem(tag_map.source, 1, None, f"cannot check against the PLC at {endpoint}: "
                                              f"{exc.__cause__ or exc}"))
            return report
        if reader.slowest_s > tag_map.timeout_s:
            report.notes.append(f"the slowest answer took {reader.slowest_s * 1000:.0f} ms; the map's timeout_s is "
                                f"{tag_map.timeout_s * 1000:.0f} ms (the loop's every request)")
    return report


def _check_tags(tag_map: TagMap, reader: LiveReader, report: LiveReport) -> None:
    endpoint = reader.endpoint
    remote: dict[str, str] = {}
    if tag_map.protocol is Protocol.LOGIX:
        remote = dict(p.split(": ", 1) for p in reader.remote_problems())
    inputs = wrong = 0
    for tag in tag_map.tags:
        if tag.name in remote:
            report.problems.append(MapProblem(tag_map.source, tag.source_line, tag.name, remote[tag.name]))
            continue
        value = reader.read_tags([tag.name])[0]
        if value.quality is Quality.BAD_DEVICE:
            report.problems.append(MapProblem(tag_map.source, tag.source_line, tag.name,
                                              f"the PLC at {endpoint} refuses {tag.address} ({tag.count} x {tag.data_type.value})"))
            continue
        if value.quality is Quality.BAD_TYPE:  # the read's own type check (the tag list's may be older)
            report.problems.append(MapProblem(tag_map.source, tag.source_line, tag.name,
                                              value.detail or f"the PLC's {tag.address} is not {tag.type_text}"))
            continue
        if tag.access is not Access.READ or value.value is None:
            continue
        inputs += 1
        why = reading_problem(tag, value.value)
        if why:
            wrong += 1
            report.problems.append(MapProblem(tag_map.source, tag.source_line, tag.name, why))
    if wrong:
        report.problems.append(MapProblem(
            tag_map.source, 1, None,
            f"{wrong} of {inputs} inputs read at {endpoint} are outside their limits or type: the PLC's layout "
            "is not this map's (another line's map, shifted addresses, another byte order?)"))


def reading_problem(tag: Tag, value) -> str:
    """Why an input's reading cannot be what the map says it is ('' when it can): elements
    outside the tag's limits, a REAL that is no number or of no measurement's magnitude."""
    elements = value if isinstance(value, (tuple, list)) else (value,)
    where = (lambda i: f"[{i}] ") if isinstance(value, (tuple, list)) else (lambda i: "")
    unit = f" {tag.unit}" if tag.unit else ""
    if tag.data_type.value in ("REAL", "LREAL"):
        odd = [(i, v) for i, v in enumerate(elements) if isinstance(v, float) and
               (not math.isfinite(v) or (v != 0.0 and not REAL_MAGNITUDE[0] <= abs(v) <= REAL_MAGNITUDE[1]))]
        if odd:
            shown = ", ".join(f"{where(i)}{v:.4g}" for i, v in odd[:4])
            return (f"reads {shown}{' ...' if len(odd) > 4 else ''} ({len(odd)} of {len(elements)}): "
                    f"no {tag.data_type.value} measurement in {tag.unit or 'any unit'}; integer registers read as "
                    "a REAL, or another byte order?")
    if tag.limits is None:
        return ""
    out = [(i, v) for i, v in enumerate(elements)
           if isinstance(v, (int, float)) and not isinstance(v, bool) and not tag.limits.contains(v)]
    if not out:
        return ""
    shown = ", ".join(f"{where(i)}{format_scalar(v, tag.data_type)}" for i, v in out[:4])
    return (f"reads {shown}{' ...' if len(out) > 4 else ''}{unit} ({len(out)} of {len(elements)}), outside its "
            f"limits {format_scalar(tag.limits.min)}..{format_scalar(tag.limits.max)}{unit}")


def _check_heartbeat(tag_map: TagMap, reader: LiveReader, report: LiveReport, wait_s: float) -> None:
    tag = role_tag(tag_map, HEARTBEAT_ROLE)
    if tag is None:
        report.notes.append(f"no tag plays the role {HEARTBEAT_ROLE}: that the PLC's program runs is not confirmed")
        return
    first = reader.read_tags([tag.name])[0]
    if first.value is None:
        return  # refused or of another type: already a problem of the tag
    started = time.monotonic()
    reads = 1
    while time.monotonic() - started < wait_s:
        time.sleep(HEARTBEAT_READ_EVERY_S)
        reads += 1
        if reader.read_tags([tag.name])[0].value != first.value:
            played = "" if tag.name == HEARTBEAT_ROLE else f" ({HEARTBEAT_ROLE})"
            report.notes.append(f"the PLC's heartbeat {tag.name}{played} moved within {time.monotonic() - started:.2f} s "
                                f"({reads} reads)")
            return
    report.problems.append(MapProblem(
        tag_map.source, tag.source_line, tag.name,
        f"the PLC's heartbeat ({HEARTBEAT_ROLE}) stood at {format_scalar(first.value)} over {reads} reads in "
        f"{wait_s:g} s: the PLC's program is stopped, or this address is not its heartbeat (the core latches "
        "LINK_LOST on it)"))
