"""``chatdb repair``: put back what a check found replaced, nothing else."""

from __future__ import annotations

import click

from chatdb.cli.common import (
    database_option,
    directory_option,
    friendly,
    lock_timeout_option,
    lock_wait_option,
    make_runner,
)


@click.group("repair")
def repair_group() -> None:
    """Put back a part of the schema that someone replaced."""


@repair_group.command("search-function")
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option("--dry-run", is_flag=True, help="Print the statement; change nothing.")
@friendly
def search_function(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
) -> None:
    """Replace an unknown body of the search trigger function with the nearest known one."""
    from chatdb.migrate.repair import restore_function

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        result = restore_function(runner, dry_run=dry_run)
    if result.body is None:
        click.echo(f"{result.function} has a known body; nothing to repair")
    elif dry_run:
        click.echo(f"dry run, nothing written; would put back {result.body.label} body:")
        click.echo(result.sql + ";")
    else:
        click.echo(f"{result.function}: put back {result.body.label} body ({result.body.origin})")
