"""Real TES clients against the API on a loopback server: py-tes 1.1.4 and py-tes 0.4.2.

py-tes parses strictly (an unknown key fails), so these tests catch any field a view must not
return. py-tes 0.4.2 (still pinned by the Snakemake and Toil plugins) is installed once into
.cache/pytes04 and run in a subprocess, as it cannot share a process with py-tes 1.1.4.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tes
from werkzeug.serving import make_server

from tesk.tes.models import ExecutorLog, OutputFileLog, TaskLog, timestamp
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend
from tests.unit.api.support import Api, attach, new_app

ROOT = Path(__file__).resolve().parents[3]
PYTES04 = ROOT / ".cache" / "pytes04"


@pytest.fixture
def server() -> Iterator[tuple[Api, str]]:
    app = new_app()
    api = attach(app, backend=FakeBackend(["namespace"]))
    httpd = make_server("127.0.0.1", 0, app.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join()


def finish(api: Api, task_id: str) -> None:
    """Record what the engine would report for a finished task."""
    start = timestamp(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    end = timestamp(datetime(2026, 1, 1, 12, 1, tzinfo=UTC))
    log = TaskLog(
        start_time=start,
        end_time=end,
        logs=[ExecutorLog(exit_code=0, stdout="hi\n", stderr="", start_time=start, end_time=end)],
        outputs=[OutputFileLog(url="s3://bucket/out", path="/data/out", size_bytes="3")],
        system_logs=["ran on a test"],
    )
    assert api.store.update(task_id, Progress(state=State.COMPLETE, seq=1, log=log))


def test_py_tes_1_1_parses_every_response(server: tuple[Api, str]) -> None:
    api, url = server
    client = tes.HTTPClient(url)

    info = client.get_service_info()
    assert info.name == "TESK"
    assert info.type == {"group": "org.ga4gh", "artifact": "tes", "version": "1.1.0"}
    assert info.tes_resources_backend_parameters == ["max_attempts", "namespace"]

    task = tes.Task(
        name="py-tes",
        executors=[tes.Executor(image="alpine", command=["cat", "/data/in"], ignore_error=True)],
        inputs=[tes.Input(path="/data/in", content="hi", streamable=False)],
        outputs=[tes.Output(url="s3://bucket/", path="/data/*.txt", path_prefix="/data/")],
        resources=tes.Resources(cpu_cores=1, backend_parameters={"Namespace": "lab"}),
        volumes=["/scratch/v"],
        tags={"project": "p"},
    )
    task_id = client.create_task(task)
    finish(api, task_id)

    full = client.get_task(task_id, "FULL")
    assert full.state == "COMPLETE"
    assert full.inputs[0].content == "hi"
    assert full.resources.backend_parameters == {"namespace": "lab"}
    assert full.logs[0].logs[0].stdout == "hi\n"
    assert full.logs[0].outputs[0].size_bytes == 3
    assert full.logs[0].system_logs == ["ran on a test"]
    assert full.creation_time is not None
    assert full.creation_time.tzinfo is not None

    basic = client.get_task(task_id, "BASIC")
    assert basic.inputs[0].content is None
    assert basic.logs[0].system_logs is None
    assert basic.executors[0].command == ["cat", "/data/in"]

    minimal = client.get_task(task_id, "MINIMAL")
    assert (minimal.id, minimal.state, minimal.executors) == (task_id, "COMPLETE", None)
    assert client.wait(task_id, timeout=5).state == "COMPLETE"

    other = client.create_task(tes.Task(executors=[tes.Executor(image="a", command=["true"])]))
    client.cancel_task(other)
    assert client.get_task(other, "MINIMAL").state == "CANCELING"

    for view in ("MINIMAL", "BASIC", "FULL"):
        page = client.list_tasks(view=view, page_size=1)
        assert [t.id for t in page.tasks] == [other]
        rest = client.list_tasks(view=view, page_token=page.next_page_token)
        assert task_id in [t.id for t in rest.tasks]


@pytest.fixture(scope="session")
def pytes04() -> Path:
    """py-tes 0.4.2 in its own directory, from scripts/test-setup.sh (tests stay offline)."""
    if not (PYTES04 / "tes" / "__init__.py").is_file():
        pytest.fail(f"py-tes 0.4.2 is not in {PYTES04}: run scripts/test-setup.sh first")
    return PYTES04


OLD_CLIENT = """
import json, sys
import tes

assert tes.__version__ == "0.4.2", tes.__version__
url, done_id = sys.argv[1], sys.argv[2]
client = tes.HTTPClient(url)
out = {}
info = client.get_service_info()
out["service_info"] = [info.name, info.doc, info.storage]
task = tes.Task(
    name="old-client",
    executors=[tes.Executor(image="alpine", command=["echo", "hi"], workdir="/data/w")],
    inputs=[tes.Input(path="/data/in", content="hi"), tes.Input(path="/data/b", url="s3://b/k")],
    outputs=[tes.Output(url="s3://b/out", path="/data/out")],
    resources=tes.Resources(cpu_cores=1, ram_gb=1.0),
    tags={"a": "b"},
)
new_id = client.create_task(task)
for view in ("MINIMAL", "BASIC", "FULL"):
    for task_id in (new_id, done_id):
        got = client.get_task(task_id, view)
        out[f"{view}:{task_id == done_id}"] = [got.id, got.state, got.executors is None]
    listing = client.list_tasks(view=view)
    out[f"list:{view}"] = [t.id for t in listing.tasks]
done = client.get_task(done_id, "FULL")
out["done"] = [done.logs[0].logs[0].stdout, str(done.creation_time.tzinfo is not None)]
client.cancel_task(new_id)
# CANCELING is a TES 1.1 state py-tes 0.4 cannot parse: /v1 shows it as RUNNING (docs/api.md).
out["cancelling"] = client.get_task(new_id, "MINIMAL").state
print(json.dumps({"new_id": new_id, **out}))
"""


def test_py_tes_0_4_parses_every_response(
    server: tuple[Api, str], pytes04: Path, tmp_path: Path
) -> None:
    api, url = server
    done_id = api.service.create(
        {"executors": [{"image": "alpine", "command": ["echo", "hi"]}], "name": "done"}
    )
    finish(api, done_id)
    script = tmp_path / "old_client.py"
    script.write_text(OLD_CLIENT)
    env = {**os.environ, "PYTHONPATH": str(pytes04)}
    result = subprocess.run(
        [sys.executable, str(script), url, done_id], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    new_id = out["new_id"]
    assert out["service_info"] == [
        "TESK",
        api.service.legacy_service_info()["doc"],
        ["file:///srv/data"],
    ]
    assert out["MINIMAL:True"] == [done_id, "COMPLETE", True]
    assert out["MINIMAL:False"] == [new_id, "QUEUED", True]
    assert out["BASIC:True"] == [done_id, "COMPLETE", False]
    assert out["FULL:False"] == [new_id, "QUEUED", False]
    assert out["list:FULL"][:2] == [new_id, done_id]
    assert out["done"] == ["hi\n", "True"]
    assert out["cancelling"] == "RUNNING"
    record = api.store.get(new_id)
    assert record is not None
    assert record.state is State.CANCELING
