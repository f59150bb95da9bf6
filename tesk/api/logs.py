"""Controllers of the executors' output (a TESK extension, docs/api.md): one per operationId."""

from __future__ import annotations

from flask import Response, request

from tesk.api.context import service
from tesk.api.security import current_caller
from tesk.backends.base import OutputStream
from tesk.logs.outputs import OutputResponse


def GetExecutorStdout(id: str, index: str, follow: bool = False) -> Response:
    return _output(id, index, "stdout", follow)


def GetExecutorStderr(id: str, index: str, follow: bool = False) -> Response:
    return _output(id, index, "stderr", follow)


def _output(task_id: str, index: str, stream: OutputStream, follow: bool) -> Response:
    answer: OutputResponse = service().executor_output(
        task_id,
        index,
        stream,
        current_caller(),
        byte_range=request.headers.get("Range"),
        follow=follow,
    )
    # Bytes as the executor wrote them: no encoding, no buffering of the whole.
    response = Response(answer.body, status=answer.status, headers=answer.headers)
    response.direct_passthrough = True
    return response
