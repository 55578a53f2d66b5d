"""The data-loss guard every rollback passes before writing anything.

A rollback that drops a table or a column holding data, or the first
migration (the whole schema), is refused before anything is written unless
the run confirmed data loss (:mod:`chatdb.migrate.confirmation`).
What a rollback drops is read from the schema snapshots (``migrations/schema``):
the tables and columns present after a migration but not before it, less the
ones the migration renamed.
"""

from __future__ import annotations

from pathlib import Path

import peewee as pw

from chatdb.catalog import lookup, snapshots
from chatdb.catalog.legacy_version import ALEMBIC_TABLE
from chatdb.errors import DataLossRefused, Remedy
from chatdb.migrate import history, loader, verify

# Tables of migration tools, not of the application: their rows are not data to protect.
BOOKKEEPING = frozenset({history.TABLE, ALEMBIC_TABLE})


def refuse_rollback(
    database: pw.Database,
    directory: Path,
    done: list[str],
    first: int,
    files: dict[str, loader.MigrationFile],
) -> None:
    """Refuse rolling back ``done[first:]`` if it drops data or the first migration."""
    problems = []
    for index in range(len(done) - 1, first - 1, -1):
        lost = _would_lose(database, directory, done, index, files[done[index]].renamed)
        if index == 0:
            held = f"; {', '.join(lost)} hold data" if lost else ""
            problems.append(f"{done[0]} is the first migration: it drops the whole schema{held}")
        elif lost:
            problems.append(f"{done[index]} would drop {', '.join(lost)}, which hold data")
    if problems:
        raise DataLossRefused(
            f"refusing to roll back: {'; '.join(problems)}", remedy=Remedy.CONFIRM_DATA_LOSS
        )


def _would_lose(
    database: pw.Database, directory: Path, done: list[str], index: int, renamed: dict[str, str]
) -> list[str]:
    """Tables and columns present after ``done[index]`` but not before it, holding data.

    ``renamed`` (the migration's own ``{new: old}``) are not new: a rename, not a drop.
    """
    after = snapshots.expected(directory, done[index])
    before = snapshots.expected(directory, done[index - 1]) if index else verify.EMPTY
    lost = []
    for table, columns in after.tables.items():
        if table in BOOKKEEPING or table in renamed:
            continue
        if table not in before.tables:
            if lookup.holds_data(database, table):
                lost.append(f"table {table}")
            continue
        kept = {column.name for column in before.tables[table]}
        lost += [
            f"column {table}.{column.name}"
            for column in columns
            if column.name not in kept
            and f"{table}.{column.name}" not in renamed
            and lookup.holds_data(database, table, column.name)
        ]
    return lost
