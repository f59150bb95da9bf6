"""The fake kubelet: runs the pods bound to its node and reports their status like a kubelet.

One worker thread per pod: volumes are prepared, init containers run one after another, then the
containers run side by side; restartPolicy decides about restarts (Never: none; OnFailure: after
a failure; Always: after any exit, with a growing back-off). Status follows the kubelet's:
phase, conditions, container states (waiting/running/terminated), restart counts, logs.
Deletion is graceful: SIGTERM to each container's PID 1, SIGKILL after the grace period, then the
pod is removed. Scripted outcomes replace parts of this (see outcomes.py).
"""

from __future__ import annotations

import base64
import contextlib
import os
import pwd
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
from .quantity import parse_quantity
from .resources import BY_PLURAL
from .runner import ContainerProcess, ContainerRunner, Launch, Mount, StartError
from .store import Event, Store
from .volumes import VolumeBinder

PODS = BY_PLURAL["pods"]
_COMPONENT = "kubelet"
_TICK = 0.05
_CONFIG_RETRY = 0.2
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECONFIG_DIR = "/var/run/secrets/fakecluster"
_ALWAYS_READ_ONLY = ("configMap", "secret", "projected", "downwardAPI")


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


@dataclass
class _Run:
    """One run of one container."""

    name: str
    spec: Obj
    log: ContainerLog
    process: ContainerProcess | None  # None when simulated (scripted Exit) or failed to start
    started: float  # time.monotonic()
    started_at: str
    simulated_code: int | None = None
    start_error: str | None = None
    pump: threading.Thread | None = None
    termination_file: Path | None = None
    forced_reason: str | None = None  # OOMKilled, ...
    exit_code: int | None = None
    done: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


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
        self.runs: dict[str, _Run] = {}
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
                        self.last_states[name] = self._terminated_state(run)
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
        except _ConfigError as error:
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
        run = _Run(name, container, log, None, time.monotonic(), timestamp())
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

    def _poll(self, run: _Run) -> bool:
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
        variables = self._container_variables(container)
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
        if self._automount():
            chosen += self._credentials()
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

    def _container_variables(self, container: Obj) -> dict[str, str]:
        """The variables the container defines (env and envFrom), which `$(VAR)` can use."""
        defined: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if source.get("configMapRef"):
                ref = source["configMapRef"]
                data = self._config_data("configmaps", ref.get("name", ""), ref.get("optional"))
            elif source.get("secretRef"):
                ref = source["secretRef"]
                data = self._config_data("secrets", ref.get("name", ""), ref.get("optional"))
            else:
                continue
            for key, text in (data or {}).items():
                defined[prefix + key] = text
        for item in container.get("env") or []:
            if item.get("valueFrom"):
                value = self._value_from(item["valueFrom"], container)
                if value is None:
                    continue
            else:
                value = expand(str(item.get("value", "")), defined)
            defined[item["name"]] = value
        return defined

    def _value_from(self, source: Obj, container: Obj) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath", "")
            return _field_value(self.pod, path)
        if "configMapKeyRef" in source or "secretKeyRef" in source:
            plural = "configmaps" if "configMapKeyRef" in source else "secrets"
            ref = source.get("configMapKeyRef") or source.get("secretKeyRef") or {}
            data = self._config_data(plural, ref.get("name", ""), ref.get("optional"))
            if data is None:
                return None
            if ref.get("key") not in data:
                if ref.get("optional"):
                    return None
                kind = "configmap" if plural == "configmaps" else "secret"
                raise _ConfigError(
                    f"couldn't find key {ref.get('key')} in {kind.capitalize()} "
                    f"{self.namespace}/{ref.get('name')}"
                )
            return data[ref["key"]]
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next(
                    (
                        c
                        for c in self.pod["spec"]["containers"]
                        if c["name"] == ref["containerName"]
                    ),
                    container,
                )
            section, _, resource = ref.get("resource", "").partition(".")
            value = dig(target, "resources", section, resource)
            if value is None:
                return "0" if section == "requests" else str(_node_capacity(resource))
            divisor = parse_quantity(ref.get("divisor", "1"))
            amount = parse_quantity(value) / divisor
            return str(int(-(-amount // 1)))
        return None

    def _config_data(self, plural: str, name: str, optional: Any) -> dict[str, str] | None:
        obj = self.store.try_get(BY_PLURAL[plural], self.namespace, name)
        if obj is None:
            if optional:
                return None
            kind = "configmap" if plural == "configmaps" else "secret"
            raise _ConfigError(f'{kind} "{name}" not found')
        if plural == "secrets":
            return {
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (obj.get("data") or {}).items()
            }
        return dict(obj.get("data") or {})

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
                return self._volumes()
            except _MountError as error:
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

    def _volumes(self) -> dict[str, Mount | None]:
        mounts: dict[str, Mount | None] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            read_only = any(source in volume for source in _ALWAYS_READ_ONLY)
            if "persistentVolumeClaim" in volume:
                claim_name = volume["persistentVolumeClaim"]["claimName"]
                claim = self.store.try_get(
                    BY_PLURAL["persistentvolumeclaims"], self.namespace, claim_name
                )
                if claim is None or dig(claim, "status", "phase") != "Bound":
                    raise _MountError(
                        f'MountVolume.SetUp failed for volume "{name}" : persistentvolumeclaim '
                        f'"{claim_name}" is not bound'
                    )
                path = self.k.binder.path_for(claim)
                path.mkdir(parents=True, exist_ok=True)
                mounts[name] = Mount(
                    str(path), "", bool(volume["persistentVolumeClaim"].get("readOnly"))
                )
            elif "configMap" in volume or "secret" in volume:
                self._write_config_volume(volume, target)
                mounts[name] = Mount(str(target), "", True)
            elif "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)
                mounts[name] = Mount(str(target), "", False)
            elif "hostPath" in volume:
                path = Path(volume["hostPath"]["path"])
                if volume["hostPath"].get("type") in ("DirectoryOrCreate",) and not path.exists():
                    path.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    raise _MountError(
                        f'MountVolume.SetUp failed for volume "{name}" : hostPath {path} does not '
                        "exist"
                    )
                mounts[name] = Mount(str(path), "", False)
            elif "downwardAPI" in volume or "projected" in volume:
                self._write_projected_volume(volume, target)
                mounts[name] = Mount(str(target), "", read_only)
            else:
                kind = next((k for k in volume if k != "name"), "unknown")
                raise _MountError(
                    f'MountVolume.SetUp failed for volume "{name}" : the fake kubelet does not '
                    f"support {kind} volumes"
                )
        return mounts

    def _write_config_volume(self, volume: Obj, target: Path) -> None:
        is_secret = "secret" in volume
        source = volume["secret" if is_secret else "configMap"]
        ref_name = source.get("secretName" if is_secret else "name", "")
        plural = "secrets" if is_secret else "configmaps"
        obj = self.store.try_get(BY_PLURAL[plural], self.namespace, ref_name)
        if obj is None:
            if source.get("optional"):
                target.mkdir(parents=True, exist_ok=True)
                return
            kind = "secret" if is_secret else "configmap"
            raise _MountError(
                f'MountVolume.SetUp failed for volume "{volume["name"]}" : {kind} "{ref_name}" '
                "not found"
            )
        files = _config_files(obj, is_secret)
        _write_items(
            target,
            files,
            source.get("items"),
            source.get("defaultMode", 0o644),
            optional=bool(source.get("optional")),
            volume=volume["name"],
        )

    def _write_projected_volume(self, volume: Obj, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        sources = (volume.get("projected") or {}).get("sources") or []
        if "downwardAPI" in volume:
            sources = [{"downwardAPI": volume["downwardAPI"]}]
        for source in sources:
            if "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    if "fieldRef" in item:
                        value = _field_value(self.pod, item["fieldRef"].get("fieldPath", ""))
                        _write_file(target / item["path"], (value or "").encode(), 0o644)
            elif "configMap" in source or "secret" in source:
                is_secret = "secret" in source
                ref = source["secret" if is_secret else "configMap"]
                plural = "secrets" if is_secret else "configmaps"
                obj = self.store.try_get(BY_PLURAL[plural], self.namespace, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise _MountError(
                        f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                        f'{"secret" if is_secret else "configmap"} "{ref.get("name")}" not found'
                    )
                _write_items(
                    target,
                    _config_files(obj, is_secret),
                    ref.get("items"),
                    0o644,
                    optional=bool(ref.get("optional")),
                    volume=volume["name"],
                )
            elif "serviceAccountToken" in source:
                token = self.k.tokens.for_service_account(
                    self.namespace, self.pod["spec"].get("serviceAccountName", "default")
                )
                _write_file(
                    target / source["serviceAccountToken"].get("path", "token"),
                    token.encode(),
                    0o644,
                )

    def _automount(self) -> bool:
        spec = self.pod["spec"]
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        account = self.store.try_get(
            BY_PLURAL["serviceaccounts"], self.namespace, spec.get("serviceAccountName", "default")
        )
        if account is not None and account.get("automountServiceAccountToken") is not None:
            return bool(account["automountServiceAccountToken"])
        return True

    def _credentials(self) -> list[Mount]:
        """The pod's API credentials: the service account directory a pod gets (token,
        namespace, ca.crt) and, unless in-cluster mode serves TLS, a kubeconfig for the fake
        API server."""
        account_dir = self.dir / "serviceaccount"
        kube_dir = self.dir / "kubeconfig"
        if not account_dir.exists():
            account = self.pod["spec"].get("serviceAccountName", "default")
            token = self.k.tokens.for_service_account(self.namespace, account)
            account_dir.mkdir(parents=True)
            _write_file(account_dir / "token", token.encode(), 0o644)
            _write_file(account_dir / "namespace", self.namespace.encode(), 0o644)
            _write_file(account_dir / "ca.crt", self.k.settings.ca_certificate, 0o644)
            kube_dir.mkdir(parents=True)
            config = kubeconfig(
                self.k.settings.api_url,
                token,
                self.namespace,
                user=f"system:serviceaccount:{self.namespace}:{account}",
            )
            _write_file(kube_dir / "kubeconfig", config.encode(), 0o644)
        mounts = [Mount(str(account_dir), SERVICE_ACCOUNT_DIR, True)]
        if self.k.settings.in_cluster_port is None:
            mounts.append(Mount(str(kube_dir), KUBECONFIG_DIR, True))
        return mounts

    # ------------------------------------------------------------------ status

    def _terminated_state(self, run: _Run) -> Obj:
        code = run.exit_code if run.exit_code is not None else 0
        if run.forced_reason:
            reason = run.forced_reason
        elif run.start_error is not None:
            reason = "StartError"
        else:
            reason = "Completed" if code == 0 else "Error"
        state: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": run.started_at if run.start_error is None else "1970-01-01T00:00:00Z",
            "finishedAt": run.extra.get("finished_at", timestamp()),
            "containerID": f"fakecluster://{self.uid}/{run.name}",
        }
        message = run.start_error or self._termination_message(run, code)
        if message:
            state["message"] = message
        return {"terminated": state}

    def _termination_message(self, run: _Run, code: int) -> str | None:
        if run.termination_file is not None and run.termination_file.exists():
            text = run.termination_file.read_bytes()[:4096].decode(errors="replace")
            if text:
                return text
        if code != 0 and run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = run.log.text().splitlines(keepends=True)[-80:]
            return b"".join(lines)[-2048:].decode(errors="replace")
        return None

    def _container_status(self, container: Obj) -> Obj:
        name = container["name"]
        run = self.runs.get(name)
        status: Obj = {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "ready": False,
            "restartCount": self.restart_counts.get(name, 0),
            "started": False,
        }
        if name in self.waiting:
            reason, message = self.waiting[name]
            state: Obj = {"waiting": {"reason": reason}}
            if message:
                state["waiting"]["message"] = message
            status["state"] = state
        elif run is not None and run.done:
            status["state"] = self._terminated_state(run)
            status["containerID"] = f"fakecluster://{self.uid}/{name}"
            status["imageID"] = f"{container.get('image', '')}@sha256:{'0' * 64}"
        elif run is not None:
            status["state"] = {"running": {"startedAt": run.started_at}}
            status["ready"] = True
            status["started"] = True
            status["containerID"] = f"fakecluster://{self.uid}/{name}"
            status["imageID"] = f"{container.get('image', '')}@sha256:{'0' * 64}"
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        if name in self.last_states:
            status["lastState"] = self.last_states[name]
        else:
            status["lastState"] = {}
        return status

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


class _MountError(Exception):
    pass


class _ConfigError(Exception):
    pass


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


def _field_value(pod: Obj, path: str) -> str | None:
    meta = pod["metadata"]
    if path.startswith("metadata.labels['") and path.endswith("']"):
        return str((meta.get("labels") or {}).get(path[len("metadata.labels['") : -2], ""))
    if path.startswith("metadata.annotations['") and path.endswith("']"):
        return str(
            (meta.get("annotations") or {}).get(path[len("metadata.annotations['") : -2], "")
        )
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": dig(pod, "spec", "nodeName"),
        "spec.serviceAccountName": dig(pod, "spec", "serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    value = simple.get(path)
    return str(value) if value is not None else ""


def _node_capacity(resource: str) -> int:
    if resource == "cpu":
        return os.cpu_count() or 1
    if resource == "memory":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return 0


def _config_files(obj: Obj, is_secret: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        files[key] = base64.b64decode(value) if is_secret else value.encode()
    for key, value in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files


def _write_items(
    target: Path,
    files: dict[str, bytes],
    items: list[Obj] | None,
    mode: int,
    *,
    optional: bool,
    volume: str,
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if items:
        for item in items:
            key = item.get("key", "")
            if key not in files:
                if optional:
                    continue
                raise _MountError(
                    f'MountVolume.SetUp failed for volume "{volume}" : configmap references '
                    f"non-existent config key: {key}"
                )
            _write_file(target / str(item.get("path") or key), files[key], item.get("mode", mode))
    else:
        for key, content in files.items():
            _write_file(target / key, content, mode)


def _write_file(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def kubeconfig(server: str, token: str, namespace: str, *, user: str) -> str:
    """A kubeconfig for the fake API server (plain HTTP on loopback, bearer token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fakecluster", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": "fakecluster",
                "context": {"cluster": "fakecluster", "user": user, "namespace": namespace},
            }
        ],
        "current-context": "fakecluster",
    }
    return yaml.safe_dump(config, sort_keys=False)
