"""Applying and rolling back migrations: the plan executor behind ``chatdb migrate``.

It runs the same peewee-migrate files as plain ``pw_migrate``, adding what a
deploy needs: one migrator at a time (:mod:`chatdb.migrate.lock`, checked
before every step and before recording), a ``lock_timeout`` with retries so a migration never queues
application traffic behind a long transaction, per-migration ``atomic = False``
for steps that cannot run in a transaction, a checksum of every applied file
(and a refusal to go on when one changed), refusals before any write (a
read-only target, a rollback that would drop data), and a way to print
instead of run (every write goes through a :class:`~chatdb.migrate.sink.Sink`:
the database, or ``chatdb.migrate.preview``'s recorder for ``--sql``).

Settings a role or database may impose are overridden for chatdb's own
steps only, and only where they run: every migration step's transaction
starts with ``SET LOCAL lock_timeout`` (``--lock-timeout``), ``SET LOCAL
statement_timeout = 0`` and, on PostgreSQL 17+, no ``transaction_timeout``
(a long index build or validation is expected; the lock timeout is what
protects application traffic; :mod:`chatdb.migrate.settings`). In an ``atomic = False``
migration each plain statement step gets a transaction of its own for that.
``SET LOCAL`` ends with the transaction, so nothing leaks to another client
behind a transaction pooler. A statement that PostgreSQL runs only outside a
transaction (``CREATE INDEX CONCURRENTLY``) cannot have a transaction-scoped
setting: it gets the same ones for the session, set right before it and
reset right after it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
from peewee_migrate import Migrator
from playhouse.migrate import Operation

from chatdb.db.connect import open_database
from chatdb.db.sqlstate import (
    ACTIVE_SQL_TRANSACTION,
    DEADLOCK_DETECTED,
    LOCK_NOT_AVAILABLE,
    UNSAFE_NEW_ENUM_VALUE_USAGE,
    sqlstate,
)
from chatdb.db.urls import mask_password
from chatdb.drift import snapshots
from chatdb.drift.alembic import alembic_revisions
from chatdb.errors import (
    ChatdbError,
    LockNotObtained,
    TamperDetected,
    TargetReadOnly,
    first_line,
)
from chatdb.migrate import data_loss, guards, history, loader, location, settings, verify
from chatdb.migrate import lock as migration_lock
from chatdb.migrate.defaults import DEFAULT_LOCK_TIMEOUT
from chatdb.migrate.lock import DEFAULT_LOCK_WAIT, LOCK_APPLICATION_NAME
from chatdb.migrate.replay import State
from chatdb.migrate.sink import Sink

DEFAULT_ATTEMPTS = 3
# What stops a plan from running in one transaction, though each migration runs alone.
_NOT_IN_ONE_TRANSACTION = (
    ACTIVE_SQL_TRANSACTION,
    UNSAFE_NEW_ENUM_VALUE_USAGE,
    LOCK_NOT_AVAILABLE,
    DEADLOCK_DETECTED,
)


def default_backoff(attempt: int) -> float:
    """Seconds to wait before retrying after failed ``attempt`` (1, 2, ...): 2, 4, 8, 10, 10."""
    return min(2.0**attempt, 10.0)


class _Live:
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


@dataclass(frozen=True)
class Status:
    target: str
    server_version: str
    applied: list[history.Applied]
    pending: list[str]
    alembic_version: list[str] | None
    report: verify.Report | None
    verdict: str


class Runner:
    """Migrations of one directory against one database URL."""

    def __init__(
        self,
        url: str,
        directory: Path | str | None = None,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float = DEFAULT_LOCK_WAIT,
        attempts: int = DEFAULT_ATTEMPTS,
        log: Callable[[str], None] = lambda message: None,
        backoff: Callable[[int], float] = default_backoff,
    ):
        self.url = url
        self.directory = location.resolve(directory)
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self._lock: migration_lock.MigrationLock | None = None  # while writing
        self.attempts = attempts
        self.log = log
        self.backoff = backoff
        self.database = open_database(url)
        self._replay: State | None = None
        # ``migrate --yes``: guard_data_loss steps of the migrations let drops through.
        self.allow_data_loss = False

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------

    def applied(self) -> list[history.Applied]:
        return history.applied(self.database)

    def pending(self) -> list[str]:
        done = {a.name for a in self.applied()}
        return [name for name in loader.names(self.directory) if name not in done]

    def status(self) -> Status:
        version = self.database.execute_sql("SHOW server_version").fetchone()[0]
        revisions = alembic_revisions(self.database)
        report: verify.Report | None
        try:
            report = verify.check(self.database, self.directory)
            verdict = report.verdict()
        except ChatdbError as exc:
            report, verdict = None, f"unknown: {exc}"
        return Status(
            target=mask_password(self.url),
            server_version=version,
            applied=self.applied(),
            pending=self.pending(),
            alembic_version=revisions,
            report=report,
            verdict=verdict,
        )

    # -- writing -------------------------------------------------------------

    def migrate(
        self,
        target: str | None = None,
        *,
        accept_changed: bool = False,
        ignore_drift: bool = False,
        sink: Sink | None = None,
        yes: bool = False,
    ) -> list[str]:
        """Apply pending migrations in order, up to and including ``target``.

        With a ``sink``, the writes go there instead of the database (no lock,
        nothing written): that is how ``--sql`` prints them. ``yes`` lets a
        migration drop tables or columns that hold data.
        """
        self.allow_data_loss = yes
        files = {m.name: m for m in loader.load_all(self.directory)}  # all import, or no write
        self._replay = State(self.database, files)
        names = list(files)
        if target is not None and target not in names:
            raise ChatdbError(f"unknown migration {target!r}; `chatdb status` lists them")
        with self._writing(sink) as out:
            applied = self.applied()
            if not applied:
                self._refuse_unmanaged_schema(names)
            recorded = {a.name for a in applied}
            following = next((files[n] for n in names if n not in recorded), None)
            guards.refuse_drift(
                self.database, self.directory, applied, following,
                verb="migrate", ignore=ignore_drift, log=self.log,
            )  # fmt: skip
            done = [a.name for a in applied]
            todo = [name for name in names if name not in done]
            if target is not None:
                todo = todo[: todo.index(target) + 1] if target in todo else []
            if not done and todo and isinstance(out, _Live) and self._holds_no_tables():
                together = self._run_together(files, todo, out)
                if together is not None:
                    return together
            if not history.is_complete(self.database):
                history.create(out)
            self._refuse_tampered(applied, accept_changed, out, "migrate")
            ran: list[str] = []
            for name in todo:
                try:
                    self._run(files[name], done + ran, True, out)
                except ChatdbError as exc:
                    if not ran:
                        raise
                    if sink is not None:
                        raise ChatdbError(
                            f"{exc}; it reads the database, which the migrations printed before "
                            f"it have not changed yet: apply those first (chatdb migrate --to "
                            f"{ran[-1]}), then print the rest"
                        ) from exc
                    raise ChatdbError(f"{exc}; applied before it: {', '.join(ran)}") from exc
                ran.append(name)
            return ran

    def rollback(
        self,
        count: int | None = None,
        *,
        to: str | None = None,
        yes: bool = False,
        accept_changed: bool = False,
        ignore_drift: bool = False,
        sink: Sink | None = None,
        resume: str | None = None,
    ) -> list[str]:
        """Roll back the last ``count`` applied migrations (default 1), or all after ``to``.

        Refuses, before writing anything, when a rollback would drop a table or
        column that holds data, or the first migration (the whole schema),
        unless ``yes``. If it stops half-way, its error names the command that
        goes exactly as far as asked (``resume`` overrides it, for callers of
        their own such as the hand-back).
        """
        self.allow_data_loss = yes
        if count is not None and to is not None:
            raise ChatdbError("give either --count or --to, not both")
        if count is not None and count < 1:
            raise ChatdbError(f"--count must be at least 1, got {count}")
        files = {m.name: m for m in loader.load_all(self.directory)}  # all import, or no write
        self._replay = State(self.database, files)
        with self._writing(sink) as out:
            applied = self.applied()
            done = [a.name for a in applied]
            first = self._first_to_roll_back(done, 1 if count is None and to is None else count, to)
            self._refuse_tampered(applied, accept_changed, out, "roll back")
            guards.refuse_drift(
                self.database, self.directory, applied, files.get(done[-1]) if done else None,
                verb="roll back", ignore=ignore_drift, log=self.log,
            )  # fmt: skip
            if not yes:
                data_loss.refuse(self.database, self.directory, done, first, files, "pass --yes")
            ran: list[str] = []
            for index in range(len(done) - 1, first - 1, -1):
                again = resume or _finish_rollback(done, first, index, yes)
                try:
                    self._run(files[done[index]], done[: index + 1], False, out, again=again)
                except ChatdbError as exc:
                    if sink is not None or not ran:
                        raise
                    raise type(exc)(
                        f"{exc}; rolled back before it: {', '.join(ran)}; {again} finishes "
                        "what was asked"
                    ) from exc
                ran.append(done[index])
            return ran

    # -- refusals ------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, sink: Sink | None) -> Iterator[Sink]:
        """The live database under the migrator lock, or the given sink as it is."""
        if sink is not None:
            yield sink
            return
        self._refuse_read_only()
        with self.migration_lock() as held:
            self._lock = held
            try:
                yield _Live(self.database)
            finally:
                self._lock = None

    def _refuse_unmanaged_schema(self, names: list[str]) -> None:
        """No history, yet the chat tables exist: running the first migration would collide."""
        legacy = alembic_revisions(self.database)
        if legacy is not None:
            raise ChatdbError(
                f"{mask_password(self.url)} is a legacy Alembic database (alembic_version "
                f"{', '.join(legacy) or 'empty'}) that chatdb does not manage yet; adopt it "
                "with `chatdb handover --dry-run`, then `chatdb handover`"
            )
        present = [
            name
            for (name,) in self.database.execute_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            ).fetchall()
            if name != history.TABLE
        ]
        first = snapshots.path_for(self.directory, names[0])
        if present and first.exists():  # tables the first migration creates would collide
            ours = snapshots.expected(self.directory, names[0]).tables
            present = [name for name in present if name in ours]
        if present:
            raise ChatdbError(
                f"{mask_password(self.url)} already holds chat tables ({', '.join(present)}) "
                "but no chatdb history, so chatdb cannot know their state; restore the "
                "history table from a backup, or point --database at the right database"
            )

    def _first_to_roll_back(self, done: list[str], count: int | None, to: str | None) -> int:
        """Index in ``done`` of the oldest migration the rollback undoes."""
        if to is not None:
            if to not in done:
                known = to in loader.names(self.directory)
                raise ChatdbError(
                    f"--to {to}: "
                    + ("that migration is not applied" if known else "unknown migration")
                    + f"; applied: {', '.join(done) or 'none'}"
                )
            return done.index(to) + 1
        assert count is not None
        if count > len(done):
            raise ChatdbError(
                f"cannot roll back {count} migration(s): only {len(done)} applied"
                + (f" ({', '.join(done)})" if done else "")
            )
        return len(done) - count

    def _refuse_tampered(
        self, applied: list[history.Applied], accept: bool, out: Sink, verb: str
    ) -> None:
        """Stop when applied files changed or vanished; ``accept`` re-records changed ones."""
        gone = verify.missing(self.directory, applied)
        if gone:
            raise TamperDetected(
                f"refusing to {verb}: applied migration(s) {', '.join(a.name for a in gone)} "
                f"have no file in {self.directory}; restore them (chatdb replays every applied "
                "file to know the schema)"
            )
        changed = verify.changed(self.directory, applied)
        if not changed:
            return
        if not accept:
            raise TamperDetected(
                f"refusing to {verb}: {'; '.join(verify.tampered(self.directory, changed))}; "
                "restore the file(s) as applied, or pass --accept-changed to accept them as "
                "they are now"
            )
        with out.atomic():
            for migration in changed:
                path = self.directory / f"{migration.name}.py"
                history.rechecksum(out, migration.name, loader.checksum(path))
                self.log(f"accepted the current file of {migration.name}")

    # -- execution -----------------------------------------------------------

    def _run(
        self,
        migration: loader.MigrationFile,
        replay: list[str],
        upgrade: bool,
        out: Sink,
        again: str = "running the same command again",
    ) -> None:
        """Run one migration (or its rollback), retrying on lock timeouts and deadlocks.

        ``replay`` is the history whose state the migration starts from: the
        migrations before it to apply it, up to and including it to roll it back.
        ``again`` is what completes an interrupted non-atomic one.
        """
        verb = "applying" if upgrade else "rolling back"
        if isinstance(out, _Live):  # a printing sink (--sql) applies nothing
            self.log(f"{verb} {migration.name}")
        out.note(f"{verb} {migration.name}" + ("" if migration.atomic else " (atomic = False)"))
        if not isinstance(out, _Live):
            try:
                self._attempt(migration, replay, upgrade, out)
            except ChatdbError:
                raise
            except Exception as exc:
                raise ChatdbError(
                    f"cannot print the SQL of {migration.name} ({verb}): {first_line(exc)}"
                ) from exc
            return
        for attempt in range(1, self.attempts + 1):
            try:
                self._attempt(migration, replay, upgrade, out)
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

    def _attempt(
        self, migration: loader.MigrationFile, replay: list[str], upgrade: bool, out: Sink
    ) -> None:
        migrator = self._take(replay)
        function = migration.migrate if upgrade else migration.rollback
        if migration.atomic:
            self._run_atomic(migration, function, migrator, upgrade, out)
        else:
            self._run_outside_transaction(migration, function, migrator, upgrade, out)
        self._settle(migrator, [*replay, migration.name] if upgrade else replay[:-1])

    def _take(self, replay: list[str]) -> Migrator:
        """The model state after ``replay``, for one migration to run against."""
        assert self._replay is not None, "migrate() and rollback() start the replay"
        migrator = self._replay.take(replay)
        # Read by operations.guard_data_loss; a migrator carries no options of its own.
        migrator.allow_data_loss = self.allow_data_loss  # type: ignore[attr-defined]
        return migrator

    def _settle(self, migrator: Migrator, names: list[str]) -> None:
        """``migrator``, taken by :meth:`_take`, now holds the state after ``names``."""
        assert self._replay is not None, "migrate() and rollback() start the replay"
        self._replay.settle(migrator, names)

    def _operations(
        self, function: Callable[..., Any], migrator: Migrator
    ) -> list[Operation | Callable[[], Any]]:
        """Call the migration function and take the operations it queued."""
        function(migrator, self.database, fake=False)
        operations, migrator.__ops__ = list(migrator.__ops__), []
        return operations

    def _still_locked(self) -> None:
        """Stop unless the migrator lock is still held (a no-op for a printing sink)."""
        if self._lock is not None:
            self._lock.check()

    def _record(self, migration: loader.MigrationFile, upgrade: bool, out: Sink) -> None:
        self._still_locked()
        if upgrade:
            history.record(out, migration.name, migration.checksum)
        else:
            history.unrecord(out, migration.name)

    def _holds_no_tables(self) -> bool:
        """No table or view outside the system schemas but the history table."""
        return not self.database.execute_sql(
            """
            SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname <> %s
              AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
            LIMIT 1
            """,
            (history.TABLE,),
        ).fetchone()

    def _run_together(
        self, files: dict[str, loader.MigrationFile], plan: list[str], out: _Live
    ) -> list[str] | None:
        """A database without tables: the whole plan in one transaction; None if it cannot.

        Until that transaction commits nobody else can see the tables it
        creates, so there is no traffic to keep moving: every step runs in its
        in-transaction form (index builds without ``CONCURRENTLY``) and a
        non-atomic migration's steps need no transactions of their own. The
        bootstrap is all or nothing, and costs one commit instead of one per
        step. A step PostgreSQL cannot run in that transaction (a raw ``CREATE
        INDEX CONCURRENTLY``, an enum label used where it is added) or a lock
        to wait for rolls it back and returns None: the caller then applies the
        migrations one at a time, as on any other database. The migrator lock
        is checked before each history row, so before the commit.
        """
        ran: list[str] = []
        current = files[plan[0]]
        try:
            with _transaction(out):
                self._set(out, local=True)
                if not history.is_complete(self.database):
                    history.create(out)
                for current in (files[name] for name in plan):
                    if isinstance(out, _Live):
                        self.log(f"applying {current.name}")
                    migrator = self._take(ran)
                    for operation in self._operations(current.migrate, migrator):
                        out.run(operation, in_transaction=True)
                    self._record(current, True, out)
                    ran.append(current.name)
                    self._settle(migrator, ran)
        except ChatdbError:
            raise
        except Exception as exc:
            if sqlstate(exc) not in _NOT_IN_ONE_TRANSACTION:
                raise ChatdbError(
                    f"applying {current.name} failed: {first_line(exc)} (a database without "
                    "tables is migrated in one transaction; it was rolled back, the database "
                    "is as it was)"
                ) from exc
            self.log(
                f"{current.name} cannot run in one transaction with the others "
                f"({first_line(exc)}); rolled back, applying the migrations one at a time"
            )
            self._replay = State(self.database, files)
            return None
        return ran

    def _run_atomic(
        self,
        migration: loader.MigrationFile,
        function: Callable[..., Any],
        migrator: Migrator,
        upgrade: bool,
        out: Sink,
    ) -> None:
        with out.atomic():
            self._set(out, local=True)
            for operation in self._operations(function, migrator):
                self._still_locked()
                out.run(operation, in_transaction=True)
            self._record(migration, upgrade, out)

    def _run_outside_transaction(
        self,
        migration: loader.MigrationFile,
        function: Callable[..., Any],
        migrator: Migrator,
        upgrade: bool,
        out: Sink,
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
        for operation in self._operations(function, migrator):
            self._still_locked()
            if isinstance(operation, Operation) and self._in_a_transaction(out, operation):
                continue
            with (
                _settings_in_every_transaction(out, lambda: self._set(out, local=True)),
                self._session_settings(out),
            ):
                out.run(operation, in_transaction=False)
        with out.atomic():
            self._set(out, local=True)
            self._record(migration, upgrade, out)

    def _set(self, out: Sink, *, local: bool) -> None:
        """What a migration step overrides, and why: see :mod:`chatdb.migrate.settings`."""
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
            with _transaction(out):
                self._set(out, local=True)
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
    ) -> ChatdbError:
        cause = first_line(exc)
        if migration.atomic:
            after = "its transaction was rolled back, the database is as it was before it"
        else:
            after = f"it runs outside a transaction: finished steps stay, and {again} completes it"
        return ChatdbError(f"{verb} {migration.name} failed: {cause} ({after})")

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

    def _refuse_read_only(self) -> None:
        standby, read_only = self.database.execute_sql(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ).fetchone()
        if standby:
            raise TargetReadOnly(
                f"{mask_password(self.url)} is a read-only hot standby (a replica); nothing was "
                "tried: point --database or DATABASE_URL at the primary"
            )
        if read_only == "on":
            raise TargetReadOnly(
                f"{mask_password(self.url)} is read-only (default_transaction_read_only is on); "
                "nothing was tried: point at a writable server, or turn the setting off for "
                "this database"
            )

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[migration_lock.MigrationLock]:
        """Hold the migrator lock (see :mod:`chatdb.migrate.lock`), waiting up to ``lock_wait``."""
        with migration_lock.hold(self.url, wait=self.lock_wait, log=self.log) as held:
            yield held


@contextlib.contextmanager
def _transaction(out: Sink) -> Iterator[None]:
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
    if not isinstance(out, _Live):
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


def _finish_rollback(done: list[str], first: int, index: int, yes: bool) -> str:
    """The command that finishes a rollback to ``done[:first]`` stopped at ``done[index]``."""
    command = (
        f"chatdb rollback --to {done[first - 1]}"
        if first
        else (f"chatdb rollback --count {index + 1}")
    )
    return f"`{command}{' --yes' if yes else ''}`"
