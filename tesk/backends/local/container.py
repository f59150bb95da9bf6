"""Executors in docker or podman containers (the same command-line shape, another binary).

Each executor is one `run --rm` with a unique name (tesk-<task id>-<index>) and TESK's labels,
so that a cancel or a restarted runner can find and remove it. The task's mount points are
bind-mounted at their TES paths, the command replaces the image's entrypoint (as the `command`
of a Kubernetes container does), and the container's output goes straight to the executor's
files: podman hands the files to the container (`--log-driver passthrough`); docker streams
them through its client without keeping a log (`--log-driver none`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from tesk.backends.local import cgroups
from tesk.backends.local.launcher import (
    ExecutorUser,
    LauncherUnavailable,
    LaunchRefused,
    LaunchSpec,
    Outcome,
    last_lines,
    spawn,
)
from tesk.engine.usage import ExecutorUsage

ENGINE_ERROR_EXIT = 125  # docker/podman: the engine failed (no such image, bad option...)

# Variables the container client itself relies on; an executor's own value for one of them is
# passed on the command line instead of through the client's environment.
_CLIENT_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "CONTAINERS_CONF",
        "CONTAINERS_STORAGE_CONF",
        "CONTAINERS_REGISTRIES_CONF",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "DOCKER_HOST",
        "DOCKER_CONFIG",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "REGISTRY_AUTH_FILE",
        "STORAGE_DRIVER",
        "STORAGE_OPTS",
    }
)

_KILL_WAIT_S = 10.0


class ContainerLauncher:
    ignores_images = False
    enforces_resources = True

    def __init__(
        self,
        engine: Literal["docker", "podman"],
        *,
        network: bool = True,
        user: ExecutorUser | None = None,
        containers_conf: Path | None = None,
        binary: str | None = None,
    ) -> None:
        self.name: str = engine
        self._engine = engine
        self._binary = binary or engine
        self._network = network
        self._user = user
        self._log_driver = "passthrough" if engine == "podman" else "none"
        self._client_env = dict(os.environ)
        # podman's cgroupfs manager as root: each container below a cgroup of TESK's that
        # outlives it, so that its usage can be read (cgroups.py).
        self.measures_usage = False
        if containers_conf is not None:
            self._client_env["CONTAINERS_CONF"] = str(containers_conf)

    def check(self) -> None:
        path = shutil.which(self._binary)
        if path is None:
            raise LauncherUnavailable(f"{self._binary} is not installed")
        self._binary = path
        if self._engine == "docker":
            self._check_docker()
        else:
            self._check_podman()

    def _check_docker(self) -> None:
        result = self._client(["version", "--format", "{{.Server.Version}}"], timeout=15)
        if result.returncode != 0:
            raise LauncherUnavailable(f"the Docker engine does not answer: {_message(result)}")

    def _check_podman(self) -> None:
        # Run a container without any image: an empty root file system and a command that
        # does not exist. A working runtime says "not found" (127); a broken one (an OCI
        # runtime that cannot start containers on this kernel, ulimits it may not set) fails
        # differently and says why. Podman before 4 lacks the passthrough log driver; its
        # attach streams work with none.
        for driver in ("passthrough", "none"):
            with tempfile.TemporaryDirectory(
                prefix="tesk-podman-probe-", ignore_cleanup_errors=True
            ) as rootfs:
                probe = ["run", "--rm", "--network", "none", "--log-driver", driver]
                result = self._client([*probe, "--rootfs", rootfs, "/tesk-probe"], timeout=60)
            if result.returncode == 127:
                self._log_driver = driver
                self.measures_usage = self._cgroupfs() and cgroups.usable()
                return
            if b"log driver" not in result.stderr:
                break
        raise LauncherUnavailable(f"podman cannot run containers here: {_message(result)}")

    def _cgroupfs(self) -> bool:
        result = self._client(["info", "--format", "{{.Host.CgroupManager}}"], timeout=60)
        return result.returncode == 0 and result.stdout.decode().strip() == "cgroupfs"

    def _client(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [self._binary, *args],
                capture_output=True,
                timeout=timeout,
                env=self._client_env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LauncherUnavailable(f"{self._binary} {args[0]} failed: {exc}") from exc

    def launch(self, spec: LaunchSpec) -> ContainerProcess:
        env = dict(self._client_env)
        argv = self.argv(spec, env)
        return ContainerProcess(self, spec, spawn(argv, spec, env=env))

    def argv(self, spec: LaunchSpec, client_env: dict[str, str]) -> list[str]:
        """The `run` command line; executor variables are added to `client_env`."""
        args = [self._binary, "run", "--rm", "--name", spec.name]
        for key, value in sorted(spec.labels.items()):
            args += ["--label", f"{key}={value}"]
        args += ["--log-driver", self._log_driver]
        if self.measures_usage:
            args += ["--cgroup-parent", cgroups.ContainerCgroup(spec.name).parent]
        if spec.stdin is not None:
            args.append("--interactive")
        for bind in spec.binds:
            for part in (str(bind.host), bind.container):
                if ":" in part or "," in part:
                    raise LaunchRefused(f"{self.name} cannot mount {part!r} (':' or ',' in it)")
            args += ["--volume", f"{bind.host}:{bind.container}"]
        if spec.workdir:
            args += ["--workdir", spec.workdir]
        for key, value in sorted(spec.env.items()):
            # By name, with the value in the client's environment: values (credentials) stay
            # out of the process table.
            if key in _CLIENT_VARIABLES:
                args += ["--env", f"{key}={value}"]
            else:
                client_env[key] = value
                args += ["--env", key]
        if spec.cpu_cores:
            args += ["--cpus", str(spec.cpu_cores)]
        if spec.ram_gb:
            args += ["--memory", f"{max(1, round(spec.ram_gb * 1024))}m"]
        if not self._network:
            args += ["--network", "none"]
        if self._user is not None:
            args += ["--user", str(self._user)]
        command = list(spec.command)
        args += ["--entrypoint", command[0], spec.image, *command[1:]]
        return args

    def remove(self, *names: str) -> None:
        """Kill and remove containers at once, whether they run, exist or not."""
        if not names:
            return
        force = ["rm", "--force"]
        if self._engine == "podman":
            force += ["--time", "0", "--ignore"]
        with contextlib.suppress(LauncherUnavailable):
            self._client([*force, *names], timeout=60)

    def remove_leftovers(self, labels: Mapping[str, str]) -> None:
        query = ["ps", "--all", "--quiet"]
        for key, value in labels.items():
            query += ["--filter", f"label={key}={value}"]
        try:
            result = self._client(query, timeout=60)
        except LauncherUnavailable:
            return
        ids = result.stdout.decode().split()
        self.remove(*ids)


class ContainerProcess:
    def __init__(
        self, launcher: ContainerLauncher, spec: LaunchSpec, process: subprocess.Popen[bytes]
    ) -> None:
        self._launcher = launcher
        self._spec = spec
        self._process = process
        self._killed = False
        self._exited = threading.Event()

    def wait(self) -> Outcome:
        try:
            returncode = self._process.wait()
        finally:
            self._exited.set()
        if self._killed:
            # The client may have been killed before it created the container: make sure no
            # container of this name runs on.
            self._launcher.remove(self._spec.name)
        usage = self._usage()
        if returncode < 0:
            return Outcome(128 - returncode, reason=f"killed by signal {-returncode}")
        if returncode == ENGINE_ERROR_EXIT:
            lines = last_lines(self._spec.stderr, 3)
            message = " / ".join(lines) or f"{self._launcher.name} run failed"
            return Outcome(returncode, failure=message)
        return Outcome(returncode, usage=usage)

    def _usage(self) -> ExecutorUsage | None:
        """What the container used, read from its parent cgroup, which goes with it."""
        if not self._launcher.measures_usage:
            return None
        cgroup = cgroups.ContainerCgroup(self._spec.name)
        try:
            return cgroup.usage()
        finally:
            cgroup.remove()

    def kill(self) -> None:
        self._killed = True
        self._launcher.remove(self._spec.name)
        if not self._exited.wait(_KILL_WAIT_S) and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)


def _message(result: subprocess.CompletedProcess[bytes]) -> str:
    text = (result.stderr or result.stdout).decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return " / ".join(lines[-3:]) or f"exit code {result.returncode}"
