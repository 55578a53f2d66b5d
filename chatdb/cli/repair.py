"""``chatdb repair``: put back what a check found broken, proven first, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from chatdb.cli.common import (
    database_option,
    directory_option,
    friendly,
    json_option,
    lock_timeout_option,
    lock_wait_option,
    make_runner,
    print_json,
)


@click.group("repair")
def repair_group() -> None:
    """Put back a part of the schema or of the history that someone changed."""


def _repair_command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A ``chatdb repair NAME`` command with the options every repair takes."""

    def wrap(function: Callable[..., Any]) -> click.Command:
        for option in (
            friendly,
            json_option,
            click.option("--dry-run", is_flag=True, help="Show what it would do; change nothing."),
            lock_wait_option,
            lock_timeout_option,
            directory_option,
            database_option,
        ):
            function = option(function)
        return repair_group.command(name)(function)

    return wrap


@_repair_command("search-function")
def search_function(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Replace an unknown body of the search trigger function with the nearest known one."""
    from chatdb.migrate.repair import restore_function

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        result = restore_function(runner, dry_run=dry_run)
    if as_json:
        body = result.body
        print_json(
            {
                "function": result.function,
                "dry_run": dry_run,
                "repaired": result.done,
                "known_already": body is None,
                "body": None if body is None else {"label": body.label, "origin": body.origin},
                "sql": result.sql or None,
            }
        )
        return
    if result.body is None:
        click.echo(f"{result.function} has a known body; nothing to repair")
    elif dry_run:
        click.echo(f"dry run, nothing written; would put back {result.body.label} body:")
        click.echo(result.sql + ";")
    else:
        click.echo(f"{result.function}: put back {result.body.label} body ({result.body.origin})")


@_repair_command("history")
def history(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Rebuild a history with gaps, duplicates or rows out of order, if the schema proves it."""
    from chatdb.migrate.history_repair import repair

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        done = repair(runner, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "database": done.target,
                "dry_run": dry_run,
                "problems": done.problems,
                "before": done.before,
                "after": done.after,
            }
        )
        return
    if not done.problems:
        click.echo(f"the history of {done.target} is in order; nothing to repair")
        return
    for problem in done.problems:
        click.echo(f"found: {problem}")
    verb = "dry run, nothing written; would write" if dry_run else "rewrote"
    click.echo(f"{verb} the history as: {', '.join(done.after)} (was: {', '.join(done.before)})")
