"""Operations: what makes the processes services on an IPC (systemd's sd_notify, the watchdog).

Tests: tests/edge/ops/.
"""
