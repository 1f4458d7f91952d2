"""The line seen from outside (issue 18): the line model shared by the operator page (edge/hmi/),
OPC UA (edge/opcua/) and Sparkplug B (edge/sparkplug/), and the `serve:` section of the line file.
Tests: tests/edge/lineview/.
"""
