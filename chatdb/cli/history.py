"""``chatdb history``: the history table itself, and its repair."""

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


@click.group("history")
def history_group() -> None:
    """chatdb's history table (migratehistory)."""


@history_group.command("repair")
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option("--dry-run", is_flag=True, help="Show the history it would write; change nothing.")
@friendly
def repair(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
) -> None:
    """Rebuild a history with gaps, duplicates or rows out of order, if the schema proves it."""
    from chatdb.migrate.history_repair import repair as rebuild

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        done = rebuild(runner, dry_run=dry_run)
    if not done.problems:
        click.echo(f"the history of {done.target} is in order; nothing to repair")
        return
    for problem in done.problems:
        click.echo(f"found: {problem}")
    verb = "dry run, nothing written; would write" if dry_run else "rewrote"
    click.echo(f"{verb} the history as: {', '.join(done.after)} (was: {', '.join(done.before)})")
