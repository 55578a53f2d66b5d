"""Schema changes that stay lock-safe on large, busy tables: the building blocks of migrations.

The hand-written ones (``set_defaults``, ``create_index``, ``set_on_delete``)
do two things to a peewee-migrate ``Migrator``: they update the migrator's
model state (``migrator.orm``) right away, and queue the DDL as operations
that decide *when they run* how to run; the ones ``chatdb create`` writes
(further down) take catalog names and definitions and only queue DDL:

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

from chatdb.catalog import NOT_NULL_CHECK_PREFIX, lookup
from chatdb.db.sqlstate import LOCK_NOT_AVAILABLE, UNDEFINED_COLUMN, UNDEFINED_TABLE, sqlstate
from chatdb.errors import ChatdbError, DataLossRefused, Remedy
from chatdb.migrate import confirmation
from chatdb.migrate.offline import is_offline

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
        refuse: Callable[[pw.Database], None] | None = None,
        changes_rows: bool = False,
    ):
        self.__name__ = name  # plain peewee-migrate logs every step by its name
        self.database = database
        self.plan = plan
        self.locks = tuple(locks)
        self._refuse = refuse
        self.changes_rows = changes_rows

    def check(self, database: pw.Database) -> None:
        """Raise if the step would refuse (a live database only); the executor calls it
        before a migration's first statement (see :mod:`chatdb.migrate.apply`)."""
        if self._refuse is not None and _online(database):
            self._refuse(database)

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
    refuse: Callable[[pw.Database], None] | None = None,
    changes_rows: bool = False,
) -> None:
    database = migrator.__database__
    assert isinstance(database, pw.Database), "a migrator runs against a database, not a proxy"
    migrator.__ops__.append(SqlOperation(name, database, plan, locks, refuse, changes_rows))


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
    build = _index_build(name, lambda concurrently: f"CREATE INDEX{concurrently} {definition}")
    _queue(migrator, f"create_index {name}", build)
    return name


def _index_build(
    name: str, create: Callable[[str], str]
) -> Callable[[pw.Database, bool], list[str]]:
    """An idempotent build of index ``name``: skipped when valid, rebuilt when left INVALID.

    ``create`` gets the ``CONCURRENTLY`` keyword (or nothing, in a transaction).
    """

    def plan(database: pw.Database, in_transaction: bool) -> list[str]:
        validity = index_validity(database, name)
        if validity is True:
            return []
        concurrently = _concurrently(in_transaction)
        rebuild = [f"DROP INDEX{concurrently} {name}"] if validity is False else []
        return [*rebuild, create(concurrently)]

    return plan


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
    return None if is_offline(database) else lookup.index_validity(database, name)


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
    if is_offline(database) or not lookup.table_exists(database, table):
        return f"{table}_{column}_fkey", None
    found = lookup.foreign_key(database, table, column)
    if found is None:
        raise ValueError(f"{table}.{column} has no foreign key constraint")
    return found


# -- catalog reads of the generated operations --------------------------------
#
# The operations below are what ``chatdb create`` writes. They take names and
# SQL fragments as the catalog spells them (``pg_get_constraintdef``,
# ``pg_get_indexdef``, ``format_type``), so a generated migration needs no
# model state; each reads the catalog first and does only what is missing.


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _online(database: pw.Database) -> bool:
    return not is_offline(database)


_REFERENCES = re.compile(r"REFERENCES ([a-z_][a-z0-9_]*)\(")


def _referenced(definition: str) -> tuple[str, ...]:
    """The parent table of a foreign key definition, as a lock list entry."""
    match = _REFERENCES.search(definition)
    return (match[1],) if match else ()


# -- guards -------------------------------------------------------------------


def guard_data_loss(
    migrator: Migrator,
    tables: Sequence[str] = (),
    columns: Sequence[tuple[str, str]] = (),
) -> None:
    """Refuse, before any other step, to drop tables holding rows or columns holding values.

    Queued first by ``chatdb create`` in a migration that drops something;
    A run that confirmed data loss (:func:`chatdb.migrate.confirmation.confirmed`) goes on.
    """

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if not _online(database) or confirmation.is_confirmed():
            return []
        held = [f"table {t}" for t in tables if lookup.holds_data(database, t)]
        held += [f"column {t}.{c}" for t, c in columns if lookup.holds_data(database, t, c)]
        if held:
            raise DataLossRefused(
                f"refusing to drop {', '.join(held)}, which hold data",
                remedy=Remedy.CONFIRM_DATA_LOSS,
            )
        return []

    _queue(migrator, "guard_data_loss", plan)


# -- enum types ---------------------------------------------------------------


def create_enum(migrator: Migrator, name: str, labels: Sequence[str]) -> None:
    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.enum_labels(database, name) is not None:
            return []
        return [f"CREATE TYPE {_check(name)} AS ENUM ({', '.join(map(_literal, labels))})"]

    _queue(migrator, f"create_enum {name}", plan)


def drop_enum(migrator: Migrator, name: str) -> None:
    _queue(migrator, f"drop_enum {name}", lambda _d, _t: [f"DROP TYPE IF EXISTS {_check(name)}"])


def add_enum_label(
    migrator: Migrator,
    type_name: str,
    label: str,
    *,
    before: str | None = None,
    after: str | None = None,
) -> None:
    """``ALTER TYPE ... ADD VALUE``: a catalog change, no table is touched.

    PostgreSQL lets a transaction use a new label only after the one that
    added it committed, so a migration that adds a label and uses it (or
    whose application code will) is ``atomic = False``.
    """
    position = (
        f" BEFORE {_literal(before)}" if before else f" AFTER {_literal(after)}" if after else ""
    )
    statement = (
        f"ALTER TYPE {_check(type_name)} ADD VALUE IF NOT EXISTS {_literal(label)}{position}"
    )
    _queue(migrator, f"add_enum_label {type_name}.{label}", lambda _d, _t: [statement])


def rename_enum_label(migrator: Migrator, type_name: str, old: str, new: str) -> None:
    """``ALTER TYPE ... RENAME VALUE``: rows holding the label hold the new name at once."""

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and old not in (lookup.enum_labels(database, type_name) or []):
            return []
        return [f"ALTER TYPE {_check(type_name)} RENAME VALUE {_literal(old)} TO {_literal(new)}"]

    _queue(migrator, f"rename_enum_label {type_name}.{old}", plan, changes_rows=True)


def remove_enum_label(
    migrator: Migrator,
    type_name: str,
    label: str,
    *,
    keep: Sequence[str],
    columns: Sequence[tuple[str, str, str | None]],
) -> None:
    """:func:`remove_enum_labels` for one label."""
    remove_enum_labels(migrator, type_name, [label], keep=keep, columns=columns)


def remove_enum_labels(
    migrator: Migrator,
    type_name: str,
    labels: Sequence[str],
    *,
    keep: Sequence[str],
    columns: Sequence[tuple[str, str, str | None]],
) -> None:
    """Drop labels by swapping the type for one without them; refused while rows use one.

    PostgreSQL cannot drop an enum label, so the type is renamed aside, made
    again with the ``keep`` labels, every column of it (``(table, column,
    default)``) converted, and the old type dropped, in one transaction
    holding the tables' locks. The conversion rewrites each table once (one
    ``ALTER TABLE`` for all its columns), whatever the number of labels.

    The new type has a new OID, and other sessions' compiled PL/pgSQL
    functions (the search trigger) keep the old one: their next call would
    fail with ``cache lookup failed for type``. So the step also rewrites
    each PL/pgSQL function's catalog row (``ALTER FUNCTION ... COST``, its
    cost unchanged), which makes every session compile it afresh.
    """
    old = f"{type_name}__chatdb_old"

    def present(database: pw.Database) -> list[str]:
        return [
            label for label in labels if label in (lookup.enum_labels(database, type_name) or [])
        ]

    def refuse(database: pw.Database) -> None:
        for label in present(database):
            _refuse_label_in_use(database, type_name, label, columns)

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        functions: list[tuple[str, float]] = []
        if _online(database):
            if not present(database):
                return []
            refuse(database)
            functions = lookup.plpgsql_functions(database)
        statements = [
            f"ALTER TYPE {_check(type_name)} RENAME TO {old}",
            f"CREATE TYPE {type_name} AS ENUM ({', '.join(map(_literal, keep))})",
        ]
        for table in dict.fromkeys(table for table, _, _ in columns):
            mine = [(column, default) for t, column, default in columns if t == table]
            clauses = [f"ALTER COLUMN {_check(c)} DROP DEFAULT" for c, d in mine if d is not None]
            clauses += [
                f"ALTER COLUMN {c} TYPE {type_name} USING {c}::text::{type_name}" for c, _ in mine
            ]
            clauses += [f"ALTER COLUMN {c} SET DEFAULT {d}" for c, d in mine if d is not None]
            statements.append(f"ALTER TABLE {_check(table)} {', '.join(clauses)}")
        statements.append(f"DROP TYPE {old}")
        return statements + [f"ALTER FUNCTION {f} COST {cost:g}" for f, cost in functions]

    tables = tuple(dict.fromkeys(table for table, _, _ in columns))
    _queue(migrator, f"remove_enum_labels {type_name}", plan, tables, refuse)


def _refuse_label_in_use(
    database: pw.Database,
    type_name: str,
    label: str,
    columns: Sequence[tuple[str, str, str | None]],
) -> None:
    """Name the rows (by primary key) that still hold ``label``."""
    found = []
    for table, column, _ in columns:
        if lookup.column(database, table, column) is None:
            continue  # not there yet (the step's own operations create it)
        key = _primary_key(database, table)
        rows = database.execute_sql(
            f"SELECT {key}::text FROM {_check(table)} WHERE {_check(column)}::text = %s "
            f"ORDER BY 1 LIMIT 4",
            (label,),
        ).fetchall()
        if rows:
            shown = ", ".join(f"{key} {row[0]}" for row in rows[:3])
            found.append(f"{table}.{column} ({shown}{', ...' if len(rows) > 3 else ''})")
    if found:
        raise ChatdbError(
            f"refusing to remove label {label} from enum {type_name}: rows still use it: "
            f"{'; '.join(found)}; change or delete them first"
        )


def _primary_key(database: pw.Database, table: str) -> str:
    """The table's primary key as an SQL expression (a row for a composite key), else ctid."""
    names = lookup.primary_key(database, table)
    if not names:
        return "ctid"
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


# -- tables and columns -------------------------------------------------------

Column = tuple[str, str, bool, "str | None"]  # name, type, NOT NULL, default


def _column_sql(name: str, type_: str, not_null: bool, default: str | None) -> str:
    return (
        f"{_check(name)} {type_}"
        + (f" DEFAULT {default}" if default is not None else "")
        + (" NOT NULL" if not_null else "")
    )


def create_table(
    migrator: Migrator,
    table: str,
    columns: Sequence[Column],
    constraints: Sequence[tuple[str, str]] = (),
) -> None:
    """A new table with its columns (name, type, NOT NULL, default) and named constraints.

    The table is new and empty, so its foreign keys are checked at once (no
    row to scan); the parent tables are locked only for the catalog change.
    """

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.table_exists(database, table):
            return []
        parts = [_column_sql(*column) for column in columns]
        parts += [f"CONSTRAINT {_check(name)} {definition}" for name, definition in constraints]
        return [f"CREATE TABLE {_check(table)} ({', '.join(parts)})"]

    _queue(migrator, f"create_table {table}", plan)


def drop_table(migrator: Migrator, table: str) -> None:
    """Drop a table (its indexes and constraints go with it); see :func:`guard_data_loss`."""
    _queue(
        migrator, f"drop_table {table}", lambda _d, _t: [f"DROP TABLE IF EXISTS {_check(table)}"]
    )


def rename_table(migrator: Migrator, old: str, new: str) -> None:
    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if (
            _online(database)
            and not lookup.table_exists(database, old)
            and lookup.table_exists(database, new)
        ):
            return []
        return [f"ALTER TABLE {_check(old)} RENAME TO {_check(new)}"]

    _queue(migrator, f"rename_table {old}", plan)


def add_column(
    migrator: Migrator,
    table: str,
    column: str,
    type_: str,
    *,
    not_null: bool = False,
    default: str | None = None,
) -> None:
    """A new column: nullable, or with a constant default (a catalog change, no rewrite)."""

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.column(database, table, column) is not None:
            return []
        definition = _column_sql(column, type_, not_null, default)
        return [f"ALTER TABLE {_check(table)} ADD COLUMN {definition}"]

    _queue(migrator, f"add_column {table}.{column}", plan)


def drop_column(migrator: Migrator, table: str, column: str) -> None:
    """Drop a column (a catalog change); see :func:`guard_data_loss`."""
    statement = f"ALTER TABLE {_check(table)} DROP COLUMN IF EXISTS {_check(column)}"
    _queue(migrator, f"drop_column {table}.{column}", lambda _d, _t: [statement])


def rename_column(migrator: Migrator, table: str, old: str, new: str) -> None:
    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.column(database, table, old) is None:
            return []
        return [f"ALTER TABLE {_check(table)} RENAME COLUMN {_check(old)} TO {_check(new)}"]

    _queue(migrator, f"rename_column {table}.{old}", plan)


def set_column_type(migrator: Migrator, table: str, column: str, type_: str) -> None:
    """Change a column's type; ``chatdb create`` writes it only where no rewrite happens.

    (``varchar(n)`` to a longer ``varchar`` or to ``varchar``/``text``: a
    catalog change.) Its rollback, narrowing back, scans the table.
    """

    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        current = lookup.column(database, table, column) if _online(database) else None
        if current is not None and current[0] == type_:
            return []
        return [f"ALTER TABLE {_check(table)} ALTER COLUMN {_check(column)} TYPE {type_}"]

    _queue(migrator, f"set_column_type {table}.{column}", plan, changes_rows=True)


def set_column_default(migrator: Migrator, table: str, column: str, default: str | None) -> None:
    """Set (an SQL expression) or drop (None) a column's default: a catalog change."""
    alter = f"ALTER TABLE {_check(table)} ALTER COLUMN {_check(column)}"
    statement = f"{alter} DROP DEFAULT" if default is None else f"{alter} SET DEFAULT {default}"
    _queue(migrator, f"set_column_default {table}.{column}", lambda _d, _t: [statement])


def not_null_check_name(table: str, column: str) -> str:
    """The temporary ``CHECK (column IS NOT NULL)`` of :func:`set_not_null`."""
    return f"{NOT_NULL_CHECK_PREFIX}{table}_{column}"[:63]


def set_not_null(migrator: Migrator, table: str, column: str) -> None:
    """``NOT NULL`` on an existing column without holding a write lock for the scan.

    Four steps: a ``CHECK (column IS NOT NULL) NOT VALID`` (catalog only),
    ``VALIDATE`` (scans under a lock that lets writers on), ``SET NOT NULL``
    (PostgreSQL uses the valid check instead of scanning), then the check is
    dropped. Run outside a transaction (``atomic = False``) so each holds its
    lock only for itself.
    """
    check = not_null_check_name(_check(table), _check(column))
    prefix = f"ALTER TABLE {table}"

    def unless_done(statement: str, *, needs_check: bool | None = None):
        def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
            if not _online(database):
                return [statement]
            current = lookup.column(database, table, column)
            if current is None or current[1]:
                return []
            present = lookup.constraint(database, table, check) is not None
            if needs_check is not None and present == needs_check:
                return []
            return [statement]

        return plan

    column_name = f"{table}.{column}"

    def refuse(database: pw.Database) -> None:
        current = lookup.column(database, table, column)
        if current is not None and not current[1]:
            _refuse_violations(database, table, f"{_check(column)} IS NULL",
                               f"set {column_name} NOT NULL", "hold NULL there")  # fmt: skip

    _queue(
        migrator,
        f"add_not_null_check {column_name}",
        unless_done(
            f"{prefix} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID",
            needs_check=True,
        ),
        refuse=refuse,
    )
    _queue(
        migrator,
        f"validate_not_null_check {column_name}",
        unless_done(f"{prefix} VALIDATE CONSTRAINT {check}"),
    )
    _queue(
        migrator,
        f"set_not_null {column_name}",
        unless_done(f"{prefix} ALTER COLUMN {column} SET NOT NULL"),
    )
    _queue(
        migrator,
        f"drop_not_null_check {column_name}",
        lambda _d, _t: [f"{prefix} DROP CONSTRAINT IF EXISTS {check}"],
    )


def drop_not_null(migrator: Migrator, table: str, column: str) -> None:
    statement = f"ALTER TABLE {_check(table)} ALTER COLUMN {_check(column)} DROP NOT NULL"
    _queue(migrator, f"drop_not_null {table}.{column}", lambda _d, _t: [statement])


# -- indexes and constraints by definition ------------------------------------

_INDEX_DEFINITION = re.compile(r"^CREATE (UNIQUE )?INDEX ([a-z_][a-z0-9_]*) ON (.+)$")


def add_index(migrator: Migrator, definition: str) -> str:
    """Build an index from its ``pg_get_indexdef`` text, ``CONCURRENTLY`` outside a transaction.

    Returns its name. An INVALID leftover of an interrupted build is dropped
    and built again.
    """
    match = _INDEX_DEFINITION.match(definition)
    if not match:
        raise ValueError(f"not an index definition: {definition!r}")
    unique, name, rest = match[1] or "", match[2], match[3]
    build = _index_build(
        name, lambda concurrently: f"CREATE {unique}INDEX{concurrently} {name} ON {rest}"
    )
    _queue(migrator, f"add_index {name}", build)
    return name


def remove_index(migrator: Migrator, name: str) -> None:
    """Drop an index by name, ``CONCURRENTLY`` outside a transaction."""
    _queue(
        migrator,
        f"remove_index {name}",
        lambda _d, in_transaction: [
            f"DROP INDEX{_concurrently(in_transaction)} IF EXISTS {_check(name)}"
        ],
    )


def rename_index(migrator: Migrator, old: str, new: str) -> None:
    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and index_validity(database, old) is None:
            return []
        return [f"ALTER INDEX {_check(old)} RENAME TO {_check(new)}"]

    _queue(migrator, f"rename_index {old}", plan)


def add_constraint(migrator: Migrator, table: str, name: str, definition: str) -> None:
    """A foreign key or check on an existing table: ``NOT VALID``, then ``VALIDATE``.

    The first step is a catalog change (rows written from then on are
    checked); the second scans the table under a lock that lets writers on.
    """
    if not definition.startswith(("FOREIGN KEY", "CHECK")):
        raise ValueError(f"add_constraint takes a FOREIGN KEY or CHECK, not {definition!r}")

    def add(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.constraint(database, table, name) is not None:
            return []
        return [f"ALTER TABLE {_check(table)} ADD CONSTRAINT {_check(name)} {definition} NOT VALID"]

    def refuse(database: pw.Database) -> None:
        if lookup.table_exists(database, table):
            violated = _violations(table, definition)
            if violated is not None:
                _refuse_violations(database, table, violated, f"add {name} {definition}",
                                   "violate it")  # fmt: skip

    _queue(
        migrator,
        f"add_constraint {name}",
        add,
        locks=(table, *_referenced(definition)),
        refuse=refuse,
    )
    _queue(migrator, f"validate_constraint {name}", _validate(table, name))


_SINGLE_FOREIGN_KEY = re.compile(r"FOREIGN KEY \((\w+)\) REFERENCES (\w+)\s*\((\w+)\)")
# Counted up to this many; past it the refusal says "more than".
_COUNT_UP_TO = 1000


def _violations(table: str, definition: str) -> str | None:
    """A WHERE clause for the rows of ``table`` that break ``definition`` (None: not known).

    A CHECK is broken where its expression is false (NULL passes, as in
    PostgreSQL); a one-column foreign key where the value has no parent.
    """
    if definition.startswith("CHECK"):
        return f"({definition.removeprefix('CHECK').strip()}) IS FALSE"
    match = _SINGLE_FOREIGN_KEY.match(definition)
    if match is None:
        return None
    column, parent, key = (_check(name) for name in match.groups())
    return (
        f"{column} IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {parent} p WHERE p.{key} = {_check(table)}.{column})"
    )


def _refuse_violations(
    database: pw.Database, table: str, where: str, doing: str, breaking: str
) -> None:
    """Refuse ``doing`` while rows of ``table`` match ``where``, counting and naming some."""
    key = _primary_key(database, table)
    query = f"SELECT {key}::text FROM {_check(table)} WHERE {where} LIMIT {_COUNT_UP_TO + 1}"
    try:
        with database.atomic():  # a savepoint inside a step's transaction
            rows = database.execute_sql(query).fetchall()
    except pw.ProgrammingError as exc:
        if sqlstate(exc) in (UNDEFINED_COLUMN, UNDEFINED_TABLE):
            return  # made by an earlier operation of the migration: checked when it runs
        raise
    if not rows:
        return
    count = f"more than {_COUNT_UP_TO}" if len(rows) > _COUNT_UP_TO else str(len(rows))
    shown = ", ".join(row[0] for row in rows[:3])
    raise ChatdbError(
        f"refusing to {doing}: {count} row(s) of {table} {breaking} ({key} {shown}"
        f"{', ...' if len(rows) > 3 else ''}); fix or delete them first (or backfill them in "
        "a migration before this one); nothing of this migration ran"
    )


def _validate(table: str, name: str) -> Callable[[pw.Database, bool], list[str]]:
    # A no-op for a constraint that is already valid, so it always runs.
    return lambda _d, _t: [f"ALTER TABLE {_check(table)} VALIDATE CONSTRAINT {_check(name)}"]


def drop_constraint(migrator: Migrator, table: str, name: str, definition: str) -> None:
    """Drop a constraint (``definition`` names the parent table a foreign key also locks)."""
    statement = f"ALTER TABLE {_check(table)} DROP CONSTRAINT IF EXISTS {_check(name)}"
    _queue(
        migrator,
        f"drop_constraint {name}",
        lambda _d, _t: [statement],
        locks=(table, *_referenced(definition)),
    )


def replace_constraint(migrator: Migrator, table: str, name: str, definition: str) -> None:
    """Give a foreign key or check a new definition (a delete rule), keeping its name.

    Swapped ``NOT VALID`` in one statement, then validated separately, as
    :func:`set_on_delete` does.
    """

    def replace(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.constraint(database, table, name) == definition:
            return []
        return [
            f"ALTER TABLE {_check(table)} DROP CONSTRAINT {_check(name)}, "
            f"ADD CONSTRAINT {name} {definition} NOT VALID"
        ]

    _queue(migrator, f"replace_constraint {name}", replace, locks=(table, *_referenced(definition)))
    _queue(migrator, f"validate_constraint {name}", _validate(table, name))


def rename_constraint(migrator: Migrator, table: str, old: str, new: str) -> None:
    def plan(database: pw.Database, _in_transaction: bool) -> list[str]:
        if _online(database) and lookup.constraint(database, table, old) is None:
            return []
        return [f"ALTER TABLE {_check(table)} RENAME CONSTRAINT {_check(old)} TO {_check(new)}"]

    _queue(migrator, f"rename_constraint {old}", plan)
