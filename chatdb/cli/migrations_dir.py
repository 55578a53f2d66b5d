"""``chatdb migrations-dir``: where the installed chatdb keeps its migrations.

For plain peewee-migrate from any directory:
``pw_migrate migrate --directory "$(chatdb migrations-dir)"``.
"""

from __future__ import annotations

import click

from chatdb.cli.common import friendly
from chatdb.migrate.location import migrations_dir


@click.command("migrations-dir")
@friendly
def migrations_dir_command() -> None:
    """Print the path of chatdb's migrations (for pw_migrate --directory)."""
    click.echo(migrations_dir())
