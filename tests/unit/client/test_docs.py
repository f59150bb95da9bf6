"""docs/clients.md describes the client commands as they are: commands, options, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tesk.client.commands import COMMANDS, run
from tesk.client.events import events
from tesk.client.waiting import PRECEDENCE, STATE_EXIT_CODES

DOC = (Path(__file__).resolve().parents[3] / "docs" / "clients.md").read_text()


def test_every_command_is_in_the_table() -> None:
    documented = set(re.findall(r"^\| `tesk ([a-z-]+)", DOC, flags=re.MULTILINE))
    assert documented == {command.name for command in (*COMMANDS, events)}


def test_every_run_option_is_documented() -> None:
    for param in run.params:
        if isinstance(param, click.Option):
            assert f"`{param.opts[0]}" in DOC, param.opts[0]


def test_the_exit_code_table_matches_the_code() -> None:
    rows = dict(re.findall(r"^\| (\d) \| (.+) \|$", DOC, flags=re.MULTILINE))
    for state, code in STATE_EXIT_CODES.items():
        if code:
            assert f"`{state}`" in rows[str(code)], (state, code)
    assert "timeout" in rows["7"]
    assert "usage error" in rows["2"]
    order = ", ".join(str(code) for code in PRECEDENCE if code)
    assert f"the first code of {order} that applies" in DOC
