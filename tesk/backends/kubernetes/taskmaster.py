"""`tesk taskmaster`: THE task engine inside the taskmaster pod, with the Kubernetes runtime.

It reads the task ConfigMap mounted at --task-dir, runs the engine, reports every snapshot to the
task's status ConfigMap, and exits. SIGTERM (the Job is being deleted: the task was cancelled)
cancels the run; the pods it started are deleted with the Job.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tesk.backends.kubernetes import parameters, taskdoc
from tesk.backends.kubernetes.client import Kube, load_api_client
from tesk.backends.kubernetes.reporter import ConfigMapReporter
from tesk.backends.kubernetes.runtime import KubernetesRuntime
from tesk.taskmaster.engine import TaskEngine
from tesk.tes.states import State

logger = logging.getLogger(__name__)

EXIT_CODES = {State.COMPLETE: 0, State.EXECUTOR_ERROR: 0, State.CANCELED: 0}
"""The taskmaster's exit code: 0 when the task ran its course (even if a user command failed);
1 when TESK could not run it (SYSTEM_ERROR, PREEMPTED); 2 when it could not even start."""


def main(task_dir: Path) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        document = taskdoc.read(task_dir)
    except taskdoc.TaskDocumentError as exc:
        print(f"tesk taskmaster: {exc}", file=sys.stderr)
        return 2
    settings = document.settings
    config = settings.kubernetes
    task = document.task
    cancelled = threading.Event()

    def on_term(signum: int, _frame: FrameType | None) -> None:
        logger.info("task %s: signal %d, cancelling", task.id, signum)
        cancelled.set()

    signal.signal(signal.SIGTERM, on_term)
    kube = Kube(load_api_client())
    try:
        resources = task.resources
        placement = parameters.parse(
            resources.backend_parameters if resources else None,
            config.executor.allowed_image_pull_secrets,
        )
        runtime = KubernetesRuntime(
            kube,
            config,
            settings.job_ref,
            placement,
            file_roots=settings.file_roots,
            log_tail_bytes=settings.log_tail_bytes,
        )
        reporter = ConfigMapReporter(kube, config, task.id or "", settings.job_ref)
        engine = TaskEngine(
            task,
            runtime,
            reporter,
            cancelled,
            initial_log=settings.initial_log,
            first_seq=settings.first_seq,
        )
        state = engine.run()
    finally:
        kube.close()
    logger.info("task %s ended %s", task.id, state)
    return EXIT_CODES.get(state, 1)
