"""`tesk user`: manage the HTTP Basic users file (`auth.users_file`)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from tesk.auth.identity import OwnQuotas
from tesk.auth.users import (
    User,
    UsersFileError,
    check_name,
    format_quotas,
    hash_password,
    read_users,
    write_users,
)

_FILE = click.option(
    "--file",
    "users_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The users file [default: custom.auth.users_file of the configuration].",
)


_CLEAR = 0  # what "none" converts to: use the configured quota again


def _quota_value(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """None: not given; _CLEAR: "none"; else the whole number, at least 1."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "none":
        return _CLEAR
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise click.BadParameter(f"{value!r} is not a whole number of at least 1, nor 'none'")


_MAX_ACTIVE = click.option(
    "--max-active-tasks",
    metavar="N|none",
    callback=_quota_value,
    help="The user's own limit of active tasks, over every quotas.* one; 'none': the configured.",
)
_MAX_QUEUED = click.option(
    "--max-queued-tasks",
    metavar="N|none",
    callback=_quota_value,
    help="How many of the user's tasks may wait QUEUED; 'none': no limit of their own.",
)


def _with_quotas(quotas: OwnQuotas, max_active: int | None, max_queued: int | None) -> OwnQuotas:
    """`quotas` with the values given on the command line (None: not given, keep)."""
    changes: dict[str, int | None] = {}
    if max_active is not None:
        changes["max_active_tasks"] = max_active or None
    if max_queued is not None:
        changes["max_queued_tasks"] = max_queued or None
    return dataclasses.replace(quotas, **changes)


@click.group()
def user() -> None:
    """Manage the users of `auth.mode: basic` (the file is re-read by a running TESK)."""


@user.command("add")
@click.argument("name")
@click.option("--group", "groups", multiple=True, help="A group of the user; repeatable.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@_MAX_ACTIVE
@_MAX_QUEUED
@_FILE
def add(
    name: str,
    groups: tuple[str, ...],
    password_stdin: bool,
    max_active_tasks: int | None,
    max_queued_tasks: int | None,
    users_file: Path | None,
) -> None:
    """Add user NAME, or replace their password and groups (their quotas stay unless given)."""
    path = _users_file(users_file)
    try:
        check_name(name)
        for group in groups:
            check_name(group, "group")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password must not be empty")
    users = _existing(path)
    verb = "updated" if name in users else "added"
    kept = users[name].quotas if name in users else OwnQuotas()
    quotas = _with_quotas(kept, max_active_tasks, max_queued_tasks)
    users[name] = User(name, hash_password(password), frozenset(groups), quotas)
    write_users(path, users.values())
    click.echo(f"{verb} user {name!r} in {path}")


@user.command("quota")
@click.argument("name")
@_MAX_ACTIVE
@_MAX_QUEUED
@_FILE
def quota(
    name: str, max_active_tasks: int | None, max_queued_tasks: int | None, users_file: Path | None
) -> None:
    """Set or clear the quotas of user NAME (a running TESK applies them at once)."""
    path = _users_file(users_file)
    users = _existing(path)
    found = users.get(name)
    if found is None:
        raise click.ClickException(f"no user {name!r} in {path}")
    if max_active_tasks is None and max_queued_tasks is None:
        raise click.UsageError("give --max-active-tasks and/or --max-queued-tasks (N or none)")
    quotas = _with_quotas(found.quotas, max_active_tasks, max_queued_tasks)
    users[name] = dataclasses.replace(found, quotas=quotas)
    write_users(path, users.values())
    click.echo(f"quotas of user {name!r} in {path}: {format_quotas(quotas) or 'the configured'}")


@user.command("remove")
@click.argument("name")
@_FILE
def remove(name: str, users_file: Path | None) -> None:
    """Remove user NAME (their tasks stay, visible to admins)."""
    path = _users_file(users_file)
    users = _existing(path)
    if users.pop(name, None) is None:
        raise click.ClickException(f"no user {name!r} in {path}")
    write_users(path, users.values())
    click.echo(f"removed user {name!r} from {path}")


@user.command("list")
@_FILE
def list_users(users_file: Path | None) -> None:
    """List the users, their groups and their own quotas."""
    for found in sorted(_existing(_users_file(users_file)).values(), key=lambda u: u.name):
        line = f"{found.name}\t{','.join(sorted(found.groups))}"
        quotas = format_quotas(found.quotas)
        click.echo(f"{line}\t{quotas}" if quotas else line)


def _users_file(given: Path | None) -> Path:
    if given is not None:
        return given
    from tesk.settings import ConfigError, load_settings  # FOCA loads slowly; only when needed

    try:
        configured = load_settings().custom.auth.users_file
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if configured is None:
        raise click.UsageError("no --file given and custom.auth.users_file is not configured")
    return configured


def _existing(path: Path) -> dict[str, User]:
    if not path.exists():
        return {}
    try:
        return read_users(path)
    except UsersFileError as exc:
        raise click.ClickException(str(exc)) from None
