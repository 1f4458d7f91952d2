"""Sparkplug B over MQTT: a line as an edge node, the plant as a host (issue 18). See README.md."""
