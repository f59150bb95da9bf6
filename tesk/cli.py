"""The `tesk` command: server, taskmaster, filer and client commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tesk.auth.cli import user
from tesk.client.commands import COMMANDS as CLIENT_COMMANDS
from tesk.client.events import events


@click.group()
@click.version_option(package_name="tesk")
def main() -> None:
    """TESK: a GA4GH Task Execution Service."""


@main.command()
@click.option("--host", help="Address to listen on [config: 127.0.0.1; env: TESK_HOST].")
@click.option(
    "--port", type=click.IntRange(1, 65535), help="Port to listen on [8080; env: TESK_PORT]."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where tasks and the SQLite store live [./.tesk; env: TESK_DATA_DIR].",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "kubernetes"]),
    help="Where tasks run [local; env: TESK_BACKEND].",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "docker", "podman", "bwrap"]),
    help="Local container runtime [auto; env: TESK_RUNTIME].",
)
@click.option("--store-url", help="SQLAlchemy URL of the task store [env: TESK_STORE_URL].")
@click.option(
    "--file-root",
    "file_roots",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory file:// URLs may point into; repeatable [env: TESK_FILE_ROOTS].",
)
@click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config overlay file (FOCA YAML); repeatable, later ones win [env: TESK_CONFIG].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="API worker processes.",
)
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    backend: str | None,
    runtime: str | None,
    store_url: str | None,
    file_roots: tuple[Path, ...],
    config_files: tuple[Path, ...],
    workers: int,
) -> None:
    """Serve the TES API (gunicorn workers) and run tasks (this process)."""
    # Imported here: FOCA and Connexion take a while to load, and other commands need neither.
    from tesk.server import serve as run_server
    from tesk.settings import Overrides

    overrides = Overrides(
        host=host,
        port=port,
        data_dir=data_dir,
        backend=backend,
        runtime=runtime,
        store_url=store_url,
        file_roots=file_roots or None,
        config_files=config_files or None,
    )
    sys.exit(run_server(overrides, workers))


@main.command()
@click.option(
    "--task-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The mounted task ConfigMap (task.json, taskmaster.json, filer.json).",
)
def taskmaster(task_dir: Path) -> None:
    """Run one task in a Kubernetes taskmaster pod (started by the kubernetes backend)."""
    from tesk.backends.kubernetes.taskmaster import main as run_taskmaster

    sys.exit(run_taskmaster(task_dir))


@main.command()
@click.argument("direction", type=click.Choice(["inputs", "outputs"]))
@click.option(
    "--task",
    "task_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The TES task document (JSON).",
)
@click.option(
    "--filer-config",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The filer settings (JSON of the `filer` config section); default: built-in defaults.",
)
@click.option(
    "--volume",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The task volume: every TES path P of the task lives at VOLUME/P.",
)
@click.option(
    "--executors-failed", is_flag=True, help="Outputs: missing files are no error (best effort)."
)
def filer(
    direction: str,
    task_file: Path,
    filer_config: Path | None,
    volume: Path,
    executors_failed: bool,
) -> None:
    """Stage a task's inputs into, or outputs out of, its volume; print the result as JSON."""
    from tesk.backends.kubernetes.filerpod import run as run_filer

    sys.exit(run_filer(direction, task_file, filer_config, volume, executors_failed))


main.add_command(user)
for _command in (*CLIENT_COMMANDS, events):
    main.add_command(_command)
