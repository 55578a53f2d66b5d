"""``chatdb migrate --sql`` and ``chatdb rollback --sql``: print the SQL instead of running it.

The runner executes exactly the same code path as for a real run, with a
:class:`Recorder` as its sink: every statement it would send, with the
transaction boundaries (``BEGIN``/``COMMIT`` around each atomic migration,
none around an ``atomic = False`` one), the ``lock_timeout`` settings and the
history writes, becomes text for ``psql``. Nothing is written; the database is
only read (history, catalog, parameter quoting).

Migration steps render like this:

- ``playhouse.migrate`` operations (every ``migrator.*`` call, including
  ``migrator.sql``) through the database's own SQL context;
- ``migrator.create_model`` through the model's schema manager;
- any other step must be an object with ``sql(database, in_transaction) ->
  list[str]`` (see :class:`chatdb.migrate.operations.SqlOperation`); a plain Python
  callable (``migrator.run``) cannot be previewed and is refused by name.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeGuard

import peewee as pw
from playhouse.migrate import Operation

from chatdb.errors import ChatdbError
from chatdb.migrate import loader
from chatdb.migrate.executor import Runner
from chatdb.migrate.migrator import Migrator
from chatdb.migrate.offline import OfflineDatabase


class Recorder:
    """A :class:`~chatdb.migrate.sink.Sink` that writes statements down instead of running them."""

    def __init__(self, database: pw.PostgresqlDatabase):
        self.database = database
        self.lines: list[str] = []

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        self.lines.append("BEGIN;")
        yield
        self.lines.append("COMMIT;")

    def execute_sql(self, sql: str, params: Any = None) -> None:
        self._add(sql, params)

    def run(self, operation: Any, *, in_transaction: bool) -> None:
        for sql, params in render(operation, self.database, in_transaction=in_transaction):
            self._add(sql, params)

    def note(self, text: str) -> None:
        """A comment line; control characters are escaped, so it never ends early."""
        safe = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        self.lines += ["", f"-- {safe}"]

    def text(self) -> str:
        return "\n".join(self.lines).strip() + "\n"

    def _add(self, sql: str, params: Any) -> None:
        """The statement as the server would receive it, parameters quoted by the driver."""
        with self.database.cursor() as cursor:
            statement = cursor.mogrify(sql, params or ()).decode().strip()
        self.lines.append(statement if statement.endswith(";") else statement + ";")


def render(operation: Any, database: pw.Database, *, in_transaction: bool) -> list[tuple[str, Any]]:
    """The statements (with parameters) one queued migrator step would execute."""
    if isinstance(operation, Operation):
        return _nodes(
            operation.fn(operation.migrator, *operation.args, **operation.kwargs), database
        )
    if callable(getattr(operation, "sql", None)):
        return [(sql, None) for sql in operation.sql(database, in_transaction)]
    model = getattr(operation, "__self__", None)
    if _is_model(model) and getattr(operation, "__name__", "") == "create_table":
        schema = model._schema  # type: ignore[attr-defined]  # not in the stubs
        return _nodes(
            [schema._create_table(safe=True), *schema._create_indexes(safe=True)], database
        )
    name = python_step(operation)
    raise ChatdbError(
        f"cannot print the SQL of migration step {name}: it is Python code; give it a "
        "sql(database, in_transaction) method (chatdb.migrate.operations.SqlOperation)"
    )


def python_step(operation: Any) -> str:
    """The name of a step that is Python code (``migrator.run``), not SQL anyone can read."""
    return str(getattr(operation, "__qualname__", type(operation).__name__))


def is_python(operation: Any) -> bool:
    """Whether ``operation`` is a plain callable :func:`render` cannot turn into SQL."""
    model = getattr(operation, "__self__", None)
    return not (
        isinstance(operation, Operation)
        or callable(getattr(operation, "sql", None))
        or (_is_model(model) and getattr(operation, "__name__", "") == "create_table")
    )


def _is_model(value: Any) -> TypeGuard[type[pw.Model]]:
    return isinstance(value, type) and issubclass(value, pw.Model)


def _nodes(result: Any, database: pw.Database) -> list[tuple[str, Any]]:
    """What ``playhouse.migrate.Operation.run`` would execute for this result."""
    if isinstance(result, Operation):
        return _nodes(result.fn(result.migrator, *result.args, **result.kwargs), database)
    if isinstance(result, (list, tuple)):
        return [statement for item in result for statement in _nodes(item, database)]
    if isinstance(result, (pw.Node, pw.Context)):
        return [database.get_sql_context().sql(result).query()]
    return []


def upgrade_sql(runner: Runner, target: str | None = None, **options: bool) -> str:
    """The script ``runner.migrate(target, **options)`` would run."""
    recorder = Recorder(runner.database)
    runner.migrate(target, **options, sink=recorder)
    return recorder.text()


def rollback_sql(
    runner: Runner,
    count: int | None = None,
    *,
    to: str | None = None,
    **options: Any,
) -> str:
    """The script ``runner.rollback(count, to=to, **options)`` would run."""
    recorder = Recorder(runner.database)
    runner.rollback(count, to=to, **options, sink=recorder)
    return recorder.text()


# -- without a database -------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One statement a migration would send, and the line of the file that queued it."""

    sql: str
    line: int | None
    python: bool = False  # a Python step (``migrator.run``): ``sql`` is its name, not SQL
    batched: bool = False  # run in short transactions of its own, a batch of rows each


class _TracingMigrator(Migrator):
    """A migrator remembering, for each queued step, the line of the migration file."""

    def __init__(self, database: pw.Database, path: Path):
        self.path = str(path)
        self.lines: dict[int, int] = {}
        super().__init__(database)

    @property
    def __ops__(self) -> list[Any]:
        return self._ops

    @__ops__.setter
    def __ops__(self, ops: list[Any]) -> None:
        self._ops = _Traced(self, ops)


class _Traced(list):
    def __init__(self, migrator: _TracingMigrator, ops: list[Any]):
        super().__init__(ops)
        self.migrator = migrator

    def append(self, op: Any) -> None:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename != self.migrator.path:
            frame = frame.f_back
        if frame is not None:
            self.migrator.lines[id(op)] = frame.f_lineno
        super().append(op)


def offline_statements(
    directory: Path, name: str, *, upgrade: bool = True, python_steps: bool = False
) -> list[Statement]:
    """What migration ``name`` sends when applied (or rolled back) right after its predecessors.

    No database is needed: the earlier files are replayed for their model
    state, and every step renders itself against :class:`OfflineDatabase`.
    A Python step is refused, or with ``python_steps`` listed by name (lint
    reports what it cannot read).
    """
    names = loader.names(directory)
    if name not in names:
        raise ChatdbError(f"no migration {name} in {directory}")
    migration = loader.load(directory, name)
    database = OfflineDatabase()
    migrator = _TracingMigrator(database, migration.path)
    replay = names[: names.index(name) + (0 if upgrade else 1)]
    for earlier in replay:
        loader.load(directory, earlier).migrate(migrator, database, fake=True)
        migrator.__ops__ = []
    function = migration.migrate if upgrade else migration.rollback
    function(migrator, database, fake=False)
    statements = []
    for operation in migrator.__ops__:
        line = migrator.lines.get(id(operation))
        if python_steps and is_python(operation):
            statements.append(Statement(python_step(operation), line, python=True))
            continue
        # A batched write (a backfill) prints as the one statement a script would run, but
        # outside a transaction it runs a batch of rows per transaction.
        batched = getattr(operation, "batched", False) and not migration.atomic
        for sql, _params in render(operation, database, in_transaction=migration.atomic):
            statements.append(Statement(sql, line, batched=batched))
    return statements
