"""The usage block of `tesk get`, from TaskLog metadata as the server reports it."""

from __future__ import annotations

from tesk.client.usage import size, usage_lines


def test_every_figure_of_every_attempt_is_shown_and_absent_ones_are_left_out() -> None:
    first = {
        "usage.queued_seconds": "0.155",
        "usage.wall_seconds": "1.812",
        "usage.cpu_seconds": "0.300",
        "usage.peak_memory_bytes": "68702208",
        "usage.files_staged_in": "1",
        "usage.bytes_staged_in": "52428800",
        "usage.files_staged_out": "2",
        "usage.bytes_staged_out": "82",
        "usage.executor.0.cpu_seconds": "0.100",
        "usage.executor.0.peak_memory_bytes": "1048576",
        "usage.executor.10.cpu_seconds": "0.200",
        "usage.executor.10.peak_memory_bytes": "68702208",
        "usage.cost_usd": "0.000021",
        "vm_price_per_hour_usd": "0.042000",
        "other": "ignored",
    }
    second = {"usage.wall_seconds": "0.500", "usage.queued_seconds": "9.000"}
    task = {"logs": [{"metadata": first}, {"metadata": second}, {"start_time": "x"}]}
    assert usage_lines(task) == [
        "usage, attempt 1 of 3:",
        "  wall         1.812 s",
        "  queued       0.155 s",
        "  cpu          0.300 s",
        "  peak memory  65.5 MiB (68702208 bytes)",
        "  staged in    1 file, 50.0 MiB (52428800 bytes)",
        "  staged out   2 files, 82 B",
        "  cost         0.000021 USD (0.042000 USD/h)",
        "  executor 0   cpu 0.100 s, peak memory 1.0 MiB (1048576 bytes)",
        "  executor 10  cpu 0.200 s, peak memory 65.5 MiB (68702208 bytes)",
        "usage, attempt 2 of 3:",
        "  wall    0.500 s",
        "  queued  9.000 s",
        "usage, attempt 3 of 3: none reported",
    ]


def test_a_task_without_logs_says_so() -> None:
    assert usage_lines({"id": "x", "state": "QUEUED"}) == [
        "usage: none reported yet (no attempt has started, or the view has no logs)"
    ]
    assert usage_lines({"logs": [{"metadata": {"usage.wall_seconds": "2.000"}}]}) == [
        "usage:",
        "  wall  2.000 s",
    ]


def test_sizes_keep_the_servers_figure() -> None:
    assert size("1023") == "1023 B"
    assert size("1536") == "1.5 KiB (1536 bytes)"
    assert size("not a number") == "not a number"
