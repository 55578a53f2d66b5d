"""The one apply step: how a single migration (or its rollback) runs, for every front end.

Whatever started the run (``chatdb migrate`` or ``rollback``, their
``--sql``, the handover and its undo, plain ``pw_migrate``), each
:class:`~chatdb.migrate.plan.Step` goes through :meth:`Applier.apply`:

- session settings: every step's transaction starts with ``SET LOCAL
  lock_timeout`` (``--lock-timeout``), ``statement_timeout = 0`` and, on
  PostgreSQL 17+, no ``transaction_timeout`` (:mod:`chatdb.migrate.settings`);
  ``SET LOCAL`` ends with the transaction, so nothing leaks to another client
  behind a transaction pooler;
- the migrator lock, checked before every operation and before recording;
- the data-loss confirmation, which the ``guard_data_loss`` operation reads
  from the run (:mod:`chatdb.migrate.confirmation`), and the run's log, where
  a batched backfill reports its progress (:mod:`chatdb.migrate.progress`);
- ``atomic = False``: each plain statement in a transaction of its own, a
  statement PostgreSQL runs only outside one (``CREATE INDEX CONCURRENTLY``)
  with the settings for the session, set right before it and reset right
  after it;
- retries after a lock timeout or a deadlock, with back-off, naming the
  sessions waited for;
- recording the step in the history, in the step's transaction (or one of
  its own after a non-atomic step).

Writes go to a :class:`~chatdb.migrate.sink.Sink`: :class:`Live` runs them,
``chatdb.migrate.preview``'s recorder prints them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import peewee as pw
from playhouse.migrate import Operation

from chatdb.db.sqlstate import (
    ACTIVE_SQL_TRANSACTION,
    DEADLOCK_DETECTED,
    LOCK_NOT_AVAILABLE,
    detail,
    sqlstate,
)
from chatdb.errors import ChatdbError, LockNotObtained, first_line
from chatdb.migrate import history, loader, progress, settings
from chatdb.migrate.lock import LOCK_APPLICATION_NAME, MigrationLock
from chatdb.migrate.migrator import Migrator
from chatdb.migrate.plan import Step
from chatdb.migrate.replay import State
from chatdb.migrate.sink import Sink

DEFAULT_ATTEMPTS = 3


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retrying after failed ``attempt`` (1, 2, ...): 2, 4, 8, 10, 10."""
    return min(2.0**attempt, 10.0)


class StepFailed(ChatdbError):
    """A migration's statement failed; ``cause`` is what PostgreSQL said, without the way on."""

    def __init__(self, message: str, *, cause: str):
        super().__init__(message)
        self.cause = cause


class Live:
    """The database as a sink: everything really runs."""

    def __init__(self, database: pw.Database):
        self.database = database
        self.atomic = database.atomic
        self.execute_sql = database.execute_sql

    def run(self, operation: Any, *, in_transaction: bool) -> None:
        if isinstance(operation, Operation):
            operation.run()
        else:
            operation()

    def note(self, text: str) -> None:
        pass


def _may_change_rows(operation: Any) -> bool:
    """Whether an operation may change rows a later operation's check reads."""
    if isinstance(operation, Operation):
        return getattr(operation.fn, "__name__", "") == "sql"  # migrator.sql: anything
    return bool(getattr(operation, "changes_rows", True))  # an unknown callable: anything


class Applier:
    """Runs steps against one database, with one run's settings, lock and model state."""

    def __init__(
        self,
        database: pw.Database,
        replay: State,
        *,
        lock: MigrationLock | None,
        lock_timeout: float,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: Callable[[int], float] = default_backoff,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.database = database
        self.replay = replay
        self.lock = lock
        self.lock_timeout = lock_timeout
        self.attempts = attempts
        self.backoff = backoff
        self.log = log

    def apply(self, step: Step, out: Sink, again: str = "running the same command again") -> None:
        """Run one step, retrying on lock timeouts and deadlocks; the one place a step runs.

        ``again`` is what completes an interrupted non-atomic one.
        """
        migration, verb = step.migration, step.verb
        out.note(f"{verb} {migration.name}" + ("" if migration.atomic else " (atomic = False)"))
        if not isinstance(out, Live):
            try:
                self._attempt(step, out)
            except ChatdbError:
                raise
            except Exception as exc:
                raise ChatdbError(
                    f"cannot print the SQL of {migration.name} ({verb}): {first_line(exc)}"
                ) from exc
            return
        self.log(f"{verb} {migration.name}")
        for attempt in range(1, self.attempts + 1):
            try:
                with progress.reporting(self.log):
                    self._attempt(step, out)
                return
            except pw.DatabaseError as exc:
                code = sqlstate(exc)
                if code not in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
                    raise self._failure(migration, exc, verb, again) from exc
                holders = self._lock_holders()
                if code == DEADLOCK_DETECTED:
                    holders = f"a deadlock with {holders}"
                if attempt == self.attempts:
                    left = (
                        "the database is unchanged"
                        if migration.atomic
                        else f"its finished steps stay; {again} completes it"
                    )
                    raise LockNotObtained(
                        f"{verb} {migration.name}: gave up after {attempt} attempts of "
                        f"{self.lock_timeout:g}s waiting for a lock held by {holders}; "
                        f"end that transaction or retry later ({left})"
                    ) from exc
                self.log(f"{migration.name}: lock wait timed out ({holders}); retrying")
                time.sleep(self.backoff(attempt))
            except ChatdbError:
                raise
            except Exception as exc:
                raise self._failure(migration, exc, verb, again) from exc

    def _attempt(self, step: Step, out: Sink) -> None:
        if step.atomic:
            with out.atomic():
                self.set_local(out)
                self.run_inside(step, out)
            return
        migrator, operations = self._prepare(step)
        self._run_outside_transaction(step, operations, out)
        self.replay.settle(migrator, list(step.after))

    def run_inside(self, step: Step, out: Sink, *, check_each_operation: bool = True) -> None:
        """The step's operations and its history row, in the transaction the caller holds.

        An atomic step runs so in a transaction of its own; a bootstrap runs
        every step so in one (nobody sees its tables before it commits, so
        the lock is checked before each history row only).
        """
        migrator, operations = self._prepare(step)
        for operation in operations:
            if check_each_operation:
                self._still_locked()
            out.run(operation, in_transaction=True)
        self._record(step.migration, step.upgrade, out)
        self.replay.settle(migrator, list(step.after))

    def _prepare(self, step: Step) -> tuple[Migrator, list[Operation | Callable[[], Any]]]:
        """The step's model state and operations, once their checks have passed.

        An operation may carry a ``check(database)`` that raises when it
        would refuse (a label still in use, rows that would be lost, rows
        breaking a constraint to add): they run before the step's first
        statement, so a step does not stop half way on a refusal, whatever
        the order of its operations. Up to the first operation that may
        change rows (raw SQL, a Python callable, a type change): what follows
        it meets the rows as that left them (a backfill, then
        ``set_not_null``), so it is checked as it runs, by PostgreSQL (a
        ``NOT NULL`` by its validation, which a rerun recognises).
        """
        migrator = self.replay.take(list(step.replay))
        function = step.migration.migrate if step.upgrade else step.migration.rollback
        operations = self._operations(function, migrator)
        for operation in operations:
            if _may_change_rows(operation):
                break
            check = getattr(operation, "check", None)
            if check is not None:
                check(self.database)
        return migrator, operations

    def _operations(
        self, function: Callable[..., Any], migrator: Migrator
    ) -> list[Operation | Callable[[], Any]]:
        """Call the migration function and take the operations it queued."""
        function(migrator, self.database, fake=False)
        operations, migrator.__ops__ = list(migrator.__ops__), []
        return operations

    def _still_locked(self) -> None:
        """Stop unless the migrator lock is still held (a no-op for a printing sink)."""
        if self.lock is not None:
            self.lock.check()

    def _record(self, migration: loader.MigrationFile, upgrade: bool, out: Sink) -> None:
        self._still_locked()
        if upgrade:
            history.record(out, migration.name, migration.checksum)
        else:
            history.unrecord(out, migration.name)

    def _run_outside_transaction(
        self, step: Step, operations: list[Operation | Callable[[], Any]], out: Sink
    ) -> None:
        """Each step on its own, not in one transaction; steps must be idempotent.

        Plain statements (``migrator.sql``, ``migrator.add_column``, ...) run
        in a transaction of their own with ``SET LOCAL`` settings; a step that
        opens a transaction itself (a foreign key swap) gets them there too. A
        statement PostgreSQL runs only outside a transaction (``CREATE INDEX
        CONCURRENTLY``) gets them for the session, from just before it to just
        after it (see :meth:`_session_settings`). The history row is written
        in a transaction of its own at the end.
        """
        for operation in operations:
            self._still_locked()
            if isinstance(operation, Operation) and self._in_a_transaction(out, operation):
                continue
            with (
                _settings_in_every_transaction(out, lambda: self.set_local(out)),
                self._session_settings(out),
            ):
                out.run(operation, in_transaction=False)
        with out.atomic():
            self.set_local(out)
            self._record(step.migration, step.upgrade, out)

    def set_local(self, out: Sink) -> None:
        """What a step overrides, for its transaction: see :mod:`chatdb.migrate.settings`."""
        self._set(out, local=True)

    def _set(self, out: Sink, *, local: bool) -> None:
        for statement in settings.overrides(self.lock_timeout, local=local):
            out.execute_sql(statement)

    @staticmethod
    def _reset(out: Sink) -> None:
        for statement in settings.RESETS:
            out.execute_sql(statement)

    def _in_a_transaction(self, out: Sink, operation: Operation) -> bool:
        """Run plain statements in a transaction of their own with ``SET LOCAL`` settings.

        False, with nothing done, when PostgreSQL runs them only outside a
        transaction (``migrator.sql("CREATE INDEX CONCURRENTLY ...")``).
        """
        try:
            with transaction(out):
                self.set_local(out)
                out.run(operation, in_transaction=True)
        except pw.DatabaseError as exc:
            if sqlstate(exc) != ACTIVE_SQL_TRANSACTION:
                raise
            return False
        return True

    @contextlib.contextmanager
    def _session_settings(self, out: Sink) -> Iterator[None]:
        """The step's settings for this session, around one step run outside a transaction.

        PostgreSQL cannot scope a setting to a statement that must run outside
        a transaction, so this is the one place chatdb sets one for the
        session: on its own connection, immediately before the step, reset
        immediately after. A failing reset (the connection died) never hides
        the step's own error.
        """
        self._set(out, local=False)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self._reset(out)
            raise
        self._reset(out)

    def _failure(
        self, migration: loader.MigrationFile, exc: Exception, verb: str, again: str
    ) -> StepFailed:
        cause = first_line(exc)
        said = detail(exc)
        if said:
            cause += f" (DETAIL: {said})"
        if migration.atomic:
            after = "its transaction was rolled back, the database is as it was before it"
        else:
            after = f"it runs outside a transaction: finished steps stay, and {again} completes it"
        return StepFailed(f"{verb} {migration.name} failed: {cause} ({after})", cause=cause)

    def _lock_holders(self) -> str:
        """The other open transactions in this database, oldest first: what we waited for."""
        rows = self.database.execute_sql(
            """
            SELECT a.pid, a.state, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 60),
                   round(extract(epoch FROM now() - a.xact_start))::int,
                   (SELECT string_agg(DISTINCT c.relname, ', ')
                      FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                     WHERE l.pid = a.pid AND l.granted
                       AND c.relnamespace = 'public'::regnamespace)
            FROM pg_stat_activity a
            WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
              AND a.xact_start IS NOT NULL AND a.backend_type = 'client backend'
              AND a.application_name IS DISTINCT FROM %s
            ORDER BY a.xact_start
            LIMIT 3
            """,
            (LOCK_APPLICATION_NAME,),
        ).fetchall()
        if not rows:
            return "another session (it has finished since)"
        return "; ".join(
            f"pid {pid} ({state} for {age}s: {query!r}"
            + (f", holding {tables})" if tables else ")")
            for pid, state, query, age, tables in rows
        )


@contextlib.contextmanager
def transaction(out: Sink) -> Iterator[None]:
    """``out.atomic()``, where a rollback failing on a dead connection never hides why it died."""
    manager = out.atomic()
    manager.__enter__()
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):
            manager.__exit__(type(exc), exc, exc.__traceback__)
        raise
    manager.__exit__(None, None, None)


@contextlib.contextmanager
def _settings_in_every_transaction(out: Sink, settings: Callable[[], None]) -> Iterator[None]:
    """Start every transaction a step opens on its own (a foreign key swap) with ``settings``.

    ``SET LOCAL`` there is what keeps the settings right behind a transaction
    pooler, where the session settings around the step may land on another
    server connection. A printing sink is left as it is.
    """
    if not isinstance(out, Live):
        yield
        return
    database = out.database
    begin = database.begin

    def begin_with_settings(*args: Any, **kwargs: Any) -> None:
        begin(*args, **kwargs)
        settings()

    database.begin = begin_with_settings  # type: ignore[method-assign]
    try:
        yield
    finally:
        del database.begin
