"""The ComputeBackend contract. The service never asks which backend it talks to.

Reconciling what the store believes with what really runs is each backend's own background
work, started with `start()` in the serving process (the local runner's recovery, sweeps and
orphan checks; the Kubernetes reconciler's watches and resyncs): nothing outside a backend knows
when it is due, so the contract has no call for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from tesk.store.base import TaskRecord
from tesk.tes.models import Task
from tesk.tes.states import State


class BackendError(Exception):
    """The backend could not accept or stop a task; the message says why (no credentials)."""


class ComputeBackend(Protocol):
    def submit(self, record: TaskRecord) -> None:
        """Start the engine for a stored QUEUED task somewhere. Raises BackendError."""

    def cancel(self, task_id: str, previous_state: State) -> None:
        """Tear down everything of a task that was just stored as CANCELING.

        `previous_state` is the state it was in before. The backend moves the task to CANCELED once
        nothing of it is left (possibly later, from its own loop).
        """

    def supported_backend_parameters(self) -> Sequence[str]:
        """The `resources.backend_parameters` keys this backend understands (lower case)."""

    def check_backend_parameters(self, parameters: Mapping[str, str]) -> None:
        """Raise ValueError with a message when a supported key has an unusable value."""

    def check_task(self, task: Task) -> None:
        """Raise ValueError naming the field when this backend could never run the task."""

    def start(self) -> None:
        """Start background work (runner, reconciler) in the serving process; API processes
        never call it."""

    def stop(self) -> None: ...
