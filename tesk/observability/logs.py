"""Log output: text or one JSON object per line, with secrets scrubbed either way.

FOCA's `log` section (Python's dictConfig) decides where logs go and how text lines look;
`configure_logging` then makes every handler of the root logger scrub secrets
(tesk.observability.redact) and, with `custom.logging.format: json` or TESK_LOG_FORMAT=json,
write JSON. Structured fields passed with `extra=` (task_id, operation, status, ...) become
keys of the JSON object; text lines carry the same facts in their message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from tesk.observability.redact import redact

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then scrubs secrets from the whole line."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, extra fields, exception.

    Values are scrubbed one by one before encoding, so the line always stays valid JSON.
    `text` keeps the formatter it replaced, for a switch back to text.
    """

    def __init__(self, text: logging.Formatter | None = None) -> None:
        super().__init__()
        self.text = text

    def format(self, record: logging.LogRecord) -> str:
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
            document["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            document["exception"] = redact(record.exc_text)
        if record.stack_info:
            document["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(document, default=str, ensure_ascii=False)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def configure_logging(
    log_format: LogFormat, handlers: Iterable[logging.Handler] | None = None
) -> None:
    """Give `handlers` (default: the root logger's) a redacting text or JSON formatter.

    Safe to call again (e.g. once per app built in a process): it never wraps twice.
    """
    for handler in list(logging.getLogger().handlers if handlers is None else handlers):
        current = handler.formatter
        if isinstance(current, JsonFormatter):
            if log_format == "text":
                handler.setFormatter(RedactingFormatter(current.text))
        elif isinstance(current, RedactingFormatter):
            if log_format == "json":
                handler.setFormatter(JsonFormatter(current.inner))
        elif log_format == "json":
            handler.setFormatter(JsonFormatter(current))
        else:
            handler.setFormatter(RedactingFormatter(current))
