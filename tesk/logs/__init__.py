"""Executors' stdout and stderr served while they run (a TESK extension of TES, docs/api.md).

The service side of it, the same for every backend: the Range arithmetic (ranges.py), when an
executor's output has ended (ended.py), and the responses, followed or not (outputs.py). Where
the bytes come from is each backend's `executor_output` (tesk/backends/base.py).
"""
