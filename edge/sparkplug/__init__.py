"""Sparkplug B over MQTT: a line as an edge node, the plant as a host application (issue 18).
See README.md. Tests: tests/edge/sparkplug/.
"""
