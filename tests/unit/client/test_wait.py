"""`tesk wait`: following tasks on a live API, the progress displays, and exit codes.

The waiter polls here (its event streams are tested in tests/integration/test_cli_fake_server.py)
and its sleep is replaced by a step that moves the tasks on, so every poll sees a known state:
nothing here depends on timing.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator

import pytest
from connexion import App

from tesk.client.display import LiveProgress, PlainProgress, progress_display
from tesk.client.http import TesClient
from tesk.client.waiting import (
    EXIT_CANCELED,
    EXIT_ERROR,
    EXIT_EXECUTOR_ERROR,
    EXIT_OK,
    EXIT_PREEMPTED,
    EXIT_SYSTEM_ERROR,
    EXIT_TIMEOUT,
    MAX_FAILED_POLLS,
    Waiter,
    Watched,
    exit_code,
    failure_reason,
)
from tesk.tes.states import State
from tests.unit.api.support import new_app
from tests.unit.client.support import LiveApi, closed_port_url, live_api

PollingWaiter = functools.partial(Waiter, use_events=False)

TWO_EXECUTORS = {
    "name": "two",
    "executors": [
        {"image": "alpine", "command": ["true"]},
        {"image": "alpine", "command": ["false"]},
    ],
}


@pytest.fixture(scope="module")
def app() -> App:
    return new_app()


@pytest.fixture
def live(app: App) -> Iterator[LiveApi]:
    with live_api(app) as served:
        yield served


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Steps:
    """A clock and a sleep: each sleep advances the clock and performs the next action."""

    def __init__(self, *actions: Callable[[], None]) -> None:
        self.now = 0.0
        self.pending = list(actions)
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept.append(seconds)
        if self.pending:
            self.pending.pop(0)()


def steps(*actions: Callable[[], None]) -> Callable[[float], None]:
    return Steps(*actions).sleep


def test_plain_progress_follows_state_and_executors(live: LiveApi) -> None:
    client = TesClient(live.url)
    task_id = client.create_task(TWO_EXECUTORS)
    out = io.StringIO()
    waiter = PollingWaiter(
        client,
        [task_id],
        interval_s=0.01,
        sleep=steps(
            lambda: live.set_state(task_id, State.INITIALIZING),
            lambda: live.set_state(task_id, State.RUNNING),
            lambda: live.set_state(task_id, State.RUNNING, exit_codes=(0,)),
            lambda: None,  # nothing new: no line
            lambda: live.set_state(
                task_id,
                State.EXECUTOR_ERROR,
                exit_codes=(0, 1),
                system_logs=("executor 1 exited with code 1",),
            ),
        ),
    )
    assert waiter.run(PlainProgress(out)) == EXIT_EXECUTOR_ERROR
    assert out.getvalue().splitlines() == [
        f"{task_id} QUEUED (executors done: 0/2)",
        f"{task_id} INITIALIZING (executors done: 0/2)",
        f"{task_id} RUNNING (executors done: 0/2)",
        f"{task_id} RUNNING (executors done: 1/2)",
        f"{task_id} EXECUTOR_ERROR (executors done: 2/2): executor 1 exited with code 1",
    ]


def test_several_tasks_and_a_timeout(live: LiveApi) -> None:
    client = TesClient(live.url)
    done = client.create_task(TWO_EXECUTORS)
    stuck = client.create_task(TWO_EXECUTORS)
    time = Steps(lambda: live.set_state(done, State.COMPLETE, exit_codes=(0, 0)))
    out = io.StringIO()
    waiter = PollingWaiter(
        client,
        [done, stuck, done],  # a repeated id is waited for once
        interval_s=1,
        timeout_s=2.5,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert waiter.run(PlainProgress(out)) == EXIT_TIMEOUT
    assert time.slept == [1, 1, 0.5]
    lines = out.getvalue().splitlines()
    assert f"{done} COMPLETE (executors done: 2/2)" in lines
    assert lines[-1] == f"{stuck} QUEUED: timed out"
    assert [task.task_id for task in waiter.tasks] == [done, stuck]


def test_an_unknown_task_is_an_error_at_once(live: LiveApi) -> None:
    client = TesClient(live.url)
    waiter = PollingWaiter(client, ["nope"], sleep=steps())
    out = io.StringIO()
    assert waiter.run(PlainProgress(out)) == EXIT_ERROR
    assert out.getvalue() == "nope ERROR: 404 Not Found: task 'nope' not found\n"


def test_an_unreachable_server_is_tried_a_few_times() -> None:
    client = TesClient(closed_port_url(), retries=0)
    sleeps: list[float] = []
    waiter = PollingWaiter(client, ["t1"], interval_s=0.5, sleep=sleeps.append)
    out = io.StringIO()
    assert waiter.run(PlainProgress(out)) == EXIT_ERROR
    assert len(sleeps) == MAX_FAILED_POLLS - 1
    assert out.getvalue().startswith("t1 ERROR: cannot reach http://127.0.0.1:")


def test_live_progress_on_a_terminal(live: LiveApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    client = TesClient(live.url)
    task_id = client.create_task({**TWO_EXECUTORS, "name": "[bold]x[/bold]"})
    tty = Tty()
    display = progress_display(tty)
    assert isinstance(display, LiveProgress)
    waiter = PollingWaiter(
        client,
        [task_id],
        interval_s=0.01,
        sleep=steps(
            lambda: live.set_state(task_id, State.RUNNING, exit_codes=(0,)),
            lambda: live.set_state(
                task_id, State.SYSTEM_ERROR, exit_codes=(0,), system_logs=("disk full",)
            ),
        ),
    )
    assert waiter.run(display) == EXIT_SYSTEM_ERROR
    screen = tty.getvalue()
    assert "\x1b[" in screen  # rich drew it, with colours and cursor moves
    for shown in ("TASK", "EXECUTORS", task_id, "[bold]x[/bold]", "SYSTEM_ERROR", "disk full"):
        assert shown in screen
    assert "1/2" in screen


def test_plain_progress_when_not_a_terminal() -> None:
    assert isinstance(progress_display(io.StringIO()), PlainProgress)


@pytest.mark.parametrize(
    ("states", "timed_out", "expected"),
    [
        (["COMPLETE"], False, EXIT_OK),
        (["COMPLETE", "COMPLETE"], False, EXIT_OK),
        (["EXECUTOR_ERROR"], False, EXIT_EXECUTOR_ERROR),
        (["SYSTEM_ERROR"], False, EXIT_SYSTEM_ERROR),
        (["CANCELED"], False, EXIT_CANCELED),
        (["PREEMPTED"], False, EXIT_PREEMPTED),
        (["RUNNING"], True, EXIT_TIMEOUT),
        (["COMPLETE", "RUNNING"], True, EXIT_TIMEOUT),
        (["CANCELED", "RUNNING"], True, EXIT_CANCELED),
        (["CANCELED", "PREEMPTED"], False, EXIT_PREEMPTED),
        (["PREEMPTED", "EXECUTOR_ERROR"], False, EXIT_EXECUTOR_ERROR),
        (["EXECUTOR_ERROR", "SYSTEM_ERROR"], False, EXIT_SYSTEM_ERROR),
        (["SYSTEM_ERROR", None], False, EXIT_ERROR),
    ],
)
def test_exit_code_precedence(states: list[str | None], timed_out: bool, expected: int) -> None:
    tasks = []
    for index, state in enumerate(states):
        task = Watched(f"t{index}", state=state)
        if state is None:
            task.error = "404 Not Found"
        tasks.append(task)
    assert exit_code(tasks, timed_out) == expected


def test_failure_reason_prefers_system_logs_then_exit_codes() -> None:
    with_lines = {"logs": [{"system_logs": ["a", "disk\n full"], "logs": []}]}
    with_codes = {"logs": [{"logs": [{"exit_code": 0}, {"exit_code": 137}]}]}
    assert failure_reason(with_lines) == "disk full"
    assert failure_reason(with_codes) == "executor 1 exited with code 137"
    assert failure_reason({}) is None
    assert failure_reason({"logs": ["junk"]}) is None


def test_an_interrupt_leaves_the_terminal_as_it_was(live: LiveApi) -> None:
    client = TesClient(live.url)
    task_id = client.create_task(TWO_EXECUTORS)
    tty = Tty()

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    waiter = PollingWaiter(client, [task_id], sleep=interrupt)
    with pytest.raises(KeyboardInterrupt):
        waiter.run(LiveProgress(tty))
    screen = tty.getvalue()
    assert screen.index("\x1b[?25l") < screen.rindex("\x1b[?25h")  # cursor hidden, then shown
