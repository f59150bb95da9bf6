"""The follow loop, end detection and tail fallback of ExecutorOutputs, with a fake source."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tesk.logs.ended import TaskSnapshots
from tesk.logs.outputs import ExecutorOutputs, OutputResponse
from tesk.logs.ranges import parse_range
from tesk.store.base import TaskDocuments, TaskRecord
from tesk.tes.errors import ExecutorNotFound, InvalidRequest
from tesk.tes.models import ExecutorLog, Task, TaskLog
from tesk.tes.progress import Progress
from tesk.tes.states import State
from tests.fakes.fake_backend import FakeBackend, FakeOutput
from tests.unit.api.support import FlakyStore

TASK = "t-1"


class World:
    """A store, a backend and a clock: each sleep of a follower runs the next scripted step."""

    def __init__(self, executors: int = 2) -> None:
        self.store = FlakyStore()
        self.backend = FakeBackend()
        self.steps: list[Callable[[], None]] = []
        self.sleeps = 0
        self.now = 0.0
        task = Task.model_validate(
            {"executors": [{"image": "alpine", "command": ["true"]}] * executors}
        )
        self.store.create(TaskRecord(id=TASK, state=State.RUNNING, created_us=1, task=task))
        self.snapshots = TaskSnapshots(self.store, 0.5, clock=lambda: self.now)
        self.outputs = ExecutorOutputs(
            self.backend, self.snapshots, poll_interval_s=0.5, sleep=self._sleep
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        assert self.steps, "the follower kept sleeping after the script ended"
        self.steps.pop(0)()

    def output(self, index: int = 0, stream: str = "stdout") -> FakeOutput:
        return self.backend.outputs.setdefault((TASK, index, stream), FakeOutput())

    def documents(self) -> TaskDocuments:
        found = self.store.read(TASK)
        assert found is not None
        return found

    def ended(self, *tails: str, state: State = State.RUNNING) -> None:
        logs = [ExecutorLog(exit_code=0, stdout=tail, stderr="") for tail in tails]
        self.store.update(TASK, Progress(state=state, log=TaskLog(logs=logs)))

    def respond(self, index: int = 0, follow: bool = True) -> OutputResponse:
        return self.outputs.respond(self.documents(), index, "stdout", wanted=None, follow=follow)


def test_a_follower_gets_each_write_then_ends_with_the_executor() -> None:
    world = World()
    out = world.output()
    out.write(b"one\n")
    received: list[bytes] = []
    world.steps = [
        lambda: out.write(b"two\n"),
        lambda: None,
        lambda: (out.write(b"three\n"), world.ended("three\n")),
    ]
    answer = world.respond()
    assert answer.headers["TESK-Log-Source"] == "live"
    for chunk in answer.body:
        received.append(chunk)
    answer.body.close()
    assert received == [b"one\n", b"two\n", b"three\n"]
    assert out.closed == 1


def test_a_follower_waits_for_an_executor_that_has_not_started() -> None:
    world = World()
    out = world.output(1)
    world.steps = [
        lambda: None,
        lambda: out.write(b"late\n"),
        lambda: world.ended("", "late\n", state=State.COMPLETE),
    ]
    answer = world.respond(1)
    assert b"".join(answer.body) == b"late\n"
    assert world.sleeps == 3


def test_a_later_executor_or_a_terminal_state_ends_a_follower() -> None:
    world = World()
    world.output().write(b"x")
    world.steps = [lambda: world.ended("x")]  # executor 0's log: it has ended
    assert b"".join(world.respond().body) == b"x"

    world = World()
    world.output().write(b"y")
    world.steps = [lambda: world.store.update(TASK, Progress(state=State.CANCELING))]
    world.steps.append(lambda: world.store.update(TASK, Progress(state=State.CANCELED)))
    assert b"".join(world.respond().body) == b"y"


def test_a_follower_that_never_saw_the_live_output_ends_with_the_kept_tail() -> None:
    world = World()
    world.steps = [lambda: world.ended("kept\n", state=State.COMPLETE)]
    assert b"".join(world.respond().body) == b"kept\n"


def test_the_store_going_away_does_not_end_a_follower() -> None:
    world = World()
    out = world.output()
    out.write(b"a")

    def store_down() -> None:
        world.store.down = True

    def store_back() -> None:
        world.store.down = False
        out.write(b"b")
        world.ended("ab")

    world.steps = [store_down, store_back]
    assert b"".join(world.respond().body) == b"ab"


def test_without_live_output_the_kept_tail_is_served() -> None:
    world = World()
    world.backend.live_outputs = False
    running = world.respond(follow=False)
    assert (running.headers["TESK-Log-Source"], b"".join(running.body)) == ("tail", b"")
    world.ended("the end\n")
    ended = world.respond(follow=False)
    assert (ended.status, b"".join(ended.body)) == (200, b"the end\n")
    assert ended.headers["Content-Length"] == "8"


def test_followers_of_one_task_share_one_store_read_per_interval() -> None:
    world = World()
    reads = 0
    read = world.store.read

    def counted(task_id: str, *, with_documents: bool = True) -> TaskDocuments | None:
        nonlocal reads
        reads += 1
        return read(task_id, with_documents=with_documents)

    world.store.read = counted  # type: ignore[method-assign]
    for _ in range(10):
        world.snapshots.watch(TASK)
    for _ in range(10):
        world.snapshots.current(TASK)
    assert reads == 1
    world.now += 0.5
    world.snapshots.current(TASK)
    assert reads == 2
    for _ in range(10):
        world.snapshots.unwatch(TASK)
    world.snapshots.current(TASK)
    world.snapshots.current(TASK)
    assert reads == 4  # nobody follows it: nothing is kept


def test_an_unknown_executor_and_follow_with_a_range_are_refused() -> None:
    world = World(executors=1)
    with pytest.raises(ExecutorNotFound, match="there is no executor 3"):
        world.respond(3)
    with pytest.raises(InvalidRequest, match="not served with follow=true"):
        world.outputs.respond(
            world.documents(), 0, "stdout", wanted=parse_range("bytes=0-1"), follow=True
        )
