"""What the API hands a taskmaster: the files of the task ConfigMap.

- task.json: the TES task document as stored (also read by the filer pods);
- filer.json: the filer's settings (FilerConfig);
- taskmaster.json (format 2): the owning Job, the attempt it runs, the sequence number and log
  to continue from, the Kubernetes settings, the task's placement (its backend_parameters,
  parsed once by the API), the log tail size and the log format.

No credentials are ever written here: the filer gets them from Secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from tesk.backends.kubernetes import names, parameters
from tesk.backends.kubernetes.manifests import JobRef
from tesk.backends.kubernetes.parameters import Placement
from tesk.config import FilerConfig, KubernetesConfig, PricesConfig
from tesk.observability.logs import LogFormat
from tesk.store.base import TaskRecord
from tesk.tes.models import Task, TaskLog

MAX_CONFIGMAP_BYTES = 1024 * 1024 - 16 * 1024  # a ConfigMap's 1 MiB, less room for metadata


class TaskDocumentError(ValueError):
    """The task cannot be handed to a taskmaster (too large, unreadable); the message says why."""


class _JobModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    uid: str


FORMAT = 2


class TaskmasterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: int = FORMAT
    job: _JobModel
    attempt: int = 1
    first_seq: int
    initial_log: TaskLog | None = None
    kubernetes: KubernetesConfig
    log_tail_bytes: int
    file_roots: list[str]
    placement: Placement = Placement()
    log_format: LogFormat = "text"
    prices: PricesConfig = PricesConfig()

    @property
    def job_ref(self) -> JobRef:
        return JobRef(self.job.name, self.job.uid, self.attempt)


@dataclass(frozen=True)
class TaskDocument:
    task: Task
    settings: TaskmasterSettings
    filer: FilerConfig


def files_for(
    record: TaskRecord,
    job: JobRef,
    kubernetes: KubernetesConfig,
    filer: FilerConfig,
    log_tail_bytes: int,
    log_format: LogFormat = "text",
    max_runtime_s: int | None = None,
    prices: PricesConfig | None = None,
) -> dict[str, str]:
    """The ConfigMap files of one task; `max_runtime_s` is the limit of executors whose task sets
    none."""
    resources = record.task.resources
    try:
        placement = parameters.parse(
            resources.backend_parameters if resources else None,
            kubernetes.executor.allowed_image_pull_secrets,
        )
    except ValueError as exc:  # CreateTask checked them: only a changed config gets here
        raise TaskDocumentError(f"resources.backend_parameters: {exc}") from None
    if placement.max_runtime_s is None and max_runtime_s is not None:
        placement = replace(placement, max_runtime_s=max_runtime_s)
    settings = TaskmasterSettings(
        job=_JobModel(name=job.name, uid=job.uid),
        attempt=record.attempt,
        first_seq=record.seq + 1,
        initial_log=record.log,
        # The taskmaster runs in the cluster: in-cluster credentials, never the API's kubeconfig.
        kubernetes=kubernetes.model_copy(update={"kubeconfig": None}),
        log_tail_bytes=log_tail_bytes,
        file_roots=[str(root) for root in filer.file_roots],
        placement=placement,
        log_format=log_format,
        prices=prices or PricesConfig(),
    )
    files = {
        names.TASK_KEY: json.dumps(record.task.dump(), separators=(",", ":")),
        names.FILER_KEY: filer.model_dump_json(),
        names.TASKMASTER_KEY: settings.model_dump_json(exclude_none=True),
    }
    size = sum(len(key) + len(value.encode()) for key, value in files.items())
    if size > MAX_CONFIGMAP_BYTES:
        raise TaskDocumentError(
            f"the task document is {size} bytes, more than a Kubernetes ConfigMap holds "
            f"({MAX_CONFIGMAP_BYTES}); move large inline `content` inputs to URLs"
        )
    return files


def read_task(path: Path) -> Task:
    try:
        return Task.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise TaskDocumentError(f"cannot read the task document {path}: {exc}") from None


def read(directory: Path) -> TaskDocument:
    try:
        settings = TaskmasterSettings.model_validate_json(
            (directory / names.TASKMASTER_KEY).read_text()
        )
        filer = FilerConfig.model_validate_json((directory / names.FILER_KEY).read_text())
    except (OSError, ValidationError) as exc:
        raise TaskDocumentError(
            f"cannot read the taskmaster settings (format {FORMAT}) in {directory}: {exc}; "
            "a task ConfigMap written by another TESK version?"
        ) from None
    return TaskDocument(read_task(directory / names.TASK_KEY), settings, filer)
