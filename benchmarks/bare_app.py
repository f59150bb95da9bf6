"""The baseline for create throughput: a bare Flask endpoint doing the least a create must do."""

from __future__ import annotations

import uuid

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.post("/ga4gh/tes/v1/tasks")
def create_task() -> ResponseReturnValue:
    request.get_json(force=True)
    return jsonify(id=str(uuid.uuid4()))
