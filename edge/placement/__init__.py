"""S13 placement: vision through tags (`vision`), the robot's handshake (`robot`) and the
assignment of tiers to channels (`assign`). Pure logic: fed tag values and times, says what to
write; the supervisor's flow (edge/supervisor/flow.py, placing.py) carries it out.
Tests: tests/edge/placement/.
"""
