"""The task's Cancellation: what a cancel does to waiting and blocked steps."""

from __future__ import annotations

import threading

import pytest

from tesk.engine.cancellation import Cancellation, Cancelled


def test_a_cancel_runs_the_callbacks_of_blocked_steps_at_once_in_the_cancelling_thread() -> None:
    cancel = Cancellation()
    ran_in: list[str] = []
    with cancel.on_cancel(lambda: ran_in.append(threading.current_thread().name)):
        canceller = threading.Thread(target=cancel.cancel, name="canceller")
        canceller.start()
        canceller.join(10)
    assert ran_in == ["canceller"]
    assert cancel.requested
    with pytest.raises(Cancelled):
        cancel.check()


def test_a_step_that_blocks_after_the_cancel_is_stopped_when_it_registers() -> None:
    cancel = Cancellation()
    cancel.cancel()
    ran: list[int] = []
    with cancel.on_cancel(lambda: ran.append(1)):
        assert ran == [1]


def test_a_callback_is_forgotten_once_its_step_is_over_and_runs_once_only() -> None:
    cancel = Cancellation()
    ran: list[str] = []
    with cancel.on_cancel(lambda: ran.append("finished step")):
        pass
    with cancel.on_cancel(lambda: ran.append("running step")):
        cancel.cancel()
        cancel.cancel()
    assert ran == ["running step"]


def test_a_failing_callback_does_not_keep_the_others_from_running() -> None:
    cancel = Cancellation()
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("the process was gone already")

    with cancel.on_cancel(broken), cancel.on_cancel(lambda: ran.append("second")):
        cancel.cancel()
    assert ran == ["second"]


def test_a_wait_ends_when_the_task_is_cancelled_not_when_it_times_out() -> None:
    cancel = Cancellation()
    assert cancel.wait(0.01) is False
    threading.Timer(0.05, cancel.cancel).start()
    assert cancel.wait(30) is True
