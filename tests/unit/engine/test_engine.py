"""The task engine, driven through a scripted runtime and a recording reporter."""

from __future__ import annotations

import threading

import pytest

from tesk.engine.cancellation import Cancellation
from tesk.engine.engine import TaskEngine
from tesk.engine.runtime import CapacityLost, Preempted
from tesk.engine.usage import ExecutorUsage, Prices
from tesk.tes.models import Executor, FileType, OutputFileLog, Resources, Task, TaskLog
from tesk.tes.progress import AttemptFailure, Cause, Progress
from tesk.tes.states import State
from tests.fakes.fake_runtime import BLOCK, FakeRuntime, Run, RuntimeFailure, StageError
from tests.fakes.recording_reporter import RecordingReporter


def make_task(*ignore_error: bool, count: int = 0) -> Task:
    flags = list(ignore_error) or [False] * max(count, 1)
    return Task(
        id="task-1",
        executors=[
            Executor(image="alpine", command=["step", str(i)], ignore_error=flag or None)
            for i, flag in enumerate(flags)
        ],
    )


def run(
    task: Task,
    runtime: FakeRuntime,
    reporter: RecordingReporter | None = None,
    cancelled: Cancellation | None = None,
    **kwargs: object,
) -> tuple[State, RecordingReporter]:
    reporter = reporter or RecordingReporter()
    engine = TaskEngine(
        task,
        runtime,
        reporter,
        cancelled or Cancellation(),
        sleep=lambda _s: None,
        **kwargs,  # type: ignore[arg-type]
    )
    return engine.run(), reporter


def system_logs(progress: Progress) -> list[str]:
    assert progress.log is not None
    return list(progress.log.system_logs or [])


def test_success_reports_every_step_with_increasing_seq() -> None:
    outputs = (OutputFileLog(url="file:///out/a", path="/data/a", size_bytes="3"),)
    runtime = FakeRuntime(
        executors=[Run(stdout="one\n"), Run(stderr="two\n")],
        input_types=(FileType.FILE,),
        outputs=outputs,
    )
    state, reporter = run(make_task(count=2), runtime)

    assert state == State.COMPLETE
    # Inputs staged, then per executor: named running as it starts, its log once it ended.
    assert reporter.states == [
        State.INITIALIZING,
        State.RUNNING,
        State.RUNNING,
        State.RUNNING,
        State.RUNNING,
        State.RUNNING,
        State.COMPLETE,
    ]
    assert [p.seq for p in reporter.reports] == [1, 2, 3, 4, 5, 6, 7]
    running = [(p.log.metadata or {}).get("running_executor") for p in reporter.reports if p.log]
    assert running == [None, None, "0", None, "1", None, None]
    assert runtime.calls == [
        "prepare",
        "stage_inputs",
        "run_executor:0",
        "run_executor:1",
        "stage_outputs:failed=False",
        "cleanup",
    ]
    final = reporter.last.log
    assert final is not None
    assert final.start_time
    assert final.end_time
    assert [(e.exit_code, e.stdout, e.stderr) for e in final.logs] == [
        (0, "one\n", ""),
        (0, "", "two\n"),
    ]
    assert all(e.start_time and e.end_time for e in final.logs)
    assert final.outputs == list(outputs)
    assert reporter.reports[0].input_types is None
    assert all(p.input_types == (FileType.FILE,) for p in reporter.reports[1:])
    # Every report was accepted by the reducer, in order.
    assert reporter.folded.state == State.COMPLETE
    assert reporter.folded.seq == 7


def test_snapshots_are_cumulative() -> None:
    runtime = FakeRuntime(executors=[Run(stdout="a"), Run(stdout="b")])
    _, reporter = run(make_task(count=2), runtime)
    counts = [len(p.log.logs) for p in reporter.reports if p.log is not None]
    assert counts == [0, 0, 0, 1, 1, 2, 2]


def test_first_seq_continues_after_stored_reports() -> None:
    _, reporter = run(make_task(), FakeRuntime(), first_seq=7)
    assert [p.seq for p in reporter.reports] == [7, 8, 9, 10, 11]


def test_initial_system_logs_are_kept_in_every_report() -> None:
    initial = TaskLog(system_logs=["backend parameter 'foo' ignored"])
    runtime = FakeRuntime(executors=[Run(exit_code=1)])
    _, reporter = run(make_task(), runtime, initial_log=initial)
    for progress in reporter.reports:
        assert system_logs(progress)[0] == "backend parameter 'foo' ignored"
    assert len(system_logs(reporter.last)) == 2


def test_executor_failure_stops_the_task_and_still_stages_outputs() -> None:
    runtime = FakeRuntime(executors=[Run(), Run(exit_code=2, stderr="boom"), Run()])
    state, reporter = run(make_task(count=3), runtime)

    assert state == State.EXECUTOR_ERROR
    assert "run_executor:2" not in runtime.calls
    assert "stage_outputs:failed=True" in runtime.calls
    assert runtime.calls[-1] == "cleanup"
    final = reporter.last.log
    assert final is not None
    assert [e.exit_code for e in final.logs] == [0, 2]
    assert final.logs[1].stderr == "boom"
    assert system_logs(reporter.last) == [
        "executor 1 exited with code 2; the executors after it were not run"
    ]


def test_failure_of_the_last_executor_says_nothing_was_skipped() -> None:
    state, reporter = run(make_task(count=1), FakeRuntime(executors=[Run(exit_code=5)]))
    assert state == State.EXECUTOR_ERROR
    assert system_logs(reporter.last) == ["executor 0 exited with code 5"]


def test_ignored_failures_are_recorded_and_the_task_completes() -> None:
    runtime = FakeRuntime(executors=[Run(exit_code=1), Run(exit_code=3), Run()])
    state, reporter = run(make_task(True, True, False), runtime)

    assert state == State.COMPLETE
    assert runtime.calls.count("stage_outputs:failed=False") == 1
    final = reporter.last.log
    assert final is not None
    assert [e.exit_code for e in final.logs] == [1, 3, 0]
    assert system_logs(reporter.last) == [
        "executor 0 exited with code 1; ignore_error is set, so the task goes on",
        "executor 1 exited with code 3; ignore_error is set, so the task goes on",
    ]


def test_an_ignored_failure_then_a_real_one_is_an_executor_error() -> None:
    runtime = FakeRuntime(executors=[Run(exit_code=1), Run(exit_code=4), Run()])
    state, reporter = run(make_task(True, False, False), runtime)
    assert state == State.EXECUTOR_ERROR
    assert "run_executor:2" not in runtime.calls
    assert len(system_logs(reporter.last)) == 2


def test_a_task_whose_last_executor_fails_ignored_completes() -> None:
    state, _ = run(make_task(False, True), FakeRuntime(executors=[Run(), Run(exit_code=9)]))
    assert state == State.COMPLETE


def test_input_stage_failure_is_a_system_error_with_the_reason() -> None:
    runtime = FakeRuntime(inputs=StageError("input s3://b/k: no such key"))
    state, reporter = run(make_task(), runtime)

    assert state == State.SYSTEM_ERROR
    assert runtime.calls == ["prepare", "stage_inputs", "cleanup"]
    assert reporter.states == [State.INITIALIZING, State.SYSTEM_ERROR]
    assert system_logs(reporter.last) == ["input staging failed: input s3://b/k: no such key"]
    assert reporter.last.log is not None
    assert reporter.last.log.end_time


def test_output_stage_failure_after_success_is_a_system_error() -> None:
    runtime = FakeRuntime(outputs_raise=StageError("bucket unreachable"))
    state, reporter = run(make_task(), runtime)
    assert state == State.SYSTEM_ERROR
    assert system_logs(reporter.last) == ["output staging failed: bucket unreachable"]


def test_outputs_not_uploaded_after_success_are_a_system_error_with_the_rest_kept() -> None:
    uploaded = (OutputFileLog(url="file:///o/a", path="/data/a", size_bytes="1"),)
    runtime = FakeRuntime(outputs=uploaded, output_errors=("/data/b: no such file",))
    state, reporter = run(make_task(), runtime)
    assert state == State.SYSTEM_ERROR
    assert reporter.last.log is not None
    assert reporter.last.log.outputs == list(uploaded)
    assert system_logs(reporter.last) == ["output not uploaded: /data/b: no such file"]


def test_output_failure_after_an_executor_failure_keeps_executor_error() -> None:
    runtime = FakeRuntime(executors=[Run(exit_code=1)], outputs_raise=StageError("gone"))
    state, reporter = run(make_task(), runtime)
    assert state == State.EXECUTOR_ERROR
    assert "output staging failed: gone" in system_logs(reporter.last)


def test_runtime_failure_is_a_system_error_and_stops_the_task() -> None:
    runtime = FakeRuntime(executors=[RuntimeFailure("image not found: nope:1"), Run()])
    state, reporter = run(make_task(count=2), runtime)
    assert state == State.SYSTEM_ERROR
    assert runtime.calls == ["prepare", "stage_inputs", "run_executor:0", "cleanup"]
    assert system_logs(reporter.last) == ["executor 0 could not be run: image not found: nope:1"]


def test_preemption_ends_the_task_preempted() -> None:
    runtime = FakeRuntime(executors=[Run(), Preempted("node lost"), Run()])
    state, reporter = run(make_task(count=3), runtime)
    assert state == State.PREEMPTED
    assert "run_executor:2" not in runtime.calls
    assert reporter.folded.state == State.PREEMPTED
    assert "node lost" in system_logs(reporter.last)[0]


def test_the_end_of_a_lost_attempt_says_why_for_the_retry_policy() -> None:
    runtime = FakeRuntime(executors=[CapacityLost("pod ex-0 was evicted: node pressure")])
    state, reporter = run(make_task(), runtime, attempt=2, first_seq=7)
    assert state == State.PREEMPTED
    assert {p.attempt for p in reporter.reports} == {2}
    assert reporter.reports[0].seq == 7
    assert reporter.last.failure == AttemptFailure(
        Cause.CAPACITY_LOST, "pod ex-0 was evicted: node pressure"
    )
    assert all(p.failure is None for p in reporter.reports[:-1])


def test_runtime_failures_say_so_and_other_endings_carry_no_failure() -> None:
    _, failed = run(make_task(), FakeRuntime(executors=[RuntimeFailure("no such image")]))
    assert failed.last.failure == AttemptFailure(Cause.SYSTEM_ERROR, "no such image")
    for runtime in (
        FakeRuntime(executors=[Run(exit_code=1)]),
        FakeRuntime(inputs=StageError("404")),
        FakeRuntime(),
    ):
        _, reporter = run(make_task(), runtime)
        assert reporter.last.failure is None, reporter.last.state


@pytest.mark.parametrize(
    ("script", "phase", "state", "cause"),
    [
        (
            {"inputs": CapacityLost("filer pod evicted")},
            "staging inputs",
            State.PREEMPTED,
            Cause.CAPACITY_LOST,
        ),
        (
            {"prepare_error": RuntimeFailure("no volume")},
            "preparing the task volume",
            State.SYSTEM_ERROR,
            Cause.SYSTEM_ERROR,
        ),
        (
            {"executors": [Run()], "outputs_raise": CapacityLost("node lost")},
            "staging outputs",
            State.PREEMPTED,
            Cause.CAPACITY_LOST,
        ),
    ],
)
def test_capacity_lost_or_a_runtime_failure_in_any_phase_ends_the_attempt(
    script: dict[str, object], phase: str, state: State, cause: Cause
) -> None:
    runtime = FakeRuntime(**script)  # type: ignore[arg-type]
    ended, reporter = run(make_task(), runtime)
    assert ended == state
    assert reporter.last.failure is not None
    assert reporter.last.failure.cause is cause
    assert any(phase in line for line in system_logs(reporter.last))
    assert runtime.calls[-1] == "cleanup"


def test_executor_reason_and_runtime_notes_go_to_system_logs() -> None:
    runtime = FakeRuntime(
        executors=[Run(exit_code=137, reason="OOM-killed", system_logs=("image ignored",))]
    )
    _, reporter = run(make_task(), runtime)
    assert system_logs(reporter.last)[:2] == ["image ignored", "executor 0: OOM-killed"]


@pytest.mark.parametrize(
    ("failing_call", "phase"),
    [
        ("prepare", "preparing the task volume"),
        ("stage_inputs", "staging inputs"),
        ("run_executor:0", "running executor 0"),
        ("stage_outputs:failed=False", "staging outputs"),
    ],
)
def test_unexpected_errors_end_in_system_error_with_the_reason(
    failing_call: str, phase: str
) -> None:
    def explode(call: str) -> None:
        if call == failing_call:
            raise KeyError("surprise")

    runtime = FakeRuntime(on_call=explode)
    state, reporter = run(make_task(), runtime)
    assert state == State.SYSTEM_ERROR
    assert runtime.calls[-1] == "cleanup"
    assert system_logs(reporter.last) == [f"internal error while {phase}: KeyError: 'surprise'"]


def test_cleanup_failure_is_noted_and_the_state_kept() -> None:
    runtime = FakeRuntime(cleanup_error=OSError("busy"))
    state, reporter = run(make_task(), runtime)
    assert state == State.COMPLETE
    assert "cleaning up the task's resources failed: OSError: busy" in system_logs(reporter.last)


def test_lost_intermediate_reports_are_made_good_by_the_next_one() -> None:
    reporter = RecordingReporter(fail=lambda p: p.seq in (1, 2))
    state, reporter = run(make_task(), FakeRuntime(), reporter)
    assert state == State.COMPLETE
    assert [p.seq for p in reporter.reports] == [3, 4, 5]
    assert reporter.folded.state == State.COMPLETE


def test_the_final_report_is_retried() -> None:
    failures = iter([True, True, False])

    def fail(progress: Progress) -> bool:
        return progress.state == State.COMPLETE and next(failures)

    state, reporter = run(make_task(), FakeRuntime(), RecordingReporter(fail=fail))
    assert state == State.COMPLETE
    finals = [p for p in reporter.attempts if p.state == State.COMPLETE]
    assert len(finals) == 3
    assert len({p.seq for p in finals}) == 1  # the same report, delivered again
    assert reporter.folded.state == State.COMPLETE


@pytest.mark.parametrize(
    "cancel_during",
    [
        "prepare",
        "stage_inputs",
        "run_executor:0",
        "run_executor:1",
        "stage_outputs:failed=False",
        "cleanup",
    ],
)
def test_cancel_at_each_phase_stops_and_reports_canceled(cancel_during: str) -> None:
    cancelled = Cancellation()
    reporter = RecordingReporter()

    def cancel_now(call: str) -> None:
        if call == cancel_during:
            reporter.store_state(State.CANCELING)
            cancelled.cancel()

    runtime = FakeRuntime(on_call=cancel_now)
    state, _ = run(make_task(count=3), runtime, reporter, cancelled)

    assert state == State.CANCELED
    assert reporter.states[-1] == State.CANCELED
    assert reporter.folded.state == State.CANCELED
    assert runtime.calls[-1] == "cleanup"
    # Nothing runs after the cancel request.
    after = runtime.calls[runtime.calls.index(cancel_during) + 1 :]
    assert not [c for c in after if c.startswith(("run_executor", "stage_"))]


def test_cancel_before_the_start_runs_nothing() -> None:
    cancelled = Cancellation()
    cancelled.cancel()
    reporter = RecordingReporter(start=State.CANCELING)
    runtime = FakeRuntime()
    state, _ = run(make_task(), runtime, reporter, cancelled)
    assert state == State.CANCELED
    assert runtime.calls == ["cleanup"]
    assert reporter.states == [State.CANCELED]


@pytest.mark.parametrize("blocking", ["inputs", "executor", "outputs"])
def test_cancel_interrupts_a_blocked_step(blocking: str) -> None:
    runtime = FakeRuntime(
        inputs=BLOCK if blocking == "inputs" else None,
        executors=[Run(), BLOCK if blocking == "executor" else Run()],
        outputs_raise=BLOCK if blocking == "outputs" else None,
    )
    cancelled = Cancellation()
    reporter = RecordingReporter()
    result: list[State] = []
    engine = TaskEngine(make_task(count=2), runtime, reporter, cancelled)
    thread = threading.Thread(target=lambda: result.append(engine.run()))
    thread.start()
    assert runtime.blocked.wait(10)
    reporter.store_state(State.CANCELING)
    cancelled.cancel()
    thread.join(10)

    assert result == [State.CANCELED]
    assert reporter.folded.state == State.CANCELED
    assert runtime.calls.count("cancel") == 1
    assert runtime.calls[-1] == "cleanup"
    assert runtime.calls.index("cancel") < runtime.calls.index("cleanup")
    final = reporter.last.log
    assert final is not None
    # A killed executor is not recorded as the task's failure.
    assert all(e.exit_code == 0 for e in final.logs)
    assert not [line for line in final.system_logs or [] if "exited" in line]


def test_every_executor_runs_at_most_once() -> None:
    runtime = FakeRuntime(executors=[Run(exit_code=1), Run(), Run(exit_code=2)])
    run(make_task(True, False, True), runtime)
    executed = [c for c in runtime.calls if c.startswith("run_executor")]
    assert executed == ["run_executor:0", "run_executor:1", "run_executor:2"]


def test_a_task_without_id_is_refused() -> None:
    with pytest.raises(ValueError, match="id"):
        TaskEngine(
            Task(executors=[Executor(image="a", command=["b"])]),
            FakeRuntime(),
            RecordingReporter(),
            Cancellation(),
        )


def test_the_attempts_usage_is_in_the_task_logs_metadata() -> None:
    runtime = FakeRuntime(
        executors=[
            Run(usage=ExecutorUsage(cpu_seconds=1.25, peak_memory_bytes=1000)),
            Run(usage=ExecutorUsage(cpu_seconds=0.5, peak_memory_bytes=3000)),
        ],
        inputs_counted=(3, 1200),
        outputs=(
            OutputFileLog(url="s3://b/o/1", path="/data/o/1", size_bytes="7"),
            OutputFileLog(url="s3://b/o/2", path="/data/o/2", size_bytes="8"),
        ),
    )
    task = make_task(count=2)
    task.creation_time = "2026-01-01T00:00:00Z"
    reporter = RecordingReporter()
    state, _ = run(task, runtime, reporter)
    assert state == State.COMPLETE
    final = reporter.last.log
    assert final is not None
    assert final.metadata is not None
    usage = {k: v for k, v in final.metadata.items() if k.startswith("usage.")}
    assert {k: usage[k] for k in usage if "seconds" not in k or "executor" in k} == {
        "usage.files_staged_in": "3",
        "usage.bytes_staged_in": "1200",
        "usage.files_staged_out": "2",
        "usage.bytes_staged_out": "15",
        "usage.peak_memory_bytes": "3000",
        "usage.executor.0.cpu_seconds": "1.250",
        "usage.executor.0.peak_memory_bytes": "1000",
        "usage.executor.1.cpu_seconds": "0.500",
        "usage.executor.1.peak_memory_bytes": "3000",
    }
    assert usage["usage.cpu_seconds"] == "1.750"
    assert float(usage["usage.wall_seconds"]) >= 0
    # Created long before this attempt started.
    assert float(usage["usage.queued_seconds"]) > 3600


def test_usage_a_runtime_did_not_measure_is_left_out_not_guessed() -> None:
    reporter = RecordingReporter()
    run(make_task(count=1), FakeRuntime(), reporter)
    final = reporter.last.log
    assert final is not None
    assert final.metadata is not None
    assert not [k for k in final.metadata if ".executor." in k or k == "usage.cpu_seconds"]
    assert "usage.wall_seconds" in final.metadata


def test_an_executor_stopped_by_the_run_time_limit_fails_the_task_despite_ignore_error() -> None:
    runtime = FakeRuntime(
        executors=[Run(exit_code=137, reason="ran longer than its limit of 5 s", timed_out=True)]
    )
    reporter = RecordingReporter()
    state, _ = run(make_task(True, False), runtime, reporter)
    assert state == State.EXECUTOR_ERROR
    assert [c for c in runtime.calls if c.startswith(("run_executor", "stage_outputs"))] == [
        "run_executor:0",
        "stage_outputs:failed=True",
    ]
    final = reporter.last.log
    assert final is not None
    assert "executor 0 ran longer than the task's run-time limit" in (final.system_logs or [])


def test_with_prices_the_attempt_reports_its_hourly_price_and_cost() -> None:
    task = make_task(count=1)
    task.resources = Resources(cpu_cores=4, ram_gb=16, disk_gb=100)
    reporter = RecordingReporter()
    prices = Prices(core_hour_usd=0.04, ram_gb_hour_usd=0.005, disk_gb_hour_usd=0.0001)
    TaskEngine(task, FakeRuntime(), reporter, Cancellation(), prices=prices).run()
    final = reporter.last.log
    assert final is not None
    assert final.metadata is not None
    # 4 x 0.04 + 16 x 0.005 + 100 x 0.0001
    assert final.metadata["vm_price_per_hour_usd"] == "0.250000"
    wall = float(final.metadata["usage.wall_seconds"])
    assert float(final.metadata["usage.cost_usd"]) == pytest.approx(0.25 * wall / 3600, abs=1e-6)


def test_without_prices_no_cost_is_reported() -> None:
    reporter = RecordingReporter()
    TaskEngine(make_task(count=1), FakeRuntime(), reporter, Cancellation()).run()
    final = reporter.last.log
    assert final is not None
    assert final.metadata is not None
    assert "usage.cost_usd" not in final.metadata
    assert "vm_price_per_hour_usd" not in final.metadata
