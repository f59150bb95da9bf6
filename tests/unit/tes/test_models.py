"""Serialisation rules of the TES models: only what was sent or filled in goes out."""

from tesk.tes.models import ExecutorLog, Task, TaskLog, timestamp


def test_dump_keeps_only_fields_the_client_sent() -> None:
    sent = {
        "name": "t",
        "inputs": [{"path": "/data/in", "content": "x"}],
        "executors": [{"image": "alpine", "command": ["true"]}],
    }
    assert Task.model_validate(sent).dump() == sent


def test_dump_drops_unknown_fields_and_nulls() -> None:
    task = Task.model_validate(
        {"executors": [{"image": "a", "command": ["b"], "bogus": 1}], "description": None}
    )
    assert task.dump() == {"executors": [{"image": "a", "command": ["b"]}]}


def test_explicit_false_is_echoed_but_defaults_are_not() -> None:
    task = Task.model_validate(
        {"executors": [{"image": "a", "command": ["b"], "ignore_error": False}]}
    )
    assert task.dump()["executors"][0]["ignore_error"] is False
    assert (
        "ignore_error"
        not in Task.model_validate({"executors": [{"image": "a", "command": ["b"]}]}).dump()[
            "executors"
        ][0]
    )


def test_server_filled_fields_are_serialised() -> None:
    task = Task.model_validate({"executors": [{"image": "a", "command": ["b"]}]})
    filled = task.model_copy(update={"id": "abc", "creation_time": "2026-01-01T00:00:00.000000Z"})
    assert filled.dump()["id"] == "abc"
    assert "creation_time" in filled.dump()


def test_task_log_always_has_its_required_lists() -> None:
    assert TaskLog().dump() == {"logs": [], "outputs": []}
    log = TaskLog(logs=[ExecutorLog(exit_code=0)])
    log.system_logs = ["note"]
    assert log.dump() == {"logs": [{"exit_code": 0}], "outputs": [], "system_logs": ["note"]}


def test_timestamp_is_rfc3339_utc_with_z() -> None:
    stamp = timestamp()
    assert stamp.endswith("Z")
    assert stamp[10] == "T"
