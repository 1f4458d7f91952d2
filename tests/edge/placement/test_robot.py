"""The robot handshake (edge/placement/robot.py) over scripted tag sequences: order, acknowledge,
motion, done; a fault; the timeouts; the bounded retry; never a second order while one is open;
a restart from the snapshot and from the tags alone."""

from __future__ import annotations

import json

import pytest

from edge.placement.robot import (NO_BATTERY, OUT_LANE, REJECT_LANE, HandshakeBusy, HandshakeTimeouts, Move,
                                  Phase, RobotFault, RobotHandshake, RobotState, RobotTags, describe_location,
                                  location_kind, slot_location, station_location)

pytestmark = pytest.mark.unit

T = HandshakeTimeouts(ack_timeout_s=2.0, motion_timeout_s=10.0, retries=1, reset_timeout_s=5.0)
MOVE = Move(slot_location(2), station_location(5), 42)


class Robot:
    """A scripted robot: what it shows is set by each test step; the supervisor's writes read back."""

    def __init__(self, order_seq=0, reset_seq=0, done_seq=0):
        self.ack, self.done, self.state, self.fault, self.holding = done_seq, done_seq, 0, 0, NO_BATTERY
        self.order_seq, self.reset_seq = order_seq, reset_seq
        self.orders = []  # every new seq the robot saw

    def tags(self) -> RobotTags:
        return RobotTags(self.ack, self.done, self.state, self.fault, self.holding, self.order_seq, self.reset_seq)

    def take(self, writes: dict) -> None:
        if writes and writes["robot_order_seq"] != self.order_seq:
            self.orders.append((writes["robot_order_seq"], writes["robot_order_pick"], writes["robot_order_place"],
                                writes["robot_order_battery_id"]))
            assert self.done == self.order_seq, "a second order while one is open"
        if writes:
            self.order_seq, self.reset_seq = writes["robot_order_seq"], writes["robot_reset_seq"]


def run(hs: RobotHandshake, robot: Robot, t: float, part_at_pick=True):
    result = hs.scan(robot.tags(), t, part_at_pick)
    robot.take(hs.writes())
    return result


def test_location_codes():
    assert [station_location(3), slot_location(1), REJECT_LANE, OUT_LANE] == [3, 1001, 2000, 2001]
    assert location_kind(1003, 8, 4) == ("slot", 3) and location_kind(1004, 8, 4) is None
    assert location_kind(7, 8, 4) == ("station", 7) and location_kind(8, 8, 4) is None
    assert location_kind(2001, 8, 4) == ("out", 0) and location_kind(-1, 8, 4) is None
    assert [describe_location(c) for c in (5, 1002, 2000, 2001)] == ["station 5", "slot 2", "reject lane", "out lane"]


def test_order_ack_motion_done():
    robot, hs = Robot(order_seq=7, reset_seq=3, done_seq=7), RobotHandshake(T)
    assert hs.writes() == {}  # never a blind write: the counters are learnt first
    assert run(hs, robot, 0.0) is None and hs.ready and hs.seq == 7
    hs.start(MOVE, 1.0)
    robot.take(hs.writes())
    assert robot.orders == [(8, 1002, 5, 42)] and hs.phase is Phase.ORDERED
    with pytest.raises(HandshakeBusy):
        hs.start(Move(slot_location(0), 1, 43), 1.0)
    robot.ack, robot.state = 8, RobotState.ACKNOWLEDGED
    assert run(hs, robot, 1.5) is None and hs.phase is Phase.MOVING
    robot.state, robot.holding = RobotState.IN_MOTION, 42
    for t in (2.0, 5.0, 9.0):
        assert run(hs, robot, t) is None
    robot.done, robot.state, robot.holding = 8, RobotState.DONE, NO_BATTERY
    r = run(hs, robot, 9.5)
    assert r.ok and r.reason == "" and (r.ordered_s, r.acked_s, r.done_s) == (1.0, 1.5, 9.5)
    assert len(r.attempts) == 1 and r.attempts[0].outcome == "done" and hs.phase is Phase.IDLE
    assert robot.reset_seq == 3, "no reset on success"
    json.dumps(r.to_dict(), allow_nan=False)


def test_an_instant_robot_done_at_the_first_look():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    robot.ack = robot.done = 1
    robot.state = RobotState.DONE
    r = run(hs, robot, 0.1)
    assert r.ok and r.acked_s == 0.1 and r.done_s == 0.1


def test_no_ack_times_out_resets_and_retries_once_then_gives_up():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    assert run(hs, robot, 2.0) is None and hs.phase is Phase.ORDERED  # 2 s: not yet over
    assert run(hs, robot, 2.1) is None and hs.phase is Phase.RESETTING
    assert robot.reset_seq == 1
    assert run(hs, robot, 2.5) is None and hs.phase is Phase.RESETTING  # the robot has not abandoned it yet
    robot.done = 1  # the reset: the open order abandoned
    assert run(hs, robot, 3.0) is None and hs.phase is Phase.ORDERED
    assert [o[0] for o in robot.orders] == [1, 2]  # the same move, a new order
    run(hs, robot, 5.0)
    assert hs.phase is Phase.ORDERED  # this robot never acks either: 2 s after the second order
    run(hs, robot, 5.2)
    assert hs.phase is Phase.RESETTING and robot.reset_seq == 2
    robot.done = 2  # the second reset abandons order 2
    r = run(hs, robot, 5.3)
    assert r is not None and not r.ok and len(r.attempts) == 2
    assert r.reason == ("no acknowledge within 2 s (order 1); no acknowledge within 2 s (order 2)")
    assert hs.phase is Phase.IDLE and len(robot.orders) == 2


def test_a_fault_mid_move_resets_and_does_not_retry_when_the_part_left_the_slot():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    robot.ack, robot.state = 1, RobotState.IN_MOTION
    run(hs, robot, 0.5)
    robot.done, robot.state, robot.fault, robot.holding = 1, RobotState.FAULT, RobotFault.DRIVE_FAULT, 42
    assert run(hs, robot, 4.0, part_at_pick=False) is None and hs.phase is Phase.RESETTING
    assert robot.reset_seq == 1
    robot.state, robot.fault, robot.holding = RobotState.IDLE, 0, NO_BATTERY  # recovery: part to the reject lane
    r = run(hs, robot, 4.5, part_at_pick=False)
    assert not r.ok and r.fault_code == 6 and r.attempts[0].holding_id == 42
    assert r.reason == "robot fault 6: drive fault mid-move (order 1)"
    assert len(robot.orders) == 1


def test_a_fault_before_the_pick_is_retried_and_the_retry_succeeds():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    robot.ack = robot.done = 1
    robot.state, robot.fault = RobotState.FAULT, RobotFault.STATION_NOT_SAFE  # refused at once
    run(hs, robot, 0.1)
    robot.state, robot.fault = RobotState.IDLE, 0
    run(hs, robot, 0.2)
    assert hs.phase is Phase.ORDERED and robot.orders[-1][0] == 2
    robot.ack = robot.done = 2
    robot.state = RobotState.DONE
    r = run(hs, robot, 8.0)
    assert r.ok and [a.outcome for a in r.attempts] == ["fault", "done"] and r.ordered_s == 0.0


def test_a_late_scan_alone_never_times_a_step_out():
    """The supervisor's scan came 5 s after the order (a loaded host, a scaled clock): it has
    not read the robot since the order, so no timeout; the next scan sees the acknowledge."""
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    assert run(hs, robot, 5.0) is None and hs.phase is Phase.ORDERED and robot.reset_seq == 0
    robot.ack, robot.state = 1, RobotState.IN_MOTION
    run(hs, robot, 5.2)
    assert hs.phase is Phase.MOVING and hs.attempts[-1].acked_s == 5.2
    assert run(hs, robot, 60.0) is None and hs.phase is Phase.MOVING  # the first read after the ack
    run(hs, robot, 60.1)
    assert hs.phase is Phase.RESETTING and hs.attempts[-1].outcome == "motion_timeout"


def test_motion_timeout_counts_from_the_ack():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    run(hs, robot, 1.9)  # no ack yet at 1.9 s
    robot.ack, robot.state = 1, RobotState.IN_MOTION
    run(hs, robot, 1.95)
    assert run(hs, robot, 11.9) is None and hs.phase is Phase.MOVING  # 9.95 s after the ack
    run(hs, robot, 12.0)
    assert hs.phase is Phase.RESETTING
    assert hs.attempts[-1].outcome == "motion_timeout"


def test_a_robot_that_does_not_come_back_is_reset_again():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    run(hs, robot, 1.0)
    run(hs, robot, 3.0)
    assert robot.reset_seq == 1
    run(hs, robot, 8.0)
    assert robot.reset_seq == 1
    run(hs, robot, 8.1)
    assert robot.reset_seq == 2 and hs.phase is Phase.RESETTING


def test_a_restart_rebuilds_from_the_snapshot_and_never_orders_twice():
    robot, hs = Robot(), RobotHandshake(T)
    run(hs, robot, 0.0)
    hs.start(MOVE, 0.0)
    robot.take(hs.writes())
    robot.ack, robot.state = 1, RobotState.IN_MOTION
    run(hs, robot, 1.0)
    snap = json.loads(json.dumps(hs.snapshot()))  # as the store keeps it
    again = RobotHandshake(T, snap)  # the supervisor killed and started again
    assert again.phase is Phase.MOVING and again.move == MOVE and again.writes() == hs.writes()
    robot.take(again.writes())
    robot.done, robot.state = 1, RobotState.DONE
    r = run(again, robot, 6.0)
    assert r.ok and r.acked_s == 1.0 and r.done_s == 6.0 and len(robot.orders) == 1


def test_a_restart_without_a_snapshot_clears_an_open_order_by_a_reset():
    robot = Robot(order_seq=5, reset_seq=2, done_seq=4)  # order 5 open on the robot
    robot.ack, robot.state = 5, RobotState.IN_MOTION
    hs = RobotHandshake(T)
    run(hs, robot, 0.0)
    assert hs.phase is Phase.RESETTING and robot.reset_seq == 3 and robot.order_seq == 5
    assert not hs.ready
    robot.done, robot.state = 5, RobotState.IDLE
    assert run(hs, robot, 0.5) is None and hs.ready
    hs.start(MOVE, 1.0)
    robot.take(hs.writes())
    assert robot.orders == [(6, 1002, 5, 42)]


def test_a_standing_fault_is_reset_before_any_order():
    robot = Robot(order_seq=3, done_seq=3)
    robot.state, robot.fault = RobotState.FAULT, RobotFault.PART_DROPPED
    hs = RobotHandshake(T)
    run(hs, robot, 0.0)
    assert robot.reset_seq == 1 and not hs.ready


def test_timeouts_refuse_nonsense():
    with pytest.raises(ValueError, match="ack_timeout_s"):
        HandshakeTimeouts(ack_timeout_s=0.0)
    with pytest.raises(ValueError, match="retries"):
        HandshakeTimeouts(retries=-1)
    assert RobotTags.from_values({"robot_ack_seq": 1}) is None
