"""The Kubernetes ComputeBackend: one taskmaster Job per task, a reconciler in the serving process.

API worker processes call submit/cancel/check_backend_parameters only: a few API calls each, no
threads. `start()` (once, in the serving process) runs the reconciler. The constructor does no
I/O: the API client is made on first use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client.exceptions import ApiException

from tesk.backends.base import BackendError
from tesk.backends.kubernetes import admission, manifests, names, parameters, taskdoc
from tesk.backends.kubernetes.client import Kube, describe, load_api_client, status_of
from tesk.backends.kubernetes.manifests import JobRef
from tesk.backends.kubernetes.reconciler import Reconciler
from tesk.config import CustomConfig
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.models import Task
from tesk.tes.progress import Progress
from tesk.tes.states import State

logger = logging.getLogger(__name__)


class KubernetesBackend:
    def __init__(self, config: CustomConfig, store: TaskStore, *, kube: Kube | None = None) -> None:
        self._config = config
        self._k8s = config.kubernetes
        self._store = store
        self._kube = kube
        self._kube_lock = threading.Lock()
        self._reconciler: Reconciler | None = None

    @property
    def kube(self) -> Kube:
        with self._kube_lock:
            if self._kube is None:
                self._kube = Kube(load_api_client(self._k8s.kubeconfig))
            return self._kube

    # -- API side -----------------------------------------------------------------------------

    def submit(self, record: TaskRecord) -> None:
        """Create the taskmaster Job, then the task ConfigMap it owns (its pod waits for it).

        Submitting again completes what an earlier submit left half done (an API process that
        died between the two creates): an existing Job is kept and its ConfigMap created.
        """
        ns = self._k8s.namespace
        tn = names.TaskNames(record.id)
        try:
            created = self.kube.to_dict(
                self.kube.batch.create_namespaced_job(
                    ns, manifests.taskmaster_job(self._k8s, record.id)
                )
            )
        except ApiException as exc:
            if status_of(exc) != 409:
                raise BackendError(
                    f"the taskmaster Job could not be created: {describe(exc)}"
                ) from None
            created = self._existing_job(record.id)
        job = JobRef(tn.job, str(created["metadata"]["uid"]))
        try:
            files = taskdoc.files_for(
                record, job, self._k8s, self._config.filer, self._config.limits.log_tail_bytes
            )
            self.kube.core.create_namespaced_config_map(
                ns, manifests.task_configmap(self._k8s, record.id, job, files)
            )
        except ApiException as exc:
            if status_of(exc) == 409:
                logger.info("task %s: its Job and task ConfigMap exist already", record.id)
                return
            self._delete_job_quietly(record.id)
            raise BackendError(
                f"the task ConfigMap could not be created: {describe(exc)}"
            ) from None
        except taskdoc.TaskDocumentError as exc:
            self._delete_job_quietly(record.id)
            raise BackendError(f"the task ConfigMap could not be created: {exc}") from None

    def _existing_job(self, task_id: str) -> dict[str, Any]:
        """The task's Job that a create found already there (listed by name: the API's Role
        lists Jobs, it does not get them)."""
        name = names.TaskNames(task_id).job
        try:
            found = self.kube.to_dict(
                self.kube.batch.list_namespaced_job(
                    self._k8s.namespace, field_selector=f"metadata.name={name}"
                )
            )
        except ApiException as exc:
            raise BackendError(
                f"the task's existing Job could not be read: {describe(exc)}"
            ) from None
        items: list[dict[str, Any]] = found.get("items") or []
        if not items:
            raise BackendError("the task's Job was deleted while it was being submitted")
        return items[0]

    def cancel(self, task_id: str, previous_state: State) -> None:
        try:
            self.kube.batch.delete_namespaced_job(
                names.TaskNames(task_id).job, self._k8s.namespace, propagation_policy="Foreground"
            )
        except ApiException as exc:
            if status_of(exc) != 404:
                raise BackendError(
                    f"the task's Job could not be deleted: {describe(exc)}"
                ) from None
            # No Job: nothing of the task exists (a Job created later by a racing submit is
            # deleted by the reconciler, which finds the task CANCELED).
            self._store.update(task_id, Progress(State.CANCELED), expected={State.CANCELING})

    def reconcile(self) -> None:
        self._reconciler_for().resync()

    def supported_backend_parameters(self) -> Sequence[str]:
        return parameters.SUPPORTED

    def check_backend_parameters(self, parameters_: Mapping[str, str]) -> None:
        parameters.parse(parameters_, self._k8s.executor.allowed_image_pull_secrets)

    def check_task(self, task: Task) -> None:
        admission.check_task(task)

    def _delete_job_quietly(self, task_id: str) -> None:
        try:
            self.kube.batch.delete_namespaced_job(
                names.TaskNames(task_id).job, self._k8s.namespace, propagation_policy="Foreground"
            )
        except ApiException as exc:
            if status_of(exc) != 404:
                logger.warning("task %s: its Job could not be deleted: %s", task_id, describe(exc))

    # -- the serving process ------------------------------------------------------------------

    def _reconciler_for(self) -> Reconciler:
        if self._reconciler is None:
            self._reconciler = Reconciler(self.kube, self._k8s, self._store, self.submit)
        return self._reconciler

    def start(self) -> None:
        self._reconciler_for().start()

    def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.stop()
            self._reconciler = None
        with self._kube_lock:
            if self._kube is not None:
                self._kube.close()
                self._kube = None
