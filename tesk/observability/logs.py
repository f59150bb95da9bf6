"""Log output: text or one JSON object per line, with secrets scrubbed either way.

FOCA's `log` section (Python's dictConfig, in tesk/config.yaml) decides where logs go; its
formatter is `TeskFormatter`, which writes the configured text format or, in JSON mode, one JSON
object per line. The mode starts from TESK_LOG_FORMAT (which `tesk serve` exports to its API
workers, so that even their first lines have the right shape) and is set by
`configure_logging` from `custom.logging.format`. Handlers with a formatter of their own (a
changed `log` section) are wrapped so that they scrub secrets and follow the mode too.

Structured fields passed with `extra=` (task_id, operation, status, ...) become keys of the
JSON object; text lines carry the same facts in their message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, cast

from tesk.observability.redact import redact

LogFormat = Literal["text", "json"]
ENV_LOG_FORMAT = "TESK_LOG_FORMAT"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def _initial_mode() -> LogFormat:
    value = os.environ.get(ENV_LOG_FORMAT, "").strip().lower()
    return cast(LogFormat, value) if value in ("text", "json") else "text"


_mode: LogFormat = _initial_mode()


def log_format() -> LogFormat:
    return _mode


class TeskFormatter(logging.Formatter):
    """The configured text format, or JSON in JSON mode; secrets scrubbed either way."""

    def format(self, record: logging.LogRecord) -> str:
        if _mode == "json":
            return json_line(record, self)
        return redact(super().format(record))


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's own formatter: its text with secrets scrubbed, or JSON in JSON mode."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if _mode == "json":
            return json_line(record, self.inner)
        return redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """Always JSON, whatever the mode (for handlers that must stay machine-readable)."""

    def format(self, record: logging.LogRecord) -> str:
        return json_line(record, self)


def json_line(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """One JSON object: time, level, logger, message, extra fields, exception.

    Values are scrubbed one by one before encoding, so the line always stays valid JSON.
    """
    document: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": redact(record.getMessage()),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            document[key] = _scrubbed(value)
    if record.exc_info:
        document["exception"] = redact(formatter.formatException(record.exc_info))
    elif record.exc_text:
        document["exception"] = redact(record.exc_text)
    if record.stack_info:
        document["stack"] = redact(formatter.formatStack(record.stack_info))
    return json.dumps(document, default=str, ensure_ascii=False)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def configure_logging(mode: LogFormat, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Set the log format of this process; make `handlers` (default: the root logger's) scrub
    secrets and follow it. Safe to call again: it never wraps a formatter twice."""
    global _mode
    _mode = mode
    for handler in list(logging.getLogger().handlers if handlers is None else handlers):
        current = handler.formatter
        if isinstance(current, TeskFormatter | RedactingFormatter | JsonFormatter):
            continue
        handler.setFormatter(RedactingFormatter(current))
