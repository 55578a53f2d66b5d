"""``chatdb write-snapshots``: store the catalog each migration leaves, beside the files."""

from __future__ import annotations

import click

from chatdb.cli.common import directory_option, friendly, json_option, print_json


@click.command("write-snapshots")
@click.option(
    "--database",
    required=True,
    metavar="URL",
    help="An empty scratch database to migrate step by step (never a real one).",
)
@directory_option
@json_option
@friendly
def write_snapshots_command(database: str, directory: str | None, as_json: bool) -> None:
    """Write migrations/schema/<name>.json for every migration (after adding one by hand)."""
    from chatdb.migrate.write_snapshots import write_all

    written = write_all(database, directory)
    if as_json:
        print_json({"written": [str(path) for path in written]})
        return
    for path in written:
        click.echo(path)
