"""The MINIMAL, BASIC and FULL views of a task."""

from __future__ import annotations

from tesk.tes.models import ExecutorLog, OutputFileLog, Task, TaskLog, View
from tesk.tes.states import State
from tesk.tes.views import render

TASK = Task.model_validate(
    {
        "id": "t1",
        "name": "n",
        "inputs": [{"path": "/data/a", "content": "secret"}, {"path": "/data/b", "url": "s3://b"}],
        "executors": [{"image": "alpine", "command": ["cat"], "ignore_error": False}],
        "creation_time": "2026-01-01T00:00:00.000000Z",
    }
)
LOG = TaskLog(
    logs=[ExecutorLog(exit_code=0, stdout="o", stderr="e")],
    outputs=[OutputFileLog(url="s3://b/x", path="/data/x", size_bytes="3")],
    system_logs=["line"],
)


def test_minimal_is_id_and_state_only() -> None:
    assert render(View.MINIMAL, task_id="t1", state=State.RUNNING, task=TASK, log=LOG) == {
        "id": "t1",
        "state": "RUNNING",
    }
    assert render(View.FULL, task_id="t1", state=State.QUEUED, task=None, log=None) == {
        "id": "t1",
        "state": "QUEUED",
    }


def test_full_is_everything_that_was_set() -> None:
    full = render(View.FULL, task_id="t1", state=State.COMPLETE, task=TASK, log=LOG)
    assert full == {
        "id": "t1",
        "state": "COMPLETE",
        "name": "n",
        "inputs": [{"path": "/data/a", "content": "secret"}, {"path": "/data/b", "url": "s3://b"}],
        # ignore_error was sent, so it is returned; nothing else is added
        "executors": [{"image": "alpine", "command": ["cat"], "ignore_error": False}],
        "creation_time": "2026-01-01T00:00:00.000000Z",
        "logs": [
            {
                "logs": [{"exit_code": 0, "stdout": "o", "stderr": "e"}],
                "outputs": [{"url": "s3://b/x", "path": "/data/x", "size_bytes": "3"}],
                "system_logs": ["line"],
            }
        ],
    }


def test_basic_leaves_out_logs_and_content() -> None:
    basic = render(View.BASIC, task_id="t1", state=State.COMPLETE, task=TASK, log=LOG)
    assert basic["inputs"] == [{"path": "/data/a"}, {"path": "/data/b", "url": "s3://b"}]
    assert basic["logs"] == [
        {
            "logs": [{"exit_code": 0}],
            "outputs": [{"url": "s3://b/x", "path": "/data/x", "size_bytes": "3"}],
        }
    ]
    # the stored task is not changed by rendering
    assert TASK.inputs is not None
    assert TASK.inputs[0].content == "secret"


def test_no_log_no_logs_field() -> None:
    full = render(View.FULL, task_id="t1", state=State.QUEUED, task=TASK, log=None)
    assert "logs" not in full
