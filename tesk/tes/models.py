"""Pydantic models of the TES v1.1.0 schemas.

Every model keeps track of which fields were set, and `dump()` serialises only those: a task is
returned with the fields its client sent plus the ones the server filled in, never with echoed
defaults (strict clients such as py-tes 0.4 reject TES 1.1 fields they do not know).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tesk.tes.states import State


class FileType(StrEnum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"


class View(StrEnum):
    MINIMAL = "MINIMAL"
    BASIC = "BASIC"
    FULL = "FULL"


class TesModel(BaseModel):
    # Unknown fields are not part of the contract: they are dropped, not stored or echoed.
    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    def dump(self) -> dict[str, Any]:
        """JSON-ready dict of the fields that were set (sent by a client or filled in by TESK)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


class Input(TesModel):
    name: str | None = None
    description: str | None = None
    url: str | None = None
    path: str
    type: FileType | None = None
    content: str | None = None
    streamable: bool | None = None


class Output(TesModel):
    name: str | None = None
    description: str | None = None
    url: str
    path: str
    path_prefix: str | None = None
    type: FileType | None = None


class Resources(TesModel):
    cpu_cores: int | None = None
    preemptible: bool | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    zones: list[str] | None = None
    backend_parameters: dict[str, str] | None = None
    backend_parameters_strict: bool | None = None


class Executor(TesModel):
    image: str
    command: list[str] = Field(min_length=1)
    workdir: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] | None = None
    ignore_error: bool | None = None


class ExecutorLog(TesModel):
    start_time: str | None = None
    end_time: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int


class OutputFileLog(TesModel):
    url: str
    path: str
    size_bytes: str

    def size(self) -> int:
        """size_bytes as a number (0 when it is not one)."""
        try:
            return max(0, int(self.size_bytes))
        except ValueError:
            return 0


class TaskLog(TesModel):
    logs: list[ExecutorLog] = Field(default_factory=list)
    metadata: dict[str, str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    outputs: list[OutputFileLog] = Field(default_factory=list)
    system_logs: list[str] | None = None

    @model_validator(mode="after")
    def _always_serialise_required_lists(self) -> TaskLog:
        # `logs` and `outputs` are required by the spec, so they count as set even when empty.
        self.__pydantic_fields_set__.update({"logs", "outputs"})
        return self


class Task(TesModel):
    id: str | None = None
    state: State | None = None
    name: str | None = None
    description: str | None = None
    inputs: list[Input] | None = None
    outputs: list[Output] | None = None
    resources: Resources | None = None
    executors: list[Executor] = Field(min_length=1)
    volumes: list[str] | None = None
    tags: dict[str, str] | None = None
    logs: list[TaskLog] | None = None
    creation_time: str | None = None


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with a `Z` suffix, as every TES client parses it."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_seconds(moment: str | None) -> float | None:
    """The POSIX time of an RFC 3339 timestamp with an offset; None if absent or unreadable."""
    if not moment:
        return None
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None
