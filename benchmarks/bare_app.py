"""The baseline of the API benchmarks: bare Flask endpoints doing the least a TES call must do.

POST parses the JSON body and answers a new id; GET answers a small task document from memory.
Both run under the same gunicorn settings as `tesk serve` (see benchmarks/api_throughput.py).
"""

from __future__ import annotations

import uuid

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)

_TASKS: dict[str, dict[str, str]] = {}


@app.post("/ga4gh/tes/v1/tasks")
def create_task() -> ResponseReturnValue:
    request.get_json(force=True)
    task_id = str(uuid.uuid4())
    if len(_TASKS) < 1000:
        _TASKS[task_id] = {"id": task_id, "state": "QUEUED"}
    return jsonify(id=task_id)


@app.get("/ga4gh/tes/v1/tasks/<task_id>")
def get_task(task_id: str) -> ResponseReturnValue:
    # Any id answers: the benchmark reads an id TESK issued, which this app never saw.
    return jsonify(_TASKS.get(task_id) or {"id": task_id, "state": "QUEUED"})
