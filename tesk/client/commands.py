"""The client commands of `tesk`: submit, run, list, get, cancel, wait, logs, service-info.

They talk to any TES v1.1 server over HTTP. Exit codes: 0 success, 1 an error (the server's
reason on one line), 2 a usage error; `wait` (and `--wait`) adds 3..7 for how tasks ended
(tesk.client.waiting).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

import click

from tesk.client.display import (
    is_terminal,
    print_json,
    print_tasks,
    print_usage,
    progress_display,
)
from tesk.client.http import DEFAULT_URL, ClientError, Credentials, TesClient
from tesk.client.taskdoc import build_task, parse_tag_filter, parse_task
from tesk.client.waiting import Waiter

F = TypeVar("F", bound=Callable[..., Any])

ENV_DEBUG = "TESK_DEBUG"
"""Set to show the traceback of an unexpected client error instead of one line."""

VIEWS = ("MINIMAL", "BASIC", "FULL")
STATES = (
    "UNKNOWN",
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "PAUSED",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
    "PREEMPTED",
    "CANCELING",
)


def connection_options(command: F) -> F:
    """--url/--token/--user/--password (or TESK_URL, ...); the command gets a `client`."""

    @click.option(
        "--url",
        envvar="TESK_URL",
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="TES server, with or without the /ga4gh/tes/v1 base path.",
    )
    @click.option(
        "--token", envvar="TESK_TOKEN", show_envvar=True, help="Bearer token to authenticate."
    )
    @click.option(
        "--user", envvar="TESK_USER", show_envvar=True, help="User name for HTTP Basic auth."
    )
    @click.option(
        "--password",
        envvar="TESK_PASSWORD",
        show_envvar=True,
        help="Password for HTTP Basic auth (prompted for on a terminal if missing).",
    )
    @functools.wraps(command)
    def wrapper(
        *args: Any,
        url: str,
        token: str | None,
        user: str | None,
        password: str | None,
        **kwargs: Any,
    ) -> Any:
        credentials = _credentials(token, user, password)
        try:
            client = TesClient(url, credentials)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--url' / TESK_URL") from None
        with client:
            try:
                return command(*args, client=client, **kwargs)
            except ClientError as exc:
                raise click.ClickException(str(exc)) from None
            except (click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
                raise
            except Exception as exc:
                if os.environ.get(ENV_DEBUG):
                    raise
                raise click.ClickException(
                    f"internal error: {type(exc).__name__}: {exc} (set {ENV_DEBUG}=1 to see where)"
                ) from None

    return wrapper  # type: ignore[return-value]


def wait_options(command: F) -> F:
    command = click.option(
        "--interval",
        type=click.FloatRange(min=0.1),
        default=1.0,
        show_default=True,
        metavar="SECONDS",
        help="Time between two looks at the tasks.",
    )(command)
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="Give up waiting after this long (exit code 7).",
    )(command)


# -- commands --------------------------------------------------------------------------------------


@click.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), metavar="FILE|-")
@click.option("--wait", is_flag=True, help="Then wait for the task (see `tesk wait`).")
@wait_options
@connection_options
def submit(
    client: TesClient, file: TextIO, wait: bool, interval: float, timeout: float | None
) -> None:
    """Create a task from a TES task document (JSON or YAML; - reads standard input).

    Prints the new task's id alone on standard output.
    """
    try:
        task = parse_task(file.read(), "standard input" if file.name == "<stdin>" else file.name)
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.UsageError(str(exc)) from None
    _create_and_maybe_wait(client, task, wait, interval, timeout)


@click.command(context_settings={"allow_interspersed_args": False})
@click.argument("image")
@click.argument("command", nargs=-1, required=True)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="PATH=URL|PATH=@FILE",
    help="An input: downloaded from URL, or the text of local FILE sent with the task "
    "(@- for standard input). Repeatable.",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    metavar="PATH=URL",
    help="An output uploaded to URL; a PATH with wildcards uploads every match. Repeatable.",
)
@click.option("--cpu", type=click.IntRange(min=1), help="CPU cores.")
@click.option("--ram", type=click.FloatRange(min=0, min_open=True), metavar="GB", help="RAM.")
@click.option("--disk", type=click.FloatRange(min=0, min_open=True), metavar="GB", help="Disk.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag. Repeatable.")
@click.option("--name", help="Task name.")
@click.option("--workdir", help="Working directory of the command in the container.")
@click.option(
    "--env", "-e", multiple=True, metavar="NAME=VALUE", help="Environment variable. Repeatable."
)
@click.option("--wait", is_flag=True, help="Then wait for the task (see `tesk wait`).")
@wait_options
@connection_options
def run(
    client: TesClient,
    image: str,
    command: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    cpu: int | None,
    ram: float | None,
    disk: float | None,
    tags: tuple[str, ...],
    name: str | None,
    workdir: str | None,
    env: tuple[str, ...],
    wait: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Run COMMAND in a container of IMAGE as a one-executor task.

    Options go before IMAGE; everything after IMAGE (or after --) is the command:

        tesk run --name hello alpine -- echo hello

    Prints the new task's id alone on standard output.
    """
    if command[:1] == ("--",):
        command = command[1:]  # the separator, kept as an argument once IMAGE was read
    try:
        task = build_task(
            image,
            command,
            inputs=inputs,
            outputs=outputs,
            cpu=cpu,
            ram_gb=ram,
            disk_gb=disk,
            tags=tags,
            name=name,
            workdir=workdir,
            env=env,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _create_and_maybe_wait(client, task, wait, interval, timeout)


@click.command("list")
@click.option("--state", type=click.Choice(STATES, case_sensitive=False), help="Only this state.")
@click.option("--name-prefix", help="Only tasks whose name starts with this.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Only tasks with this tag (any value without =VALUE). Repeatable: all must match.",
)
@click.option("--page-size", type=click.IntRange(1, 2047), help="Tasks per page.")
@click.option("--page-token", help="Start at this page (next_page_token of a listing).")
@click.option("--all", "follow", is_flag=True, help="Follow page tokens to list every task.")
@click.option(
    "--view",
    type=click.Choice(VIEWS, case_sensitive=False),
    default="BASIC",
    show_default=True,
    help="How much of each task to fetch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
@connection_options
def list_command(
    client: TesClient,
    state: str | None,
    name_prefix: str | None,
    tags: tuple[str, ...],
    page_size: int | None,
    page_token: str | None,
    follow: bool,
    view: str,
    as_json: bool,
) -> None:
    """List tasks, newest first: a table on a terminal, else one line per task
    (id, state, name, creation time; tab-separated)."""
    try:
        tag_filter = [parse_tag_filter(item) for item in tags]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    filters: dict[str, Any] = {
        "view": view.upper(),
        "page_size": page_size,
        "name_prefix": name_prefix,
        "state": state.upper() if state else None,
        "tags": tag_filter,
    }
    out = sys.stdout
    if follow:
        tasks = list(client.iter_tasks(page_token=page_token, **filters))
        if as_json:
            print_json({"tasks": tasks}, out)
        else:
            print_tasks(tasks, out)
        return
    page = client.list_tasks(page_token=page_token, **filters)
    if as_json:
        print_json(page, out)
        return
    print_tasks(page.get("tasks") or [], out)
    token = page.get("next_page_token")
    if token:
        click.echo(f"more tasks: --page-token {token} (or --all)", err=True)


@click.command()
@click.argument("task_id", metavar="ID")
@click.option(
    "--view",
    type=click.Choice(VIEWS, case_sensitive=False),
    default="FULL",
    show_default=True,
    help="MINIMAL: id and state; BASIC: no logs' stdout/stderr; FULL: everything.",
)
@click.option(
    "--usage",
    "usage_only",
    is_flag=True,
    help="Print only what each attempt used (its logs' usage.* metadata), as text.",
)
@connection_options
def get(client: TesClient, task_id: str, view: str, usage_only: bool) -> None:
    """Print a task as JSON; on a terminal, followed by what each attempt used."""
    task = client.get_task(task_id, view.upper())
    if usage_only:
        print_usage(task, sys.stdout)
        return
    print_json(task, sys.stdout)
    if is_terminal(sys.stdout):  # a pipe gets the JSON alone, as scripts parse it
        print_usage(task, sys.stdout)


@click.command()
@click.argument("task_ids", nargs=-1, required=True, metavar="ID...")
@connection_options
def cancel(client: TesClient, task_ids: tuple[str, ...]) -> None:
    """Cancel tasks; prints the id of each task whose cancel the server accepted."""
    failed = []
    for task_id in task_ids:
        try:
            client.cancel_task(task_id)
        except ClientError as exc:
            failed.append(task_id)
            click.echo(f"Error: cancel {task_id}: {exc}", err=True)
            continue
        click.echo(task_id)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("task_ids", nargs=-1, required=True, metavar="ID...")
@wait_options
@connection_options
def wait(
    client: TesClient, task_ids: tuple[str, ...], interval: float, timeout: float | None
) -> None:
    """Wait until the tasks end, following their state and executors.

    Exit code: 0 all COMPLETE; 3 EXECUTOR_ERROR; 4 SYSTEM_ERROR; 5 CANCELED; 6 PREEMPTED;
    7 timed out; 1 a task could not be read. With several outcomes the first of
    1, 4, 3, 6, 5, 7 that applies wins.
    """
    sys.exit(_wait(client, task_ids, interval, timeout, sys.stdout))


@click.command()
@click.argument("task_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what comes until it ends.")
@click.option("--stderr", "use_stderr", is_flag=True, help="The executor's stderr, not stdout.")
@click.option(
    "--executor",
    "index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    metavar="N",
    help="Which executor of the task (0: the first).",
)
@connection_options
def logs(client: TesClient, task_id: str, follow: bool, use_stderr: bool, index: int) -> None:
    """Print what an executor of a task wrote to stdout (or stderr), bytes as written.

    With --follow, also what it writes from now on, until it has ended (TESK servers only:
    GET /tasks/{id}/executors/{N}/stdout). Once the task's live output is gone, the server sends
    the end of it that it kept.
    """
    out = sys.stdout.buffer
    for chunk in client.executor_output(
        task_id, index, "stderr" if use_stderr else "stdout", follow=follow
    ):
        out.write(chunk)
        out.flush()


@click.command("service-info")
@connection_options
def service_info(client: TesClient) -> None:
    """Print the server's service-info as JSON."""
    print_json(client.service_info(), sys.stdout)


COMMANDS: tuple[click.Command, ...] = (
    submit,
    run,
    list_command,
    get,
    cancel,
    wait,
    logs,
    service_info,
)


# -- helpers ---------------------------------------------------------------------------------------


def _create_and_maybe_wait(
    client: TesClient, task: dict[str, Any], wait: bool, interval: float, timeout: float | None
) -> None:
    task_id = client.create_task(task)
    click.echo(task_id)
    if wait:
        # Progress goes to stderr: standard output holds the id alone.
        sys.stdout.flush()
        sys.exit(_wait(client, [task_id], interval, timeout, sys.stderr))


def _wait(
    client: TesClient,
    task_ids: Sequence[str],
    interval: float,
    timeout: float | None,
    stream: TextIO,
) -> int:
    waiter = Waiter(client, task_ids, interval_s=interval, timeout_s=timeout)
    return waiter.run(progress_display(stream))


def _credentials(token: str | None, user: str | None, password: str | None) -> Credentials:
    if token and user:
        raise click.UsageError("give either --token (TESK_TOKEN) or --user (TESK_USER), not both")
    if user and password is None:
        if not sys.stdin.isatty():
            raise click.UsageError("--user needs --password (or TESK_PASSWORD)")
        password = click.prompt("Password", hide_input=True)
    if password is not None and not user:
        raise click.UsageError("--password (TESK_PASSWORD) needs --user (TESK_USER)")
    return Credentials(token=token or None, user=user or None, password=password)
