"""``chatdb check``: exit 0 when the database is what its migrations say, 1 on drift.

Meant for CI and for a DBA before and after a deploy: every difference is one
line on stdout, and the exit status is the verdict.
"""

from __future__ import annotations

import sys

import click

from chatdb.cli.common import database_option, directory_option, friendly, make_runner
from chatdb.db.urls import mask_password
from chatdb.migrate import verify


@click.command()
@database_option
@directory_option
@friendly
def check(database: str | None, directory: str | None) -> None:
    """Compare the live schema with what the applied migrations leave; exit 1 on drift."""
    with make_runner(database, directory) as runner:
        report = verify.check(runner.database, runner.directory)
    click.echo(f"database: {mask_password(runner.url)}")
    for line in report.tampered:
        click.echo(f"tampered: {line}")
    for line in report.drift:
        click.echo(f"drift: {line}")
    click.echo(report.verdict(hint=False))
    sys.exit(0 if report.clean else 1)
