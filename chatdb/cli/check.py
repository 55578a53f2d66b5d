"""``chatdb check``: exit 0 when the database is what its migrations say, 1 on drift.

Meant for CI and for a DBA before and after a deploy: every difference is one
line on stdout, and the exit status is the verdict. A database chatdb cannot
judge (no migrations found, another application's tables) is an error, not
clean; on a legacy database not handed over yet, or a restored pre-handover
backup, the verdict with the next step comes first.
"""

from __future__ import annotations

import sys

import click

from chatdb.cli.common import (
    database_option,
    directory_option,
    friendly,
    json_option,
    make_runner,
    print_json,
)


@click.command()
@database_option
@directory_option
@json_option
@friendly
def check(database: str | None, directory: str | None, as_json: bool) -> None:
    """Compare the live schema with what the applied migrations leave; exit 1 on drift."""
    from chatdb.db.urls import mask_password
    from chatdb.migrate import verify

    with make_runner(database, directory) as runner:
        report = verify.check(runner.database, runner.directory)
    if as_json:
        print_json(
            {
                "database": mask_password(runner.url),
                "clean": report.clean,
                "verdict": report.verdict(hint=False),
                "history": report.history,
                "tampered": report.tampered,
                "drift": [str(d) for d in report.drift],
                "drift_details": [d.as_dict() for d in report.drift],
            }
        )
        sys.exit(0 if report.clean else 1)
    click.echo(f"database: {mask_password(runner.url)}")
    if report.leads:  # the state and the next step first, the details after
        click.echo(report.verdict(hint=False))
    for line in report.history:
        click.echo(f"history: {line}")
    for line in report.tampered:
        click.echo(f"tampered: {line}")
    for difference in report.drift:
        click.echo(f"drift: {difference}")
    if not report.leads:
        click.echo(report.verdict(hint=False))
    sys.exit(0 if report.clean else 1)
