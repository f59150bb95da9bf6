"""`tesk events [ID]`: print task events as they happen (TESK's event streams)."""

from __future__ import annotations

import sys

import click

from tesk.client.commands import STATES, connection_options
from tesk.client.http import NotOffered, TesClient
from tesk.client.sse import StreamBroken
from tesk.client.taskdoc import parse_tag_filter


@click.command()
@click.argument("task_id", metavar="[ID]", required=False)
@click.option(
    "--after",
    "last_event_id",
    type=click.IntRange(min=0),
    metavar="EVENT_ID",
    help="Start after this event id (0: every stored event). "
    "Without it: a task's whole history, or every task's events from now on.",
)
@click.option(
    "--state",
    type=click.Choice(STATES, case_sensitive=False),
    help="Without ID: only events that report this state.",
)
@click.option("--name-prefix", help="Without ID: only tasks whose name starts with this.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Without ID: only tasks with this tag (any value without =VALUE). Repeatable.",
)
@click.option("--ids", is_flag=True, help="Start each line with the event id.")
@connection_options
def events(
    client: TesClient,
    task_id: str | None,
    last_event_id: int | None,
    state: str | None,
    name_prefix: str | None,
    tags: tuple[str, ...],
    ids: bool,
) -> None:
    """Print task events as they happen, one line each: time, task id, and the new state or
    `executor N started|ended (exit code C)`, tab-separated.

    With ID: that task's events from the first, ending with its final state. Without: the events
    of every task you may see, from now on, until interrupted.
    """
    if task_id is not None and (state or name_prefix or tags):
        raise click.UsageError("--state, --name-prefix and --tag filter the events of all tasks")
    try:
        tag_filter = [parse_tag_filter(item) for item in tags]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if task_id is not None:
        stream = client.task_events(task_id, last_event_id)
    else:
        stream = client.events(
            state=state.upper() if state else None,
            name_prefix=name_prefix,
            tags=tag_filter,
            last_event_id=last_event_id,
        )
    try:
        for event in stream:
            prefix = f"{event.id if event.id is not None else '-'}\t" if ids else ""
            click.echo(prefix + event.describe())
            sys.stdout.flush()
    except NotOffered as exc:
        raise click.ClickException(f"{exc} (the server offers no task events)") from None
    except StreamBroken as exc:
        raise click.ClickException(str(exc)) from None
