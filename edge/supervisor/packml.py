"""The line's state machine: the OMAC PackML state model (ISA-TR88.00.02) and its PackTags.

Owns the 17 states with their PackML numbers, the 9 commands with their PackTags `CntrlCmd`
numbers, the transition table (`TRANSITIONS`: which command moves which state where; `SC`, state
complete, ends every acting state in its next state), `PackMlMachine` (one line's current state,
commands, state complete, PackTags status) and `CommandReader` (a command from the PLC's
`CntrlCmd` + `CmdChangeRequest` tags). Tests: tests/edge/supervisor/test_packml.py.

The model:
- Stopped --Reset--> Resetting --SC--> Idle --Start--> Starting --SC--> Execute
- Execute --SC--> Completing --SC--> Complete --Reset--> Resetting
- Execute --Hold--> Holding --SC--> Held --Unhold--> Unholding --SC--> Execute
- Execute --Suspend--> Suspending --SC--> Suspended --Unsuspend--> Unsuspending --SC--> Execute
- Stop from every state but Stopped, Stopping, Aborting, Aborted, Clearing --> Stopping --SC--> Stopped
- Abort from every state but Aborting, Aborted --> Aborting --SC--> Aborted --Clear--> Clearing --SC--> Stopped
- `hold_extension=True` adds the optional transitions of the 2015 model (dashed in its figure):
  Hold from Suspending, Suspended and Unsuspending --> Holding.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


class State(enum.IntEnum):
    """PackML states; the value is the PackTags `StateCurrent` number."""

    CLEARING = 1
    STOPPED = 2
    STARTING = 3
    IDLE = 4
    SUSPENDED = 5
    EXECUTE = 6
    STOPPING = 7
    ABORTING = 8
    ABORTED = 9
    HOLDING = 10
    HELD = 11
    UNHOLDING = 12
    SUSPENDING = 13
    UNSUSPENDING = 14
    RESETTING = 15
    COMPLETING = 16
    COMPLETE = 17

    @property
    def label(self) -> str:
        return self.name.capitalize()


class Command(enum.IntEnum):
    """PackML commands; the value is the PackTags `CntrlCmd` number (0 = no command)."""

    RESET = 1
    START = 2
    STOP = 3
    HOLD = 4
    UNHOLD = 5
    SUSPEND = 6
    UNSUSPEND = 7
    ABORT = 8
    CLEAR = 9

    @property
    def label(self) -> str:
        return self.name.capitalize()


S, C = State, Command
WAIT_STATES = frozenset({S.STOPPED, S.IDLE, S.HELD, S.SUSPENDED, S.COMPLETE, S.ABORTED})
"""States that stay until a command; every other state is acting and ends with SC (Execute too:
its SC, the production finished, leads to Completing)."""

STATE_COMPLETE: Mapping[State, State] = MappingProxyType({
    S.CLEARING: S.STOPPED, S.STARTING: S.EXECUTE, S.EXECUTE: S.COMPLETING, S.STOPPING: S.STOPPED,
    S.ABORTING: S.ABORTED, S.HOLDING: S.HELD, S.UNHOLDING: S.EXECUTE, S.SUSPENDING: S.SUSPENDED,
    S.UNSUSPENDING: S.EXECUTE, S.RESETTING: S.IDLE, S.COMPLETING: S.COMPLETE,
})

_NOT_STOPPABLE = {S.STOPPED, S.STOPPING, S.ABORTING, S.ABORTED, S.CLEARING}
_NOT_ABORTABLE = {S.ABORTING, S.ABORTED}


def _table(hold_extension: bool) -> Mapping[State, Mapping[Command, State]]:
    table: dict[State, dict[Command, State]] = {s: {} for s in State}
    table[S.STOPPED][C.RESET] = S.RESETTING
    table[S.COMPLETE][C.RESET] = S.RESETTING
    table[S.IDLE][C.START] = S.STARTING
    table[S.EXECUTE][C.HOLD] = S.HOLDING
    table[S.HELD][C.UNHOLD] = S.UNHOLDING
    table[S.EXECUTE][C.SUSPEND] = S.SUSPENDING
    table[S.SUSPENDED][C.UNSUSPEND] = S.UNSUSPENDING
    table[S.ABORTED][C.CLEAR] = S.CLEARING
    if hold_extension:
        for state in (S.SUSPENDING, S.SUSPENDED, S.UNSUSPENDING):
            table[state][C.HOLD] = S.HOLDING
    for state in State:
        if state not in _NOT_STOPPABLE:
            table[state][C.STOP] = S.STOPPING
        if state not in _NOT_ABORTABLE:
            table[state][C.ABORT] = S.ABORTING
    return MappingProxyType({s: MappingProxyType(cmds) for s, cmds in table.items()})


TRANSITIONS = _table(hold_extension=False)
"""state -> {command: next state}; a command missing from a state's row is refused there."""
TRANSITIONS_WITH_HOLD_EXTENSION = _table(hold_extension=True)


@dataclass(frozen=True)
class Transition:
    before: State
    after: State
    command: Command | None  # None: state complete (SC)

    def __str__(self) -> str:
        cause = self.command.label if self.command is not None else "SC"
        return f"{self.before.label} --{cause}--> {self.after.label}"


class CommandRefused(ValueError):
    """A command the current state does not take; the state did not change."""

    def __init__(self, state: State, command: Command | None, allowed: tuple[Command, ...]):
        self.state, self.command, self.allowed = state, command, allowed
        what = f"command {command.label} ({int(command)})" if command is not None else "state complete (SC)"
        takes = ", ".join(c.label for c in allowed) or "no command"
        why = "a wait state ends only on a command" if command is None else "it is not in the state's row"
        super().__init__(f"PackML: {what} refused in state {state.label} ({int(state)}): {why}; "
                         f"the state takes {takes}")


class UnknownCommand(ValueError):
    """A CntrlCmd number that is no PackML command."""


class PackMlMachine:
    """One line's PackML state. `on_change(transition)` runs *before* the new state is taken:
    persist there (a store), and if it raises the machine stays where it was and the error
    propagates, so nothing acts on a state that was not written."""

    def __init__(self, state: State = State.STOPPED, on_change: Callable[[Transition], None] | None = None,
                 *, hold_extension: bool = False):
        self._state = State(state)
        self._on_change = on_change
        self._table = TRANSITIONS_WITH_HOLD_EXTENSION if hold_extension else TRANSITIONS
        self._last_command: Command | None = None
        self._busy = False

    @property
    def state(self) -> State:
        return self._state

    @property
    def is_acting(self) -> bool:
        return self._state not in WAIT_STATES

    def allowed(self) -> tuple[Command, ...]:
        """The commands the current state takes, in PackTags number order."""
        return tuple(sorted(self._table[self._state]))

    def command(self, cmd: Command | int) -> Transition:
        """Carry out `cmd`; raise `CommandRefused` (state unchanged) if the state does not take it."""
        try:
            cmd = Command(cmd)
        except ValueError as exc:
            raise UnknownCommand(f"PackML: {cmd!r} is no command; allowed: "
                                 + ", ".join(f"{c.label} {int(c)}" for c in Command)) from exc
        after = self._table[self._state].get(cmd)
        if after is None:
            raise CommandRefused(self._state, cmd, self.allowed())
        transition = self._move(Transition(self._state, after, cmd))
        self._last_command = cmd
        return transition

    def state_complete(self) -> Transition:
        """The acting state's work is done (SC): move to its next state; refused in a wait state."""
        after = STATE_COMPLETE.get(self._state)
        if after is None:
            raise CommandRefused(self._state, None, self.allowed())
        return self._move(Transition(self._state, after, None))

    def _move(self, transition: Transition) -> Transition:
        if self._busy:
            raise RuntimeError(f"PackML: {transition} requested from inside on_change; finish the change first")
        if self._on_change is not None:
            self._busy = True
            try:
                self._on_change(transition)
            finally:
                self._busy = False
        self._state = transition.after
        return transition

    def packtags_status(self) -> dict[str, int | bool]:
        """PackTags-style status: the current state and mode (1, Production; the only mode),
        the last command carried out (0: none yet) and whether an acting state is under way."""
        return {
            "StateCurrent": int(self._state),
            "UnitModeCurrent": PRODUCTION_MODE,
            "CntrlCmd": int(self._last_command) if self._last_command is not None else 0,
            "StateChangeInProcess": self.is_acting and self._state is not State.EXECUTE,
        }


PRODUCTION_MODE = 1  # PackTags UnitMode: 1 = Production


class CommandReader:
    """A PackML command from the PLC's command tags: `CntrlCmd` (the command number) and
    `CmdChangeRequest` (a counter the PLC changes with every request, so the same command twice
    is two commands). The first poll only learns the counter unless `last_request` is given (the
    value persisted before a restart), so an old request is never replayed. Two requests between
    polls are seen as one (the latest)."""

    def __init__(self, last_request: int | None = None):
        self.last_request = last_request

    def poll(self, cntrl_cmd: int, change_request: int) -> Command | None:
        """The new command, or None; raises `UnknownCommand` (once) for a number that is none."""
        if self.last_request is None:
            self.last_request = int(change_request)
            return None
        if int(change_request) == self.last_request:
            return None
        self.last_request = int(change_request)
        if cntrl_cmd == 0:
            return None
        try:
            return Command(int(cntrl_cmd))
        except ValueError as exc:
            raise UnknownCommand(f"PackML: CntrlCmd {cntrl_cmd} is no command; allowed: "
                                 + ", ".join(f"{c.label} {int(c)}" for c in Command)) from exc
