"""``chatdb handover``: adopt a legacy Alembic database, or hand it back with ``--undo``."""

from __future__ import annotations

import click

from chatdb.cli.common import (
    CONTEXT_SETTINGS,
    Command,
    database_option,
    directory_option,
    friendly,
    json_option,
    lock_timeout_option,
    lock_wait_option,
    make_runner,
    print_json,
)
from chatdb.errors import ChatdbError


@click.command("handover", cls=Command, context_settings=CONTEXT_SETTINGS)
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option("--dry-run", is_flag=True, help="Check and print the plan; write nothing.")
@click.option(
    "--undo", is_flag=True, help="Hand the database back to Alembic (roll back, drop history)."
)
@click.option(
    "--baseline-only",
    is_flag=True,
    help="Adopt the baseline but leave the later migrations pending.",
)
@click.option(
    "--forget-history",
    is_flag=True,
    help="Drop the history a restored pre-handover backup left (schema at the legacy head).",
)
@json_option
@friendly
def handover_command(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    dry_run: bool,
    undo: bool,
    baseline_only: bool,
    forget_history: bool,
    as_json: bool,
) -> None:
    """Adopt a legacy database at Alembic 6d8986f38d7b without touching a row."""
    modes = {"--undo": undo, "--baseline-only": baseline_only, "--forget-history": forget_history}
    chosen = [flag for flag, on in modes.items() if on]
    if len(chosen) > 1:
        raise ChatdbError(f"{' and '.join(chosen)} cannot be combined; choose one")
    from chatdb.legacy import handover

    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        if forget_history:
            lines = handover.forget_history(runner, dry_run=dry_run)
        elif undo:
            lines = handover.undo(runner, dry_run=dry_run)
        else:
            lines = handover.handover(runner, dry_run=dry_run, baseline_only=baseline_only)
    if as_json:
        mode = "undo" if undo else "forget-history" if forget_history else "handover"
        print_json({"mode": mode, "dry_run": dry_run, "report": lines})
        return
    click.echo("\n".join(lines))
