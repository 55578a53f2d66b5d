"""The ``chatdb`` command: parse, call one function, print.

The root group and the migration commands live here; other areas add their
commands from modules of their own in this package, registered at the bottom.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

import click

from chatdb.cli import chat
from chatdb.cli.check import check
from chatdb.cli.common import (
    CONTEXT_SETTINGS,
    MAX_ROWS,
    Group,
    database_option,
    directory_option,
    friendly,
    json_option,
    lock_timeout_option,
    lock_wait_option,
    make_runner,
    not_with_sql,
    print_json,
    up_to,
    verbose_option,
)
from chatdb.cli.create import create_command
from chatdb.cli.handover import handover_command
from chatdb.cli.lint import lint_command
from chatdb.cli.migrations_dir import migrations_dir_command
from chatdb.cli.repair import repair_group
from chatdb.cli.write_snapshots import write_snapshots_command

if TYPE_CHECKING:
    from chatdb.migrate.executor import Status


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@verbose_option
@click.version_option(package_name="chatdb")
def cli() -> None:
    """chatdb: the chat database, its migrations and its handover from Alembic."""


sql_option = click.option(
    "--sql",
    "as_sql",
    is_flag=True,
    help="Print the SQL that would run, with transaction boundaries; change nothing.",
)
accept_changed_option = click.option(
    "--accept-changed",
    is_flag=True,
    help="Accept applied migration files that changed since, recording their new checksums.",
)
ignore_drift_option = click.option(
    "--ignore-drift",
    is_flag=True,
    help="Also when the schema differs from what the applied migrations leave.",
)


@cli.command()
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option("--to", "target", metavar="NAME", help="Stop after this migration.")
@click.option("--yes", is_flag=True, help="Also when a migration drops data (tables, columns).")
@sql_option
@accept_changed_option
@ignore_drift_option
@json_option
@friendly
def migrate(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    target: str | None,
    yes: bool,
    as_sql: bool,
    accept_changed: bool,
    ignore_drift: bool,
    as_json: bool,
):
    """Apply pending migrations."""
    not_with_sql(as_json, as_sql)
    options: dict[str, Any] = {
        "yes": yes,
        "accept_changed": accept_changed,
        "ignore_drift": ignore_drift,
    }
    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        if as_sql:
            from chatdb.migrate import preview

            click.echo(preview.upgrade_sql(runner, target, **options), nl=False)
            return
        ran = runner.migrate(target, **options)
    if as_json:
        print_json({"database": _masked(runner.url), "applied": ran})
        return
    click.echo(f"applied {len(ran)} migration(s)" + (f": {', '.join(ran)}" if ran else ""))


def _masked(url: str) -> str:
    from chatdb.db.urls import mask_password

    return mask_password(url)


@cli.command()
@database_option
@directory_option
@lock_timeout_option
@lock_wait_option
@click.option(
    "--count",
    type=up_to(MAX_ROWS),
    default=None,
    help="How many of the latest migrations to roll back (default 1).",
)
@click.option("--to", "to", metavar="NAME", help="Roll back every migration after NAME.")
@click.option(
    "--yes",
    is_flag=True,
    help="Also when it drops tables or columns holding data, or the first migration.",
)
@sql_option
@accept_changed_option
@ignore_drift_option
@json_option
@friendly
def rollback(
    database: str | None,
    directory: str | None,
    lock_timeout: float,
    lock_wait: float,
    count: int | None,
    to: str | None,
    yes: bool,
    as_sql: bool,
    accept_changed: bool,
    ignore_drift: bool,
    as_json: bool,
):
    """Roll back the latest migrations."""
    not_with_sql(as_json, as_sql)
    options: dict[str, Any] = {
        "yes": yes,
        "accept_changed": accept_changed,
        "ignore_drift": ignore_drift,
    }
    with make_runner(database, directory, lock_timeout, lock_wait) as runner:
        if as_sql:
            from chatdb.migrate import preview

            click.echo(preview.rollback_sql(runner, count, to=to, **options), nl=False)
            return
        ran = runner.rollback(count, to=to, **options)
    if as_json:
        print_json({"database": _masked(runner.url), "rolled_back": ran})
        return
    click.echo(f"rolled back {len(ran)} migration(s)" + (f": {', '.join(ran)}" if ran else ""))


@cli.command()
@database_option
@directory_option
@json_option
@friendly
def status(database: str | None, directory: str | None, as_json: bool):
    """Show which database this is and which migrations it has."""
    with make_runner(database, directory) as runner:
        state = runner.status()
    if as_json:
        print_json(_status_dict(state))
    else:
        click.echo(_status_text(state))


def _status_dict(state: Status) -> dict[str, Any]:
    return {
        "database": state.target,
        "server_version": state.server_version,
        "applied": [
            {
                "name": a.name,
                "migrated_at": a.migrated_at.isoformat(),
                "checksum": a.checksum,
                "adopted_from": a.adopted_from,
            }
            for a in state.applied
        ],
        "pending": state.pending,
        "alembic_version": state.alembic_version,
        "drift": {
            "verdict": state.verdict,
            "clean": state.report.clean if state.report else None,
            "differences": [str(d) for d in state.report.drift] if state.report else None,
            "difference_details": (
                [d.as_dict() for d in state.report.drift] if state.report else None
            ),
            "tampered": state.report.tampered if state.report else None,
            "history": state.report.history if state.report else None,
        },
    }


def _status_text(state: Status) -> str:
    lines = [f"database: {state.target}", f"server:   PostgreSQL {state.server_version}"]
    if state.alembic_version is not None:
        lines.append(f"alembic_version: {', '.join(state.alembic_version) or '(empty)'}")
    lines.append(f"applied ({len(state.applied)}):")
    for a in state.applied:
        origin = f"  (adopted from Alembic {a.adopted_from})" if a.adopted_from else ""
        lines.append(f"  [x] {a.name}  {a.migrated_at:%Y-%m-%d %H:%M:%S %Z}{origin}")
    lines.append(f"pending ({len(state.pending)}):")
    lines += [f"  [ ] {name}" for name in state.pending]
    lines.append(f"drift: {state.verdict}")
    return "\n".join(lines)


@cli.group()
def db() -> None:
    """Manage the embedded local PostgreSQL (used when no URL is given)."""


@db.command("start")
@friendly
def db_start() -> None:
    """Start the embedded server (initialising it on first use)."""
    from chatdb.db import embedded
    from chatdb.db.urls import mask_password

    server = embedded.EmbeddedServer.default().ensure_running()
    click.echo(f"running: {mask_password(server.url())}")


@db.command("stop")
@friendly
def db_stop() -> None:
    """Stop the embedded server."""
    from chatdb.db import embedded

    stopped = embedded.EmbeddedServer.default().stop()
    click.echo("stopped" if stopped else "not running")


@db.command("status")
@json_option
@friendly
def db_status(as_json: bool) -> None:
    """Say whether the embedded server runs, and where its data lives."""
    from chatdb.db import embedded
    from chatdb.db.urls import mask_password

    state = embedded.EmbeddedServer.default().status()
    if as_json:
        print_json(
            {
                "running": state.running,
                "pid": state.pid,
                "data": str(state.home),
                "url": mask_password(state.url),
            }
        )
        return
    click.echo(f"{'running (pid ' + str(state.pid) + ')' if state.running else 'stopped'}")
    click.echo(f"data: {state.home}")
    click.echo(f"url:  {mask_password(state.url)}")


@db.command("url")
@friendly
def db_url() -> None:
    """Print the embedded server's URL (starting it if needed)."""
    from chatdb.db import embedded
    from chatdb.db.urls import mask_password

    click.echo(mask_password(embedded.EmbeddedServer.default().ensure_running().url()))


def main() -> None:
    # Piped into `head`, exit quietly as other Unix tools do, not with a BrokenPipeError.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    cli.main(prog_name="chatdb")


cli.add_command(handover_command)
cli.add_command(check)
cli.add_command(migrations_dir_command)
cli.add_command(create_command)
cli.add_command(lint_command)
cli.add_command(repair_group)
cli.add_command(write_snapshots_command)
for command in chat.COMMANDS:
    cli.add_command(command)
