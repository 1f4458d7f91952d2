"""Allen-Bradley Logix backend of the tag bus (EtherNet/IP, CIP): the only file that imports pycomm3.

One worker thread per PLC owns a pycomm3 `LogixDriver`; callers wait on it with their deadline,
so a stuck socket never holds the caller past its timeout, and the socket itself gives up at the
deadline so that the worker is free for the next call. A driver is disposable: any communication
failure throws it away and the next call builds a new one (at once after a connection that
served, else after the base class's backoff); a connect that outlives its call finishes in the
background and serves the next one. The tag list the driver uploads on connect is cached and
compared with the map: a tag the PLC lacks, or of another type or size, reads BAD_TYPE and is
never written. A UDT member (controller- or program-scoped, nested, an element of a UDT array)
is followed through the structures' templates pycomm3 uploads with the list, so a member of
another type or size is named with its real type too (`type_problem`). Every read's answer is
checked as well: pycomm3 decodes a reply as the tag list types it and names that type
(`Tag.type`, `REAL[4]`); another than the map's is BAD_TYPE with both types in its detail, never
a converted value (`_reply_type_problem`). The list is uploaded again every `tag_list_refresh_s`
and whenever the PLC says a mapped tag does not exist, which is how a changed controller program
shows.

Packet sizes are pycomm3's: every array is asked with its element count (`Tag{N}`; the paths are
the request plan, built once by `plan_read`/`plan_write`), and all the tags of one call go to
one `read`/`write`, so pycomm3 packs them into Multiple Service Packets
within the connection size and reads or writes a tag too large for one in fragments
(0x52/0x53). Never split one call into per-tag calls. Tests: tests/edge/bus/test_contract.py,
test_request_plan.py (128 stations, with 4000- and 500-byte connections), test_types_logix.py,
test_types_bench.py, test_logix_tag_list.py, test_logix_udt_types.py (members against the bench).

Types: every atomic type of the map (BOOL .. LREAL), the Logix STRING (pycomm3 reads and writes
it as text), members of UDTs and I/O module tags (`Local:3:I.Ch0Data`) by their path, and a BOOL
at a bit of an integer (`Status.5`): read with its integer, written by pycomm3 with CIP
Read-Modify-Write (service 0x4E, the controller sets the bit alone: the other bits, which the
PLC program may own, are never written back). The tag-list check (`type_problem`) knows them all,
and a BOOL array held in 32-bit words (a controller's DWORD) as pycomm3 reads its bits.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from pycomm3 import LogixDriver
from pycomm3.exceptions import CommError, PycommError

from edge.bus.base import BadAnswer, BusError, BusTimeout, ConnectionLost, Quality, TagBus
from edge.tagmap import DataType, Owner, Tag, TagMap
from edge.tagmap.addresses import parse_logix_path
from edge.tagmap.model import Value

log = logging.getLogger(__name__)
logging.getLogger("pycomm3").setLevel(logging.CRITICAL)  # failures reach us as exceptions; we log them

_BIT_WIDTH = {"SINT": 8, "USINT": 8, "INT": 16, "UINT": 16, "DINT": 32, "UDINT": 32, "LINT": 64, "ULINT": 64,
              "DWORD": 32}


def _find(entries: dict, name: str):
    """The PLC's definition of `name` among `entries` (tags, or a UDT's members); Logix names are
    case-insensitive. (key as the PLC spells it, definition), or (None, None)."""
    definition = entries.get(name)
    if definition is not None:
        return name, definition
    lowered = name.lower()
    return next(((key, d) for key, d in entries.items() if key.lower() == lowered), (None, None))


class _Node:
    """One level of a PLC tag as pycomm3's tag list has it: a tag or a UDT member, atomic or a
    structure, with its element count (`length`; `array` False for a scalar)."""

    def __init__(self, definition: dict, member: bool):
        data_type = definition.get("data_type")
        self.struct = definition.get("tag_type") == "struct"
        named = data_type.get("name") if isinstance(data_type, dict) else data_type
        self.type_name = definition.get("data_type_name") or named
        self.members = data_type.get("internal_tags") if self.struct and isinstance(data_type, dict) else None
        elements = (definition.get("array") if member else (definition.get("dimensions") or [0])[0]) or 0
        self.array, self.length = elements > 0, elements or 1

    def shown(self) -> str:
        """The type as Studio 5000 shows it: `REAL[4]`, `DINT`, `BENCH_ROBOTCELL[2]`."""
        return f"{self.type_name}[{self.length}]" if self.array else str(self.type_name)


def type_problem(tag: Tag, plc_tags: dict) -> str:
    """Why the PLC's definition of `tag` does not fit the map, or '' when it does. A member of a
    UDT (`RobotCell[1].SlotConfidence`, nested `PackTags.Command.CntrlCmd`, controller- or
    program-scoped) is followed through the templates pycomm3 uploads with the tag list
    (`data_type.internal_tags`), each index checked against its level's size; the member at the
    end is checked as a tag is. A structure whose members the list does not carry cannot be told
    here: '' (the read's reply type is checked on every read, `_reply_type_problem`)."""
    path = parse_logix_path(tag.address)
    base = path.base
    _, definition = _find(plc_tags, base)
    if definition is None:
        return f"{tag.name}: PLC has no tag {base!r}"
    node, index = _Node(definition, member=False), path.base_index
    subject, shown, what = f"PLC tag {base!r}", base, "tag"
    for name, next_index in path.segments[1:]:
        if index is not None and index >= node.length:
            return f"{tag.name}: {subject} is {node.shown()}; the map asks element {index} ({tag.address})"
        if node.members is None:
            if node.struct:
                return ""  # a structure the tag list does not describe: the reply's type is checked on each read
            return (f"{tag.name}: {subject} is {node.shown()}, not a structure; the map asks its member {name!r} "
                    f"({tag.address})")
        key, member = _find(node.members, name)
        if member is None:
            names = ", ".join(list(node.members)[:12]) + (", ..." if len(node.members) > 12 else "")
            return (f"{tag.name}: PLC {what} {shown!r} is {node.type_name}, which has no member {name!r}; "
                    f"its members: {names}")
        shown += (f"[{index}]" if index is not None else "") + f".{key}"
        subject, what = f"PLC member {shown!r} of {node.type_name}", "member"
        node, index = _Node(member, member=True), next_index
    return _leaf_problem(tag, path, node, index or 0, subject)


def _leaf_problem(tag: Tag, path, node: _Node, index: int, subject: str) -> str:
    """Why the PLC tag or member at the end of `tag`'s path does not fit the map ('' when it does)."""
    plc_type = node.type_name
    if path.bit is not None:
        width = None if node.struct else _BIT_WIDTH.get(plc_type)
        if width is None:
            return f"{tag.name}: {subject} is {node.shown()}; a bit ({tag.address}) needs an integer"
        if path.bit >= width:
            return f"{tag.name}: {subject} is {plc_type}, {width} bits; the map asks bit {path.bit}"
        count = 1
    elif tag.data_type is DataType.STRING:
        if not node.struct or plc_type != "STRING":
            return f"{tag.name}: {subject} is {node.shown()}, the map says STRING"
        count = tag.count
    elif tag.data_type is DataType.BOOL and tag.is_array and plc_type == "DWORD" and not node.struct:
        # a BOOL array as a controller allocates it, in 32-bit words; pycomm3 reads its bits
        if index + tag.count > 32 * node.length:
            return (f"{tag.name}: {subject} is {node.shown()}, {32 * node.length} BOOLs; the map needs "
                    f"{index + tag.count}")
        return ""
    else:
        if node.struct or plc_type != tag.data_type.value:
            return f"{tag.name}: {subject} is {node.shown()}, the map says {tag.type_text}"
        count = tag.count
    if index + count > node.length:
        return f"{tag.name}: {subject} has {node.length} elements, the map needs {index + count}"
    return ""


class LogixBus(TagBus):
    def __init__(self, tag_map: TagMap, owner: Owner, *, tag_list_refresh_s: float = 60.0, **kwargs):
        super().__init__(tag_map, owner, **kwargs)
        self.tag_list_refresh_s = tag_list_refresh_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"logix-{tag_map.name}")
        self._driver: LogixDriver | None = None
        self._pending = None  # (future, driver) of a connect that outlived its call
        self._plc_tags: dict = {}
        self._problems: dict[str, str] = {}  # tag name -> type problem
        self._reply_types_logged: set[str] = set()  # tags whose reply type was logged wrong (once a tag list)
        self._tag_list_at_s = 0.0
        self._refresh_due = False

    # -- the worker ---------------------------------------------------------------------------
    def _run(self, job, deadline: float, driver: LogixDriver | None = None):
        """Run `job` on the worker and wait for it until `deadline`. With `driver`, its socket
        also gives up at the deadline, so a late answer frees the worker for the next call (the
        reconnect) instead of holding it for the driver's whole socket timeout."""
        def bounded():
            sock = getattr(getattr(driver, "_sock", None), "sock", None)
            if sock is None:
                return job()
            usual = sock.gettimeout()
            sock.settimeout(max(0.001, min(usual or math.inf, deadline - time.monotonic())))
            try:
                return job()
            finally:
                try:
                    sock.settimeout(usual)
                except OSError:  # closed under us: nothing to restore
                    pass

        return self._wait(self._executor.submit(bounded), deadline)

    def _wait(self, future, deadline: float):
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout as exc:
            raise BusTimeout(f"{self.tag_map.name}: no answer before the deadline") from exc
        except CommError as exc:
            # the driver's own socket timeout can win the race with our deadline on a loaded
            # machine: that is a timeout too, not a broken link
            if _caused_by_timeout(exc):
                raise BusTimeout(f"{self.tag_map.name}: no answer before the socket timeout") from exc
            raise ConnectionLost(f"{self.tag_map.name}: {exc}") from exc
        except (PycommError, OSError) as exc:
            raise ConnectionLost(f"{self.tag_map.name}: driver failure: {exc}") from exc

    def _connect(self, deadline: float) -> None:
        """Open a session (and upload the tag list). A connect that outlives its call's deadline
        goes on in the background and serves the next call: a session with its tag upload takes
        several round trips, more than one tick's share on a loaded machine."""
        pending, self._pending = self._pending, None
        if pending is None or (pending[0].done() and pending[0].exception() is not None):
            driver = LogixDriver(self.tag_map.endpoint.logix_path, init_tags=True, init_program_tags=True)
            driver.socket_timeout = self.tag_map.timeout_s

            def open_driver():
                if not driver.open():
                    raise CommError(f"cannot open a session with {self.tag_map.endpoint.logix_path}")
                return dict(driver.tags)

            pending = (self._executor.submit(open_driver), driver)
        future, driver = pending
        try:
            tags = self._wait(future, deadline)
        except BusTimeout:
            if not future.done():
                self._pending = pending  # still opening: the next call takes it when it is done
            else:
                self._executor.submit(_close_quietly, driver)
            raise
        except BusError:
            self._executor.submit(_close_quietly, driver)
            raise
        self._set_tag_list(tags)
        self._driver = driver

    def _disconnect(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            self._executor.submit(_close_quietly, driver)  # behind any stuck call; never blocks us

    def close(self) -> None:
        super().close()
        pending, self._pending = self._pending, None
        if pending is not None:
            self._executor.submit(_close_quietly, pending[1])
        self._executor.shutdown(wait=True, cancel_futures=False)

    def _set_tag_list(self, plc_tags: dict) -> None:
        self._plc_tags = plc_tags
        self._tag_list_at_s = time.monotonic()
        self._refresh_due = False
        self._problems = {t.name: p for t in self.tag_map.tags if (p := type_problem(t, plc_tags))}
        self._reply_types_logged = set()
        for problem in self._problems.values():
            log.error("%s: %s", self.tag_map.name, problem)

    def _maybe_refresh(self, deadline: float) -> None:
        if self._refresh_due or time.monotonic() - self._tag_list_at_s > self.tag_list_refresh_s:
            driver = self._driver
            tags = self._run(lambda: {t["tag_name"]: t for t in driver.get_tag_list(program="*")}, deadline, driver)
            if tags != self._plc_tags:
                log.warning("%s: the controller's tag list changed (%d -> %d tags)", self.tag_map.name,
                            len(self._plc_tags), len(tags))
            self._set_tag_list(tags)

    def remote_problems(self, timeout_s: float | None = None) -> list[str]:
        """Connect if needed and list how the PLC's tags differ from the map (for `tags check --live`)."""
        deadline = time.monotonic() + (timeout_s or self.tag_map.timeout_s)
        with self._lock:
            self._refresh_due = self._connected  # a new connection uploads the list anyway
            self._call(self._maybe_refresh, (), deadline)
        return list(self._problems.values())

    # -- raw operations ---------------------------------------------------------------------
    def _plan_requests(self, tags: list[Tag], write: bool) -> tuple[str, ...]:
        """The request path of each tag (`Tag{N}` for an array), in order."""
        return tuple(_request_path(t) for t in tags)

    def _read_raw(self, tags: list[Tag], requests, deadline: float) -> dict[str, Value | Quality | BadAnswer]:
        self._maybe_refresh(deadline)
        if requests is not None and not self._problems:
            asked, out = tags, {}
        else:
            out = {t.name: self._refused(t) for t in tags if t.name in self._problems}
            asked = [t for t in tags if t.name not in out]
            if not asked:
                return out
            requests = [_request_path(t) for t in asked]
        driver = self._driver
        answers = self._run(lambda: driver.read(*requests), deadline, driver)
        answers = answers if isinstance(answers, list) else [answers]  # pycomm3 returns one item for one tag
        for tag, answer in zip(asked, answers):
            wrong = "" if answer.error else _reply_type_problem(tag, answer)
            if answer.error:
                out[tag.name] = self._device_error(tag, answer.error)
            elif wrong:  # never a value converted from another type
                if tag.name not in self._reply_types_logged:
                    self._reply_types_logged.add(tag.name)
                    log.error("%s: %s (%s, line %d): %s", self.tag_map.name, tag.name, self.tag_map.source,
                              tag.source_line, wrong)
                out[tag.name] = BadAnswer(Quality.BAD_TYPE, wrong)
            elif tag.is_array:
                out[tag.name] = tuple(answer.value)
            elif tag.data_type is DataType.STRING:
                out[tag.name] = str(answer.value)
            else:
                out[tag.name] = bool(answer.value) if tag.data_type is DataType.BOOL else answer.value
        return out

    def _write_raw(self, items: list[tuple[Tag, Value]], paths, deadline: float) -> dict[str, Quality]:
        self._maybe_refresh(deadline)
        if paths is not None and not self._problems:
            asked, out = items, {}
        else:
            out = {t.name: self._refused(t) for t, _ in items if t.name in self._problems}
            asked = [(t, raw) for t, raw in items if t.name not in out]
            if not asked:
                return out
            paths = [_request_path(t) for t, _ in asked]
        driver = self._driver
        requests = [(path, list(raw) if t.is_array else raw) for path, (t, raw) in zip(paths, asked)]
        answers = self._run(lambda: driver.write(*requests), deadline, driver)
        answers = answers if isinstance(answers, list) else [answers]
        for (tag, _), answer in zip(asked, answers):
            out[tag.name] = self._device_error(tag, answer.error) if answer.error else Quality.GOOD
        return out

    def _refused(self, tag: Tag) -> BadAnswer:
        """A tag the controller's tag list contradicts: BAD_TYPE, never sent, with the list's why."""
        return BadAnswer(Quality.BAD_TYPE, self._problems[tag.name].split(": ", 1)[-1])

    def _device_error(self, tag: Tag, error: str) -> Quality:
        log.warning("%s: PLC refused %s (%s): %s", self.tag_map.name, tag.name, tag.address, error)
        if "exist" in error.lower() or "not found" in error.lower():
            self._refresh_due = True  # the program changed under us: upload the tag list again
        return Quality.BAD_DEVICE


def _reply_type_problem(tag: Tag, answer) -> str:
    """Why pycomm3's answer for `tag` is not of the map's type ('' when it is). pycomm3 decodes a
    reply as the controller's tag list types it and says so in the answer's `type` (`REAL[4]`,
    `DINT`, `BOOL` for a bit, `STRING`): another type than the map's is never converted."""
    expected = tag.data_type.value + (f"[{tag.count}]" if tag.is_array else "")
    if answer.type == expected:
        return ""
    got = answer.type or "a value of no type pycomm3 could name"
    return f"the PLC answered {tag.address} as {got}, the map says {expected}: not converted"


def _request_path(tag: Tag) -> str:
    """What pycomm3 is asked for: the tag's path, with its element count for an array."""
    return tag.address + (f"{{{tag.count}}}" if tag.is_array else "")


def _caused_by_timeout(exc: BaseException) -> bool:
    """True if a socket timeout is anywhere in the chain of causes (pycomm3 wraps it twice)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, TimeoutError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _close_quietly(driver: LogixDriver) -> None:
    try:
        driver.close()
    except Exception as exc:  # closing a dead connection: nothing left to save
        log.debug("closing a dead Logix driver: %s", exc)


__all__ = ["LogixBus", "type_problem"]
