"""The fake kubelet: runs the pods bound to its node and reports their status like a kubelet.

One worker thread per pod: volumes are prepared, init containers run one after another, then the
containers run side by side; restartPolicy decides about restarts (Never: none; OnFailure: after
a failure; Always: after any exit, with a growing back-off). Status follows the kubelet's:
phase, conditions, container states (waiting/running/terminated), restart counts, logs.
Deletion is graceful: SIGTERM to each container's PID 1, SIGKILL after the grace period, then the
pod is removed. Scripted outcomes replace parts of this (see outcomes.py).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

from . import events
from .auth import Tokens
from .controller import Controller
from .errors import ApiError
from .expansion import expand
from .logs import ContainerLog, LogBook
from .meta import Obj, dig, now, parse_timestamp, set_condition, timestamp
from .outcomes import (
    Evicted,
    Exit,
    ImagePullFailure,
    NodeLost,
    OOMKilled,
    Outcome,
    Scripts,
    SlowStart,
)
from .podenv import ConfigError, PodEnvironment
from .podstatus import ContainerRun, container_status, terminated_state
from .podvolumes import KUBECONFIG_DIR, MountError, PodVolumes
from .resources import BY_PLURAL
from .runner import ContainerProcess, ContainerRunner, Launch, Mount, StartError
from .store import Event, Store
from .volumes import VolumeBinder

PODS = BY_PLURAL["pods"]
_COMPONENT = "kubelet"
_TICK = 0.05
_CONFIG_RETRY = 0.2


@dataclass
class KubeletSettings:
    node: str
    root: Path  # pod directories live here
    api_url: str
    python_bin: str  # put first on PATH in every container
    kill_grace_cap: float  # longest a SIGTERM'd container gets before SIGKILL
    restart_backoff: float  # first back-off before a restart (doubles, capped)
    # In-cluster mode: the HTTPS port of the API server and its CA certificate (PEM); pods then
    # get KUBERNETES_SERVICE_HOST/PORT and the CA instead of a kubeconfig.
    in_cluster_port: int | None = None
    ca_certificate: bytes = b""


class Kubelet(Controller):
    name = "kubelet"

    def __init__(
        self,
        store: Store,
        errors: list[str],
        settings: KubeletSettings,
        *,
        logbook: LogBook,
        runner: ContainerRunner,
        scripts: Scripts,
        binder: VolumeBinder,
        tokens: Tokens,
    ) -> None:
        super().__init__(store, errors)
        self.settings = settings
        self.logbook = logbook
        self.runner = runner
        self.scripts = scripts
        self.binder = binder
        self.tokens = tokens
        self.errors = errors
        self._workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()

    def keys_for(self, event: Event) -> list[Hashable]:
        if event.resource.plural != "pods":
            return []
        if dig(event.obj, "spec", "nodeName") != self.settings.node:
            return []
        meta = event.obj["metadata"]
        return [(meta["namespace"], meta["name"], meta["uid"])]

    def sync(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        namespace, name, uid = key
        pod = self.store.try_get(PODS, namespace, name)
        with self._lock:
            worker = self._workers.get(uid)
            if pod is None or pod["metadata"]["uid"] != uid:
                if worker is not None:
                    worker.vanished()
                else:
                    self.logbook.forget(uid)
                return
            if worker is None:
                if dig(pod, "status", "phase") in ("Succeeded", "Failed"):
                    return
                worker = PodWorker(self, pod)
                self._workers[uid] = worker
                worker.start()
            else:
                worker.update(pod)

    def worker_done(self, worker: PodWorker) -> None:
        with self._lock:
            self._workers.pop(worker.uid, None)
        # Logs stay while the pod exists; drop them if it is gone already.
        self.queue.add((worker.namespace, worker.name, worker.uid))

    def stop(self) -> None:
        super().stop()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shutdown()
        for worker in workers:
            worker.join(timeout=5)


class _Stop(Exception):
    """The pod is being deleted (or its node is gone): stop working on it."""


class PodWorker(threading.Thread):
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['name']}", daemon=True)
        self.k = kubelet
        self.store = kubelet.store
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.dir: Path = kubelet.settings.root / self.uid
        self.changed = threading.Event()
        self.deleting = bool(meta.get("deletionTimestamp"))
        self.gone = False
        self.node_lost = False
        self.exiting = False  # the fake cluster shuts down
        self.runs: dict[str, ContainerRun] = {}
        self.restart_counts: dict[str, int] = {}
        self.last_states: dict[str, Obj] = {}
        self.waiting: dict[str, tuple[str, str | None]] = {}  # container -> (reason, message)
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.ready_to_start = False
        self.initialized = False
        self.extra_conditions: list[tuple[str, str, str, str]] = []
        self.start_time: str | None = None

    # ------------------------------------------------------------------ notifications

    def update(self, pod: Obj) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting = True
        self.changed.set()

    def vanished(self) -> None:
        self.gone = True
        self.deleting = True
        self.changed.set()

    def shutdown(self) -> None:
        self.exiting = True
        self.gone = True
        self.deleting = True
        self.changed.set()

    # ------------------------------------------------------------------ main flow

    def run(self) -> None:
        try:
            self._work()
        except _Stop:
            pass
        except Exception:
            self.k.errors.append(f"kubelet failed on pod {self.name}:\n{traceback.format_exc()}")
        finally:
            self._kill_all(signal.SIGKILL)
            for run in self.runs.values():
                if run.pump is not None:
                    run.pump.join(timeout=2)
                run.log.finish()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.k.worker_done(self)

    def _work(self) -> None:
        spec = self.pod["spec"]
        outcome = self.k.scripts.outcome_for("pods", self.pod)
        init_specs = list(spec.get("initContainers") or [])
        main_specs = list(spec.get("containers") or [])
        self.start_time = timestamp()
        for c in init_specs:
            self.waiting[c["name"]] = ("PodInitializing", None)
        for c in main_specs:
            self.waiting[c["name"]] = (
                "PodInitializing" if init_specs else "ContainerCreating",
                None,
            )
        self.initialized = not init_specs
        self._publish()
        if self.deleting:
            self._finish_deletion()
            return
        if isinstance(outcome, SlowStart):
            self._sleep(outcome.seconds)
        mounts = self._prepare_volumes()
        self.ready_to_start = True
        self._publish()
        if isinstance(outcome, ImagePullFailure):
            self._image_pull_failure(outcome, (init_specs or main_specs)[0])
            return
        policy = spec.get("restartPolicy", "Always")
        for container in init_specs:
            ok = self._supervise(
                [container], mounts, outcome, "Never" if policy == "Never" else "OnFailure"
            )
            if not ok:
                self._terminal("Failed")
                return
        self.initialized = True
        self._publish()
        ok = self._supervise(main_specs, mounts, outcome, policy)
        self._terminal("Succeeded" if ok else "Failed")

    def _terminal(self, phase: str) -> None:
        if self.node_lost:
            return
        self.phase = phase
        self.ready_to_start = False
        self._publish()
        if self.deleting:
            self._finish_deletion()

    def _finish_deletion(self) -> None:
        if not self.gone and not self.node_lost:
            self.store.remove_now(PODS, self.namespace, self.name)

    def _sleep(self, seconds: float) -> None:
        """Wait, but give up as soon as the pod is being deleted."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.deleting:
                self._kill_all(signal.SIGKILL)
                if not self.gone:
                    self.phase = "Failed" if self.phase != "Succeeded" else self.phase
                    self._publish()
                self._finish_deletion()
                raise _Stop
            self.changed.wait(min(_TICK, max(0.0, end - time.monotonic())))
            self.changed.clear()

    # ------------------------------------------------------------------ scripted failures

    def _image_pull_failure(self, outcome: ImagePullFailure, container: Obj) -> None:
        image = container.get("image", "")
        reason = "ErrImagePull"
        while True:
            if reason == "ErrImagePull":
                message = (
                    f"rpc error: code = NotFound desc = failed to pull and unpack image "
                    f'"{image}": {outcome.message}'
                )
            else:
                message = f'Back-off pulling image "{image}"'
            self.waiting[container["name"]] = (reason, message)
            self._publish()
            events.record(
                self.store,
                self.pod,
                "Failed" if reason == "ErrImagePull" else "BackOff",
                message,
                warning=True,
                component=_COMPONENT,
                host=self.k.settings.node,
            )
            self._sleep(outcome.back_off_after)
            reason = "ImagePullBackOff" if reason == "ErrImagePull" else "ErrImagePull"

    def _node_lost(self, outcome: NodeLost) -> None:
        """The node stops responding: nothing more comes from this kubelet."""
        self.node_lost = True
        self._kill_all(signal.SIGKILL)

        def not_ready(current: Obj) -> None:
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            set_condition(conditions, "Ready", "False")
            set_condition(
                conditions,
                "DisruptionTarget",
                "True",
                reason="DeletionByTaintManager",
                message="Taint manager: deleting due to NoExecute taint",
            )

        try:
            self.store.update(PODS, self.namespace, self.name, not_ready)
            self.store.delete(PODS, self.namespace, self.name)
        except ApiError:
            return
        events.record(
            self.store,
            self.pod,
            "TaintManagerEviction",
            f"Marking for deletion Pod {self.namespace}/{self.name}",
            component="taint-eviction-controller",
        )
        end = time.monotonic() + outcome.gc_after
        while time.monotonic() < end and not self.exiting:
            time.sleep(_TICK)

        def collected(current: Obj) -> None:
            status = current.setdefault("status", {})
            status["phase"] = "Failed"
            set_condition(
                status.setdefault("conditions", []),
                "DisruptionTarget",
                "True",
                reason="DeletionByPodGC",
                message="PodGC: node no longer exists",
            )

        try:
            self.store.update(PODS, self.namespace, self.name, collected)
            self.store.remove_now(PODS, self.namespace, self.name)
        except ApiError:
            pass
        raise _Stop

    # ------------------------------------------------------------------ containers

    def _supervise(
        self,
        specs: list[Obj],
        mounts: dict[str, Mount | None],
        outcome: Outcome | None,
        policy: str,
    ) -> bool:
        """Run containers until all are done for good; whether all exited 0."""
        restart_at: dict[str, float] = {}
        backoff: dict[str, float] = {}
        for container in specs:
            if not self._start(container, mounts, outcome):
                restart_at[container["name"]] = time.monotonic() + _CONFIG_RETRY
        self._publish()
        deadline = self._deadline()
        while True:
            self.changed.wait(_TICK)
            self.changed.clear()
            if self.deleting:
                self._terminate(specs, self._grace())
                return policy != "Always" and all(
                    self.runs.get(c["name"]) is not None and self.runs[c["name"]].exit_code == 0
                    for c in specs
                )
            if deadline is not None and time.monotonic() >= deadline:
                self._deadline_exceeded(specs)
                return False
            scripted = self._scripted_kill(outcome)
            if scripted == "evicted":
                return False
            dirty = False
            for container in specs:
                name = container["name"]
                run = self.runs.get(name)
                if run is None or run.done:
                    if name in restart_at and time.monotonic() >= restart_at[name]:
                        del restart_at[name]
                        if run is not None:
                            self.restart_counts[name] = self.restart_counts.get(name, 0) + 1
                        if not self._start(container, mounts, outcome):
                            restart_at[name] = time.monotonic() + _CONFIG_RETRY
                        dirty = True
                    continue
                if self._poll(run):
                    dirty = True
                    failed = run.exit_code != 0
                    if policy == "Always" or (policy == "OnFailure" and failed):
                        delay = backoff.get(name, self.k.settings.restart_backoff)
                        backoff[name] = min(delay * 2, 300.0)
                        restart_at[name] = time.monotonic() + delay
                        self.last_states[name] = terminated_state(run, self.uid)
                        self.waiting[name] = (
                            "CrashLoopBackOff",
                            f"back-off {delay:g}s restarting failed container={name} "
                            f"pod={self.name}_{self.namespace}({self.uid})",
                        )
            if dirty:
                self._publish()
            if not restart_at and all(
                self.runs.get(c["name"]) is not None and self.runs[c["name"]].done for c in specs
            ):
                return all(self.runs[c["name"]].exit_code == 0 for c in specs)

    def _start(
        self, container: Obj, mounts: dict[str, Mount | None], outcome: Outcome | None
    ) -> bool:
        """Start one container run; False when its configuration is not there yet (the
        kubelet reports CreateContainerConfigError and tries again)."""
        name = container["name"]
        try:
            launch = None if isinstance(outcome, Exit) else self._launch(container, mounts)
        except ConfigError as error:
            message = str(error)
            if self.waiting.get(name) != ("CreateContainerConfigError", message):
                self.waiting[name] = ("CreateContainerConfigError", message)
                events.record(
                    self.store,
                    self.pod,
                    "Failed",
                    f"Error: {message}",
                    warning=True,
                    component=_COMPONENT,
                    host=self.k.settings.node,
                )
            return False
        log = self.k.logbook.start(self.uid, name)
        run = ContainerRun(name, container, log, None, time.monotonic(), timestamp())
        self.runs[name] = run
        self.waiting.pop(name, None)
        if isinstance(outcome, Exit):
            run.simulated_code = outcome.code
            run.extra["exit_after"] = outcome.after
            log.write(outcome.log.encode())
            return True
        assert launch is not None
        try:
            run.termination_file = self._termination_file(name)
            process = self.k.runner.start(launch)
        except StartError as error:
            run.start_error = (
                "failed to create containerd task: failed to create shim task: OCI runtime create "
                "failed: runc create failed: unable to start container process: "
                f"{error}: unknown"
            )
            return True
        run.process = process
        run.pump = threading.Thread(
            target=_pump, args=(process, log), daemon=True, name=f"log-{self.name}-{name}"
        )
        run.pump.start()
        events.record(
            self.store,
            self.pod,
            "Started",
            f"Started container {name}",
            component=_COMPONENT,
            host=self.k.settings.node,
        )
        return True

    def _poll(self, run: ContainerRun) -> bool:
        """Whether the run just ended (and record how)."""
        if run.start_error is not None:
            run.exit_code = 128
        elif run.simulated_code is not None:
            if time.monotonic() - run.started < run.extra.get("exit_after", 0.0):
                return False
            run.exit_code = run.simulated_code
        else:
            assert run.process is not None
            code = run.process.poll()
            if code is None:
                return False
            if run.pump is not None:
                run.pump.join(timeout=2)
            run.exit_code = code
        run.done = True
        run.log.finish()
        run.extra["finished_at"] = timestamp()
        return True

    def _scripted_kill(self, outcome: Outcome | None) -> str | None:
        if not isinstance(outcome, OOMKilled | Evicted | NodeLost):
            return None
        active = [r for r in self.runs.values() if not r.done and r.process is not None]
        if not active or time.monotonic() - min(r.started for r in active) < outcome.after:
            return None
        if isinstance(outcome, NodeLost):
            self._node_lost(outcome)
        if isinstance(outcome, OOMKilled):
            for run in active:
                run.forced_reason = "OOMKilled"
                assert run.process is not None
                run.process.signal(signal.SIGKILL)
            return "oom"
        assert isinstance(outcome, Evicted)
        for run in active:
            assert run.process is not None
            run.process.signal(signal.SIGKILL)
        self._wait_all(2.0)
        self.reason, self.message = "Evicted", outcome.message
        self.extra_conditions.append(
            ("DisruptionTarget", "True", "TerminationByKubelet", outcome.message)
        )
        events.record(
            self.store,
            self.pod,
            "Evicted",
            outcome.message,
            warning=True,
            component=_COMPONENT,
            host=self.k.settings.node,
        )
        return "evicted"

    def _deadline(self) -> float | None:
        seconds = dig(self.pod, "spec", "activeDeadlineSeconds")
        if not seconds or not self.start_time:
            return None
        elapsed = (now() - parse_timestamp(self.start_time)).total_seconds()
        return time.monotonic() + max(0.0, float(seconds) - elapsed)

    def _deadline_exceeded(self, specs: list[Obj]) -> None:
        message = "Pod was active on the node longer than the specified deadline"
        self.reason, self.message = "DeadlineExceeded", message
        events.record(
            self.store,
            self.pod,
            "DeadlineExceeded",
            message,
            warning=True,
            component=_COMPONENT,
            host=self.k.settings.node,
        )
        self._terminate(specs, self._grace())

    def _grace(self) -> float:
        grace = dig(self.pod, "metadata", "deletionGracePeriodSeconds")
        if grace is None:
            grace = dig(self.pod, "spec", "terminationGracePeriodSeconds", default=30)
        return min(float(grace), self.k.settings.kill_grace_cap)

    def _terminate(self, specs: list[Obj], grace: float) -> None:
        """Stop every container: SIGTERM, then SIGKILL after the grace period."""
        if self.gone:
            self._kill_all(signal.SIGKILL)
            raise _Stop
        for run in self.runs.values():
            if not run.done and run.process is not None:
                events.record(
                    self.store,
                    self.pod,
                    "Killing",
                    f"Stopping container {run.name}",
                    component=_COMPONENT,
                    host=self.k.settings.node,
                )
        self._kill_all(signal.SIGTERM)
        if not self._wait_all(grace):
            self._kill_all(signal.SIGKILL)
            self._wait_all(5.0)
        for container in specs:
            found = self.runs.get(container["name"])
            if found is None:
                self.waiting.pop(container["name"], None)
                continue
            if not found.done:
                self._poll(found)
        self._publish()

    def _wait_all(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if all(
                r.done or r.process is None or r.process.poll() is not None
                for r in self.runs.values()
            ):
                for run in self.runs.values():
                    if not run.done and (run.process is not None or run.simulated_code is None):
                        self._poll(run)
                return True
            time.sleep(_TICK / 2)
        return False

    def _kill_all(self, signum: int) -> None:
        for run in self.runs.values():
            if not run.done and run.process is not None:
                run.process.signal(signum)
            elif not run.done and run.simulated_code is not None and signum == signal.SIGKILL:
                run.simulated_code = 137
                run.extra["exit_after"] = 0.0

    # ------------------------------------------------------------------ launch

    def _launch(self, container: Obj, mounts: dict[str, Mount | None]) -> Launch:
        variables = PodEnvironment(self.store, self.pod).variables(container)
        env = {**self._base_env(), **variables}
        command = [expand(w, variables) for w in container.get("command") or []]
        args = [expand(w, variables) for w in container.get("args") or []]
        if not command:
            raise StartError(
                "exec: the image's entrypoint is unknown to the fake kubelet (images are not "
                "run): give the container a command"
            )
        chosen: list[Mount] = []
        for mount in container.get("volumeMounts") or []:
            source = mounts.get(mount["name"])
            if source is None:
                continue
            host = Path(source.host_path)
            sub_path = mount.get("subPath")
            if sub_path:
                host = host / sub_path
                if not host.exists():
                    host.mkdir(parents=True, exist_ok=True)
            chosen.append(
                Mount(
                    str(host), mount["mountPath"], source.read_only or bool(mount.get("readOnly"))
                )
            )
        volumes = self._pod_volumes()
        if volumes.automount():
            settings = self.k.settings
            chosen += volumes.credentials(
                settings.api_url, settings.in_cluster_port, settings.ca_certificate
            )
            if self.k.settings.in_cluster_port is None:
                env.setdefault("KUBECONFIG", f"{KUBECONFIG_DIR}/kubeconfig")
        termination = self._termination_file(container["name"])
        chosen.append(
            Mount(
                str(termination),
                container.get("terminationMessagePath", "/dev/termination-log"),
                False,
            )
        )
        return Launch(
            namespace=self.namespace,
            pod=self.name,
            container=container["name"],
            argv=command + args,
            env=env,
            working_dir=container.get("workingDir") or None,
            mounts=chosen,
        )

    def _base_env(self) -> dict[str, str]:
        home = "/root"
        with contextlib.suppress(KeyError):
            home = pwd.getpwuid(os.getuid()).pw_dir
        env = {
            "PATH": f"{self.k.settings.python_bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
            "/usr/bin:/sbin:/bin",
            "HOSTNAME": self.name,
            "HOME": home,
        }
        port = self.k.settings.in_cluster_port
        if port is not None:
            # What the `kubernetes` Service's environment gives every pod.
            env.update(
                {
                    "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                    "KUBERNETES_SERVICE_PORT": str(port),
                    "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
                    "KUBERNETES_PORT": f"tcp://127.0.0.1:{port}",
                }
            )
        return env

    def _pod_volumes(self) -> PodVolumes:
        return PodVolumes(self.store, self.pod, self.dir, self.k.binder, self.k.tokens)

    def _termination_file(self, container: str) -> Path:
        path = self.dir / "termination" / container
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return path

    # ------------------------------------------------------------------ volumes

    def _prepare_volumes(self) -> dict[str, Mount | None]:
        """Host directories for the pod's volumes, waiting (FailedMount) until they can be set up;
        config errors of containers surface at container start."""
        reported: set[str] = set()
        while True:
            try:
                return self._pod_volumes().mount_all()
            except MountError as error:
                text = str(error)
                if text not in reported:
                    reported.add(text)
                    events.record(
                        self.store,
                        self.pod,
                        "FailedMount",
                        text,
                        warning=True,
                        component=_COMPONENT,
                        host=self.k.settings.node,
                    )
                self._sleep(0.2)

    # ------------------------------------------------------------------ status

    def _container_status(self, container: Obj) -> Obj:
        name = container["name"]
        return container_status(
            container,
            self.runs.get(name),
            self.uid,
            waiting=self.waiting.get(name),
            restart_count=self.restart_counts.get(name, 0),
            last_state=self.last_states.get(name),
        )

    def _publish(self) -> None:
        if self.gone or self.node_lost:
            return
        spec = self.pod["spec"]
        init_statuses = [self._container_status(c) for c in spec.get("initContainers") or []]
        statuses = [self._container_status(c) for c in spec["containers"]]
        terminal = self.phase in ("Succeeded", "Failed")
        phase = self.phase
        if not terminal and any(
            "running" in s["state"] or "terminated" in s["state"] for s in statuses
        ):
            phase = "Running"
        not_ready = [s["name"] for s in statuses if not s["ready"]]
        not_initialized = [
            s["name"] for s in init_statuses if dig(s, "state", "terminated", "exitCode") != 0
        ]

        def write(current: Obj) -> None:
            status = current.setdefault("status", {})
            status["phase"] = phase
            status["hostIP"] = "127.0.0.1"
            status["hostIPs"] = [{"ip": "127.0.0.1"}]
            status["podIP"] = "127.0.0.1"
            status["podIPs"] = [{"ip": "127.0.0.1"}]
            status["startTime"] = self.start_time
            for key, value in (("reason", self.reason), ("message", self.message)):
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
            if init_statuses:
                status["initContainerStatuses"] = init_statuses
            status["containerStatuses"] = statuses
            conditions = status.setdefault("conditions", [])
            set_condition(
                conditions, "PodReadyToStartContainers", "True" if self.ready_to_start else "False"
            )
            if not_initialized and not self.initialized:
                set_condition(
                    conditions,
                    "Initialized",
                    "False",
                    reason="ContainersNotInitialized",
                    message=f"containers with incomplete status: [{' '.join(not_initialized)}]",
                )
            else:
                set_condition(
                    conditions,
                    "Initialized",
                    "True",
                    reason="PodCompleted" if terminal and init_statuses else None,
                )
            if terminal:
                set_condition(conditions, "Ready", "False", reason="PodCompleted")
                set_condition(conditions, "ContainersReady", "False", reason="PodCompleted")
            elif not_ready:
                message = f"containers with unready status: [{' '.join(not_ready)}]"
                set_condition(
                    conditions, "Ready", "False", reason="ContainersNotReady", message=message
                )
                set_condition(
                    conditions,
                    "ContainersReady",
                    "False",
                    reason="ContainersNotReady",
                    message=message,
                )
            else:
                set_condition(conditions, "Ready", "True")
                set_condition(conditions, "ContainersReady", "True")
            for kind, value, reason, message in self.extra_conditions:
                set_condition(conditions, kind, value, reason=reason, message=message)
            order = [
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
                "DisruptionTarget",
            ]
            conditions.sort(key=lambda c: order.index(c["type"]) if c["type"] in order else 99)

        try:
            self.store.update(PODS, self.namespace, self.name, write)
        except ApiError as error:
            if error.code != 404:
                raise
            self.gone = True


def _pump(process: ContainerProcess, log: ContainerLog) -> None:
    stream = process.output
    fd = stream.fileno()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            log.write(chunk)
    except OSError:
        pass
    finally:
        stream.close()
