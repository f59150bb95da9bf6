"""Kubernetes API calls per task on the real test cluster: constant, whatever the batch size.

    python -m benchmarks.k8s_calls [--tasks 1,10,30] [--executors 2] [--bystanders 100]

Needs the test cluster (`make k8s-up`). Runs in a namespace of its own (Pod Security
`restricted`, TESK's accounts and Role), which also holds `--bystanders` pods of another app
(held back by a scheduling gate, so they cost the node nothing): a call that listed every pod
would grow with them. Each batch of tasks is submitted at once through TesService and the
Kubernetes backend (in this process, admin kubeconfig, SQLite store) and run to its end by real
taskmasters. The calls are read from the API server's audit log: requests in the namespace
within the batch's time window, by the API side (user `kubernetes-admin` with the Kubernetes
client's user agent) and by the taskmasters (their ServiceAccount). After each batch, 100
ListTasks (FULL) and 100 GetTask calls are made and their window counted the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tesk.store.sql import SqlStore
from tesk.tes.states import State, is_terminal
from tests.k8s.backend_env import Deployment, deployment, task
from tests.k8s.cluster.components import audit_log
from tests.k8s.realcluster import TASKMASTER_SA, TestCluster, cluster_or_fail, new_namespace

Obj = dict[str, Any]

API_USER = "kubernetes-admin"
KUBE_CLIENT_AGENT = "OpenAPI-Generator/"  # the kubernetes Python client TESK uses
HARNESS_AGENT = "tesk-benchmark"  # this benchmark's own client (watches, namespace set-up)
# Overrides of the test deployment: no periodic resync inside a batch's window, no pending timeout
# while a burst of tasks waits for CPU to be scheduled.
SETTINGS: dict[str, Any] = {
    "resync_interval_s": 600.0,
    "pending_timeout_s": 900,
    "ttl_seconds_after_finished": 600,
}


# -- the namespace ------------------------------------------------------------------------------


@contextmanager
def benchmark_namespace() -> Iterator[TestCluster]:
    """A fresh namespace as the tests use (removed afterwards, in the background)."""
    view = TestCluster(cluster_or_fail(), new_namespace())
    view.api.user_agent = HARNESS_AGENT
    view.prepare()
    try:
        yield view
    finally:
        view.remove()


@contextmanager
def running_tesk(view: TestCluster, tmp: Path) -> Iterator[Deployment]:
    store = SqlStore(f"sqlite:///{tmp / 'tesk.db'}")
    try:
        with deployment(view, store=store, **SETTINGS) as env:
            time.sleep(2.0)  # the reconciler's first lists and watches
            yield env
    finally:
        store.close()


def bystander(index: int) -> Obj:
    """A pod of another app: gated, so it is never scheduled but is there to be listed."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"other-{index}", "labels": {"app": "other"}},
        "spec": {
            "schedulingGates": [{"name": "example.com/never"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "sleep",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def echo_task(executors: int) -> Obj:
    return task(*[["echo", f"step {i}"] for i in range(executors)])


def wait_terminal(env: Deployment, ids: list[str], timeout: float) -> dict[str, State]:
    end = time.monotonic() + timeout
    states: dict[str, State] = {}
    while True:
        for task_id in ids:
            if task_id not in states:
                state = env.record(task_id).state
                if is_terminal(state):
                    states[task_id] = state
        if len(states) == len(ids) or time.monotonic() > end:
            return states
        time.sleep(0.1)


def require_complete(env: Deployment, ids: list[str], states: dict[str, State]) -> None:
    bad = {i: states.get(i) for i in ids if states.get(i) != State.COMPLETE}
    for task_id, state in list(bad.items())[:3]:
        log = env.record(task_id).log
        print(f"task {task_id} ended {state}: {log.dump() if log else None}", file=sys.stderr)
    if bad:
        sys.exit(f"{len(bad)} of {len(ids)} tasks did not COMPLETE")


def wait_jobs_finished(view: TestCluster, ids: list[str], timeout: float = 120.0) -> None:
    """Until the taskmaster Job of every task has finished (its cleanup calls are done)."""
    wanted = {f"tesk-{i}" for i in ids}

    def finished() -> bool:
        jobs = view.objects("jobs", labelSelector="app.kubernetes.io/component=taskmaster")
        done = {
            j["metadata"]["name"]
            for j in jobs
            if any(
                c["type"] in ("Complete", "Failed") and c["status"] == "True"
                for c in (j.get("status") or {}).get("conditions") or []
            )
        }
        return wanted <= done

    view.wait_for(finished, timeout=timeout, interval=0.5)


# -- the audit log ------------------------------------------------------------------------------


class AuditLog:
    """Reads the requests the API server logged since a mark (one entry per request)."""

    def __init__(self, view: TestCluster) -> None:
        self.path = audit_log(view.cluster.layout)

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, offset: int) -> list[Obj]:
        time.sleep(1.0)  # let the API server write its last events
        if self.path.stat().st_size < offset:
            print("the audit log was rotated during the run: counting from its start")
            offset = 0
        events: dict[str, Obj] = {}
        with self.path.open("rb") as log:
            log.seek(offset)
            for line in log:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                # Long requests (watches) log ResponseStarted and ResponseComplete: keep one.
                events.setdefault(str(event.get("auditID")), event)
        return list(events.values())


def when(event: Obj) -> datetime:
    return datetime.fromisoformat(str(event["requestReceivedTimestamp"]).replace("Z", "+00:00"))


@dataclass(frozen=True)
class Call:
    client: str
    verb: str
    resource: str
    selected: bool  # a list/watch narrowed by a label or field selector


def calls_in(events: list[Obj], namespace: str, start: datetime, end: datetime) -> list[Call]:
    taskmaster = f"system:serviceaccount:{namespace}:{TASKMASTER_SA}"
    found = []
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("namespace") != namespace or not start <= when(event) <= end:
            continue
        user = (event.get("user") or {}).get("username")
        agent = str(event.get("userAgent") or "")
        if user == API_USER and agent.startswith(KUBE_CLIENT_AGENT):
            client = "api"
        elif user == taskmaster:
            client = "taskmaster"
        else:
            continue
        resource = str(ref.get("resource"))
        if ref.get("subresource"):
            resource += f"/{ref['subresource']}"
        uri = str(event.get("requestURI"))
        selected = "labelSelector=" in uri or "fieldSelector=" in uri
        found.append(Call(client, str(event.get("verb")), resource, selected))
    return found


# -- the benchmark ------------------------------------------------------------------------------


@dataclass
class Batch:
    tasks: int
    seconds: float
    calls: list[Call]
    reads: list[Call]  # during the 100 ListTasks + 100 GetTask


def run_batch(
    env: Deployment, view: TestCluster, audit: AuditLog, count: int, executors: int
) -> Batch:
    offset = audit.mark()
    start = datetime.now(UTC)
    began = time.monotonic()
    ids = [env.submit(echo_task(executors)) for _ in range(count)]
    states = wait_terminal(env, ids, timeout=900)
    seconds = time.monotonic() - began
    require_complete(env, ids, states)
    wait_jobs_finished(view, ids)
    time.sleep(1.0)
    end = datetime.now(UTC)
    read_start = datetime.now(UTC)
    for _ in range(100):
        env.service.list_tasks(view="FULL")
        env.service.get(ids[0], "FULL")
    read_end = datetime.now(UTC)
    events = audit.since(offset)
    return Batch(
        count,
        seconds,
        calls_in(events, view.namespace, start, end),
        calls_in(events, view.namespace, read_start, read_end),
    )


def report(batches: list[Batch], executors: int, bystanders: int, loads: list[str]) -> None:
    print(
        f"\nKubernetes API calls per task ({executors} executors each, {bystanders} other pods "
        f"in the namespace); load average before each batch: {'; '.join(loads)}\n"
    )
    base = len(batches[0].calls) / batches[0].tasks
    print(
        "| tasks at once | wall s | calls | per task | API per task | taskmaster per task "
        "| ratio to 1st | ListTasks+GetTask calls |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for b in batches:
        api = sum(1 for c in b.calls if c.client == "api")
        tm = sum(1 for c in b.calls if c.client == "taskmaster")
        per_task = len(b.calls) / b.tasks
        print(
            f"| {b.tasks} | {b.seconds:.1f} | {len(b.calls)} | {per_task:.2f} | "
            f"{api / b.tasks:.2f} | {tm / b.tasks:.2f} | {per_task / base:.2f} | {len(b.reads)} |"
        )
    keys = sorted({(c.client, c.verb, c.resource, c.selected) for b in batches for c in b.calls})
    counts = [Counter((c.client, c.verb, c.resource, c.selected) for c in b.calls) for b in batches]
    header = " | ".join(f"{b.tasks} at once" for b in batches)
    print(f"\nPer task, by client, verb and resource:\n\n| client | verb | resource | {header} |")
    print("|---|---|---|" + "---:|" * len(batches))
    for key in keys:
        client, verb, resource, selected = key
        label = resource + (" (by selector)" if selected else "")
        cells = " | ".join(f"{n[key] / b.tasks:.2f}" for n, b in zip(counts, batches, strict=True))
        print(f"| {client} | {verb} | {label} | {cells} |")
    unfiltered = sum(
        1 for b in batches for c in b.calls if c.verb in ("list", "watch") and not c.selected
    )
    print(f"\nUnselected list/watch calls (every object of a kind): {unfiltered}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", default="1,10,30", help="batch sizes (first is the baseline)")
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--bystanders", type=int, default=100)
    args = parser.parse_args()
    sizes = [int(n) for n in args.tasks.split(",")]
    with benchmark_namespace() as view, tempfile.TemporaryDirectory() as tmp:
        print(f"namespace {view.namespace}", flush=True)
        for index in range(args.bystanders):
            view.apply(bystander(index))
        audit = AuditLog(view)
        batches: list[Batch] = []
        loads: list[str] = []
        with running_tesk(view, Path(tmp)) as env:
            for size in sizes:
                loads.append(machine_load())
                batch = run_batch(env, view, audit, size, args.executors)
                print(
                    f"{size} task(s): {batch.seconds:.1f} s, {len(batch.calls)} calls, "
                    f"{len(batch.reads)} during the reads",
                    flush=True,
                )
                batches.append(batch)
    report(batches, args.executors, args.bystanders, loads)


if __name__ == "__main__":
    main()
