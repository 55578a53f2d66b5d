"""``chatdb lint [FILES...]``: exit 1 when a migration would block traffic on a large table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatdb.cli.common import (
    database_option,
    directory_option,
    friendly,
    json_option,
    make_runner,
    print_json,
)


@click.command("lint")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@database_option
@directory_option
@json_option
@friendly
def lint_command(
    files: tuple[Path, ...], database: str | None, directory: str | None, as_json: bool
) -> None:
    """Report, per statement, the locks a migration would hold on existing tables.

    With FILES, no database is needed; without, the pending migrations of
    the target database are linted. One line per finding with the safe
    alternative; `# chatdb: allow <rule>` on the line of the call silences it.
    """
    from chatdb.migrate.lint import lint

    if not files:
        with make_runner(database, directory) as runner:
            files = tuple(runner.directory / f"{name}.py" for name in runner.pending())
    findings = [finding for path in files for finding in lint(path)]
    if as_json:
        print_json(
            {
                "linted": [str(path) for path in files],
                "findings": [
                    {"path": str(f.path), "line": f.line, "rule": f.rule, "message": f.message}
                    for f in findings
                ],
            }
        )
        sys.exit(1 if findings else 0)
    for finding in findings:
        click.echo(str(finding))
    click.echo(f"{len(files)} migration(s) linted, {len(findings)} finding(s)", err=True)
    sys.exit(1 if findings else 0)
