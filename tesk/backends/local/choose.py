"""Which launcher starts the executors (config `local.runtime`): the configured one, or the first
that works (`auto`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tesk.backends.local.bwrap import BwrapLauncher
from tesk.backends.local.container import ContainerLauncher
from tesk.backends.local.launcher import ExecutorUser, Launcher, LauncherUnavailable
from tesk.config import LocalConfig

logger = logging.getLogger(__name__)

AUTO_ORDER = ("docker", "podman", "bwrap")

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) or podman, or start a "
    "Docker engine, or set local.runtime to one that works"
)


def build_launcher(kind: str, config: LocalConfig, hidden: Sequence[Path]) -> Launcher:
    user = ExecutorUser.parse(config.executor_user) if config.executor_user else None
    network = config.network != "none"
    if kind == "bwrap":
        return BwrapLauncher(network=network, hidden=hidden, user=user)
    if kind in ("docker", "podman"):
        return ContainerLauncher(
            "docker" if kind == "docker" else "podman",
            network=network,
            user=user,
            containers_conf=config.containers_conf,
        )
    raise ValueError(f"unknown local runtime {kind!r}")


def choose_launcher(config: LocalConfig, hidden: Sequence[Path]) -> Launcher:
    """A launcher that was checked to work here. Raises LauncherUnavailable saying why not."""
    kinds = AUTO_ORDER if config.runtime == "auto" else (config.runtime,)
    problems: list[str] = []
    for kind in kinds:
        launcher = build_launcher(kind, config, hidden)
        try:
            launcher.check()
        except LauncherUnavailable as exc:
            problems.append(f"{kind}: {exc}")
            continue
        if config.runtime == "auto":
            logger.info("local runtime: %s (the first that works of %s)", kind, AUTO_ORDER)
        return launcher
    detail = "; ".join(problems)
    if config.runtime == "auto":
        raise LauncherUnavailable(f"no local runtime works here ({detail}); {INSTALL_HINT}")
    raise LauncherUnavailable(f"the configured local runtime does not work ({detail})")
