"""Errors of the TES domain; the API maps each class to one HTTP status."""


class TeskError(Exception):
    """Base of every error TESK reports to a client."""


class InvalidRequest(TeskError):
    """The request is malformed or breaks a TES rule (HTTP 400)."""


class Unauthorized(TeskError):
    """No valid credentials were given (HTTP 401)."""


class Forbidden(TeskError):
    """The caller may not do this (HTTP 403)."""


class TaskNotFound(TeskError):
    """No task with this id is visible to the caller (HTTP 404)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id


class ExecutorNotFound(TaskNotFound):
    """The task has no executor of that index (HTTP 404, as for an unknown task)."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(task_id)
        self.args = (message,)


class PayloadTooLarge(TeskError):
    """The request body is over the configured limit (HTTP 413)."""


class QuotaExceeded(TeskError):
    """The caller is over a quota; a retry after `retry_after_s` may succeed (HTTP 429)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(TeskError):
    """A dependency (the store, the cluster) cannot be reached right now (HTTP 503)."""


class RangeNotSatisfiable(TeskError):
    """A byte range lies outside what there is (HTTP 416); `size` is how many bytes there are."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size
