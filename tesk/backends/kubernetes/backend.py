"""The Kubernetes ComputeBackend: one taskmaster Job per task, a reconciler in the serving process.

API worker processes call submit/cancel/check_backend_parameters only: a few API calls each, no
threads. `start()` (once, in the serving process) runs the reconciler. The constructor does no
I/O: the API client is made on first use.

With `kubernetes.max_running_tasks` set, submit creates nothing: the task waits QUEUED in the
store, and the serving process's dispatcher (dispatch.py) creates its Job when a slot is free.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from kubernetes.client.exceptions import ApiException

from tesk.backends.base import BackendError, ExecutorOutput, OutputStream
from tesk.backends.kubernetes import admission, parameters
from tesk.backends.kubernetes.client import Kube, describe, load_api_client
from tesk.backends.kubernetes.dispatch import Dispatcher
from tesk.backends.kubernetes.jobs import JobLauncher
from tesk.backends.kubernetes.output import PodLogOutput
from tesk.backends.kubernetes.reconciler import Reconciler
from tesk.config import CustomConfig
from tesk.store.base import TaskRecord, TaskStore
from tesk.tes.models import Executor, Task
from tesk.tes.progress import Progress
from tesk.tes.retries import RetryPolicy
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
        self._jobs: JobLauncher | None = None

    @property
    def kube(self) -> Kube:
        with self._kube_lock:
            if self._kube is None:
                self._kube = Kube(load_api_client(self._k8s.kubeconfig))
            return self._kube

    # -- API side -----------------------------------------------------------------------------

    @property
    def jobs(self) -> JobLauncher:
        kube = self.kube
        with self._kube_lock:
            if self._jobs is None:
                self._jobs = JobLauncher(kube, self._config)
            return self._jobs

    def submit(self, record: TaskRecord) -> None:
        if self._k8s.max_running_tasks is None:
            self.jobs.submit(record)
        elif self._reconciler is not None:
            # The serving process's own submit (tests, embedded use): dispatch now. API worker
            # processes have no cheaper way to reach it than the store, which it polls.
            self._reconciler.wake()

    def cancel(self, task_id: str, previous_state: State) -> None:
        record = self._store.get(task_id)
        attempt = record.attempt if record is not None else 1
        try:
            deleted = self.jobs.delete(task_id, attempt)
        except ApiException as exc:
            raise BackendError(f"the task's Job could not be deleted: {describe(exc)}") from None
        if not deleted:
            # No Job: nothing of the task exists (a Job created later by a racing submit is
            # deleted by the reconciler, which finds the task CANCELED).
            self._store.update(task_id, Progress(State.CANCELED), expected={State.CANCELING})

    def supported_backend_parameters(self) -> Sequence[str]:
        return parameters.SUPPORTED

    def check_backend_parameters(self, parameters_: Mapping[str, str]) -> None:
        parameters.parse(parameters_, self._k8s.executor.allowed_image_pull_secrets)

    def check_task(self, task: Task) -> None:
        admission.check_task(task)

    def executor_output(
        self,
        task_id: str,
        index: int,
        executor: Executor,
        stream: OutputStream,
        attempt: int = 1,
    ) -> ExecutorOutput | None:
        # The pod log carries stdout only (output.py): stderr is served from the kept tail.
        if stream != "stdout":
            return None
        return PodLogOutput(self.kube, self._k8s.namespace, task_id, index, attempt)

    # -- the serving process ------------------------------------------------------------------

    def _reconciler_for(self) -> Reconciler:
        if self._reconciler is None:
            dispatcher = None
            if self._k8s.max_running_tasks is not None:
                dispatcher = Dispatcher(
                    self._store,
                    self.jobs,
                    limit=self._k8s.max_running_tasks,
                    worker=f"kubernetes:{self._k8s.namespace}/{self._k8s.instance}",
                )
            self._reconciler = Reconciler(
                self.kube,
                self._k8s,
                self._store,
                self.jobs,
                dispatcher=dispatcher,
                retries=RetryPolicy(**self._config.retries.model_dump()),
            )
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
                self._jobs = None
