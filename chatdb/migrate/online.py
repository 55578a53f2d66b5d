"""Online column type changes and batched backfills: expand, backfill, contract.

``ALTER COLUMN ... TYPE`` rewrites the table under an ``ACCESS EXCLUSIVE``
lock for as long as the rewrite takes (seconds per hundred thousand rows,
every reader and writer waiting). :func:`change_column_type` does the same
change in phases, each one idempotent, so an ``atomic = False`` migration run
again after an interruption (a kill, a lost connection) carries on:

1. *expand*: a new column of the new type (``chatdb_new_<column>``) and a
   trigger that fills it on every insert and update, so writers keep both
   columns in step from then on (a catalog change under a short lock);
2. *backfill*: the rows written before, in batches along the primary key,
   each batch its own short transaction, with a pause between batches; a
   run again starts over the rows still NULL, so it continues where the
   killed one stopped (:class:`Backfill`);
3. ``NOT NULL``, when the column has it: a ``CHECK ... NOT VALID``, then
   ``VALIDATE`` (a scan that lets writers on);
4. *contract*: under one short lock (``lock_timeout``, retried when busy),
   the trigger is dropped, the old column renamed aside and dropped, the new
   one renamed into its place and given its default.

The swapped-in column comes last in the table (PostgreSQL appends every
column it makes; see :func:`chatdb.catalog.diff`). The rollback is the same
operation back to the old type; run before the swap, it removes what the
expand added and nothing else. :func:`backfill` is the batched fill alone,
for hand-written data moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import peewee as pw
from peewee_migrate import Migrator

from chatdb.catalog import lookup
from chatdb.catalog.model import ONLINE_COLUMN_PREFIX, ONLINE_SYNC_PREFIX
from chatdb.errors import ChatdbError
from chatdb.migrate import progress
from chatdb.migrate.operations import _check, _online, _queue, not_null_check_name

DEFAULT_BATCH_SIZE = 1000
DEFAULT_PAUSE = 0.01  # seconds between two batches, so a backfill leaves the server room
REPORT_EVERY = 2.0  # seconds between two progress lines
# How long one batch's transaction may take: a batch that writes a lot of WAL (right after a
# checkpoint, every page it touches is logged whole) makes writers' commits wait behind its
# flush, so a slower batch halves the next one, and quick ones grow back to ``batch_size``.
BATCH_SECONDS = 0.05
SMALLEST_BATCH = 10
# A batch's commit does not wait for its WAL to reach the disk: writers' commits do, and each
# fsync the backfill adds makes theirs queue longer (bench/bench_online_changes.py shows the
# writer on IO:WalSync in its longest stalls). A batch lost in a crash is still pending, so the
# next run fills it; the migration is recorded by a normal commit, which flushes every batch.
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
OLD_COLUMN_PREFIX = "chatdb_old_"


def new_column_name(column: str) -> str:
    """The column an online type change fills before it takes ``column``'s place."""
    return _check(f"{ONLINE_COLUMN_PREFIX}{column}"[:63])


def sync_name(table: str, column: str) -> str:
    """The function and trigger that keep the new column in step while both exist."""
    return _check(f"{ONLINE_SYNC_PREFIX}{table}_{column}"[:63])


def change_column_type(
    migrator: Migrator,
    table: str,
    column: str,
    new_type: str,
    *,
    using: str | None = None,
    default: str | None = None,
    not_null: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = DEFAULT_PAUSE,
) -> None:
    """Give ``table.column`` the type ``new_type`` without blocking writers for the rewrite.

    ``new_type`` as PostgreSQL spells it (``bigint``, ``jsonb``, ``character
    varying(200)``). ``using`` computes the new value from the row (any of
    its columns; default ``column::new_type``); ``default`` and ``not_null``
    are what the column has after the change. Run it in an ``atomic =
    False`` migration: in a transaction (plain ``pw_migrate`` wraps each
    migration in one) the phases are correct but hold their locks until the
    commit. The table needs a one-column primary key (the batches follow it),
    and nothing but the column's default may depend on it (an index, a
    constraint, a view: they would go with the old column), checked before
    the migration's first statement and before the expand.
    """
    _check(table), _check(column)
    temp, sync = new_column_name(column), sync_name(table, column)
    check = not_null_check_name(table, temp)
    expression = using or f"{column}::{new_type}"
    leftovers = [
        f"DROP TRIGGER IF EXISTS {sync} ON {table}",
        f"DROP FUNCTION IF EXISTS {sync}()",
        f"ALTER TABLE {table} DROP COLUMN IF EXISTS {temp}",
    ]

    def expand(database: pw.Database, _in_transaction: bool) -> list[str]:
        statements = [
            f"ALTER TABLE {table} ADD COLUMN {temp} {new_type}",
            f"CREATE OR REPLACE FUNCTION {sync}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$chatdb$ BEGIN NEW.{temp} := (SELECT {expression} FROM (SELECT (NEW).*) AS "
            "chatdb_row); RETURN NEW; END $chatdb$",
            f"CREATE OR REPLACE TRIGGER {sync} BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {sync}()",
        ]
        if not _online(database):
            return statements
        current = lookup.column(database, table, column)
        made = lookup.column(database, table, temp)
        if current is not None and current[0] == new_type:
            # Done, or rolled back before its swap: what the other direction added goes.
            return leftovers if made is not None else []
        if made is not None and made[0] == new_type and lookup.trigger(database, table, sync):
            return []  # expanded by the run that was interrupted
        # Checked here, not before the migration's first statement: its earlier steps may
        # drop what depends on the column.
        dependents = lookup.column_dependents(database, table, column, ONLINE_SYNC_PREFIX)
        if dependents:
            raise ChatdbError(
                f"refusing to change the type of {table}.{column} online: "
                f"{'; '.join(dependents)} depend(s) on it and would go with the old column; "
                "drop them before this step and make them again after it"
            )
        return [*(leftovers if made is not None else []), *statements]

    def refuse(database: pw.Database) -> None:
        current = lookup.column(database, table, column)
        if (
            current is not None
            and current[0] != new_type
            and len(lookup.primary_key(database, table)) != 1
        ):
            raise ChatdbError(
                f"refusing to change the type of {table}.{column} online: the backfill "
                f"walks a one-column primary key and {table} has none (nothing of this "
                "migration ran)"
            )

    def expanded(database: pw.Database) -> bool:
        return lookup.column(database, table, temp) is not None

    def while_expanded(statements: list[str]) -> Callable[[pw.Database, bool], list[str]]:
        return lambda db, _t: statements if not _online(db) or expanded(db) else []

    def contract(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and not expanded(database):
            return []
        old = _check(f"{OLD_COLUMN_PREFIX}{column}"[:63])
        set_default = f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {default}"
        return [
            *([f"ALTER TABLE {table} ALTER COLUMN {temp} SET NOT NULL"] if not_null else []),
            f"DROP TRIGGER {sync} ON {table}",
            f"ALTER TABLE {table} RENAME COLUMN {column} TO {old}",
            f"ALTER TABLE {table} RENAME COLUMN {temp} TO {column}",
            *([set_default] if default else []),
            f"ALTER TABLE {table} DROP COLUMN {old}",
            f"DROP FUNCTION {sync}()",
            *([f"ALTER TABLE {table} DROP CONSTRAINT {check}"] if not_null else []),
        ]

    where = f"{table}.{column}::{new_type}"
    _queue(migrator, f"expand {where}", expand, locks=(table,), refuse=refuse)
    migrator.__ops__.append(
        Backfill.update(
            f"backfill {where}",
            _database(migrator),
            table,
            f"{temp} = {expression}",
            f"{temp} IS NULL AND {column} IS NOT NULL",
            batch_size,
            pause,
            expanded,
        )
    )
    if not_null:
        add = f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({temp} IS NOT NULL) NOT VALID"

        def add_check(database: pw.Database, _in_transaction: bool) -> list[str]:
            if _online(database) and (
                not expanded(database) or lookup.constraint(database, table, check) is not None
            ):
                return []
            return [add]

        _queue(migrator, f"add_not_null_check {table}.{temp}", add_check)
        _queue(
            migrator,
            f"validate_not_null_check {table}.{temp}",
            while_expanded([f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}"]),
        )
    _queue(migrator, f"contract {where}", contract, locks=(table,))


def backfill(
    migrator: Migrator,
    table: str,
    column: str,
    expression: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = DEFAULT_PAUSE,
) -> None:
    """Set ``table.column`` to ``expression`` (SQL over the row) where it is still NULL.

    In batches along the primary key, each its own short transaction outside a
    transaction (``atomic = False``), ``pause`` seconds apart, progress on the
    run's log. Interrupted, a run again continues with the rows still NULL.
    Its rollback is the rollback of what made the column (usually
    ``drop_column``); a backfill changes no schema.
    """
    migrator.__ops__.append(
        Backfill.update(
            f"backfill {table}.{column}",
            _database(migrator),
            _check(table),
            f"{_check(column)} = {expression}",
            f"{column} IS NULL",
            batch_size,
            pause,
            lambda database: True,
        )
    )


def copy_rows(
    migrator: Migrator,
    source: str,
    target: str,
    columns: dict[str, str],
    *,
    match: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause: float = DEFAULT_PAUSE,
) -> None:
    """Copy ``source``'s rows into ``target`` in batches: the backfill of a table split or move.

    ``columns`` maps each target column to an SQL expression over the source
    row (``{"message_id": "message_id", "body": "content"}``); ``match`` is
    the target column whose value identifies the source row it came from (a
    unique column). A source row whose match is already in ``target`` is
    skipped, so a run again after a kill goes on with the rows not copied
    yet, and a row a sync trigger copied meanwhile is left as the trigger
    wrote it. Its rollback is the rollback of what made ``target``; a copy
    changes no schema.
    """
    _check(source), _check(target), _check(match)
    if match not in columns:
        raise ValueError(f"match {match!r} must be one of the target columns {sorted(columns)}")
    names = ", ".join(_check(column) for column in columns)
    values = ", ".join(f"{expression} AS {column}" for column, expression in columns.items())
    pending = f"NOT EXISTS (SELECT 1 FROM {target} WHERE {target}.{match} = {columns[match]})"
    insert = f"INSERT INTO {target} ({names}) SELECT {values} FROM {source}"
    migrator.__ops__.append(
        Backfill(
            f"copy {source} -> {target}",
            _database(migrator),
            source,
            pending,
            lambda key: (
                f"{insert} JOIN batch ON {source}.{key} = batch.chatdb_key "
                "ON CONFLICT DO NOTHING RETURNING 1"
            ),
            f"{insert} WHERE {pending} ON CONFLICT DO NOTHING",
            batch_size,
            pause,
            lambda database: True,
        )
    )


class Backfill:
    """A queued write over ``table``'s ``pending`` rows, run in primary key batches.

    Each batch takes the next ``batch_size`` pending rows after the last key
    of the one before, runs ``write(key)`` on them (a data-modifying
    statement reading the keys from ``batch.chatdb_key``) and commits; the
    key walk visits each row once per run, whatever the write gives.
    ``applies(database)`` says whether there is anything to do (an online
    type change already swapped: nothing). ``chatdb migrate --sql`` prints
    ``script``, the same write as one statement: a script has no loop.
    """

    changes_rows = True
    batched = True  # outside a transaction: lint's unbatched-write does not apply

    def __init__(
        self,
        name: str,
        database: pw.Database,
        table: str,
        pending: str,
        write: Callable[[str], str],
        script: str,
        batch_size: int,
        pause: float,
        applies: Callable[[pw.Database], bool],
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if pause < 0:
            raise ValueError(f"pause must be zero or more seconds, got {pause!r}")
        self.__name__ = name
        self.database = database
        self.table = table
        self.pending = pending
        self.write = write
        self.script = script
        self.batch_size = batch_size
        self.pause = pause
        self.applies = applies

    @classmethod
    def update(
        cls,
        name: str,
        database: pw.Database,
        table: str,
        assignment: str,
        pending: str,
        batch_size: int,
        pause: float,
        applies: Callable[[pw.Database], bool],
    ) -> Backfill:
        """``UPDATE table SET assignment`` on the pending rows."""
        return cls(
            name,
            database,
            table,
            pending,
            lambda key: (
                f"UPDATE {table} SET {assignment} FROM batch "
                f"WHERE {table}.{key} = batch.chatdb_key RETURNING 1"
            ),
            f"UPDATE {table} SET {assignment} WHERE {pending}",
            batch_size,
            pause,
            applies,
        )

    def sql(self, database: pw.Database, in_transaction: bool) -> list[str]:
        if _online(database) and not self.applies(database):
            return []
        return [self.script]

    def __call__(self) -> None:
        database = self.database
        if not self.applies(database):
            return
        key = _batch_key(database, self.table)
        key_type = lookup.column(database, self.table, key)[0]  # type: ignore[index]
        batch = (
            f"WITH batch AS (SELECT {key} AS chatdb_key FROM {self.table} "
            f"WHERE ({self.pending}) AND (%s::text IS NULL OR {key} > %s::text::{key_type}) "
            f"ORDER BY {key} LIMIT %s), "
            f"done AS ({self.write(key)}) "
            "SELECT (SELECT count(*) FROM done), "
            "(SELECT chatdb_key FROM batch ORDER BY chatdb_key DESC LIMIT 1)::text"
        )
        total = lookup.estimated_rows(database, self.table)
        started = reported = time.monotonic()
        done, last, size = 0, None, self.batch_size
        while True:
            began = time.monotonic()
            with database.atomic():
                database.execute_sql(ASYNC_COMMIT)
                count, last = database.execute_sql(batch, (last, last, size)).fetchone()
            size = next_batch_size(size, time.monotonic() - began, self.batch_size)
            if last is None:
                break
            done += count
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                progress.report(_line(self.__name__, done, total, reported - started))
            time.sleep(self.pause)
        progress.report(f"{self.__name__}: {done:,} row(s) in {time.monotonic() - started:.1f}s")

    def check(self, database: pw.Database) -> None:
        """Nothing to refuse: a backfill only fills."""

    def __repr__(self) -> str:
        return f"<Backfill {self.__name__}>"


def next_batch_size(size: int, took: float, largest: int) -> int:
    """The next batch's rows after one of ``size`` rows took ``took`` seconds."""
    if took > BATCH_SECONDS:
        return max(min(SMALLEST_BATCH, largest), size // 2)
    if took < BATCH_SECONDS / 4:
        return min(largest, size * 2)
    return size


def _database(migrator: Migrator) -> pw.Database:
    database = migrator.__database__
    assert isinstance(database, pw.Database), "a migrator runs against a database, not a proxy"
    return database


def _batch_key(database: pw.Database, table: str) -> str:
    names = lookup.primary_key(database, table)
    if len(names) != 1:
        raise ChatdbError(f"cannot backfill {table} in batches: it has no one-column primary key")
    return names[0]


def _line(name: str, done: int, total: int, elapsed: float) -> str:
    share = f" ({min(done * 100 // total, 100)}% of ~{total:,})" if total else ""
    rate = done / elapsed if elapsed > 0 else 0.0
    return f"{name}: {done:,} row(s){share}, {rate:,.0f} rows/s"
