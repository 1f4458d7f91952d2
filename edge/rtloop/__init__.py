"""The real-time process on the edge side: binds the tag bus to the rtcore kernel and clock.

loop.py (one tick: read, tick, write; the safe state), process.py (kernel from a tag map, the
real-time grant, the process body), handle.py (spawn the process from a tag map, attach,
arm, stop: the supervisor's one handle on it), link.py (shared-memory setpoints down, status up),
stats.py (lateness and work time), cli.py (`discharge-edge rtcore ...`). Tests: tests/edge/rtloop/.
"""
