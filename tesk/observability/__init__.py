"""Metrics and logs: what TESK records about its work, and where it goes.

`recording` (the Recorder interface, no metrics library) may be used from any layer; `wiring`
is for the composition root (tesk/app.py, tesk/server.py).
"""
