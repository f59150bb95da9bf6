"""Names and labels of everything a task creates in the cluster.

Every name derives from the task id and the attempt, so each object of a task can be found (and
created again idempotently) without listing anything. Task ids are UUIDs: lower case, 36
characters, so every name stays a valid DNS label of at most 63 characters. Each attempt of a
task has a taskmaster Job of its own, and everything it owns is named after that Job: a late
status of an earlier attempt can never be taken for the current one's. The first attempt keeps
the names TESK gave before it retried attempts.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "tesk-"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_TASK = "tesk.io/task-id"
LABEL_ATTEMPT = "tesk.io/attempt"

COMPONENT_TASKMASTER = "taskmaster"
COMPONENT_TASK_DOCUMENT = "task-document"
COMPONENT_STATUS = "task-status"
COMPONENT_VOLUME = "task-volume"
COMPONENT_FILER = "filer"
COMPONENT_EXECUTOR = "executor"

# Keys of the task ConfigMap (mounted read-only into the taskmaster and filer pods).
TASK_KEY = "task.json"
TASKMASTER_KEY = "taskmaster.json"
FILER_KEY = "filer.json"
# Key of the status ConfigMap the taskmaster writes.
PROGRESS_KEY = "progress.json"


@dataclass(frozen=True)
class TaskNames:
    task_id: str
    attempt: int = 1

    @property
    def job(self) -> str:
        if self.attempt == 1:
            return PREFIX + self.task_id
        return f"{PREFIX}{self.task_id}-a{self.attempt}"

    @property
    def task_configmap(self) -> str:
        return f"{self.job}-task"

    @property
    def status_configmap(self) -> str:
        return f"{self.job}-status"

    @property
    def volume(self) -> str:
        return f"{self.job}-volume"

    def filer_pod(self, direction: str) -> str:
        return f"{self.job}-{direction}"

    def executor_pod(self, index: int) -> str:
        return f"{self.job}-ex-{index}"


def labels(
    instance: str, component: str, task_id: str | None = None, attempt: int | None = None
) -> dict[str, str]:
    found = {
        LABEL_NAME: "tesk",
        LABEL_INSTANCE: instance,
        LABEL_COMPONENT: component,
        LABEL_MANAGED_BY: "tesk",
        LABEL_PART_OF: "tesk",
    }
    if task_id is not None:
        found[LABEL_TASK] = task_id
    if attempt is not None:
        found[LABEL_ATTEMPT] = str(attempt)
    return found


def attempt_of(labels: dict[str, str]) -> int:
    """The attempt an object's labels name (1 for objects made before attempts were labelled)."""
    value = labels.get(LABEL_ATTEMPT, "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def selector(instance: str, component: str, task_id: str | None = None) -> str:
    """A label selector for one component of this TESK instance (optionally of one task)."""
    wanted = {LABEL_NAME: "tesk", LABEL_INSTANCE: instance, LABEL_COMPONENT: component}
    if task_id is not None:
        wanted[LABEL_TASK] = task_id
    return ",".join(f"{key}={value}" for key, value in wanted.items())
