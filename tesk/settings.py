"""The effective settings of a TESK process.

In order, later ones winning: tesk/config.yaml (the defaults), config overlay files (TESK_CONFIG or
`--config`, then FOCA_CONFIG_OVERLAY), TESK_* environment variables, command-line flags. The
`custom:` section becomes a CustomConfig; unknown keys anywhere in it are a start-up error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from foca.config.config_parser import ConfigParser
from foca.models.config import Config
from pydantic import ValidationError

from tesk.config import CustomConfig
from tesk.tes.validation import field_path

DEFAULT_CONFIG = Path(__file__).with_name("config.yaml")

ENV_HOST = "TESK_HOST"
ENV_PORT = "TESK_PORT"
ENV_DATA_DIR = "TESK_DATA_DIR"
ENV_BACKEND = "TESK_BACKEND"
ENV_RUNTIME = "TESK_RUNTIME"
ENV_STORE_URL = "TESK_STORE_URL"
ENV_FILE_ROOTS = "TESK_FILE_ROOTS"
ENV_CONFIG = "TESK_CONFIG"
ENV_LOG_FORMAT = "TESK_LOG_FORMAT"
# How `tesk serve` runs its API workers (read by tesk/server.py, not part of the FOCA config).
ENV_WORKER_CLASS = "TESK_WORKER_CLASS"
ENV_WORKER_THREADS = "TESK_WORKER_THREADS"
# Threaded workers keep client connections alive (a sync worker closes every connection after
# one response, and accepting and closing was a third of a GetTask) and go on answering while
# one request waits for the database, e.g. for SQLite's sync of a commit. Measured against sync
# workers in docs/performance.md; more threads at once only added GIL contention on 2 cores.
DEFAULT_WORKER_CLASS = "gthread"
DEFAULT_REQUEST_THREADS = 4


@dataclass(frozen=True)
class WorkerModel:
    """How each API worker of `tesk serve` answers requests (TESK_WORKER_CLASS and
    TESK_WORKER_THREADS). `request_threads` answer ordinary requests; followers of live streams
    get threads of their own on top (tesk/api/gate.py), and a sync worker cannot stream at all."""

    worker_class: str = DEFAULT_WORKER_CLASS
    request_threads: int = DEFAULT_REQUEST_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WorkerModel:
        worker_class = env.get(ENV_WORKER_CLASS) or DEFAULT_WORKER_CLASS
        threads = env.get(ENV_WORKER_THREADS) or str(DEFAULT_REQUEST_THREADS)
        try:
            count = int(threads)
        except ValueError:
            detail = f"{ENV_WORKER_THREADS} must be a whole number, got {threads!r}"
            raise ConfigError(detail) from None
        if count < 1:
            raise ConfigError(f"{ENV_WORKER_THREADS} must be at least 1, got {count}")
        if worker_class != "gthread":
            count = 1  # gunicorn turns a sync worker with more than one thread into gthread
        return cls(worker_class, count)

    @property
    def streams(self) -> bool:
        return self.worker_class == "gthread"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why (one line)."""


@dataclass(frozen=True)
class Overrides:
    """What the environment or the command line sets on top of the config files (None: unset)."""

    host: str | None = None
    port: int | None = None
    data_dir: Path | None = None
    backend: str | None = None
    runtime: str | None = None
    store_url: str | None = None
    file_roots: tuple[Path, ...] | None = None
    config_files: tuple[Path, ...] | None = None
    log_format: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Overrides:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        port = get(ENV_PORT)
        roots = get(ENV_FILE_ROOTS)
        configs = get(ENV_CONFIG)
        data_dir = get(ENV_DATA_DIR)
        return cls(
            host=get(ENV_HOST),
            port=_parse_port(port, ENV_PORT) if port is not None else None,
            data_dir=Path(data_dir) if data_dir is not None else None,
            backend=get(ENV_BACKEND),
            runtime=get(ENV_RUNTIME),
            store_url=get(ENV_STORE_URL),
            file_roots=_split_paths(roots) if roots is not None else None,
            config_files=_split_paths(configs) if configs is not None else None,
            log_format=get(ENV_LOG_FORMAT),
        )

    def over(self, base: Overrides) -> Overrides:
        """These overrides on top of `base` (what is set here wins)."""
        changes = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(base, **{k: v for k, v in changes.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these overrides in another process."""
        env: dict[str, str] = {}
        if self.host is not None:
            env[ENV_HOST] = self.host
        if self.port is not None:
            env[ENV_PORT] = str(self.port)
        if self.data_dir is not None:
            env[ENV_DATA_DIR] = str(self.data_dir.absolute())
        if self.backend is not None:
            env[ENV_BACKEND] = self.backend
        if self.runtime is not None:
            env[ENV_RUNTIME] = self.runtime
        if self.store_url is not None:
            env[ENV_STORE_URL] = self.store_url
        if self.file_roots is not None:
            env[ENV_FILE_ROOTS] = os.pathsep.join(str(p.absolute()) for p in self.file_roots)
        if self.config_files is not None:
            env[ENV_CONFIG] = os.pathsep.join(str(p.absolute()) for p in self.config_files)
        if self.log_format is not None:
            env[ENV_LOG_FORMAT] = self.log_format
        return env


@dataclass(frozen=True)
class Settings:
    config_files: tuple[Path, ...]
    """Every FOCA config file, in merge order, starting with tesk/config.yaml."""
    foca: Config
    """The FOCA config with the overrides applied; its `custom` is `custom` below."""
    custom: CustomConfig
    overrides: Overrides

    @property
    def host(self) -> str:
        return self.foca.server.host

    @property
    def port(self) -> int:
        return self.foca.server.port


def load_settings(
    overrides: Overrides | None = None,
    *,
    env: Mapping[str, str] | None = None,
    configure_logging: bool = False,
) -> Settings:
    """Read the config files and apply env and CLI overrides. Raises ConfigError."""
    effective = (overrides or Overrides()).over(
        Overrides.from_env(os.environ if env is None else env)
    )
    extra = effective.config_files or ()
    for path in extra:
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
    files = (DEFAULT_CONFIG, *extra)
    foca = _parse_foca(files, configure_logging)
    if effective.host is not None:
        foca.server.host = effective.host
    if effective.port is not None:
        foca.server.port = effective.port
    custom = _custom_config(getattr(foca, "custom", None), effective)
    setattr(foca, "custom", custom)  # noqa: B010 (an extra field of FOCA's Config)
    return Settings(config_files=files, foca=foca, custom=custom, overrides=effective)


def _parse_foca(files: Sequence[Path], configure_logging: bool) -> Config:
    try:
        parser = ConfigParser(config_file=list(files), format_logs=configure_logging)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from None
    except (OSError, ValueError) as exc:
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        raise ConfigError(" ".join(f"invalid configuration: {exc}{cause}".split())) from None
    config = parser.config
    # FOCA accepts any extra top-level section; besides `custom`, one is most likely a typo.
    unknown = sorted(set(config.model_extra or {}) - {"custom"})
    if unknown:
        known = ", ".join(sorted([*Config.model_fields, "custom"]))
        raise ConfigError(
            f"invalid configuration: unknown section(s) {', '.join(unknown)} (known: {known})"
        )
    return config


def _custom_config(raw: object, overrides: Overrides) -> CustomConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError("invalid configuration: 'custom' must be a mapping")
    data: dict[str, Any] = dict(raw)
    if overrides.data_dir is not None:
        data["data_dir"] = overrides.data_dir
    if overrides.backend is not None:
        data["backend"] = overrides.backend
    if overrides.runtime is not None:
        _section(data, "local")["runtime"] = overrides.runtime
    if overrides.store_url is not None:
        _section(data, "store")["url"] = overrides.store_url
    if overrides.file_roots is not None:
        _section(data, "filer")["file_roots"] = list(overrides.file_roots)
    if overrides.log_format is not None:
        _section(data, "logging")["format"] = overrides.log_format
    try:
        return CustomConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc, 'custom')}") from None


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    current = data.get(name)
    section = dict(current) if isinstance(current, Mapping) else {}
    data[name] = section
    return section


def _describe(exc: ValidationError, prefix: str = "") -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = field_path([prefix, *error["loc"]] if prefix else error["loc"])
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def _parse_port(value: str, name: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"{name} must be a port number between 1 and 65535, not {value!r}")
    return int(value)


def _split_paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(part) for part in value.split(os.pathsep) if part)
