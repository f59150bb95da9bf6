"""The objects TESK creates, as API JSON. Pure functions: names, labels and specs, no calls.

tests/k8s/test_manifests.py validates every one of them against the Kubernetes schemas.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from typing import Any

from tesk.backends.kubernetes import names
from tesk.backends.kubernetes.parameters import Placement
from tesk.backends.kubernetes.streams import StreamPaths, escape, wrapped_command
from tesk.config import KubernetesConfig
from tesk.engine.volumes import mount_points
from tesk.tes.models import Executor, Resources, Task

Obj = dict[str, Any]

TASK_DIR = "/etc/tesk/task"  # the task ConfigMap in taskmaster and filer pods
STATUS_DIR = "/etc/tesk/status"  # the status ConfigMap (if any yet) in the taskmaster pod
VOLUME_ROOT = "/var/lib/tesk/volume"  # the whole task volume in filer pods
NETRC_DIR = "/etc/tesk/netrc"  # the filer netrc Secret in filer pods
IO_DIR = "/.tesk-io"  # an executor's own directory of the task volume (default stdout/stderr)
IO_SUBPATH = ".tesk"  # where those directories live in the task volume
LOG_FORMAT_ENV = "TESK_LOG_FORMAT"  # TESK's own pods log as the API does (tesk.observability)
TASK_VOLUME = "task-volume"
TASK_CONFIG_VOLUME = "task-config"
STATUS_VOLUME = "task-status"
NETRC_VOLUME = "filer-netrc"
FILER_CONTAINER = "filer"
EXECUTOR_CONTAINER = "executor"
TASKMASTER_CONTAINER = "taskmaster"


@dataclass(frozen=True)
class JobRef:
    """The taskmaster Job that owns everything of a task."""

    name: str
    uid: str
    attempt: int = 1


def owner_references(job: JobRef) -> list[Obj]:
    # blockOwnerDeletion: a foreground delete of the Job ends only once these are gone, so a
    # cancelled task is CANCELED only when nothing of it is left.
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job.name,
            "uid": job.uid,
            "controller": False,
            "blockOwnerDeletion": True,
        }
    ]


def _metadata(
    config: KubernetesConfig,
    name: str,
    component: str,
    task_id: str,
    job: JobRef | None,
    attempt: int | None = None,
) -> Obj:
    if attempt is None and job is not None:
        attempt = job.attempt
    metadata: Obj = {
        "name": name,
        "namespace": config.namespace,
        "labels": names.labels(config.instance, component, task_id, attempt),
    }
    if job is not None:
        metadata["ownerReferences"] = owner_references(job)
    return metadata


# -- created by the API -------------------------------------------------------------------------


def taskmaster_job(
    config: KubernetesConfig, task_id: str, log_format: str = "text", attempt: int = 1
) -> Obj:
    """The taskmaster Job of one attempt of a task."""
    tn = names.TaskNames(task_id, attempt)
    pod_labels = names.labels(config.instance, names.COMPONENT_TASKMASTER, task_id, attempt)
    pod: Obj = {
        "serviceAccountName": config.taskmaster_service_account,
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "securityContext": _restricted_pod(config.run_as_user, config.run_as_group, None),
        "containers": [
            {
                "name": TASKMASTER_CONTAINER,
                "image": config.image,
                "imagePullPolicy": config.image_pull_policy,
                "command": ["tesk", "taskmaster", "--task-dir", TASK_DIR],
                "env": [{"name": LOG_FORMAT_ENV, "value": log_format}],
                "resources": {
                    "requests": {"cpu": config.taskmaster_cpu, "memory": config.taskmaster_memory},
                    "limits": {"memory": config.taskmaster_memory},
                },
                "volumeMounts": [
                    {"name": TASK_CONFIG_VOLUME, "mountPath": TASK_DIR, "readOnly": True},
                    {"name": STATUS_VOLUME, "mountPath": STATUS_DIR, "readOnly": True},
                ],
                "securityContext": _restricted_container(),
            }
        ],
        "volumes": [
            {"name": TASK_CONFIG_VOLUME, "configMap": {"name": tn.task_configmap}},
            # What an earlier taskmaster of this task reported, for the one that replaces it.
            {
                "name": STATUS_VOLUME,
                "configMap": {"name": tn.status_configmap, "optional": True},
            },
        ],
    }
    if config.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in config.image_pull_secrets]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(config, tn.job, names.COMPONENT_TASKMASTER, task_id, None, attempt),
        "spec": {
            # The taskmaster runs once: a second one would run the user's commands again.
            "backoffLimit": 0,
            # ... except when it was disrupted (evicted, drained, preempted, its node lost): then
            # a new taskmaster takes the task over, adopting the pods and claim already there.
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    }
                ]
            },
            "ttlSecondsAfterFinished": config.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def task_configmap(
    config: KubernetesConfig, task_id: str, job: JobRef, files: dict[str, str]
) -> Obj:
    tn = names.TaskNames(task_id, job.attempt)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            config, tn.task_configmap, names.COMPONENT_TASK_DOCUMENT, task_id, job
        ),
        "immutable": True,
        "data": dict(files),
    }


# -- created by the taskmaster ------------------------------------------------------------------


def status_configmap(config: KubernetesConfig, task_id: str, job: JobRef, snapshot: str) -> Obj:
    tn = names.TaskNames(task_id, job.attempt)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(config, tn.status_configmap, names.COMPONENT_STATUS, task_id, job),
        "data": {names.PROGRESS_KEY: snapshot},
    }


def volume_claim(config: KubernetesConfig, task: Task, job: JobRef) -> Obj:
    task_id = task.id or ""
    resources = task.resources
    disk_gb = resources.disk_gb if resources and resources.disk_gb else config.default_disk_gb
    spec: Obj = {
        "accessModes": [config.volume_access_mode],
        "resources": {"requests": {"storage": gib_quantity(disk_gb)}},
    }
    if config.storage_class:
        spec["storageClassName"] = config.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(
            config,
            names.TaskNames(task_id, job.attempt).volume,
            names.COMPONENT_VOLUME,
            task_id,
            job,
        ),
        "spec": spec,
    }


def filer_pod(
    config: KubernetesConfig,
    task: Task,
    job: JobRef,
    direction: str,
    placement: Placement,
    file_roots: list[str],
    *,
    executors_failed: bool = False,
    log_format: str = "text",
) -> Obj:
    task_id = task.id or ""
    tn = names.TaskNames(task_id, job.attempt)
    command = [
        "tesk",
        "filer",
        direction,
        "--task",
        posixpath.join(TASK_DIR, names.TASK_KEY),
        "--filer-config",
        posixpath.join(TASK_DIR, names.FILER_KEY),
        "--volume",
        VOLUME_ROOT,
    ]
    if executors_failed:
        command.append("--executors-failed")
    mounts: list[Obj] = [
        {"name": TASK_VOLUME, "mountPath": VOLUME_ROOT},
        {"name": TASK_CONFIG_VOLUME, "mountPath": TASK_DIR, "readOnly": True},
    ]
    volumes: list[Obj] = [
        {"name": TASK_VOLUME, "persistentVolumeClaim": {"claimName": tn.volume}},
        {"name": TASK_CONFIG_VOLUME, "configMap": {"name": tn.task_configmap}},
    ]
    container: Obj = {
        "name": FILER_CONTAINER,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        "command": [escape(arg) for arg in command],
        "resources": {
            "requests": {"cpu": config.taskmaster_cpu, "memory": config.taskmaster_memory},
            "limits": {"memory": config.taskmaster_memory},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _restricted_container(),
    }
    env: list[Obj] = [{"name": LOG_FORMAT_ENV, "value": log_format}]
    if config.filer_netrc_secret:
        volumes.append(
            {
                "name": NETRC_VOLUME,
                "secret": {"secretName": config.filer_netrc_secret, "defaultMode": 0o400},
            }
        )
        mounts.append({"name": NETRC_VOLUME, "mountPath": NETRC_DIR, "readOnly": True})
        env.append({"name": "NETRC", "value": posixpath.join(NETRC_DIR, ".netrc")})
    if config.filer_env_secret:
        container["envFrom"] = [{"secretRef": {"name": config.filer_env_secret}}]
    if config.file_roots_host_path:
        for index, root in enumerate(file_roots):
            volume = f"file-root-{index}"
            volumes.append({"name": volume, "hostPath": {"path": root, "type": "Directory"}})
            mounts.append({"name": volume, "mountPath": root})
    container["env"] = env
    container["volumeMounts"] = mounts
    return _task_pod(
        config,
        task,
        job,
        placement,
        name=tn.filer_pod(direction),
        component=names.COMPONENT_FILER,
        container=container,
        volumes=volumes,
        security=_restricted_pod(config.run_as_user, config.run_as_group, config.volume_fs_group),
        pull_secrets=config.image_pull_secrets,
    )


def executor_streams(executor: Executor) -> StreamPaths:
    return StreamPaths(
        stdin=executor.stdin or "/dev/null",
        stdout=executor.stdout or posixpath.join(IO_DIR, "stdout"),
        stderr=executor.stderr or posixpath.join(IO_DIR, "stderr"),
    )


def executor_pod(
    config: KubernetesConfig,
    task: Task,
    job: JobRef,
    index: int,
    executor: Executor,
    placement: Placement,
    *,
    tail_bytes: int,
    marker: str,
) -> Obj:
    task_id = task.id or ""
    tn = names.TaskNames(task_id, job.attempt)
    command = wrapped_command(
        config.executor.shell, executor.command, executor_streams(executor), tail_bytes, marker
    )
    mounts: list[Obj] = [
        {"name": TASK_VOLUME, "mountPath": point, "subPath": point.lstrip("/")}
        for point in mount_points(task)
    ]
    mounts.append(
        {"name": TASK_VOLUME, "mountPath": IO_DIR, "subPath": f"{IO_SUBPATH}/executor-{index}"}
    )
    container: Obj = {
        "name": EXECUTOR_CONTAINER,
        "image": executor.image,
        "command": [escape(arg) for arg in command],
        "volumeMounts": mounts,
        "resources": _executor_resources(config, task.resources, placement),
        "securityContext": _executor_container_security(config),
    }
    if executor.workdir:
        container["workingDir"] = executor.workdir
    if executor.env:
        container["env"] = [
            {"name": name, "value": escape(value)} for name, value in executor.env.items()
        ]
    pod = _task_pod(
        config,
        task,
        job,
        placement,
        name=tn.executor_pod(index),
        component=names.COMPONENT_EXECUTOR,
        container=container,
        volumes=[{"name": TASK_VOLUME, "persistentVolumeClaim": {"claimName": tn.volume}}],
        security=_restricted_pod(
            config.executor.run_as_user, config.executor.run_as_group, config.volume_fs_group
        ),
        pull_secrets=[placement.image_pull_secret] if placement.image_pull_secret else [],
    )
    if placement.max_runtime_s is not None:
        pod["spec"]["activeDeadlineSeconds"] = placement.max_runtime_s
    return pod


def _task_pod(
    config: KubernetesConfig,
    task: Task,
    job: JobRef,
    placement: Placement,
    *,
    name: str,
    component: str,
    container: Obj,
    volumes: list[Obj],
    security: Obj,
    pull_secrets: list[str],
) -> Obj:
    """What filer and executor pods share: run once, no API token or service links, the task's
    placement, owned by the taskmaster Job."""
    spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": volumes,
        "securityContext": security,
        **_placement(config, task.resources, placement),
    }
    if config.executor_service_account:
        spec["serviceAccountName"] = config.executor_service_account
    if pull_secrets:
        spec["imagePullSecrets"] = [{"name": secret} for secret in pull_secrets]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(config, name, component, task.id or "", job),
        "spec": spec,
    }


def _executor_resources(
    config: KubernetesConfig, resources: Resources | None, placement: Placement
) -> Obj:
    amounts: dict[str, str] = {}
    cpu = resources.cpu_cores if resources and resources.cpu_cores else None
    cpu_cores = float(cpu) if cpu else config.executor.default_cpu_cores
    if cpu_cores:
        amounts["cpu"] = cpu_quantity(cpu_cores)
    ram = resources.ram_gb if resources and resources.ram_gb else config.executor.default_ram_gb
    if ram:
        amounts["memory"] = gib_quantity(ram)
    if placement.gpu_count:
        amounts[config.executor.gpu_resource] = str(placement.gpu_count)
    if not amounts:
        return {}
    # Requests equal limits: the task gets what it asked for and no more (Guaranteed QoS when
    # both CPU and memory are given).
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _placement(config: KubernetesConfig, resources: Resources | None, placement: Placement) -> Obj:
    preemptible = bool(resources and resources.preemptible)
    selector = dict(config.executor.node_selector)
    tolerations = list(config.executor.tolerations)
    if preemptible:
        selector.update(config.preemptible.node_selector)
        tolerations += config.preemptible.tolerations
    selector.update(placement.node_selector)
    tolerations += placement.tolerations
    found: Obj = {}
    if selector:
        found["nodeSelector"] = selector
    if tolerations:
        found["tolerations"] = tolerations
    zones = resources.zones if resources and resources.zones else None
    if zones:
        found["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": config.executor.zone_label,
                                    "operator": "In",
                                    "values": list(zones),
                                }
                            ]
                        }
                    ]
                }
            }
        }
    return found


def _restricted_container() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _restricted_pod(user: int | None, group: int | None, fs_group: int | None) -> Obj:
    """A pod securityContext that Pod Security `restricted` admits when `user` is set (non-root);
    without a user the image's is kept, which `baseline` admits."""
    context: Obj = {"seccompProfile": {"type": "RuntimeDefault"}}
    if user is not None:
        context.update(runAsNonRoot=True, runAsUser=user)
    if group is not None:
        context["runAsGroup"] = group
    if fs_group is not None:
        # OnRootMismatch: a volume already owned by the group is not walked again for each pod.
        context.update(fsGroup=fs_group, fsGroupChangePolicy="OnRootMismatch")
    return context


def _executor_container_security(config: KubernetesConfig) -> Obj:
    if config.executor.run_as_user is not None:
        return _restricted_container()
    # The image's user, maybe root: keep its capabilities, but no escalation beyond them.
    return {"allowPrivilegeEscalation": False}


def gib_quantity(gb: float) -> str:
    """`gb` GiB as a Kubernetes quantity in whole MiB (at least 1 MiB)."""
    return f"{max(1, math.ceil(gb * 1024))}Mi"


def cpu_quantity(cores: float) -> str:
    millis = max(1, math.ceil(cores * 1000))
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
