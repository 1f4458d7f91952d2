"""OPC UA for SCADA (issue 18): the line model (edge/lineview) served by asyncua with
Basic256Sha256 and users by role (server.py), the server's certificate (certs.py) and
`discharge-edge opcua cert` (cli.py). See README.md. Tests: tests/edge/opcua/.
"""
