"""The engine's Runtime on Kubernetes: the task volume is a PVC, every stage and executor a pod.

It runs inside the taskmaster pod. Everything it creates is owned by the taskmaster Job, so a
deletion of the Job (cancel, TTL) removes it all; `cleanup` deletes the PVC as soon as the task
ends so storage is not held until the TTL.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tesk.backends.kubernetes import manifests, names
from tesk.backends.kubernetes.client import CALL_ERRORS, Kube, describe_error
from tesk.backends.kubernetes.manifests import JobRef
from tesk.backends.kubernetes.parameters import Placement
from tesk.backends.kubernetes.pods import PodRun, PodRunner, PodStartError
from tesk.backends.kubernetes.status import Phase
from tesk.backends.kubernetes.streams import new_marker, split_tails, split_usage
from tesk.config import KubernetesConfig
from tesk.engine.cancellation import Cancellation
from tesk.engine.runtime import CapacityLost, ExecutorResult, RuntimeFailure
from tesk.engine.stages import InputsStaged, OutputsStaged, StageError
from tesk.filer.stage import FORMAT, Direction, stage_result
from tesk.tes.models import Executor, Resources, Task, timestamp

logger = logging.getLogger(__name__)


class KubernetesRuntime:
    def __init__(
        self,
        kube: Kube,
        config: KubernetesConfig,
        job: JobRef,
        placement: Placement,
        *,
        file_roots: list[str],
        log_tail_bytes: int,
        log_format: str = "text",
        started_executors: int = 0,
    ) -> None:
        self._log_format = log_format
        # Executors an earlier taskmaster of this task may have started: adopted, never run again.
        self._started_executors = started_executors
        self._kube = kube
        self._config = config
        self._job = job
        self._placement = placement
        self._file_roots = file_roots
        self._tail = log_tail_bytes
        self._pods = PodRunner(kube, config.namespace, config.pending_timeout_s)
        self._volume: str | None = None
        self._task_id = ""

    def prepare(self, task: Task) -> None:
        self._task_id = task.id or ""
        claim = manifests.volume_claim(self._config, task, self._job)
        try:
            # None (already there): the claim of an earlier taskmaster of this task, taken over.
            self._kube.create("persistentvolumeclaims", self._config.namespace, claim)
        except CALL_ERRORS as exc:
            why = describe_error(exc)
            raise RuntimeFailure(f"the task volume could not be created: {why}") from None
        self._volume = claim["metadata"]["name"]

    def stage_inputs(self, task: Task, cancel: Cancellation) -> InputsStaged:
        if not task.inputs:
            return InputsStaged(input_types=())
        staged = self._run_filer(task, "inputs", cancel, executors_failed=False)
        if not isinstance(staged, InputsStaged):
            raise StageError("the input filer reported another stage")
        return staged

    def stage_outputs(
        self, task: Task, executors_failed: bool, cancel: Cancellation
    ) -> OutputsStaged:
        if not task.outputs:
            return OutputsStaged(outputs=())
        staged = self._run_filer(task, "outputs", cancel, executors_failed=executors_failed)
        if not isinstance(staged, OutputsStaged):
            raise StageError("the output filer reported another stage")
        return staged

    def _run_filer(
        self, task: Task, direction: Direction, cancel: Cancellation, *, executors_failed: bool
    ) -> InputsStaged | OutputsStaged:
        manifest = manifests.filer_pod(
            self._config,
            task,
            self._job,
            direction,
            self._placement,
            self._file_roots,
            executors_failed=executors_failed,
            log_format=self._log_format,
        )
        run = self._run_pod(manifest, manifests.FILER_CONTAINER, f"the {direction} filer", cancel)
        name = manifest["metadata"]["name"]
        log = self._read_log(name, manifests.FILER_CONTAINER)
        result = filer_result(log)
        if result is None:
            exit_code = run.outcome.exit_code
            raise StageError(
                f"the {direction} filer (pod {name}) ended with exit code {exit_code} and no "
                f"result; its last output: {_last_line(log)}"
            )
        return stage_result(result)

    def run_executor(
        self,
        task: Task,
        index: int,
        executor: Executor,
        resources: Resources | None,
        cancel: Cancellation,
    ) -> ExecutorResult:
        marker = new_marker(self._job.uid, index)
        manifest = manifests.executor_pod(
            self._config,
            task,
            self._job,
            index,
            executor,
            self._placement,
            tail_bytes=self._tail,
            marker=marker,
        )
        name = manifest["metadata"]["name"]
        if index < self._started_executors and not self._pods.exists(name):
            raise CapacityLost(
                f"executor {index}: its pod {name} is gone (evicted or deleted with the "
                "taskmaster that started it); the command is not run a second time"
            )
        started = timestamp()
        run = self._run_pod(manifest, manifests.EXECUTOR_CONTAINER, f"executor {index}", cancel)
        ended = timestamp()
        outcome = run.outcome
        log = self._read_log(name, manifests.EXECUTOR_CONTAINER)
        stdout, stderr = split_tails(log, marker, self._tail)
        return ExecutorResult(
            exit_code=outcome.exit_code if outcome.exit_code is not None else -1,
            stdout_tail=stdout,
            stderr_tail=stderr,
            start_time=outcome.started_at or started,
            end_time=outcome.finished_at or ended,
            reason=outcome.reason,
            timed_out=outcome.container_reason == "DeadlineExceeded",
            usage=split_usage(log, marker),
        )

    def _run_pod(
        self, manifest: dict[str, Any], container: str, what: str, cancel: Cancellation
    ) -> PodRun:
        try:
            # A cancel deletes the pod being followed; following it then ends at once.
            with cancel.on_cancel(self._pods.cancel):
                run = self._pods.run(manifest, container)
        except PodStartError as exc:
            raise RuntimeFailure(str(exc)) from None
        except CALL_ERRORS as exc:
            raise RuntimeFailure(f"following {what} failed: {describe_error(exc)}") from None
        outcome = run.outcome
        if outcome.phase is Phase.PREEMPTED:
            raise CapacityLost(f"{what}: {outcome.reason}")
        if outcome.phase is Phase.FAILED:
            raise RuntimeFailure(f"{what}: {outcome.reason}")
        return run

    def _read_log(self, pod: str, container: str) -> str:
        try:
            return self._pods.log(pod, container)
        except CALL_ERRORS as exc:
            logger.warning("reading the log of pod %s failed: %s", pod, describe_error(exc))
            return ""

    def _task_selector(self) -> str:
        components = f"{names.COMPONENT_EXECUTOR},{names.COMPONENT_FILER}"
        return (
            f"{names.LABEL_INSTANCE}={self._config.instance},{names.LABEL_TASK}={self._task_id},"
            f"{names.LABEL_COMPONENT} in ({components})"
        )

    def cleanup(self) -> None:
        if self._volume is None:
            return
        # PVC protection keeps a claim while any pod that names it exists, finished ones too:
        # the task's pods go first, so the claim (and its quota) is freed now, not at the TTL.
        self._pods.delete_all(self._task_selector())
        try:
            self._kube.delete("persistentvolumeclaims", self._config.namespace, self._volume)
        except CALL_ERRORS as exc:
            raise RuntimeFailure(
                f"the task volume {self._volume} could not be deleted: {describe_error(exc)}"
            ) from None
        self._volume = None


def filer_result(log: str) -> dict[str, Any] | None:
    """The result line `tesk filer` prints last (one JSON object), or None."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("format") == FORMAT:
            return document
    return None


def _last_line(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1][-500:] if lines else "(nothing)"
