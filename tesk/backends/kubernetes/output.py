"""An executor's live stdout on Kubernetes: the log of its pod (pods/log), read by the API.

The executor's shell script (streams.py) copies the command's stdout to the container's stdout
as it is written, then prints a marker line and the stderr tail. So the pod log up to the marker
is the executor's stdout; stderr reaches no log while the executor runs (Kubernetes merges a
container's two streams into one log), and is served from the tail its ExecutorLog keeps.

pods/log has no offset: a read of bytes a..b reads the log from its start and skips a bytes. A
follower holds one `follow=true` log request, read by a thread of its own into a bounded buffer,
so that the API's follow loop never waits on the network. The log is the kubelet's: beyond its
rotation size (containerLogMaxSize, 10 MiB by default) older bytes are no longer served.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from tesk.backends.kubernetes import manifests, names
from tesk.backends.kubernetes.client import CALL_ERRORS, CALL_TIMEOUT_S, Kube, describe_error
from tesk.backends.kubernetes.streams import new_marker

logger = logging.getLogger(__name__)

BUFFER_BYTES = 1024 * 1024
"""Most bytes a follower's reader holds that the follow loop has not taken yet."""

_READ_BYTES = 64 * 1024
FOLLOW_READ_TIMEOUT_S = 3600
NOT_SCHEDULED = 204  # what pods/log answers for a pod that no node runs yet


class PodLogOutput:
    """ExecutorOutput of executor `index`'s stdout. `size()` reads the log once and keeps it
    for the `read`s of that request; without `size()` reads follow the log as it grows."""

    def __init__(
        self, kube: Kube, namespace: str, task_id: str, index: int, attempt: int = 1
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._task = names.TaskNames(task_id, attempt)
        self._pod = self._task.executor_pod(index)
        self._index = index
        self._separator: bytes | None = None
        self._started = False
        self._whole: bytes | None = None
        self._follower: _Follower | None = None

    def available(self) -> bool:
        if not self._started:
            self._started = self._log_readable()
        return self._started

    def size(self) -> int:
        if not self.available():
            return 0
        if self._whole is None:
            self._whole = self._read_whole()
        return len(self._whole)

    def read(self, offset: int, limit: int) -> bytes:
        if self._whole is not None:
            return self._whole[offset : offset + limit]
        if limit <= 0 or not self.available():
            return b""
        follower = self._follower
        if follower is None or follower.failed:
            if follower is not None:
                follower.stop()
            follower = _Follower(self._open_follow, self._marker(), skip=offset)
            self._follower = follower
            follower.start()
        return follower.take(offset, limit)

    def complete(self) -> bool:
        return self._follower is not None and self._follower.done

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    # -- the API server ----------------------------------------------------------------------

    def _log_readable(self) -> bool:
        """Whether the executor container has started (its log can be read)."""
        try:
            response = self._request(limit_bytes=1)
        except ApiException as exc:
            # 400: the container is still waiting to start; 404: no such pod (not yet, or gone).
            if exc.status not in (400, 404):
                logger.warning("reading the log of pod %s: %s", self._pod, describe_error(exc))
            return False
        except CALL_ERRORS as exc:
            logger.warning("reading the log of pod %s: %s", self._pod, describe_error(exc))
            return False
        # 204: the pod is not on a node yet (the API server has no kubelet to ask).
        return int(response.status) != NOT_SCHEDULED

    def _read_whole(self) -> bytes:
        try:
            data = self._log()
        except CALL_ERRORS as exc:
            logger.warning("reading the log of pod %s: %s", self._pod, describe_error(exc))
            return b""
        return _before(data, self._marker())

    def _log(self, **query: Any) -> bytes:
        data: bytes = self._request(**query).data
        return data

    def _request(self, **query: Any) -> Any:
        return self._kube.core.read_namespaced_pod_log(
            self._pod,
            self._namespace,
            container=manifests.EXECUTOR_CONTAINER,
            _preload_content=False,
            _request_timeout=CALL_TIMEOUT_S,
            **query,
        )

    def _open_follow(self) -> Any:
        return self._kube.core.read_namespaced_pod_log(
            self._pod,
            self._namespace,
            container=manifests.EXECUTOR_CONTAINER,
            follow=True,
            _preload_content=False,
            # A quiet executor sends nothing for as long as it likes: past this the follow
            # request ends and the next read opens another, skipping what was already served.
            _request_timeout=(CALL_TIMEOUT_S[0], FOLLOW_READ_TIMEOUT_S),
        )

    def _marker(self) -> bytes | None:
        """The line that ends stdout in the log (derived from the Job's uid, as the taskmaster
        derives it); None when the Job cannot be read."""
        if self._separator is None:
            try:
                found = self._kube.list(
                    "jobs", self._namespace, field_selector=f"metadata.name={self._task.job}"
                )
            except CALL_ERRORS as exc:
                logger.warning("reading Job %s: %s", self._task.job, describe_error(exc))
                return None
            items = found.get("items") or []
            uid = (items[0].get("metadata") or {}).get("uid") if items else None
            if not uid:
                return None
            self._separator = f"\n{new_marker(str(uid), self._index)}\n".encode()
        return self._separator


def _before(data: bytes, separator: bytes | None) -> bytes:
    if separator is None:
        return data
    head, _found, _tail = data.partition(separator)
    return head


class _Follower:
    """Reads one follow=true log request into a buffer, holding back what may be the start of
    the separator, and stops at the separator or the end of the log."""

    def __init__(self, open_log: Any, separator: bytes | None, *, skip: int) -> None:
        self._open = open_log
        self._separator = separator
        self._skip = skip
        self._base = skip  # offset of the first byte of _buffer
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._response: Any = None
        self._stopped = False
        self.done = False
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="tesk-pod-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def take(self, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes from `offset`; the bytes before `offset` are let go."""
        with self._cond:
            if offset > self._base:
                del self._buffer[: offset - self._base]
                self._base = offset
            self._cond.notify_all()
            return bytes(self._buffer[:limit])

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            response = self._response
        if response is not None:
            # Closing a connection being read may fail; it is let go anyway.
            with contextlib.suppress(Exception):
                response.close()

    def _run(self) -> None:
        pending = bytearray()  # read, not yet known to be stdout
        skip = self._skip  # bytes a follower before this one already gave
        try:
            response = self._open()
            with self._cond:
                self._response = response
                if self._stopped:
                    response.close()
                    return
            if int(response.status) == NOT_SCHEDULED:
                # Not on a node (again?): no log to follow yet; the next read asks again.
                with self._cond:
                    self.failed = True
                return
            # read1: whatever has arrived, at once (stream() would wait for _READ_BYTES).
            while chunk := response.read1(_READ_BYTES, decode_content=False):
                pending += chunk
                visible, ended = _split(pending, self._separator)
                given, skip = self._give(bytes(pending[:visible]), skip)
                if not given:
                    return
                del pending[:visible]
                if ended:
                    break
            else:
                # The log ended without the separator (the container was killed first): what
                # is left was printed, so it is shown.
                given, skip = self._give(bytes(pending), skip)
                if not given:
                    return
            with self._cond:
                self.done = True
                self._cond.notify_all()
        except Exception as exc:
            with self._cond:
                stopped = self._stopped
            if not stopped:
                logger.warning("following the log of an executor pod: %s", describe_error(exc))
                self.failed = True
        finally:
            response = self._response
            if response is not None:
                with contextlib.suppress(Exception):
                    response.release_conn()

    def _give(self, data: bytes, skip: int) -> tuple[bool, int]:
        """Append `data` but its first `skip` bytes once there is room: (False when the
        follower was stopped, how many bytes are still to skip)."""
        if skip:
            dropped = min(skip, len(data))
            data = data[dropped:]
            skip -= dropped
        with self._cond:
            while len(self._buffer) >= BUFFER_BYTES and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return False, skip
            self._buffer += data
            return True, skip


def _split(pending: bytearray, separator: bytes | None) -> tuple[int, bool]:
    """(how many bytes of `pending` are surely stdout, whether the separator came)."""
    if separator is None:
        return len(pending), False
    at = pending.find(separator)
    if at >= 0:
        return at, True
    # A tail of `pending` that starts the separator may be its beginning: wait for more.
    keep = 0
    for length in range(min(len(separator) - 1, len(pending)), 0, -1):
        if pending.endswith(separator[:length]):
            keep = length
            break
    return len(pending) - keep, False
