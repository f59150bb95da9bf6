"""The Basic users file and `tesk user`: format, Argon2 hashes, verification, atomic rewrite."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from tesk.auth import users as users_module
from tesk.auth.identity import AuthenticationFailed, OwnQuotas
from tesk.auth.users import User, UsersFile, UsersFileError, hash_password, parse_users, read_users
from tesk.cli import main


def test_hashes_are_salted_argon2id() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first.startswith("$argon2id$")
    assert first != second
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice\n", "line 1: expected 'name:hash'"),
        ("alice:plain-text-password\n", "not an Argon2 hash"),
        ("# c\n\nal ice:$argon2id$x\n", "line 3: user name 'al ice'"),
        ("alice:$argon2id$x:ad min\n", "group 'ad min'"),
        ("a:$argon2id$x:g:q=1:extra\n", "line 1: expected"),
        ("a:$argon2id$x:g:extra\n", "line 1: quota 'extra': expected key=N with a key of"),
        ("a:$argon2id$x::max_tasks=3\n", "quota 'max_tasks=3': expected key=N"),
        ("a:$argon2id$x::max_active_tasks=0\n", "max_active_tasks='0': must be a whole"),
        ("a:$argon2id$x::max_queued_tasks=ten\n", "max_queued_tasks='ten': must be a whole"),
        ("a:$argon2id$x::max_active_tasks=1,max_active_tasks=2\n", "given twice"),
    ],
)
def test_malformed_lines_are_named(text: str, message: str) -> None:
    with pytest.raises(UsersFileError, match=message):
        parse_users(text, "users")


def test_verify(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(f"# comment\nalice:{hash_password('pw')}:staff,ops\n")
    users = UsersFile(path, admin_group="ops")
    found = users.verify("alice", "pw")
    assert (found.subject, found.groups, found.admin) == ("alice", {"staff", "ops"}, True)
    assert users.verify("alice", "pw") == found  # remembered
    for name, password in [("alice", "PW"), ("bob", "pw"), ("alice", "pw\n")]:
        with pytest.raises(AuthenticationFailed, match="wrong user name or password"):
            users.verify(name, password)


def test_a_line_may_carry_the_users_quotas_and_old_lines_read_as_before(tmp_path: Path) -> None:
    hashed = hash_password("pw")
    text = (
        f"old:{hashed}\n"
        f"grouped:{hashed}:lab\n"
        f"capped:{hashed}:lab,ops:max_active_tasks=5,max_queued_tasks=2\n"
        f"solo:{hashed}::max_queued_tasks=7\n"
    )
    found = parse_users(text, "users")
    assert found["old"] == User("old", hashed)
    assert found["grouped"] == User("grouped", hashed, frozenset({"lab"}))
    assert found["capped"].quotas == OwnQuotas(max_active_tasks=5, max_queued_tasks=2)
    assert found["solo"] == User("solo", hashed, quotas=OwnQuotas(max_queued_tasks=7))
    # Written back, every line reads the same; lines without quotas keep their old form.
    assert [user.line() for user in found.values()] == [
        f"old:{hashed}",
        f"grouped:{hashed}:lab",
        f"capped:{hashed}:lab,ops:max_active_tasks=5,max_queued_tasks=2",
        f"solo:{hashed}::max_queued_tasks=7",
    ]
    path = tmp_path / "users"
    path.write_text(text)
    identity = UsersFile(path, admin_group=None).verify("capped", "pw")
    assert identity.quotas == OwnQuotas(max_active_tasks=5, max_queued_tasks=2)


def test_cli_sets_and_clears_a_users_quotas(tmp_path: Path) -> None:
    path = tmp_path / "users"
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(main, ["user", *args, "--file", str(path)], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "add", "alice", "--group", "lab", "--max-active-tasks", "5", "--password-stdin", stdin="a\n"
    )
    assert read_users(path)["alice"].quotas == OwnQuotas(max_active_tasks=5)
    assert "max_queued_tasks=3" in run("quota", "alice", "--max-queued-tasks", "3")
    assert read_users(path)["alice"].quotas == OwnQuotas(max_active_tasks=5, max_queued_tasks=3)
    # A new password keeps the quotas; "none" gives a value back to the configuration.
    run("add", "alice", "--group", "lab", "--password-stdin", stdin="b\n")
    assert UsersFile(path, None).verify("alice", "b").quotas.max_queued_tasks == 3
    run("quota", "alice", "--max-active-tasks", "none")
    assert read_users(path)["alice"].quotas == OwnQuotas(max_queued_tasks=3)
    assert run("list").splitlines() == ["alice\tlab\tmax_queued_tasks=3"]

    for args, message in [
        (["quota", "alice", "--max-active-tasks", "0"], "not a whole number of at least 1"),
        (["quota", "alice"], "give --max-active-tasks and/or --max-queued-tasks"),
        (["quota", "bob", "--max-active-tasks", "2"], "no user 'bob'"),
    ]:
        result = runner.invoke(main, ["user", *args, "--file", str(path)])
        assert result.exit_code != 0
        assert message in result.output


def test_remembered_logins_end_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "users"
    users_module.write_users(path, [User("alice", hash_password("old"))])
    users = UsersFile(path, admin_group=None)
    users.verify("alice", "old")
    users_module.write_users(path, [User("alice", hash_password("new"))])
    with pytest.raises(AuthenticationFailed):
        users.verify("alice", "old")


def test_cli_adds_replaces_lists_and_removes_users(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "users"
    runner = CliRunner()
    args = [
        "user",
        "add",
        "alice",
        "--group",
        "tesk-admin",
        "--password-stdin",
        "--file",
        str(path),
    ]
    result = runner.invoke(main, args, input="first\n")
    assert result.exit_code == 0, result.output
    assert "added user 'alice'" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert UsersFile(path, "tesk-admin").verify("alice", "first").admin
    result = runner.invoke(
        main, ["user", "add", "alice", "--file", str(path)], input="second\nsecond\n"
    )
    assert result.exit_code == 0, result.output
    assert "updated user 'alice'" in result.output
    assert not UsersFile(path, "tesk-admin").verify("alice", "second").admin
    runner.invoke(
        main, ["user", "add", "bob", "--password-stdin", "--file", str(path)], input="b\n"
    )
    listing = runner.invoke(main, ["user", "list", "--file", str(path)])
    assert listing.output.splitlines() == ["alice\t", "bob\t"]
    assert runner.invoke(main, ["user", "remove", "alice", "--file", str(path)]).exit_code == 0
    assert set(read_users(path)) == {"bob"}
    missing = runner.invoke(main, ["user", "remove", "alice", "--file", str(path)])
    assert missing.exit_code != 0
    assert "no user 'alice'" in missing.output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "add", "a:b", "--password-stdin"], "x\n", "must not contain"),
        (["user", "add", "alice", "--password-stdin"], "\n", "must not be empty"),
        (["user", "add", "alice", "--group", "a b", "--password-stdin"], "x\n", "group 'a b'"),
    ],
)
def test_cli_refuses_bad_input(tmp_path: Path, args: list[str], stdin: str, message: str) -> None:
    path = tmp_path / "users"
    result = CliRunner().invoke(main, [*args, "--file", str(path)], input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert not path.exists()


def test_cli_needs_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESK_CONFIG", raising=False)
    result = CliRunner().invoke(main, ["user", "list"])
    assert result.exit_code != 0
    assert "custom.auth.users_file is not configured" in result.output
