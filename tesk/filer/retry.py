"""Retries of transient transfer failures with capped exponential backoff."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from tesk.config import RetryConfig
from tesk.engine.cancellation import Cancellation, Cancelled
from tesk.filer.base import TransferError, TransientTransferError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Retrier:
    """Runs one transfer operation, retrying TransientTransferError as `config` allows.

    The wait doubles from `initial_backoff_s` up to `max_backoff_s`, with jitter so that many
    filers hitting one struggling server do not retry in lockstep; a server's Retry-After wins
    when it asks for longer (still capped). After the last attempt the failure becomes a
    permanent TransferError that says how often it was tried. A cancel ends the wait at once
    and stops any further attempt.
    """

    def __init__(
        self,
        config: RetryConfig,
        cancel: Cancellation,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.config = config
        self.cancel = cancel
        self._sleep = sleep

    def run(self, operation: Callable[[], T]) -> T:
        attempts = self.config.attempts
        backoff = self.config.initial_backoff_s
        for attempt in range(1, attempts + 1):
            self.cancel.check()
            try:
                return operation()
            except TransientTransferError as error:
                self.cancel.check()  # a cancel that broke the connection is no failure to retry
                if attempt == attempts:
                    times = "once" if attempts == 1 else f"{attempts} times"
                    raise TransferError(f"{error} (tried {times})") from error
                wait = backoff * random.uniform(0.5, 1.0)
                if error.retry_after is not None:
                    wait = max(wait, error.retry_after)
                wait = min(wait, self.config.max_backoff_s)
                log.warning(
                    "attempt %d/%d failed: %s; retrying in %.2fs", attempt, attempts, error, wait
                )
                if self._sleep is not None:
                    self._sleep(wait)
                elif self.cancel.wait(wait):
                    raise Cancelled("the task was cancelled") from error
                backoff = min(backoff * 2, self.config.max_backoff_s)
        raise AssertionError("unreachable")  # pragma: no cover
