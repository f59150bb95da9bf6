"""`tesk taskmaster`: THE task engine inside the taskmaster pod, with the Kubernetes runtime.

It reads the task ConfigMap mounted at --task-dir, runs the engine, reports every snapshot to the
task's status ConfigMap, and exits.

SIGTERM ends the taskmaster at once and leaves every pod and the claim alone. Either its Job is
being deleted (a cancel, the TTL), and everything the Job owns goes with it; or its pod is being
disrupted (evicted, drained, preempted, its node lost), and the Job starts a new taskmaster (the
Job's podFailurePolicy ignores disruptions) that adopts the pods and claim already there and
goes on: a drain never loses healthy work.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from tesk.backends.kubernetes import manifests, names, parameters, snapshot, taskdoc
from tesk.backends.kubernetes.client import Kube, load_api_client
from tesk.backends.kubernetes.reporter import ConfigMapReporter
from tesk.backends.kubernetes.runtime import KubernetesRuntime
from tesk.taskmaster.engine import TaskEngine
from tesk.tes.states import State

logger = logging.getLogger(__name__)

EXIT_CODES = {State.COMPLETE: 0, State.EXECUTOR_ERROR: 0, State.CANCELED: 0}
EXIT_TERMINATED = 143  # as a process killed by SIGTERM
# The final report is the one nothing repairs: keep trying for about ten minutes (an API server
# upgrade, a long network partition) while the Job lives.
FINAL_REPORT_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, *([15.0] * 38))
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
    # Nothing inside cancels a taskmaster: a cancel deletes its Job, and the pods go with it.
    never_cancelled = threading.Event()

    def on_term(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "task %s: signal %d: stopping, leaving its pods and volume to the Job "
            "(deleted with it, or adopted by the taskmaster that replaces this one)",
            task.id,
            signum,
        )
        logging.shutdown()
        os._exit(EXIT_TERMINATED)

    signal.signal(signal.SIGTERM, on_term)
    first_seq = max(settings.first_seq, _reported_seq(Path(manifests.STATUS_DIR)) + 1)
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
            never_cancelled,
            initial_log=settings.initial_log,
            first_seq=first_seq,
            final_report_backoff_s=FINAL_REPORT_BACKOFF_S,
        )
        state = engine.run()
    finally:
        kube.close()
    logger.info("task %s ended %s", task.id, state)
    return EXIT_CODES.get(state, 1)


def _reported_seq(status_dir: Path) -> int:
    """The sequence number of the last snapshot an earlier taskmaster of this task wrote (0 if
    none): this one's reports must be newer, or the API would take them for stale ones."""
    try:
        text = (status_dir / names.PROGRESS_KEY).read_text()
    except OSError:
        return 0
    try:
        return snapshot.decode(text).seq or 0
    except snapshot.SnapshotError:
        logger.warning("the status ConfigMap holds no readable snapshot; starting afresh")
        return 0
