"""The data-loss guard both runners pass before a rollback: chatdb's and plain ``pw_migrate``'s.

A rollback that drops a table or a column holding data, or the first
migration (the whole schema), is refused before anything is written unless
the user confirms it: ``chatdb rollback --yes``, or ``CHATDB_ALLOW_DATA_LOSS=1``
in the environment of ``pw_migrate rollback`` (which has no option of ours).
What a rollback drops is read from the schema snapshots (``migrations/schema``):
the tables and columns present after a migration but not before it, less the
ones the migration renamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import peewee as pw

from chatdb.drift import snapshots
from chatdb.drift.alembic import ALEMBIC_TABLE
from chatdb.errors import DataLossRefused
from chatdb.migrate import history, loader, verify

ALLOW_DATA_LOSS_ENV = "CHATDB_ALLOW_DATA_LOSS"
# Tables of migration tools, not of the application: their rows are not data to protect.
BOOKKEEPING = frozenset({history.TABLE, ALEMBIC_TABLE})


def allowed_by_environment() -> bool:
    """Whether ``CHATDB_ALLOW_DATA_LOSS=1`` confirms a destructive plain ``pw_migrate`` rollback."""
    return os.environ.get(ALLOW_DATA_LOSS_ENV) == "1"


def refuse(
    database: pw.Database,
    directory: Path,
    done: list[str],
    first: int,
    files: dict[str, loader.MigrationFile],
    confirm: str,
) -> None:
    """Refuse rolling back ``done[first:]`` if it drops data or the first migration.

    ``confirm`` says how to go ahead anyway (``pass --yes``, or the variable).
    """
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
            f"refusing to roll back: {'; '.join(problems)}; take a backup and {confirm} "
            "if that is what you want"
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
            if _holds_data(database, table):
                lost.append(f"table {table}")
            continue
        kept = {column.name for column in before.tables[table]}
        lost += [
            f"column {table}.{column.name}"
            for column in columns
            if column.name not in kept
            and f"{table}.{column.name}" not in renamed
            and _holds_data(database, table, column.name)
        ]
    return lost


def _holds_data(database: pw.Database, table: str, column: str | None = None) -> bool:
    """Whether the live table has rows (or the column a non-NULL value); False if absent."""
    row = database.execute_sql(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = coalesce(%s, attname) AND attnum > 0 AND NOT attisdropped",
        (f"public.{_quote(table)}", column),
    ).fetchone()
    if not row[0]:
        return False
    where = f" WHERE {_quote(column)} IS NOT NULL" if column else ""
    query = f"SELECT EXISTS (SELECT 1 FROM public.{_quote(table)}{where})"
    return bool(database.execute_sql(query).fetchone()[0])


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
