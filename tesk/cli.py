"""The `tesk` command: server, taskmaster, filer and client commands."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="tesk")
def main() -> None:
    """TESK: a GA4GH Task Execution Service."""
