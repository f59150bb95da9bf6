"""Inputs and outputs end to end on the test cluster: filer pods (`tesk filer`) on the PVC.

file:// URLs reach the filer through `file_roots_host_path` (hostPath volumes), which only a
namespace that admits hostPath allows (Pod Security `privileged`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tesk.config import FilerConfig
from tesk.store.sql import SqlStore
from tesk.tes.states import State
from tests.k8s.backend_env import Deployment, deployment
from tests.k8s.realcluster import EXECUTOR_IMAGE, TestCluster


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "shared"
    (root / "in").mkdir(parents=True)
    (root / "in" / "data.txt").write_text("from a file\n")
    (root / "out").mkdir()
    # The filer runs as uid 10001; the directories are the host's.
    for directory in (root, root / "in", root / "out"):
        directory.chmod(0o777)
    return root


@pytest.fixture
def env(privileged_cluster: TestCluster, tmp_path: Path, files: Path) -> Iterator[Deployment]:
    store = SqlStore(f"sqlite:///{tmp_path / 'tesk.db'}")
    with deployment(
        privileged_cluster,
        store=store,
        filer=FilerConfig(file_roots=[files]),
        file_roots_host_path=True,
    ) as running:
        yield running
    store.close()


def test_content_and_file_inputs_in_and_outputs_out(env: Deployment, files: Path) -> None:
    task_id = env.submit(
        {
            "inputs": [
                {"path": "/data/inline.txt", "content": "inline\n"},
                {"path": "/data/file.txt", "url": (files / "in" / "data.txt").as_uri()},
            ],
            "outputs": [
                {
                    "path": "/results/*.txt",
                    "path_prefix": "/results",
                    "url": (files / "out").as_uri(),
                    "type": "FILE",
                }
            ],
            "executors": [
                {
                    "image": EXECUTOR_IMAGE,
                    "command": [
                        "sh",
                        "-c",
                        "cat /data/inline.txt /data/file.txt > /results/both.txt; echo done",
                    ],
                }
            ],
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.COMPLETE, record.log
    assert (files / "out" / "both.txt").read_text() == "inline\nfrom a file\n"
    assert record.log is not None
    assert [(o.path, o.size_bytes) for o in record.log.outputs] == [("/results/both.txt", "19")]
    assert record.log.logs[0].stdout == "done\n"


def test_a_missing_input_is_a_system_error_with_the_filers_reason(
    env: Deployment, files: Path
) -> None:
    task_id = env.submit(
        {
            "inputs": [{"path": "/data/x", "url": (files / "in" / "missing.txt").as_uri()}],
            "executors": [{"image": EXECUTOR_IMAGE, "command": ["true"]}],
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.SYSTEM_ERROR
    assert record.log is not None
    assert "missing.txt" in " ".join(record.log.system_logs or [])
    assert record.log.logs == []


def test_outputs_are_uploaded_after_an_executor_failed(env: Deployment, files: Path) -> None:
    task_id = env.submit(
        {
            "outputs": [
                {"path": "/out/partial.txt", "url": (files / "out" / "partial.txt").as_uri()},
                {"path": "/out/never.txt", "url": (files / "out" / "never.txt").as_uri()},
            ],
            "executors": [
                {
                    "image": EXECUTOR_IMAGE,
                    "command": ["sh", "-c", "echo half > /out/partial.txt; exit 1"],
                }
            ],
        }
    )
    record = env.wait_state(task_id)
    assert record.state == State.EXECUTOR_ERROR
    assert (files / "out" / "partial.txt").read_text() == "half\n"
    assert not (files / "out" / "never.txt").exists()
