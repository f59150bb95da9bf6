"""Creating and deleting a task's taskmaster Job: what the API's backend and its reconciler share.

Both go through this one launcher: the backend submits and cancels, the reconciler submits again
a task whose Job was never created, submits the next attempt of a task it retried, and deletes
the Jobs of tasks (or of attempts) that must not run. Each attempt has a Job of its own
(names.TaskNames): a record is submitted as its current attempt.
"""

from __future__ import annotations

import logging
from typing import Any

from tesk.backends.base import BackendError
from tesk.backends.kubernetes import manifests, names, taskdoc
from tesk.backends.kubernetes.client import CALL_ERRORS, Kube, describe_error
from tesk.backends.kubernetes.manifests import JobRef
from tesk.config import CustomConfig
from tesk.store.base import TaskRecord

logger = logging.getLogger(__name__)


class JobLauncher:
    def __init__(self, kube: Kube, config: CustomConfig) -> None:
        self.kube = kube
        self._config = config
        self._k8s = config.kubernetes

    def submit(self, record: TaskRecord) -> None:
        """Create the taskmaster Job, then the task ConfigMap it owns (its pod waits for it).

        Submitting again completes what an earlier submit left half done (an API process that
        died between the two creates): an existing Job is kept and its ConfigMap created.
        """
        ns = self._k8s.namespace
        attempt = record.attempt
        tn = names.TaskNames(record.id, attempt)
        manifest = manifests.taskmaster_job(
            self._k8s, record.id, self._config.logging.format, attempt
        )
        try:
            created = self.kube.create("jobs", ns, manifest) or self._existing_job(tn.job)
        except CALL_ERRORS as exc:
            raise BackendError(
                f"the taskmaster Job could not be created: {describe_error(exc)}"
            ) from None
        job = JobRef(tn.job, str(created["metadata"]["uid"]), attempt)
        try:
            files = taskdoc.files_for(
                record,
                job,
                self._k8s,
                self._config.filer,
                self._config.limits.log_tail_bytes,
                self._config.logging.format,
                self._config.limits.max_runtime_seconds,
                self._config.usage.prices,
            )
            configmap = manifests.task_configmap(self._k8s, record.id, job, files)
            if self.kube.create("configmaps", ns, configmap) is None:
                logger.info("task %s: its Job and task ConfigMap exist already", record.id)
        except CALL_ERRORS as exc:
            self._delete_job_quietly(record.id, attempt)
            raise BackendError(
                f"the task ConfigMap could not be created: {describe_error(exc)}"
            ) from None
        except taskdoc.TaskDocumentError as exc:
            self._delete_job_quietly(record.id, attempt)
            raise BackendError(f"the task ConfigMap could not be created: {exc}") from None

    def _existing_job(self, name: str) -> dict[str, Any]:
        """The task's Job that a create found already there (listed by name: the API's Role
        lists Jobs, it does not get them)."""
        try:
            found = self.kube.list(
                "jobs", self._k8s.namespace, field_selector=f"metadata.name={name}"
            )
        except CALL_ERRORS as exc:
            raise BackendError(
                f"the task's existing Job could not be read: {describe_error(exc)}"
            ) from None
        items: list[dict[str, Any]] = found.get("items") or []
        if not items:
            raise BackendError("the task's Job was deleted while it was being submitted")
        return items[0]

    def delete(self, task_id: str, attempt: int = 1, propagation: str = "Foreground") -> bool:
        """Delete the Job of the task's `attempt`; in the foreground, everything it owns goes
        first. False: it was not there."""
        name = names.TaskNames(task_id, attempt).job
        return self.kube.delete("jobs", self._k8s.namespace, name, propagation=propagation)

    def _delete_job_quietly(self, task_id: str, attempt: int) -> None:
        try:
            self.delete(task_id, attempt)
        except CALL_ERRORS as exc:
            logger.warning(
                "task %s: its Job could not be deleted: %s", task_id, describe_error(exc)
            )
