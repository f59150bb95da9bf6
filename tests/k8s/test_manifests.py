"""Every object the Kubernetes backend builds is valid for the real Kubernetes schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tesk.backends.kubernetes import manifests, parameters, taskdoc
from tesk.backends.kubernetes.manifests import JobRef
from tesk.backends.kubernetes.streams import new_marker
from tesk.config import FilerConfig, KubernetesConfig
from tesk.store.base import TaskRecord
from tesk.tes.models import Task
from tesk.tes.states import State

# The oldest Kubernetes TESK supports (ttlSecondsAfterFinished, DisruptionTarget: 1.27) and the
# newest the schemas know.
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
TASK_ID = "0b3c6f2e-8d1a-4c3e-9f7a-2b5d8e1c4a6f"
JOB = JobRef(f"tesk-{TASK_ID}", "5f0c3a52-93a4-4d8e-8a43-0b5c4f0e1d2a")

BARE = KubernetesConfig(namespace="tasks")
EVERYTHING = KubernetesConfig.model_validate(
    {
        "namespace": "tasks",
        "image": "registry.example.org/tesk:1.0",
        "image_pull_policy": "Always",
        "image_pull_secrets": ["registry"],
        "storage_class": "fast",
        "volume_access_mode": "ReadWriteOncePod",
        "executor_service_account": "tesk-executor",
        "filer_env_secret": "s3-credentials",
        "filer_netrc_secret": "netrc",
        "file_roots_host_path": True,
        "executor": {
            "default_cpu_cores": 0.5,
            "default_ram_gb": 0.25,
            "node_selector": {"pool": "batch"},
            "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        },
        "preemptible": {
            "node_selector": {"cloud.google.com/gke-spot": "true"},
            "tolerations": [
                {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true"}
            ],
        },
    }
)
FULL_TASK = Task.model_validate(
    {
        "id": TASK_ID,
        "inputs": [
            {"path": "/data/in/a.txt", "content": "x"},
            {"path": "/refs", "url": "s3://bucket/refs", "type": "DIRECTORY"},
        ],
        "outputs": [
            {"path": "/data/out/*.txt", "url": "s3://bucket/out/", "path_prefix": "/data/out"}
        ],
        "resources": {
            "cpu_cores": 4,
            "ram_gb": 7.5,
            "disk_gb": 20,
            "preemptible": True,
            "zones": ["eu-west-1a", "eu-west-1b"],
            "backend_parameters": {
                "node_selector": "gpu=a100",
                "tolerations": "gpu=true:NoSchedule,dedicated",
                "gpu_count": "2",
                "max_runtime_seconds": "3600",
                "image_pull_secret": "user-registry",
            },
        },
        "executors": [
            {
                "image": "ubuntu:24.04",
                "command": ["sh", "-c", "echo $(HOME) $$ > /data/out/a.txt"],
                "workdir": "/data",
                "stdin": "/data/in/a.txt",
                "stdout": "/logs/out.txt",
                "stderr": "/logs/err.txt",
                "env": {"GREETING": "$(hello)", "PLAIN": "x"},
            }
        ],
        "volumes": ["/scratch"],
    }
)
BARE_TASK = Task.model_validate(
    {"id": TASK_ID, "executors": [{"image": "alpine", "command": ["true"]}]}
)


def _placement(task: Task) -> parameters.Placement:
    return parameters.parse(task.resources.backend_parameters if task.resources else None)


def _record(task: Task) -> TaskRecord:
    return TaskRecord(id=TASK_ID, state=State.QUEUED, created_us=1, task=task)


def _built(config: KubernetesConfig, task: Task) -> list[dict[str, Any]]:
    placement = _placement(task)
    files = taskdoc.files_for(_record(task), JOB, config, FilerConfig(file_roots=["/shared"]), 1024)
    return [
        manifests.taskmaster_job(config, TASK_ID),
        manifests.task_configmap(config, TASK_ID, JOB, files),
        manifests.status_configmap(config, TASK_ID, JOB, "{}"),
        manifests.volume_claim(config, task, JOB),
        manifests.filer_pod(config, task, JOB, "inputs", placement, ["/shared"]),
        manifests.filer_pod(
            config, task, JOB, "outputs", placement, ["/shared"], executors_failed=True
        ),
        manifests.executor_pod(
            config,
            task,
            JOB,
            0,
            task.executors[0],
            placement,
            tail_bytes=1024,
            marker=new_marker(),
        ),
    ]


CASES = [
    pytest.param(config, task, version, id=f"{cfg_id}-{task_id}-{version}")
    for config, cfg_id in ((BARE, "bare-config"), (EVERYTHING, "full-config"))
    for task, task_id in ((BARE_TASK, "bare-task"), (FULL_TASK, "full-task"))
    for version in VERSIONS
]


@pytest.mark.parametrize(("config", "task", "version"), CASES)
def test_every_manifest_is_valid(config: KubernetesConfig, task: Task, version: str) -> None:
    for obj in _built(config, task):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {error.message}")


def test_names_are_dns_labels_of_at_most_63_characters() -> None:
    for obj in _built(EVERYTHING, FULL_TASK):
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63


def test_everything_but_the_job_is_owned_by_the_job() -> None:
    objects = _built(EVERYTHING, FULL_TASK)
    assert "ownerReferences" not in objects[0]["metadata"]
    for obj in objects[1:]:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", JOB.name, JOB.uid)
        assert owner["blockOwnerDeletion"] is True


def test_taskmaster_job_never_retries_and_expires() -> None:
    job = manifests.taskmaster_job(EVERYTHING, TASK_ID)
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == EVERYTHING.ttl_seconds_after_finished
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == EVERYTHING.taskmaster_service_account
    assert pod["imagePullSecrets"] == [{"name": "registry"}]


def test_executor_pod_has_no_token_no_secrets_and_requested_resources() -> None:
    placement = _placement(FULL_TASK)
    pod = manifests.executor_pod(
        EVERYTHING, FULL_TASK, JOB, 0, FULL_TASK.executors[0], placement, tail_bytes=10, marker="m"
    )
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "tesk-executor"
    assert "envFrom" not in container
    assert all("secret" not in volume for volume in spec["volumes"])
    wanted = {"cpu": "4", "memory": "7680Mi", "nvidia.com/gpu": "2"}
    assert container["resources"] == {"requests": wanted, "limits": wanted}
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["imagePullSecrets"] == [{"name": "user-registry"}]
    assert spec["nodeSelector"] == {
        "pool": "batch",
        "cloud.google.com/gke-spot": "true",
        "gpu": "a100",
    }
    keys = [t["key"] for t in spec["tolerations"]]
    assert keys == ["batch", "cloud.google.com/gke-spot", "gpu", "dedicated"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expression = terms["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expression == {
        "key": "topology.kubernetes.io/zone",
        "operator": "In",
        "values": ["eu-west-1a", "eu-west-1b"],
    }


def test_executor_mounts_each_mount_point_by_subpath() -> None:
    pod = manifests.executor_pod(
        BARE,
        FULL_TASK,
        JOB,
        3,
        FULL_TASK.executors[0],
        _placement(FULL_TASK),
        tail_bytes=10,
        marker="m",
    )
    mounts = {
        m["mountPath"]: m.get("subPath") for m in pod["spec"]["containers"][0]["volumeMounts"]
    }
    assert mounts == {
        "/data/in": "data/in",
        "/data/out": "data/out",
        "/logs": "logs",
        "/refs": "refs",
        "/scratch": "scratch",
        manifests.IO_DIR: ".tesk/executor-3",
    }


def test_dollar_signs_reach_the_command_and_env_unexpanded() -> None:
    pod = manifests.executor_pod(
        BARE,
        FULL_TASK,
        JOB,
        0,
        FULL_TASK.executors[0],
        _placement(FULL_TASK),
        tail_bytes=10,
        marker="m",
    )
    container = pod["spec"]["containers"][0]
    assert container["command"][-1] == "echo $$(HOME) $$$$ > /data/out/a.txt"
    assert {"name": "GREETING", "value": "$$(hello)"} in container["env"]


def test_filer_pods_get_the_filer_secrets_and_file_roots() -> None:
    pod = manifests.filer_pod(
        EVERYTHING, FULL_TASK, JOB, "inputs", _placement(FULL_TASK), ["/shared"]
    )
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert {"name": "NETRC", "value": "/etc/tesk/netrc/.netrc"} in container["env"]
    assert {"name": "file-root-0", "hostPath": {"path": "/shared", "type": "Directory"}} in spec[
        "volumes"
    ]
    # The filer needs no GPU, deadline or user registry, but must land where the volume can be.
    assert "activeDeadlineSeconds" not in spec
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert spec["affinity"]["nodeAffinity"]


def test_volume_claim_is_sized_from_disk_gb_or_the_default() -> None:
    claim = manifests.volume_claim(EVERYTHING, FULL_TASK, JOB)
    assert claim["spec"]["resources"]["requests"]["storage"] == "20480Mi"
    assert claim["spec"]["storageClassName"] == "fast"
    bare = manifests.volume_claim(KubernetesConfig(default_disk_gb=2.5), BARE_TASK, JOB)
    assert bare["spec"]["resources"]["requests"]["storage"] == "2560Mi"
    assert "storageClassName" not in bare["spec"]


def test_task_configmap_is_immutable_and_holds_no_kubeconfig() -> None:
    config = KubernetesConfig(kubeconfig="/home/admin/.kube/config")
    files = taskdoc.files_for(_record(BARE_TASK), JOB, config, FilerConfig(), 1024)
    configmap = manifests.task_configmap(config, TASK_ID, JOB, files)
    assert configmap["immutable"] is True
    assert "/home/admin" not in configmap["data"]["taskmaster.json"]


def test_an_oversized_task_document_is_refused_with_the_reason() -> None:
    huge = Task.model_validate(
        {
            "id": TASK_ID,
            "inputs": [{"path": "/data/big", "content": "x" * (1024 * 1024)}],
            "executors": [{"image": "alpine", "command": ["true"]}],
        }
    )
    with pytest.raises(taskdoc.TaskDocumentError, match="more than a Kubernetes ConfigMap holds"):
        taskdoc.files_for(_record(huge), JOB, BARE, FilerConfig(), 1024)


def test_the_servers_run_time_limit_reaches_executor_pods_of_tasks_that_set_none() -> None:
    config = KubernetesConfig()
    own = Task.model_validate(
        {
            "id": TASK_ID,
            "executors": [{"image": "alpine", "command": ["true"]}],
            "resources": {"backend_parameters": {"max_runtime_seconds": "30"}},
        }
    )
    for task, expected in ((BARE_TASK, 600), (own, 30)):
        files = taskdoc.files_for(_record(task), JOB, config, FilerConfig(), 1024, "text", 600)
        settings = taskdoc.TaskmasterSettings.model_validate_json(files["taskmaster.json"])
        assert settings.placement.max_runtime_s == expected
        pod = manifests.executor_pod(
            config, task, JOB, 0, task.executors[0], settings.placement, tail_bytes=1, marker="m"
        )
        assert pod["spec"]["activeDeadlineSeconds"] == expected
    files = taskdoc.files_for(_record(BARE_TASK), JOB, config, FilerConfig(), 1024)
    unlimited = taskdoc.TaskmasterSettings.model_validate_json(files["taskmaster.json"])
    assert unlimited.placement.max_runtime_s is None
