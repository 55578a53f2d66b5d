"""``chatdb create NAME``: the next migration, generated from the models."""

from __future__ import annotations

import click

from chatdb.cli.common import (
    database_option,
    directory_option,
    friendly,
    json_option,
    not_with_sql,
    print_json,
    say,
    target_url,
)
from chatdb.migrate.defaults import DEFAULT_MODELS


@click.command("create")
@click.argument("name")
@database_option
@directory_option
@click.option(
    "--models",
    default=DEFAULT_MODELS,
    show_default=True,
    metavar="MODULE",
    help="The module whose peewee models describe the schema.",
)
@click.option(
    "--rename",
    "renames",
    multiple=True,
    metavar="OLD:NEW",
    help="A rename, not a drop and an add: table, table.column or enum.LABEL (repeatable).",
)
@click.option(
    "--backfill",
    "backfills",
    multiple=True,
    metavar="TABLE.COLUMN=SQL",
    help="The value (an SQL expression) rows already there get in a new NOT NULL column "
    "without a default; filled in batches before NOT NULL is set (repeatable).",
)
@click.option("--empty", is_flag=True, help="Write an empty migration to fill in by hand.")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL it would run; write nothing.")
@json_option
@friendly
def create_command(
    name: str,
    database: str | None,
    directory: str | None,
    models: str,
    renames: tuple[str, ...],
    backfills: tuple[str, ...],
    empty: bool,
    as_sql: bool,
    as_json: bool,
) -> None:
    """Generate the next migration from the difference between the models and the history.

    The models are built in a scratch database on the server of --database
    (else DATABASE_URL, else the embedded one), which is dropped afterwards.
    """
    not_with_sql(as_json, as_sql)
    from chatdb.migrate import location
    from chatdb.migrate.create import create

    server = target_url(database) if not empty else ""
    result = create(
        name,
        server_url=server,
        directory=location.resolve(directory),
        models=models,
        renames=renames,
        backfills=backfills,
        empty=empty,
        sql_only=as_sql,
    )
    if as_json:
        written = None if result.name is None else str(result.path)
        print_json({"name": result.name, "path": written, "summary": list(result.summary)})
        return
    if result.name is None:
        click.echo("no change: the models and the migrations agree; nothing written")
        return
    if result.sql is not None:
        click.echo(f"-- {result.name} (not written)")
        click.echo(result.sql, nl=False)
        return
    for line in result.summary:
        say(f"  {line}")
    click.echo(f"wrote {result.path}")
