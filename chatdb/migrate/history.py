"""Recording which migrations a database has: peewee-migrate's history table.

chatdb and plain ``pw_migrate`` share one table, ``migratehistory``. chatdb
creates it first, in a richer shape that peewee-migrate still reads: a unique
``name`` (two racing migrators can never record a migration twice), a
checksum of the file that was applied (tamper check), and, for a baseline
recorded by the handover, the Alembic revision it was adopted from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee as pw

from chatdb.migrate.sink import Statements

TABLE = "migratehistory"
# Serialises creating the table itself; CREATE TABLE IF NOT EXISTS races otherwise.
_CREATE_LOCK_KEY = 0x63686174_64620001

_ENSURE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    migrated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS checksum varchar(64);
ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS adopted_from varchar(32);
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = '{TABLE}_name_key' AND conrelid = '{TABLE}'::regclass) THEN
        ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_name_key UNIQUE (name);
    END IF;
END
$$;
"""


@dataclass(frozen=True)
class Applied:
    name: str
    migrated_at: dt.datetime
    checksum: str | None
    adopted_from: str | None


def exists(database: pw.Database) -> bool:
    row = database.execute_sql("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    return bool(row[0])


def ensure(database: pw.Database) -> None:
    """Create or complete the history table; a no-op (and no lock) when it is complete."""
    if not is_complete(database):
        create(database)


def create(database: Statements) -> None:
    """Create or complete the history table, serialised with any other creator.

    Like every write here it takes :class:`~chatdb.migrate.sink.Statements`,
    so ``chatdb migrate --sql`` can print these statements instead of running them.
    """
    with database.atomic():
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK_KEY,))
        database.execute_sql(_ENSURE)


def is_complete(database: pw.Database) -> bool:
    return exists(database) and _is_complete(database)


def _is_complete(database: pw.Database) -> bool:
    row = database.execute_sql(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attname IN ('checksum', 'adopted_from') AND NOT attisdropped",
        (TABLE,),
    ).fetchone()
    unique = database.execute_sql(
        "SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass",
        (f"{TABLE}_name_key", TABLE),
    ).fetchone()
    return row[0] == 2 and unique is not None


def applied(database: pw.Database) -> list[Applied]:
    """Applied migrations, oldest first; empty when there is no history table."""
    if not exists(database):
        return []
    columns = {
        name
        for (name,) in database.execute_sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped",
            (TABLE,),
        ).fetchall()
    }
    extra = ", ".join(c if c in columns else f"NULL AS {c}" for c in ("checksum", "adopted_from"))
    rows = database.execute_sql(
        f"SELECT name, migrated_at, {extra} FROM {TABLE} ORDER BY id"
    ).fetchall()
    return [Applied(*row) for row in rows]


def record(
    database: Statements, name: str, checksum: str | None, adopted_from: str | None = None
) -> None:
    database.execute_sql(
        f"INSERT INTO {TABLE} (name, migrated_at, checksum, adopted_from) "
        "VALUES (%s, now(), %s, %s)",
        (name, checksum, adopted_from),
    )


def rewrite(database: Statements, rows: list[Applied]) -> None:
    """Replace the whole history with ``rows``, in that order (``chatdb repair history``)."""
    database.execute_sql(f"DELETE FROM {TABLE}")
    for row in rows:
        database.execute_sql(
            f"INSERT INTO {TABLE} (name, migrated_at, checksum, adopted_from) "
            "VALUES (%s, %s, %s, %s)",
            (row.name, row.migrated_at, row.checksum, row.adopted_from),
        )


def unrecord(database: Statements, name: str) -> None:
    database.execute_sql(f"DELETE FROM {TABLE} WHERE name = %s", (name,))


def rechecksum(database: Statements, name: str, checksum: str) -> None:
    """Accept an applied migration's current file (``chatdb migrate --accept-changed``)."""
    database.execute_sql(f"UPDATE {TABLE} SET checksum = %s WHERE name = %s", (checksum, name))


def drop(database: Statements) -> None:
    """Remove the history table (handing a database back to Alembic)."""
    database.execute_sql(f"DROP TABLE IF EXISTS {TABLE}")
