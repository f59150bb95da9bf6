"""How long from submitting a task to its first executor running, against a bare bwrap run.

    python -m benchmarks.local_start [--runs 30]

Each sample runs `date +%s%N` as the task's only executor; the time it prints is when the
executor really ran. The same command is run, interleaved with TESK's samples, by:
  - bare bwrap:      `bwrap --dev-bind / / date +%s%N` (the cheapest sandbox there is);
  - TESK's sandbox:  the exact bwrap command line TESK builds, run directly (the cost of the
                     isolation itself);
and through TESK's local backend (memory store, runner, engine, fake stager, bwrap runtime):
  - in-process:      submit() from the serving process (the runner is woken directly);
  - via socket:      submit() from another backend instance, as an API worker process does
                     (the runner is woken by a datagram).
The figure that matters is TESK minus bare bwrap, measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tesk.backends.local import LocalBackend, LocalRunner
from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.launcher import Bind, LaunchSpec
from tesk.config import CustomConfig, LocalConfig
from tesk.store.base import TaskRecord
from tesk.tes.models import Executor, Task, timestamp
from tesk.tes.states import TERMINAL, State
from tests.fakes.fake_stager import FakeStager
from tests.fakes.memory_store import MemoryStore

COMMAND = ["date", "+%s%N"]


def bare_bwrap() -> float:
    start = time.time_ns()
    out = subprocess.run(["bwrap", "--dev-bind", "/", "/", *COMMAND], capture_output=True)
    return (int(out.stdout) - start) / 1e6


def tesk_sandbox(data_root: Path) -> Callable[[], float]:
    launcher = BwrapLauncher(hidden=[data_root])
    launcher.check()
    scratch = data_root / "bench-sandbox"
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)

    def run() -> float:
        spec = LaunchSpec(
            name="tesk-bench-0",
            image="-",
            command=COMMAND,
            binds=[Bind(scratch / "tmp", "/tmp")],
            workdir="/",
            stdout=scratch / "out",
            stderr=scratch / "err",
        )
        start = time.time_ns()
        launcher.launch(spec).wait()
        return (int((scratch / "out").read_text()) - start) / 1e6

    return run


def through_tesk(store: MemoryStore, submitter: LocalBackend) -> float:
    task_id = f"bench-{uuid.uuid4().hex[:12]}"
    task = Task(
        id=task_id,
        creation_time=timestamp(),
        executors=[Executor(image="busybox", command=COMMAND)],
    )
    record = TaskRecord(task_id, State.QUEUED, time.time_ns() // 1000, task)
    start = time.time_ns()
    store.create(record)
    submitter.submit(record)
    while True:
        stored = store.get(task_id)
        if stored is not None and stored.state in TERMINAL:
            break
        time.sleep(0.001)
    if stored.state != State.COMPLETE or stored.log is None:
        raise RuntimeError(f"benchmark task ended {stored.state}: {stored.log}")
    return (int(stored.log.logs[0].stdout or "0") - start) / 1e6


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered):7.1f} ms   p90 {p90:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bwrap is not installed")

    data_root = Path(tempfile.mkdtemp(prefix="tesk-bench-", dir="/var/tmp"))
    store = MemoryStore()
    config = CustomConfig(data_dir=data_root, local=LocalConfig(runtime="bwrap"))
    backend = LocalBackend.serving(LocalRunner(config, store, stager=FakeStager()), store)
    api_worker = LocalBackend.for_api(config, store)
    backend.start()
    try:
        sandbox = tesk_sandbox(data_root)
        series: dict[str, tuple[Callable[[], float], list[float]]] = {
            "bare bwrap": (bare_bwrap, []),
            "TESK's sandbox, run directly": (sandbox, []),
            "TESK, submit in-process": (lambda: through_tesk(store, backend), []),
            "TESK, submit via socket": (lambda: through_tesk(store, api_worker), []),
        }
        for run, _ in series.values():  # warm-up: page cache, imports
            run()
        for _ in range(args.runs):
            for run, samples in series.values():
                samples.append(run())
    finally:
        backend.stop()
        shutil.rmtree(data_root, ignore_errors=True)

    baseline = statistics.median(series["bare bwrap"][1])
    print(f"submit -> first executor running, {args.runs} runs each (same machine, same run)")
    for name, (_, samples) in series.items():
        extra = statistics.median(samples) - baseline
        print(f"  {name:30s} {summary(samples)}   vs bare bwrap: {extra:+6.1f} ms")


if __name__ == "__main__":
    main()
