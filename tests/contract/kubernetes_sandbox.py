"""The Kubernetes runtime as the Runtime contract suite drives it: pods on the test cluster.

Each sandbox is a fresh namespace (Pod Security `restricted`) with a suspended Job that owns
what the runtime creates, as a taskmaster Job does; the runtime runs in the test process with
the admin credentials and starts the real input filer and executor pods.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tesk.backends.kubernetes import manifests, taskdoc
from tesk.backends.kubernetes.client import Kube, load_api_client
from tesk.backends.kubernetes.manifests import JobRef
from tesk.backends.kubernetes.parameters import Placement
from tesk.backends.kubernetes.runtime import KubernetesRuntime
from tesk.config import FilerConfig, KubernetesConfig
from tesk.engine.runtime import ExecutorResult
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task
from tesk.tes.states import State
from tests.contract.runtime_steps import run_task
from tests.k8s.backend_env import k8s_config
from tests.k8s.realcluster import EXECUTOR_IMAGE, TestCluster, cluster_or_fail, new_namespace


@dataclass
class KubernetesSandbox:
    cluster: TestCluster
    kube: Kube
    config: KubernetesConfig
    job: JobRef
    kind: str = "kubernetes"
    image: str = EXECUTOR_IMAGE
    tail_bytes: int = 64 * 1024

    def task(self, *executors: Executor, **fields: object) -> Task:
        return Task(id=str(uuid.uuid4()), executors=list(executors), **fields)  # type: ignore[arg-type]

    def executor(self, script: str, **fields: object) -> Executor:
        return Executor(image=self.image, command=["sh", "-c", script], **fields)  # type: ignore[arg-type]

    def run(self, task: Task) -> list[ExecutorResult]:
        # The task ConfigMap the filer pods mount, as the API creates it for a taskmaster.
        record = TaskRecord(task.id or "", State.QUEUED, 0, task)
        files = taskdoc.files_for(record, self.job, self.config, FilerConfig(), self.tail_bytes)
        self.cluster.apply(manifests.task_configmap(self.config, task.id or "", self.job, files))
        runtime = KubernetesRuntime(
            self.kube,
            self.config,
            self.job,
            Placement(),
            file_roots=[],
            log_tail_bytes=self.tail_bytes,
        )
        return run_task(runtime, task)

    def run_one(self, script: str, **fields: object) -> ExecutorResult:
        return self.run(self.task(self.executor(script, **fields)))[0]


def _owner_job(cluster: TestCluster) -> JobRef:
    """A Job that never runs (suspended) and owns the sandbox's pods and claims."""
    created = cluster.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "contract-owner"},
            "spec": {
                "suspend": True,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": EXECUTOR_IMAGE}],
                    }
                },
            },
        }
    )
    return JobRef(created["metadata"]["name"], created["metadata"]["uid"])


@contextmanager
def kubernetes_sandbox() -> Iterator[KubernetesSandbox]:
    cluster = TestCluster(cluster_or_fail(), new_namespace())
    cluster.prepare()
    kube = Kube(load_api_client(cluster.cluster.layout.kubeconfig))
    try:
        yield KubernetesSandbox(cluster, kube, k8s_config(cluster), _owner_job(cluster))
    finally:
        kube.close()
        cluster.remove()
