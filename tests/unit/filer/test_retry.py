"""Retrier: capped exponential backoff over transient failures only."""

from __future__ import annotations

import pytest

from tesk.config import RetryConfig
from tesk.engine.cancellation import Cancellation
from tesk.filer.base import TransferError, TransientTransferError
from tesk.filer.retry import Retrier


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def retrier(
    attempts: int = 5, initial: float = 1.0, cap: float = 4.0
) -> tuple[Retrier, list[float]]:
    waits: list[float] = []
    config = RetryConfig(attempts=attempts, initial_backoff_s=initial, max_backoff_s=cap)
    return Retrier(config, Cancellation(), sleep=waits.append), waits


def test_transient_failures_are_retried_until_success() -> None:
    run, waits = retrier()
    flaky = Flaky([TransientTransferError("x: 503"), TransientTransferError("x: 503")])
    assert run.run(flaky) == "done"
    assert flaky.calls == 3
    assert len(waits) == 2


def test_backoff_doubles_and_is_capped() -> None:
    run, waits = retrier(attempts=6, initial=1.0, cap=4.0)
    flaky = Flaky([TransientTransferError("t") for _ in range(5)])
    run.run(flaky)
    # jitter takes each wait down to half of its step at most; steps 1, 2, 4, 4, 4
    for wait, step in zip(waits, [1, 2, 4, 4, 4], strict=True):
        assert step / 2 <= wait <= step
    assert max(waits) <= 4.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    run, waits = retrier(initial=0.01, cap=3.0)
    run.run(Flaky([TransientTransferError("t", retry_after=2.0), TransientTransferError("t", 60)]))
    assert waits[0] == 2.0
    assert waits[1] == 3.0


def test_permanent_failures_are_not_retried() -> None:
    run, waits = retrier()
    flaky = Flaky([TransferError("x: not found")])
    with pytest.raises(TransferError, match="not found"):
        run.run(flaky)
    assert flaky.calls == 1
    assert waits == []


def test_giving_up_says_how_often_it_tried() -> None:
    run, _ = retrier(attempts=3)
    flaky = Flaky([TransientTransferError("http://h/x: HTTP 503") for _ in range(3)])
    with pytest.raises(TransferError, match=r"HTTP 503 \(tried 3 times\)") as caught:
        run.run(flaky)
    assert not isinstance(caught.value, TransientTransferError)
    assert flaky.calls == 3
