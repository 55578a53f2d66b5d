"""Applying and rolling back migrations: the plan executor behind ``chatdb migrate``.

It runs the same peewee-migrate files as plain ``pw_migrate``, adding what a
deploy needs: one migrator at a time (a transaction-scoped advisory lock held
on a dedicated connection, which also holds behind a transaction-pooling
PgBouncer), a ``lock_timeout`` with retries so a migration never queues
application traffic behind a long transaction, per-migration ``atomic = False``
for steps that cannot run in a transaction, a checksum of every applied file
(and a refusal to go on when one changed), refusals before any write (a
read-only target, a rollback that would drop data), and a way to print
instead of run (every write goes through a :class:`~chatdb.migrate.sink.Sink`:
the database, or ``chatdb.migrate.preview``'s recorder for ``--sql``).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
import psycopg2
from peewee_migrate import Migrator
from playhouse.migrate import Operation

from chatdb.db.connect import describe_connect_error, open_database
from chatdb.db.sqlstate import DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, sqlstate
from chatdb.db.urls import connect_params, mask_password
from chatdb.drift import snapshots
from chatdb.drift.alembic import ALEMBIC_TABLE, alembic_revisions
from chatdb.errors import (
    ChatdbError,
    ConnectionFailed,
    DataLossRefused,
    LockNotObtained,
    TamperDetected,
    TargetReadOnly,
    first_line,
)
from chatdb.migrate import guards, history, loader, location, verify
from chatdb.migrate.replay import State
from chatdb.migrate.sink import Sink

DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_ATTEMPTS = 3
# Key of the advisory lock every chatdb migrator takes; advisory locks are
# per database, so one constant serialises migrators of the same database.
MIGRATION_LOCK_KEY = 0x63686174_64620002
# Names the lock's own connection in pg_stat_activity, so lock reports skip it.
LOCK_APPLICATION_NAME = "chatdb migration lock"
LOCK_POLL_SECONDS = 0.25
# Tables of migration tools, not of the application: their rows are not data to protect.
BOOKKEEPING = frozenset({history.TABLE, ALEMBIC_TABLE})


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
        attempts: int = DEFAULT_ATTEMPTS,
        log: Callable[[str], None] = lambda message: None,
        backoff: Callable[[int], float] = default_backoff,
    ):
        self.url = url
        self.directory = location.resolve(directory)
        self.lock_timeout = lock_timeout
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
        try:
            report: verify.Report | None = verify.check(self.database, self.directory)
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
            if not history.is_complete(self.database):
                history.create(out)
            self._refuse_tampered(applied, accept_changed, out, "migrate")
            done = [a.name for a in applied]
            todo = [name for name in names if name not in done]
            if target is not None and target in done:
                todo = []
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
                if name == target:
                    break
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
    ) -> list[str]:
        """Roll back the last ``count`` applied migrations (default 1), or all after ``to``.

        Refuses, before writing anything, when a rollback would drop a table or
        column that holds data, or the first migration (the whole schema),
        unless ``yes``.
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
                self._refuse_data_loss(done, first, files)
            ran: list[str] = []
            for index in range(len(done) - 1, first - 1, -1):
                self._run(files[done[index]], done[: index + 1], False, out)
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
        with self.migration_lock():
            yield _Live(self.database)

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

    def _refuse_data_loss(
        self, done: list[str], first: int, files: dict[str, loader.MigrationFile]
    ) -> None:
        """Refuse rollbacks that drop tables or columns holding data, or the first migration."""
        problems = []
        for index in range(len(done) - 1, first - 1, -1):
            lost = self._would_lose(done, index, files[done[index]].renamed)
            if index == 0:
                held = f"; {', '.join(lost)} hold data" if lost else ""
                problems.append(
                    f"{done[0]} is the first migration: it drops the whole schema{held}"
                )
            elif lost:
                problems.append(f"{done[index]} would drop {', '.join(lost)}, which hold data")
        if problems:
            raise DataLossRefused(
                f"refusing to roll back: {'; '.join(problems)}; take a backup and pass --yes "
                "if that is what you want"
            )

    def _would_lose(self, done: list[str], index: int, renamed: dict[str, str]) -> list[str]:
        """Tables and columns present after ``done[index]`` but not before it, holding data.

        ``renamed`` (the migration's own ``{new: old}``) are not new: a rename, not a drop.
        """
        after = snapshots.expected(self.directory, done[index])
        before = snapshots.expected(self.directory, done[index - 1]) if index else verify.EMPTY
        lost = []
        for table, columns in after.tables.items():
            if table in BOOKKEEPING or table in renamed:
                continue
            if table not in before.tables:
                if self._holds_data(table):
                    lost.append(f"table {table}")
                continue
            kept = {column.name for column in before.tables[table]}
            lost += [
                f"column {table}.{column.name}"
                for column in columns
                if column.name not in kept
                and f"{table}.{column.name}" not in renamed
                and self._holds_data(table, column.name)
            ]
        return lost

    def _holds_data(self, table: str, column: str | None = None) -> bool:
        """Whether the live table has rows (or the column a non-NULL value); False if absent."""
        row = self.database.execute_sql(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = coalesce(%s, attname) AND attnum > 0 AND NOT attisdropped",
            (f"public.{_quote(table)}", column),
        ).fetchone()
        if not row[0]:
            return False
        where = f" WHERE {_quote(column)} IS NOT NULL" if column else ""
        query = f"SELECT EXISTS (SELECT 1 FROM public.{_quote(table)}{where})"
        return bool(self.database.execute_sql(query).fetchone()[0])

    # -- execution -----------------------------------------------------------

    def _run(
        self, migration: loader.MigrationFile, replay: list[str], upgrade: bool, out: Sink
    ) -> None:
        """Run one migration (or its rollback), retrying on lock timeouts and deadlocks.

        ``replay`` is the history whose state the migration starts from: the
        migrations before it to apply it, up to and including it to roll it back.
        """
        verb = "applying" if upgrade else "rolling back"
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
                    raise self._failure(migration, exc, verb) from exc
                holders = self._lock_holders()
                if code == DEADLOCK_DETECTED:
                    holders = f"a deadlock with {holders}"
                if attempt == self.attempts:
                    left = (
                        "the database is unchanged"
                        if migration.atomic
                        else "its finished steps stay; running it again completes it"
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
                raise self._failure(migration, exc, verb) from exc

    def _attempt(
        self, migration: loader.MigrationFile, replay: list[str], upgrade: bool, out: Sink
    ) -> None:
        assert self._replay is not None, "migrate() and rollback() start the replay"
        migrator = self._replay.take(replay)
        migrator.allow_data_loss = self.allow_data_loss
        function = migration.migrate if upgrade else migration.rollback
        if migration.atomic:
            self._run_atomic(migration, function, migrator, upgrade, out)
        else:
            self._run_outside_transaction(migration, function, migrator, upgrade, out)
        self._replay.settle(migrator, [*replay, migration.name] if upgrade else replay[:-1])

    def _operations(
        self, function: Callable[..., Any], migrator: Migrator
    ) -> list[Operation | Callable[[], Any]]:
        """Call the migration function and take the operations it queued."""
        function(migrator, self.database, fake=False)
        operations, migrator.__ops__ = list(migrator.__ops__), []
        return operations

    def _record(self, migration: loader.MigrationFile, upgrade: bool, out: Sink) -> None:
        if upgrade:
            history.record(out, migration.name, migration.checksum)
        else:
            history.unrecord(out, migration.name)

    def _run_atomic(
        self,
        migration: loader.MigrationFile,
        function: Callable[..., Any],
        migrator: Migrator,
        upgrade: bool,
        out: Sink,
    ) -> None:
        with out.atomic():
            out.execute_sql(f"SET LOCAL lock_timeout = '{self._lock_timeout_ms()}ms'")
            for operation in self._operations(function, migrator):
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
        """Each step in its own implicit transaction; steps must be idempotent."""
        operations = self._operations(function, migrator)
        out.execute_sql(f"SET lock_timeout = '{self._lock_timeout_ms()}ms'")
        try:
            for operation in operations:
                out.run(operation, in_transaction=False)
            with out.atomic():
                self._record(migration, upgrade, out)
        finally:
            out.execute_sql("RESET lock_timeout")

    def _lock_timeout_ms(self) -> int:
        return int(self.lock_timeout * 1000)

    def _failure(self, migration: loader.MigrationFile, exc: Exception, verb: str) -> ChatdbError:
        cause = first_line(exc)
        if migration.atomic:
            after = "its transaction was rolled back, the database is as it was before it"
        else:
            after = (
                "it runs outside a transaction: finished steps stay, and running the "
                "same command again completes it"
            )
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
    def migration_lock(self) -> Iterator[None]:
        """Hold the migrator lock in an open transaction on a connection of its own.

        Waiting is polling, with no transaction open between tries: a waiter
        blocked inside a statement would hold a snapshot, and ``CREATE INDEX
        CONCURRENTLY`` in the running migration waits for every older
        snapshot, a deadlock PostgreSQL cannot see. Behind PgBouncer, a
        waiter also holds no server connection while it sleeps.
        """
        params = {**connect_params(self.url), "application_name": LOCK_APPLICATION_NAME}
        try:
            conn = psycopg2.connect(**params)
        except psycopg2.OperationalError as exc:
            raise ConnectionFailed(describe_connect_error(self.url, exc)) from exc
        try:
            for attempt in itertools.count():
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                    if cursor.fetchone()[0]:
                        break
                conn.rollback()
                if attempt == 0:
                    self.log("waiting for another migrator to finish")
                time.sleep(LOCK_POLL_SECONDS)
            yield
        finally:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            conn.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
