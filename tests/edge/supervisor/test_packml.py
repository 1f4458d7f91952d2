"""The line's PackML state model: every command in every state, SC from every acting state,
the PackTags numbers, the command tags and the order of the change callbacks."""

from __future__ import annotations

import itertools

import pytest

from edge.supervisor.packml import (
    STATE_COMPLETE,
    WAIT_STATES,
    Command,
    CommandReader,
    CommandRefused,
    PackMlMachine,
    State,
    Transition,
    UnknownCommand,
)

pytestmark = pytest.mark.unit

# ISA-TR88.00.02 as written out by hand (not derived from the module's table): state -> {command: next}.
STOP, ABORT = "Stop", "Abort"
EXPECTED = {
    "Stopped": {"Reset": "Resetting", ABORT: "Aborting"},
    "Resetting": {STOP: "Stopping", ABORT: "Aborting"},
    "Idle": {"Start": "Starting", STOP: "Stopping", ABORT: "Aborting"},
    "Starting": {STOP: "Stopping", ABORT: "Aborting"},
    "Execute": {"Hold": "Holding", "Suspend": "Suspending", STOP: "Stopping", ABORT: "Aborting"},
    "Completing": {STOP: "Stopping", ABORT: "Aborting"},
    "Complete": {"Reset": "Resetting", STOP: "Stopping", ABORT: "Aborting"},
    "Holding": {STOP: "Stopping", ABORT: "Aborting"},
    "Held": {"Unhold": "Unholding", STOP: "Stopping", ABORT: "Aborting"},
    "Unholding": {STOP: "Stopping", ABORT: "Aborting"},
    "Suspending": {STOP: "Stopping", ABORT: "Aborting"},
    "Suspended": {"Unsuspend": "Unsuspending", STOP: "Stopping", ABORT: "Aborting"},
    "Unsuspending": {STOP: "Stopping", ABORT: "Aborting"},
    "Stopping": {ABORT: "Aborting"},
    "Aborting": {},
    "Aborted": {"Clear": "Clearing"},
    "Clearing": {ABORT: "Aborting"},
}
EXPECTED_SC = {
    "Resetting": "Idle", "Starting": "Execute", "Execute": "Completing", "Completing": "Complete",
    "Holding": "Held", "Unholding": "Execute", "Suspending": "Suspended", "Unsuspending": "Execute",
    "Stopping": "Stopped", "Aborting": "Aborted", "Clearing": "Stopped",
}
STATE_NUMBERS = {
    "Clearing": 1, "Stopped": 2, "Starting": 3, "Idle": 4, "Suspended": 5, "Execute": 6, "Stopping": 7,
    "Aborting": 8, "Aborted": 9, "Holding": 10, "Held": 11, "Unholding": 12, "Suspending": 13,
    "Unsuspending": 14, "Resetting": 15, "Completing": 16, "Complete": 17,
}
COMMAND_NUMBERS = {"Reset": 1, "Start": 2, "Stop": 3, "Hold": 4, "Unhold": 5, "Suspend": 6, "Unsuspend": 7,
                   "Abort": 8, "Clear": 9}


def state(label: str) -> State:
    return State(STATE_NUMBERS[label])


def command(label: str) -> Command:
    return Command(COMMAND_NUMBERS[label])


def test_numbers_are_packml():
    assert {s.label: int(s) for s in State} == STATE_NUMBERS
    assert {c.label: int(c) for c in Command} == COMMAND_NUMBERS


@pytest.mark.parametrize("state_label, command_label", list(itertools.product(STATE_NUMBERS, COMMAND_NUMBERS)))
def test_every_command_in_every_state(state_label, command_label):
    seen = []
    machine = PackMlMachine(state(state_label), on_change=seen.append)
    expected = EXPECTED[state_label].get(command_label)
    if expected is None:
        with pytest.raises(CommandRefused) as info:
            machine.command(command(command_label))
        message = str(info.value)
        assert state_label in message and command_label in message
        assert info.value.state is state(state_label) and info.value.command is command(command_label)
        assert machine.state is state(state_label) and seen == []
        assert command(command_label) not in machine.allowed()
    else:
        assert command(command_label) in machine.allowed()
        transition = machine.command(command(command_label))
        assert transition == Transition(state(state_label), state(expected), command(command_label))
        assert machine.state is state(expected) and seen == [transition]


def test_the_table_has_17_by_9_pairs_and_expected_counts():
    valid = sum(len(row) for row in EXPECTED.values())
    accepted = 0
    for s, c in itertools.product(State, Command):
        try:
            PackMlMachine(s).command(c)
            accepted += 1
        except CommandRefused:
            pass
    assert accepted == valid == 35  # Stop 12, Abort 15, Reset 2, one each: Start, Hold, Unhold, Suspend, Unsuspend, Clear


@pytest.mark.parametrize("state_label", list(STATE_NUMBERS))
def test_state_complete_from_every_state(state_label):
    machine = PackMlMachine(state(state_label))
    if state_label in EXPECTED_SC:
        assert state(state_label) not in WAIT_STATES
        transition = machine.state_complete()
        assert transition == Transition(state(state_label), state(EXPECTED_SC[state_label]), None)
        assert machine.state is state(EXPECTED_SC[state_label])
        assert str(transition) == f"{state_label} --SC--> {EXPECTED_SC[state_label]}"
    else:
        assert state(state_label) in WAIT_STATES
        with pytest.raises(CommandRefused, match=f"state complete.*{state_label}"):
            machine.state_complete()
        assert machine.state is state(state_label)
    assert {s.label: n.label for s, n in STATE_COMPLETE.items()} == EXPECTED_SC


def test_unknown_command_number_is_refused_by_name():
    machine = PackMlMachine(State.IDLE)
    with pytest.raises(UnknownCommand, match="42"):
        machine.command(42)
    assert machine.state is State.IDLE


def test_command_by_number_works():
    machine = PackMlMachine(State.IDLE)
    assert machine.command(2).after is State.STARTING


def test_hold_extension_adds_hold_from_suspend_states_only():
    for s in (State.SUSPENDING, State.SUSPENDED, State.UNSUSPENDING):
        with pytest.raises(CommandRefused):
            PackMlMachine(s).command(Command.HOLD)
        assert PackMlMachine(s, hold_extension=True).command(Command.HOLD).after is State.HOLDING
    for s in set(State) - {State.SUSPENDING, State.SUSPENDED, State.UNSUSPENDING}:
        base, extended = PackMlMachine(s), PackMlMachine(s, hold_extension=True)
        assert base.allowed() == extended.allowed()


def test_a_full_cycle_calls_back_in_order_before_the_state_changes():
    calls = []
    machine = PackMlMachine(on_change=lambda t: calls.append((t, machine.state)))
    steps = [Command.RESET, None, Command.START, None, Command.HOLD, None, Command.UNHOLD, None,
             Command.SUSPEND, None, Command.UNSUSPEND, None, None, None, Command.RESET, None,
             Command.STOP, None, Command.ABORT, None, Command.CLEAR, None]
    for step in steps:
        machine.command(step) if step is not None else machine.state_complete()
    path = [t.after.label for t, _ in calls]
    assert path == ["Resetting", "Idle", "Starting", "Execute", "Holding", "Held", "Unholding", "Execute",
                    "Suspending", "Suspended", "Unsuspending", "Execute", "Completing", "Complete", "Resetting",
                    "Idle", "Stopping", "Stopped", "Aborting", "Aborted", "Clearing", "Stopped"]
    assert all(seen_state is t.before for t, seen_state in calls)  # the callback runs before the change
    assert all(a.after is b.before for (a, _), (b, _) in zip(calls, calls[1:]))


def test_a_failing_callback_leaves_the_state_unchanged():
    def fail(transition):
        raise OSError("disk full")

    machine = PackMlMachine(State.IDLE, on_change=fail)
    with pytest.raises(OSError):
        machine.command(Command.START)
    assert machine.state is State.IDLE
    with pytest.raises(OSError):
        PackMlMachine(State.STARTING, on_change=fail).state_complete()


def test_a_callback_may_not_change_the_state_itself():
    machine = PackMlMachine(State.IDLE, on_change=lambda t: machine.command(Command.STOP))
    with pytest.raises(RuntimeError, match="inside on_change"):
        machine.command(Command.START)
    assert machine.state is State.IDLE


def test_packtags_status():
    machine = PackMlMachine()
    assert machine.packtags_status() == {"StateCurrent": 2, "UnitModeCurrent": 1, "CntrlCmd": 0,
                                         "StateChangeInProcess": False}
    machine.command(Command.RESET)
    assert machine.packtags_status() == {"StateCurrent": 15, "UnitModeCurrent": 1, "CntrlCmd": 1,
                                         "StateChangeInProcess": True}
    machine.state_complete()
    machine.command(Command.START)
    machine.state_complete()
    status = machine.packtags_status()
    assert status["StateCurrent"] == 6 and status["CntrlCmd"] == 2 and status["StateChangeInProcess"] is False


def test_command_reader_counts_requests_not_values():
    reader = CommandReader()
    assert reader.poll(2, 7) is None  # the first poll learns the counter: no replay after a restart
    assert reader.poll(2, 7) is None
    assert reader.poll(3, 8) is Command.STOP
    assert reader.poll(3, 8) is None
    assert reader.poll(3, 9) is Command.STOP  # the same command again is a second command
    assert reader.poll(0, 10) is None  # a request with no command
    assert reader.poll(1, -2147483648) is Command.RESET  # a wrapped counter is still a change


def test_command_reader_resumes_from_a_persisted_counter():
    reader = CommandReader(last_request=5)
    assert reader.poll(1, 5) is None
    assert reader.poll(1, 6) is Command.RESET


def test_command_reader_refuses_an_unknown_number_once():
    reader = CommandReader(last_request=0)
    with pytest.raises(UnknownCommand, match="CntrlCmd 12"):
        reader.poll(12, 1)
    assert reader.poll(12, 1) is None
