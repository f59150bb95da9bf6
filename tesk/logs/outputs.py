"""The responses of GET /tasks/{id}/executors/{index}/stdout (and stderr), for every backend.

Where the bytes come from: the backend's live output while it has one (`TESK-Log-Source: live`),
else the tail the task's ExecutorLog kept (`TESK-Log-Source: tail`, at most
`limits.log_tail_bytes`): once the task ended and its files or pods are gone, or with a backend
that has no live output. An executor that has not started yet has written nothing so far.

A follower (`follow=true`) gets what there is, then what is written, until the executor has
ended (ended.py), and then the rest. It sleeps `streams.poll_interval_s` between two looks, and
each look costs a read of the source and, only when the source had nothing new, a shared read of
the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tesk.backends.base import ComputeBackend, ExecutorOutput, OutputStream
from tesk.logs.ended import TaskSnapshots, executor_ended, kept_tail
from tesk.logs.ranges import ByteRange, Span, resolve
from tesk.store.base import StoreUnavailable, TaskDocuments
from tesk.tes.errors import ExecutorNotFound, InvalidRequest
from tesk.tes.models import Executor

logger = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
"""Largest piece read from a source and sent at once."""

SOURCE_HEADER = "TESK-Log-Source"
LIVE = "live"
TAIL = "tail"

CONTENT_TYPE = "text/plain; charset=utf-8"


@dataclass
class OutputResponse:
    """An HTTP answer, independent of the web framework: iterate `body`, then `close()` it."""

    status: int
    headers: dict[str, str]
    body: Body


@dataclass
class Body:
    """The bytes of a response, with the source they come from released by `close()` (also when
    the client went away before the first byte)."""

    chunks: Iterator[bytes]
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
        while self.on_close:
            self.on_close.pop()()


class ExecutorOutputs:
    def __init__(
        self,
        backend: ComputeBackend,
        snapshots: TaskSnapshots,
        *,
        poll_interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._backend = backend
        self._snapshots = snapshots
        self._poll = poll_interval_s
        self._sleep = sleep

    def respond(
        self,
        documents: TaskDocuments,
        index: int,
        stream: OutputStream,
        *,
        wanted: ByteRange | None,
        follow: bool,
    ) -> OutputResponse:
        """The answer for a task the caller may see. Raises ExecutorNotFound (index),
        InvalidRequest (follow with a range) and RangeNotSatisfiable."""
        executor = _executor(documents, index)
        if follow and wanted is not None:
            raise InvalidRequest(
                "Range: not served with follow=true (a follower gets the whole output); ask "
                "without follow for a part of what is there so far"
            )
        attempt = len(documents.attempts or ()) + 1
        source = self._backend.executor_output(documents.id, index, executor, stream, attempt)
        try:
            live = source is not None and source.available()
            ended = executor_ended(documents, index)
            if not live and (ended or source is None):
                tail = kept_tail(documents, index, stream)
                if follow and not ended:
                    # No live output here (backend without one): wait for the kept tail.
                    return self._following(documents.id, index, stream, None, TAIL)
                return _whole_or_part(tail, wanted, TAIL)
            if follow:
                return self._following(documents.id, index, stream, source, LIVE)
            assert source is not None
            return _live_part(source, wanted)
        except BaseException:
            if source is not None:
                source.close()
            raise

    def _following(
        self,
        task_id: str,
        index: int,
        stream: OutputStream,
        source: ExecutorOutput | None,
        kind: str,
    ) -> OutputResponse:
        self._snapshots.watch(task_id)
        body = Body(self._follow(task_id, index, stream, source))
        body.on_close.append(lambda: self._snapshots.unwatch(task_id))
        if source is not None:
            body.on_close.append(source.close)
        headers = {
            **_headers(kind),
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
        return OutputResponse(200, headers, body)

    def _follow(
        self, task_id: str, index: int, stream: OutputStream, source: ExecutorOutput | None
    ) -> Iterator[bytes]:
        offset = 0
        seen_live = False
        while True:
            if source is not None:
                for chunk in _chunks(source, offset):
                    seen_live = True
                    offset += len(chunk)
                    yield chunk
                seen_live = seen_live or source.available()
            known, documents = self._current(task_id)
            finished = known and (documents is None or executor_ended(documents, index))
            if finished or (source is not None and source.complete()):
                if source is not None:
                    for chunk in _chunks(source, offset):
                        offset += len(chunk)
                        yield chunk
                if not seen_live and documents is not None and finished:
                    # It ended (and its live output went) before this follower saw any of it.
                    tail = kept_tail(documents, index, stream)
                    if tail:
                        yield tail
                return
            self._sleep(self._poll)

    def _current(self, task_id: str) -> tuple[bool, TaskDocuments | None]:
        """(whether the store could be read, the task's documents; None: the task is gone)."""
        try:
            return True, self._snapshots.current(task_id)
        except StoreUnavailable as exc:
            # Not the end of the executor: keep following, and look again next time.
            logger.warning("following task %s: the task store is unavailable: %s", task_id, exc)
            return False, None


def parse_executor_index(text: str) -> int:
    """The executor index of a request path. Raises InvalidRequest."""
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidRequest(
            f"index {text!r}: not an executor index (0 for the first executor, 1 for the second, "
            "...)"
        )
    return int(text)


def _executor(documents: TaskDocuments, index: int) -> Executor:
    executors = (documents.task or {}).get("executors") or []
    if index >= len(executors):
        count = len(executors)
        raise ExecutorNotFound(
            documents.id,
            f"task {documents.id!r} has {count} executor{'s' if count != 1 else ''} "
            f"(indexes 0 to {count - 1}); there is no executor {index}",
        )
    return Executor.model_validate(executors[index])


def _chunks(source: ExecutorOutput, offset: int) -> Iterator[bytes]:
    while True:
        chunk = source.read(offset, CHUNK_BYTES)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


def _headers(kind: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "Accept-Ranges": "bytes", SOURCE_HEADER: kind}


def _answer(span: Span, wanted: ByteRange | None, kind: str) -> tuple[int, dict[str, str]]:
    headers = {**_headers(kind), "Content-Length": str(span.length), "Cache-Control": "no-cache"}
    if wanted is None:
        return 200, headers
    headers["Content-Range"] = span.content_range()
    return 206, headers


def _whole_or_part(data: bytes, wanted: ByteRange | None, kind: str) -> OutputResponse:
    span = resolve(wanted, len(data))
    status, headers = _answer(span, wanted, kind)
    return OutputResponse(status, headers, Body(iter([data[span.start : span.end]])))


def _live_part(source: ExecutorOutput, wanted: ByteRange | None) -> OutputResponse:
    span = resolve(wanted, source.size())
    status, headers = _answer(span, wanted, LIVE)
    body = Body(_span(source, span))
    body.on_close.append(source.close)
    return OutputResponse(status, headers, body)


def _span(source: ExecutorOutput, span: Span) -> Iterator[bytes]:
    """Exactly `span.length` bytes: the length was announced (a file that shrank meanwhile, which
    a running executor may do to its own file, is padded by nothing: the response ends short)."""
    offset = span.start
    while offset < span.end:
        chunk = source.read(offset, min(CHUNK_BYTES, span.end - offset))
        if not chunk:
            return
        offset += len(chunk)
        yield chunk
