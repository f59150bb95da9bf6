"""The taskmaster's ProgressReporter: each snapshot replaces the task's status ConfigMap.

The ConfigMap is owned by the taskmaster Job. The API's reconciler watches these ConfigMaps and
applies the snapshots to the store; nothing ever connects to the taskmaster.
"""

from __future__ import annotations

import logging

from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes import manifests, snapshot
from tesk.backends.kubernetes.client import (
    TRANSIENT_ERRORS,
    Kube,
    describe,
)
from tesk.backends.kubernetes.manifests import JobRef
from tesk.config import KubernetesConfig
from tesk.tes.progress import Progress
from tesk.tes.states import State

logger = logging.getLogger(__name__)


class ReportError(Exception):
    """A snapshot could not be written (the engine tries the final one again)."""


class ConfigMapReporter:
    def __init__(self, kube: Kube, config: KubernetesConfig, task_id: str, job: JobRef) -> None:
        self._kube = kube
        self._config = config
        self._task_id = task_id
        self._job = job
        self._created = False

    def report(self, progress: Progress) -> None:
        body = manifests.status_configmap(
            self._config, self._task_id, self._job, snapshot.encode(progress)
        )
        try:
            self._write(body)
        except TRANSIENT_ERRORS as exc:
            raise ReportError(f"status ConfigMap not written: {exc}") from None
        except ApiException as exc:
            if progress.state == State.CANCELED:
                # The Job is being deleted; its deletion, not this report, ends the task.
                logger.info("final CANCELED report not written: %s", describe(exc))
                return
            raise ReportError(f"status ConfigMap not written: {describe(exc)}") from None

    def _write(self, body: dict[str, object]) -> None:
        namespace = self._config.namespace
        if not self._created:
            created = self._kube.create("configmaps", namespace, body)
            self._created = True  # by this call, or already there (409)
            if created is not None:
                return
        self._kube.replace("configmaps", namespace, body)
