"""``chatdb write-snapshots``: store the catalog each migration leaves, beside the files."""

from __future__ import annotations

import click

from chatdb.cli.common import directory_option, friendly


@click.command("write-snapshots")
@click.option(
    "--database",
    required=True,
    metavar="URL",
    help="An empty scratch database to migrate step by step (never a real one).",
)
@directory_option
@friendly
def write_snapshots_command(database: str, directory: str | None) -> None:
    """Write migrations/schema/<name>.json for every migration (after adding one by hand)."""
    from chatdb.migrate.write_snapshots import write_all

    for path in write_all(database, directory):
        click.echo(path)
