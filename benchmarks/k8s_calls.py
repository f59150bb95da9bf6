"""Kubernetes API calls per task: constant, whatever the number of tasks or pods around.

    python -m benchmarks.k8s_calls [--tasks 1,10,30] [--executors 2] [--bystanders 300]

Runs tasks end to end through TesService and the Kubernetes backend against the fake cluster
(tests/k8s/fakecluster), which records every request its API server answers. The namespace also
holds `--bystanders` pods of other workloads (bound to a node that never runs them), so a call
that lists every pod would show up as cost growing with them. For each batch of tasks, run at
once, it reports the calls per task (by client: the API's backend and reconciler, the
taskmasters) and the ratio to the single-task batch of the same run. 100 ListTasks and GetTask
calls are made too: they read the store only and must make no Kubernetes call.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tesk.store.sql import SqlStore
from tesk.tes.states import State
from tests.k8s.backend_env import TASKMASTER_SA, deployment
from tests.k8s.fakecluster import FakeCluster

API_USER = "fakecluster-admin"
TASKMASTER_USER = f"system:serviceaccount:tesk:{TASKMASTER_SA}"


def bystander(index: int) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"other-{index}", "namespace": "tesk", "labels": {"app": "other"}},
        "spec": {
            "nodeName": "elsewhere",  # never run by the fake kubelet
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}],
        },
    }


def run_batch(env, cluster: FakeCluster, count: int, executors: int) -> Counter[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    body = {
        "executors": [
            {"image": "busybox", "command": ["sh", "-c", f"echo step {i}"]}
            for i in range(executors)
        ]
    }
    cluster.clear_requests()
    ids = [env.submit(body) for _ in range(count)]
    for task_id in ids:
        record = env.wait_state(task_id, timeout=300)
        if record.state != State.COMPLETE:
            pods = [
                p["metadata"]["name"]
                for p in cluster.objects("pods", "tesk")
                if p["metadata"].get("labels", {}).get("tesk.io/task-id") == task_id
            ]
            logs = "\n".join(f"--- {pod}\n{cluster.logs(pod)[-3000:]}" for pod in pods)
            sys.exit(f"task {task_id} ended {record.state}: {record.log}\n{logs}")
    time.sleep(1.0)  # let the reconciler see every Job end
    for _ in range(100):
        env.service.list_tasks(view="FULL")
        env.service.get(ids[0], "FULL")
    counted: Counter[tuple[str, ...]] = Counter()
    for request in cluster.requests:
        who = {API_USER: "api", TASKMASTER_USER: "taskmaster"}.get(request.user, request.user)
        resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
        selector = request.query.get("labelSelector") or request.query.get("fieldSelector")
        unfiltered = request.verb in ("list", "watch") and not selector
        counted[(who, request.verb, resource, "UNFILTERED" if unfiltered else "")] += 1
    return counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="1,10,30", help="batch sizes (first is the baseline)")
    parser.add_argument("--executors", type=int, default=2)
    parser.add_argument("--bystanders", type=int, default=300)
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("the fake cluster runs pods in bubblewrap: apt-get install bubblewrap")
    batches = [int(n) for n in args.tasks.split(",")]
    with tempfile.TemporaryDirectory() as tmp, FakeCluster() as cluster:
        for index in range(args.bystanders):
            cluster.apply(bystander(index))
        store = SqlStore(f"sqlite:///{Path(tmp) / 'tesk.db'}")
        with deployment(cluster, store=store, resync_interval_s=600) as env:
            time.sleep(1.0)  # the reconciler's first list and watches
            results = [(n, run_batch(env, cluster, n, args.executors)) for n in batches]
        store.close()
    print(
        f"Kubernetes API calls per task ({args.executors} executors each, "
        f"{args.bystanders} other pods in the namespace)\n"
    )
    base = sum(results[0][1].values()) / results[0][0]
    print("| tasks at once | calls | per task | API per task | taskmaster per task | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, counted in results:
        total = sum(counted.values())
        api = sum(v for k, v in counted.items() if k[0] == "api")
        tm = sum(v for k, v in counted.items() if k[0] == "taskmaster")
        print(
            f"| {n} | {total} | {total / n:.1f} | {api / n:.1f} | {tm / n:.1f} "
            f"| {total / n / base:.2f} |"
        )
    n, counted = results[-1]
    print(f"\nBreakdown for the batch of {n} (per task):\n")
    print("| client | verb | resource | per task |")
    print("|---|---|---|---:|")
    for (who, verb, resource, note), value in sorted(counted.items()):
        label = f"{resource} ({note})" if note else resource
        print(f"| {who} | {verb} | {label} | {value / n:.2f} |")
    unfiltered = sum(v for k, v in counted.items() if k[3])
    print(f"\nUnfiltered list/watch calls (every object of a kind): {unfiltered}")


if __name__ == "__main__":
    main()
