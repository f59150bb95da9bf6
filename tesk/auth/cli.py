"""`tesk user`: manage the HTTP Basic users file (`auth.users_file`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tesk.auth.users import User, UsersFileError, check_name, hash_password, read_users, write_users

_FILE = click.option(
    "--file",
    "users_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The users file [default: custom.auth.users_file of the configuration].",
)


@click.group()
def user() -> None:
    """Manage the users of `auth.mode: basic` (the file is re-read by a running TESK)."""


@user.command("add")
@click.argument("name")
@click.option("--group", "groups", multiple=True, help="A group of the user; repeatable.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@_FILE
def add(name: str, groups: tuple[str, ...], password_stdin: bool, users_file: Path | None) -> None:
    """Add user NAME, or replace their password and groups."""
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
    users[name] = User(name, hash_password(password), frozenset(groups))
    write_users(path, users.values())
    click.echo(f"{verb} user {name!r} in {path}")


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
    """List the users and their groups."""
    for found in sorted(_existing(_users_file(users_file)).values(), key=lambda u: u.name):
        click.echo(f"{found.name}\t{','.join(sorted(found.groups))}")


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
