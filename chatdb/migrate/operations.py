"""Schema changes that stay lock-safe on large, busy tables: the building blocks of migrations.

Each function does two things to a peewee-migrate ``Migrator``: it updates the
migrator's model state (``migrator.orm``, which ``pw_migrate create --auto``
compares with ``chatdb.schema.models``) right away, and queues the DDL as
operations that decide *when they run* how to run:

- outside a transaction (chatdb's runner, for a migration with
  ``atomic = False``), indexes are built and dropped ``CONCURRENTLY`` and a
  foreign key is replaced ``NOT VALID`` and validated in a separate step, so
  writers are never blocked for longer than a catalog update;
- inside a transaction (chatdb's runner for an atomic migration, or plain
  ``pw_migrate``, which wraps every migration in one), the same changes run
  as plain statements, which is correct but holds write locks until commit.

Every operation is idempotent: it reads the catalog first and does only what
is missing, so running an interrupted non-atomic migration again completes
it. An ``INVALID`` index (left by an interrupted concurrent build) is dropped
and built again.

Outside a transaction no step waits for a lock while holding another one, so
a step can never deadlock with application transactions (which lock a
message, then its thread for the foreign key check, then a child table): a
step locks one table, or, when it must lock two (a foreign key swap), waits
for the first and tries the second with ``NOWAIT``, releasing both and
trying again shortly when it is busy.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence

import peewee as pw
from peewee_migrate import Migrator

from chatdb.db.sqlstate import LOCK_NOT_AVAILABLE, sqlstate

# pg_constraint.confdeltype for each ON DELETE action (None: the default, NO ACTION).
_DELETE_ACTIONS = {None: "a", "RESTRICT": "r", "CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_INDEX_COLUMN = re.compile(r"^([a-z_][a-z0-9_]*)(?: (ASC|DESC))?$")
# How often a two-table step retries when its second table is busy (``NOWAIT``).
NOWAIT_ATTEMPTS = 50
NOWAIT_PAUSE = 0.2


def _check(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    return name


def _field(migrator: Migrator, table: str, column: str) -> pw.Field:
    model = migrator.orm[table]
    for field in model._meta.sorted_fields:
        if field.column_name == column:
            return field
    raise ValueError(f"{table} has no column {column}")


def _concurrently(in_transaction: bool) -> str:
    """``CONCURRENTLY`` where PostgreSQL allows it: outside a transaction block."""
    return "" if in_transaction else " CONCURRENTLY"


class SqlOperation:
    """A queued migration step whose statements are decided when it runs.

    ``plan(database, in_transaction)`` reads the catalog and returns the
    statements still needed, so the step is idempotent; calling the operation
    runs them, and ``sql(...)`` lets ``chatdb migrate --sql`` print them.

    ``locks`` names the tables a multi-table step must hold, in order. Outside
    a transaction the step then runs in one of its own, taking them first:
    the first one waiting (up to ``lock_timeout``), the others ``NOWAIT``; a
    busy one rolls it back and it tries again a moment later, so it never
    holds a lock while it waits for another.
    """

    def __init__(
        self,
        name: str,
        database: pw.Database,
        plan: Callable[[pw.Database, bool], list[str]],
        locks: Sequence[str] = (),
    ):
        self.__name__ = name  # plain peewee-migrate logs every step by its name
        self.database = database
        self.plan = plan
        self.locks = tuple(locks)

    def sql(self, database: pw.Database, in_transaction: bool) -> list[str]:
        """The statements as a script would run them (its own transaction for the locks)."""
        statements = self._statements(database, in_transaction)
        if self._locking(in_transaction) and statements:
            return ["BEGIN", *statements, "COMMIT"]
        return statements

    def __call__(self) -> None:
        database = self.database
        in_transaction = database.in_transaction()
        if not self._locking(in_transaction):
            self._execute(in_transaction)
            return
        for attempt in range(1, NOWAIT_ATTEMPTS + 1):
            try:
                with database.atomic():
                    self._execute(in_transaction)
                return
            except pw.OperationalError as exc:
                busy = sqlstate(exc) == LOCK_NOT_AVAILABLE and "could not obtain" in str(exc)
                if not busy or attempt == NOWAIT_ATTEMPTS:
                    raise
                time.sleep(NOWAIT_PAUSE * random.uniform(0.5, 1.5))

    def _locking(self, in_transaction: bool) -> bool:
        return bool(self.locks) and not in_transaction

    def _statements(self, database: pw.Database, in_transaction: bool) -> list[str]:
        statements = self.plan(database, in_transaction)
        if not statements or not self._locking(in_transaction):
            return statements
        first, *others = self.locks
        return [
            f"LOCK TABLE {first} IN ACCESS EXCLUSIVE MODE",
            *(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT" for table in others),
            *statements,
        ]

    def _execute(self, in_transaction: bool) -> None:
        for statement in self._statements(self.database, in_transaction):
            self.database.execute_sql(statement)

    def __repr__(self) -> str:
        return f"<SqlOperation {self.__name__}>"


def _queue(
    migrator: Migrator,
    name: str,
    plan: Callable[[pw.Database, bool], list[str]],
    locks: Sequence[str] = (),
) -> None:
    migrator.__ops__.append(SqlOperation(name, migrator.__database__, plan, locks))


# -- server defaults ----------------------------------------------------------


def set_defaults(migrator: Migrator, table: str, defaults: dict[str, str]) -> None:
    """Give columns of ``table`` database-side defaults (``{column: SQL expression}``).

    One ``ALTER TABLE`` for the table: a catalog change (no row is read or
    rewritten) under a single short lock.
    """
    for column, expression in defaults.items():
        _field(migrator, table, column).constraints = [pw.SQL(f"DEFAULT {expression}")]
    clauses = ", ".join(
        f"ALTER COLUMN {_check(column)} SET DEFAULT {expression}"
        for column, expression in defaults.items()
    )
    migrator.sql(f"ALTER TABLE {_check(table)} {clauses}")


def drop_defaults(migrator: Migrator, table: str, columns: Sequence[str]) -> None:
    for column in columns:
        _field(migrator, table, column).constraints = None
    clauses = ", ".join(f"ALTER COLUMN {_check(column)} DROP DEFAULT" for column in columns)
    migrator.sql(f"ALTER TABLE {_check(table)} {clauses}")


# -- indexes ------------------------------------------------------------------


def index_name(table: str, columns: tuple[str, ...]) -> str:
    """``ix_<table>_<columns>``, the project's index naming convention."""
    return "_".join(["ix", table, *(column.split()[0] for column in columns)])


def create_index(migrator: Migrator, table: str, *columns: str) -> str:
    """Index ``table`` on ``columns`` (each a column name, optionally followed by DESC).

    Returns the index name, ``ix_<table>_<columns>``.
    """
    name = index_name(_check(table), columns)
    model = migrator.orm[table]
    expressions = []
    for spec in columns:
        match = _INDEX_COLUMN.match(spec)
        if not match:
            raise ValueError(f"index column {spec!r} is not 'name' or 'name DESC'")
        field = _field(migrator, table, match[1])
        expressions.append(field.desc() if match[2] == "DESC" else field)
    model._meta.indexes.append(pw.ModelIndex(model, expressions, name=name))
    definition = f"{_check(name)} ON {_check(table)} ({', '.join(columns)})"

    def plan(database: pw.Database, in_transaction: bool) -> list[str]:
        validity = index_validity(database, name)
        if validity is True:
            return []
        concurrently = _concurrently(in_transaction)
        rebuild = [f"DROP INDEX{concurrently} {name}"] if validity is False else []
        return [*rebuild, f"CREATE INDEX{concurrently} {definition}"]

    _queue(migrator, f"create_index {name}", plan)
    return name


def drop_index(migrator: Migrator, table: str, *columns: str) -> str:
    """Drop the index :func:`create_index` made for the same arguments."""
    name = _check(index_name(table, columns))
    model = migrator.orm[table]
    model._meta.indexes = [
        index for index in model._meta.indexes if getattr(index, "_name", None) != name
    ]
    _queue(
        migrator,
        f"drop_index {name}",
        lambda _database, in_transaction: [
            f"DROP INDEX{_concurrently(in_transaction)} IF EXISTS {name}"
        ],
    )
    return name


def index_validity(database: pw.Database, name: str) -> bool | None:
    """True for a usable index, False for an INVALID leftover, None when there is none."""
    row = database.execute_sql(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE c.relname = %s AND c.relnamespace = 'public'::regnamespace",
        (name,),
    ).fetchone()
    return None if row is None else bool(row[0])


# -- foreign keys -------------------------------------------------------------


def set_on_delete(migrator: Migrator, table: str, column: str, action: str | None) -> None:
    """Make the foreign key on ``table.column`` act ``ON DELETE action``, keeping its name.

    ``action`` is ``"CASCADE"``, ``"RESTRICT"``, ``"SET NULL"``, ``"SET DEFAULT"``
    or None (``NO ACTION``, PostgreSQL's default). Two steps: the constraint is
    replaced by one with the new action, ``NOT VALID`` (a catalog change: rows
    written meanwhile are checked, existing ones are not scanned), then
    ``VALIDATE CONSTRAINT`` scans the table under a lock that lets writers on.
    The swap locks both tables (see :class:`SqlOperation` for how it avoids
    deadlocks with writers).
    """
    if action not in _DELETE_ACTIONS:
        raise ValueError(f"unknown ON DELETE action {action!r}")
    field = _field(migrator, _check(table), _check(column))
    if not isinstance(field, pw.ForeignKeyField):
        raise ValueError(f"{table}.{column} is not a foreign key")
    field.on_delete = action
    target = f"{field.rel_model._meta.table_name} ({field.rel_field.column_name})"
    on_delete = f" ON DELETE {action}" if action else ""

    def replace(database: pw.Database, _in_transaction: bool) -> list[str]:
        name, current = _foreign_key(database, table, column)
        if current == _DELETE_ACTIONS[action]:
            return []
        return [
            f"ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} "
            f"FOREIGN KEY ({column}) REFERENCES {target}{on_delete} NOT VALID"
        ]

    def validate(database: pw.Database, _in_transaction: bool) -> list[str]:
        # A no-op for a constraint that is already valid, so it always runs.
        name = _foreign_key(database, table, column)[0]
        return [f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}"]

    # Dropping a foreign key locks both tables; the child is waited for, the parent is not.
    parent = field.rel_model._meta.table_name
    _queue(migrator, f"replace_foreign_key {table}.{column}", replace, locks=(table, parent))
    _queue(migrator, f"validate_foreign_key {table}.{column}", validate)


def _foreign_key(database: pw.Database, table: str, column: str) -> tuple[str, str | None]:
    """(name, confdeltype) of the foreign key on ``table.column``.

    A table that does not exist yet (``chatdb migrate --sql`` printing a whole
    chain on an empty database) gets PostgreSQL's default constraint name and
    no action, so the statements are printed in full.
    """
    exists = database.execute_sql("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()[0]
    if exists is None:
        return f"{table}_{column}_fkey", None
    row = database.execute_sql(
        """
        SELECT k.conname, k.confdeltype
        FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND a.attname = %s
          AND cardinality(k.conkey) = 1
        """,
        (f"public.{table}", column),
    ).fetchone()
    if row is None:
        raise ValueError(f"{table}.{column} has no foreign key constraint")
    return row[0], row[1]
