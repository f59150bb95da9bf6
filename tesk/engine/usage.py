"""What one attempt of a task used, as measured, in the TaskLog's metadata.

TES leaves `TaskLog.metadata` to the service (a map of strings). TESK puts there what it measured
of the attempt; a figure it could not measure is left out, never estimated:

    usage.queued_seconds      from the task's creation to the start of this attempt
    usage.wall_seconds        from the start of this attempt to its end (so far, while it runs)
    usage.files_staged_in     regular files the inputs put into the task volume, and
    usage.bytes_staged_in       their sizes
    usage.files_staged_out    files uploaded as outputs, and
    usage.bytes_staged_out      their sizes
    usage.executor.<n>.cpu_seconds        CPU time (user + system) of executor n's processes
    usage.executor.<n>.peak_memory_bytes  the largest resident set of any of them (locally), or
                                          the container's memory high-water mark (Kubernetes)
    usage.cpu_seconds         the sum over the executors measured
    usage.peak_memory_bytes   the largest over the executors measured

With prices configured, also what the attempt cost, priced on the resources the task asked for
(cpu_cores: 1 when unset; ram_gb and disk_gb only when set):

    vm_price_per_hour_usd     what an hour of those resources costs (the key Cromwell reads)
    usage.cost_usd            that price times the attempt's wall time
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tesk.tes.models import OutputFileLog, Resources, epoch_seconds

PREFIX = "usage."


@dataclass(frozen=True)
class Prices:
    """USD per hour of one core, one GB of RAM, one GB of disk (None: not priced); the fields
    are named as in the configuration's `usage.prices`."""

    core_hour_usd: float | None = None
    ram_gb_hour_usd: float | None = None
    disk_gb_hour_usd: float | None = None

    def hourly(self, resources: Resources | None) -> float | None:
        """What an hour of `resources` costs; None if nothing is priced."""
        if (self.core_hour_usd, self.ram_gb_hour_usd, self.disk_gb_hour_usd) == (None, None, None):
            return None
        cores = (resources.cpu_cores if resources else None) or 1
        ram = (resources.ram_gb if resources else None) or 0.0
        disk = (resources.disk_gb if resources else None) or 0.0
        return (
            cores * (self.core_hour_usd or 0.0)
            + ram * (self.ram_gb_hour_usd or 0.0)
            + disk * (self.disk_gb_hour_usd or 0.0)
        )


@dataclass(frozen=True)
class ExecutorUsage:
    """What the runtime measured of one executor's processes (None: not measurable there)."""

    cpu_seconds: float
    peak_memory_bytes: int | None


@dataclass
class UsageMeter:
    """Collects the figures of one attempt as the engine goes through it."""

    queued_seconds: float | None = None
    hourly_price_usd: float | None = None
    files_in: int | None = None
    bytes_in: int | None = None
    files_out: int | None = None
    bytes_out: int | None = None
    executors: dict[int, ExecutorUsage] = field(default_factory=dict)
    _started: float = field(default_factory=time.monotonic)
    _ended: float | None = None

    @classmethod
    def starting_now(cls, creation_time: str | None, hourly_price_usd: float | None) -> UsageMeter:
        created = epoch_seconds(creation_time)
        queued = max(0.0, time.time() - created) if created is not None else None
        return cls(queued_seconds=queued, hourly_price_usd=hourly_price_usd)

    def staged_in(self, files: int, size: int) -> None:
        self.files_in, self.bytes_in = files, size

    def staged_out(self, outputs: tuple[OutputFileLog, ...]) -> None:
        self.files_out = len(outputs)
        self.bytes_out = sum(o.size() for o in outputs)

    def executor(self, index: int, usage: ExecutorUsage | None) -> None:
        if usage is not None:
            self.executors[index] = usage

    def end(self) -> None:
        self._ended = time.monotonic()

    def metadata(self) -> dict[str, str]:
        """The figures measured so far, as metadata entries."""
        wall = (self._ended if self._ended is not None else time.monotonic()) - self._started
        figures: dict[str, str] = {"wall_seconds": _decimal(wall)}
        if self.queued_seconds is not None:
            figures["queued_seconds"] = _decimal(self.queued_seconds)
        for name, value in (
            ("files_staged_in", self.files_in),
            ("bytes_staged_in", self.bytes_in),
            ("files_staged_out", self.files_out),
            ("bytes_staged_out", self.bytes_out),
        ):
            if value is not None:
                figures[name] = str(value)
        if self.executors:
            measured = self.executors.values()
            figures["cpu_seconds"] = _decimal(sum(u.cpu_seconds for u in measured))
            peaks = [u.peak_memory_bytes for u in measured if u.peak_memory_bytes is not None]
            if peaks:
                figures["peak_memory_bytes"] = str(max(peaks))
        for index, usage in sorted(self.executors.items()):
            figures[f"executor.{index}.cpu_seconds"] = _decimal(usage.cpu_seconds)
            if usage.peak_memory_bytes is not None:
                figures[f"executor.{index}.peak_memory_bytes"] = str(usage.peak_memory_bytes)
        metadata = {PREFIX + name: value for name, value in figures.items()}
        if self.hourly_price_usd is not None:
            metadata["vm_price_per_hour_usd"] = f"{self.hourly_price_usd:.6f}"
            metadata[PREFIX + "cost_usd"] = f"{self.hourly_price_usd * wall / 3600:.6f}"
        return metadata


def _decimal(seconds: float) -> str:
    return f"{seconds:.3f}"
