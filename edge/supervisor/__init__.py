"""The supervisor (DESIGN.md "The supervisor"): one process per line, beside the rtcore process.

The foundations, each in its own module (what each owns: edge/supervisor/README.md):
`line` (the line file -> `LineConfig`), `packml` (the line's PackML state model and PackTags),
`stations` (each station's state and its allowed changes), `store` (SQLite, WAL: every state
change and record on disk before it is acted on). Import the module you need; this package
imports none of them, so a light user (the store in a child process) pays for no numpy.
Tests: tests/edge/supervisor/.
"""
