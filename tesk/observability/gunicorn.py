"""gunicorn's own log lines (worker start/stop, access log) in TESK's format, scrubbed."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from tesk.observability.logs import TeskFormatter


class Logger(GunicornLogger):  # type: ignore[misc]
    def _set_handler(
        self, log: logging.Logger, output: Any, fmt: logging.Formatter, stream: Any = None
    ) -> None:
        # gunicorn's format string, but secrets scrubbed and JSON in JSON mode.
        super()._set_handler(log, output, TeskFormatter(fmt._fmt, fmt.datefmt), stream)
