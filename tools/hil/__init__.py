"""HIL plant and software-in-the-loop bench: plant physics, validation, SIL runner, baseline, scenarios.

Tests: tests/tools/hil/.
"""
