"""Submit-to-executor latency and a burst of tasks on the real test cluster, against bare Jobs.

    python -m benchmarks.k8s_latency [--runs 15] [--burst 50] [--executors 1]

Needs the test cluster (`make k8s-up`). In a namespace of its own (Pod Security `restricted`):

- latency: `--runs` tasks one at a time, each `cat /proc/uptime` (then `echo` for any further
  executor), from TesService.create to the first executor's container running, interleaved with
  the same command as a bare Job (batch/v1, restartPolicy Never, busybox:1.36, restricted
  securityContext) from its create to its container running. "Running" is read two ways: when
  this process's pod watch first sees the container running (or already ended), and the time the
  command printed (the container reads this machine's boot-time clock). Where TESK's time goes is
  read from the same watch: the taskmaster pod seen, its container started, the executor pod
  created and scheduled.
- burst: `--burst` tasks submitted at once, until all are terminal in the store, then as many
  bare Jobs created at once, until all have completed.
- the TESK image's start: a pod of the TESK image timing `import` of the taskmaster's modules.

Every figure is compared with the bare Jobs of the same run: ratio and difference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from benchmarks.k8s_calls import (
    HARNESS_AGENT,
    Obj,
    benchmark_namespace,
    machine_load,
    require_complete,
    running_tesk,
    wait_terminal,
)
from tesk.backends.kubernetes.client import load_api_client, new_watch
from tesk.tes.states import State
from tests.k8s.backend_env import Deployment, task
from tests.k8s.realcluster import EXECUTOR_IMAGE, TESK_IMAGE, TestCluster

COMMAND = ["cat", "/proc/uptime"]  # the time since boot (10 ms steps): the host's clock


def restricted_pod_security() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container() -> Obj:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def bare_job(name: str, image: str = EXECUTOR_IMAGE, command: list[str] | None = None) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "bare"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "bare"}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": restricted_pod_security(),
                    "containers": [
                        {
                            "name": "main",
                            "image": image,
                            "command": command or COMMAND,
                            "securityContext": restricted_container(),
                        }
                    ],
                },
            },
        },
    }


def tesk_task(executors: int) -> Obj:
    return task(COMMAND, *[["echo", f"step {i}"] for i in range(1, executors)])


# -- watching the namespace ---------------------------------------------------------------------


@dataclass
class PodSeen:
    """When (time.monotonic of this process) the watch first saw each step of one pod."""

    added: float | None = None
    scheduled: float | None = None
    started: float | None = None  # its (first) container running, or already ended
    ended: float | None = None
    unschedulable: bool = False  # waited for room on the node (Insufficient cpu, ...)
    job: str | None = None  # the Job owning it, if any


def _container_started(pod: Obj) -> tuple[bool, bool]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return False, False
    state = statuses[0].get("state") or {}
    ended = state.get("terminated") is not None
    return ended or state.get("running") is not None, ended


class Watcher:
    """Follows every pod and Job of the namespace (one watch each), recording when things happen."""

    def __init__(self, view: TestCluster) -> None:
        self.api: Any = load_api_client(Path(view.kubeconfig_path))
        self.api.user_agent = HARNESS_AGENT
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.namespace = view.namespace
        self.pods: dict[str, PodSeen] = {}
        self.jobs_done: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._follow, args=(self.core.list_namespaced_pod, self._pod)),
            threading.Thread(target=self._follow, args=(self.batch.list_namespaced_job, self._job)),
        ]
        for thread in self.threads:
            thread.daemon = True
            thread.start()

    def _follow(self, lister: Callable[..., Any], handle: Callable[[Obj, float], None]) -> None:
        version = ""
        while not self.stopping.is_set():
            try:
                stream = new_watch()
                for event in stream.stream(
                    lister, self.namespace, resource_version=version, timeout_seconds=60
                ):
                    now = time.monotonic()
                    obj = self.api.sanitize_for_serialization(event["object"])
                    version = obj["metadata"].get("resourceVersion") or version
                    handle(obj, now)
                    if self.stopping.is_set():
                        return
            except ApiException as exc:
                if exc.status == 410:
                    version = ""
                else:
                    time.sleep(0.5)
            except Exception:  # a broken stream is followed again
                time.sleep(0.5)

    def _pod(self, pod: Obj, now: float) -> None:
        meta = pod["metadata"]
        with self.lock:
            seen = self.pods.setdefault(meta["name"], PodSeen())
            if seen.added is None:
                seen.added = now
                seen.job = (meta.get("labels") or {}).get("job-name")
            conditions = (pod.get("status") or {}).get("conditions") or []
            for condition in conditions:
                if condition.get("type") == "PodScheduled":
                    if condition.get("status") == "True" and seen.scheduled is None:
                        seen.scheduled = now
                    message = str(condition.get("message") or "")
                    if condition.get("reason") == "Unschedulable" and "Insufficient" in message:
                        seen.unschedulable = True
            started, ended = _container_started(pod)
            if started and seen.started is None:
                seen.started = now
            if ended and seen.ended is None:
                seen.ended = now

    def _job(self, job: Obj, now: float) -> None:
        conditions = (job.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions):
            with self.lock:
                self.jobs_done.setdefault(job["metadata"]["name"], now)

    def pod(self, name: str) -> PodSeen:
        with self.lock:
            return self.pods.get(name, PodSeen())

    def pod_of_job(self, job: str) -> tuple[str, PodSeen]:
        with self.lock:
            for name, seen in self.pods.items():
                if seen.job == job:
                    return name, seen
        return "", PodSeen()

    def wait(self, ready: Callable[[], bool], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > end:
                raise TimeoutError(f"not true within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopping.set()
        self.api.close()


def since(start: float, at: float | None) -> float:
    return float("nan") if at is None else at - start


# -- samples ------------------------------------------------------------------------------------


@dataclass
class TeskSample:
    ran: float  # create -> the command's own clock
    seen: float  # create -> the watch saw the executor's container running
    done: float  # create -> COMPLETE in the store
    steps: dict[str, float] = field(default_factory=dict)


@dataclass
class BareSample:
    ran: float
    seen: float
    done: float  # create -> the watch saw the Job Complete


def tesk_sample(env: Deployment, watcher: Watcher, executors: int) -> TeskSample:
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    start = time.monotonic()
    task_id = env.submit(tesk_task(executors))
    created = time.monotonic()
    states = wait_terminal(env, [task_id], timeout=600)
    done = time.monotonic() - start
    require_complete(env, [task_id], states)
    record = env.service.get(task_id, "FULL")
    printed = float(record["logs"][0]["logs"][0]["stdout"].split()[0])
    job = f"tesk-{task_id}"
    executor = watcher.pod(f"{job}-ex-0")
    _, taskmaster = watcher.pod_of_job(job)
    steps = {
        "TesService.create returned": created - start,
        "taskmaster pod seen": since(start, taskmaster.added),
        "taskmaster pod scheduled": since(start, taskmaster.scheduled),
        "taskmaster container running": since(start, taskmaster.started),
        "executor pod created (seen)": since(start, executor.added),
        "executor pod scheduled": since(start, executor.scheduled),
        "executor container running (seen)": since(start, executor.started),
        "executor container ended (seen)": since(start, executor.ended),
        "task COMPLETE in the store": done,
    }
    return TeskSample(printed - boot, since(start, executor.started), done, steps)


def bare_sample(view: TestCluster, watcher: Watcher, name: str) -> BareSample:
    boot = time.clock_gettime(time.CLOCK_BOOTTIME)
    start = time.monotonic()
    view.apply(bare_job(name))
    watcher.wait(lambda: name in watcher.jobs_done, timeout=300)
    pod, seen = watcher.pod_of_job(name)
    printed = float(view.logs(pod).split()[0])
    return BareSample(printed - boot, since(start, seen.started), watcher.jobs_done[name] - start)


def delete_bare_jobs(view: TestCluster) -> None:
    for job in view.objects("jobs", labelSelector="app=bare"):
        view.delete("jobs", job["metadata"]["name"], propagationPolicy="Background")


def image_start(view: TestCluster, watcher: Watcher, runs: int) -> list[tuple[float, float]]:
    """Per run: container start -> `import` of the taskmaster done, and `tesk --help` done (s)."""
    script = (
        "read t0 _ </proc/uptime; python -c 'import tesk.backends.kubernetes.taskmaster'; "
        "read t1 _ </proc/uptime; tesk --help >/dev/null; read t2 _ </proc/uptime; "
        "echo $t0 $t1 $t2"
    )
    found = []
    for index in range(runs):
        name = f"image-{index}"
        view.apply(bare_job(name, TESK_IMAGE, ["sh", "-c", script]))
        watcher.wait(lambda name=name: name in watcher.jobs_done, timeout=300)  # type: ignore[misc]
        pod, _ = watcher.pod_of_job(name)
        t0, t1, t2 = (float(v) for v in view.logs(pod).split()[:3])
        found.append((t1 - t0, t2 - t1))
    return found


# -- the burst ----------------------------------------------------------------------------------


@dataclass
class Burst:
    wall: float
    submit: float  # creating them all
    complete: int
    states: dict[str, int]
    first_running: list[float]  # per task/Job: start -> its (first) executor seen running
    unschedulable: int  # pods that waited for the scheduler (no room on the node)


def tesk_burst(env: Deployment, watcher: Watcher, count: int, executors: int) -> Burst:
    start = time.monotonic()
    ids = [env.submit(tesk_task(executors)) for _ in range(count)]
    submitted = time.monotonic() - start
    states = wait_terminal(env, ids, timeout=1800)
    wall = time.monotonic() - start
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state.value] = counts.get(state.value, 0) + 1
    running = [since(start, watcher.pod(f"tesk-{i}-ex-0").started) for i in ids]
    with watcher.lock:
        waited = sum(
            1
            for name, seen in watcher.pods.items()
            if seen.unschedulable and name.startswith("tesk-")
        )
    complete = sum(1 for s in states.values() if s == State.COMPLETE)
    return Burst(wall, submitted, complete, counts, running, waited)


def bare_burst(view: TestCluster, watcher: Watcher, count: int) -> Burst:
    names = [f"burst-{i}" for i in range(count)]
    start = time.monotonic()
    for name in names:
        view.apply(bare_job(name))
    submitted = time.monotonic() - start
    watcher.wait(lambda: all(n in watcher.jobs_done for n in names), timeout=1800)
    wall = max(watcher.jobs_done[n] for n in names) - start
    running = [since(start, watcher.pod_of_job(n)[1].started) for n in names]
    with watcher.lock:
        waited = sum(
            1 for seen in watcher.pods.values() if seen.unschedulable and seen.job in names
        )
    return Burst(wall, submitted, count, {"Complete": count}, running, waited)


# -- report -------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def row(what: str, tesk: list[float], bare: list[float]) -> str:
    tm, bm = statistics.median(tesk), statistics.median(bare)
    tp, bp = p95(tesk), p95(bare)
    return (
        f"| {what} | {tm:.2f} | {tp:.2f} | {bm:.2f} | {bp:.2f} | {tm / bm:.2f} | "
        f"{tm - bm:+.2f} | {tp - bp:+.2f} |"
    )


def report_latency(tesk: list[TeskSample], bare: list[BareSample], executors: int) -> None:
    print(f"\nSubmit to first executor running, {len(tesk)} runs each ({executors} executor(s)):\n")
    print(
        "| from create to | TESK median s | TESK p95 s | bare Job median s | bare Job p95 s "
        "| ratio (median) | diff median s | diff p95 s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(row("container running (watch)", [s.seen for s in tesk], [s.seen for s in bare]))
    print(row("command ran (its clock)", [s.ran for s in tesk], [s.ran for s in bare]))
    print(row("finished (store / Job)", [s.done for s in tesk], [s.done for s in bare]))
    print("\nWhere TESK's time goes (median s after TesService.create was called):\n")
    print("| step | median s | p95 s |")
    print("|---|---:|---:|")
    for step in tesk[0].steps:
        values = [s.steps[step] for s in tesk]
        print(f"| {step} | {statistics.median(values):.2f} | {p95(values):.2f} |")


def report_burst(tesk: Burst, bare: Burst, count: int) -> None:
    print(f"\n{count} at once, end to end:\n")
    print(
        "| | wall s | all created in s | COMPLETE | first executor running median s "
        "| p95 s | pods that waited for room |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, b in (("TESK tasks", tesk), ("bare Jobs", bare)):
        print(
            f"| {label} | {b.wall:.1f} | {b.submit:.1f} | {b.complete}/{count} | "
            f"{statistics.median(b.first_running):.1f} | {p95(b.first_running):.1f} | "
            f"{b.unschedulable} |"
        )
    ratio, diff = tesk.wall / bare.wall, tesk.wall - bare.wall
    print(f"\nratio of wall times {ratio:.2f}, difference {diff:+.1f} s")
    if tesk.complete != count:
        print(f"TESK end states: {tesk.states}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="tasks one at a time (and bare Jobs)")
    parser.add_argument("--burst", type=int, default=50, help="tasks at once (0: skip)")
    parser.add_argument("--executors", type=int, default=1, help="executors per task")
    parser.add_argument("--image-runs", type=int, default=3, help="TESK image start samples")
    args = parser.parse_args()
    with benchmark_namespace() as view, tempfile.TemporaryDirectory() as tmp:
        print(f"namespace {view.namespace}", flush=True)
        watcher = Watcher(view)
        loads = {"start": machine_load()}
        try:
            with running_tesk(view, Path(tmp)) as env:
                # Warm up: the first pod of an image after it was imported unpacks it.
                tesk_sample(env, watcher, args.executors)
                bare_sample(view, watcher, "warmup")
                tesk: list[TeskSample] = []
                bare: list[BareSample] = []
                for index in range(args.runs):
                    tesk.append(tesk_sample(env, watcher, args.executors))
                    bare.append(bare_sample(view, watcher, f"bare-{index}"))
                    print(
                        f"run {index + 1}: TESK {tesk[-1].seen:.2f} s, bare {bare[-1].seen:.2f} s",
                        flush=True,
                    )
                delete_bare_jobs(view)
                loads["after latency"] = machine_load()
                imports = image_start(view, watcher, args.image_runs)
                delete_bare_jobs(view)
                bursts: tuple[Burst, Burst] | None = None
                if args.burst:
                    tesk_b = tesk_burst(env, watcher, args.burst, args.executors)
                    print(f"TESK burst: {tesk_b.wall:.1f} s", flush=True)
                    loads["after TESK burst"] = machine_load()
                    bare_b = bare_burst(view, watcher, args.burst)
                    print(f"bare burst: {bare_b.wall:.1f} s", flush=True)
                    loads["after bare burst"] = machine_load()
                    delete_bare_jobs(view)
                    bursts = (tesk_b, bare_b)
        finally:
            watcher.stop()
    report_latency(tesk, bare, args.executors)
    print("\nTESK image, container start to (median of runs, s):\n")
    each = ", ".join(f"{i:.2f}" for i, _ in imports)
    print(
        f"- `import tesk.backends.kubernetes.taskmaster` done: "
        f"{statistics.median(i for i, _ in imports):.2f} ({each})"
    )
    print(
        f"- then `tesk --help` (the CLI's own start): "
        f"{statistics.median(h for _, h in imports):.2f}"
    )
    if bursts:
        report_burst(*bursts, args.burst)
    print("\nload average (1, 5, 15 min): " + "; ".join(f"{k}: {v}" for k, v in loads.items()))


if __name__ == "__main__":
    main()
