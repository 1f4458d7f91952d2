"""The operator page (issue 18): a Starlette app (app.py) served by uvicorn on a thread of the
supervisor (server.py), plain HTML/JS/CSS in static/. Tests: tests/edge/hmi/.
"""
