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
from pathlib import Path
from types import FrameType

from tesk.backends.kubernetes import manifests, names, snapshot, taskdoc
from tesk.backends.kubernetes.client import Kube, load_api_client
from tesk.backends.kubernetes.reporter import ConfigMapReporter
from tesk.backends.kubernetes.runtime import KubernetesRuntime
from tesk.engine.cancellation import Cancellation
from tesk.engine.engine import TaskEngine
from tesk.engine.usage import Prices
from tesk.observability.logs import configure_logging, log_format
from tesk.tes.progress import Progress
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
    configure_logging(log_format())
    try:
        document = taskdoc.read(task_dir)
    except taskdoc.TaskDocumentError as exc:
        print(f"tesk taskmaster: {exc}", file=sys.stderr)
        return 2
    settings = document.settings
    config = settings.kubernetes
    task = document.task
    # Nothing inside cancels a taskmaster: a cancel deletes its Job, and the pods go with it.
    never_cancelled = Cancellation()

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
    # A replacement of a disrupted taskmaster: its reports must be newer than the last one
    # written (or the API takes them for stale), and it must not start an executor again.
    reported = _reported(Path(manifests.STATUS_DIR))
    first_seq = max(settings.first_seq, (reported.seq or 0) + 1 if reported else 1)
    kube = Kube(load_api_client())
    try:
        runtime = KubernetesRuntime(
            kube,
            config,
            settings.job_ref,
            settings.placement,
            file_roots=settings.file_roots,
            log_tail_bytes=settings.log_tail_bytes,
            log_format=settings.log_format,
            started_executors=_started_executors(reported),
        )
        reporter = ConfigMapReporter(kube, config, task.id or "", settings.job_ref)
        engine = TaskEngine(
            task,
            runtime,
            reporter,
            never_cancelled,
            initial_log=settings.initial_log,
            first_seq=first_seq,
            attempt=settings.attempt,
            prices=Prices(**settings.prices.model_dump()),
            final_report_backoff_s=FINAL_REPORT_BACKOFF_S,
        )
        state = engine.run()
    finally:
        kube.close()
    logger.info("task %s ended %s", task.id, state)
    return EXIT_CODES.get(state, 1)


def _reported(status_dir: Path) -> Progress | None:
    """The last snapshot an earlier taskmaster of this task wrote, if this one replaces it."""
    try:
        text = (status_dir / names.PROGRESS_KEY).read_text()
    except OSError:
        return None
    try:
        return snapshot.decode(text)
    except snapshot.SnapshotError:
        logger.warning("the status ConfigMap holds no readable snapshot; starting afresh")
        return None


def _started_executors(reported: Progress | None) -> int:
    """How many executors an earlier taskmaster may have started: those it saw end, and, once it
    reported RUNNING, the next one."""
    if reported is None:
        return 0
    ended = len(reported.log.logs) if reported.log else 0
    return ended + 1 if reported.state == State.RUNNING else ended
