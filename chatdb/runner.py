"""Applying and rolling back migrations: the plan executor behind ``chatdb migrate``.

It runs the same peewee-migrate files as plain ``pw_migrate``, adding what a
deploy needs: one migrator at a time (a transaction-scoped advisory lock held
on a dedicated connection, which also holds behind a transaction-pooling
PgBouncer), a ``lock_timeout`` with retries so a migration never queues
application traffic behind a long transaction, per-migration ``atomic = False``
for steps that cannot run in a transaction, and a checksum of every applied
file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee as pw
import psycopg2
from peewee_migrate import Migrator
from peewee_migrate.router import Router

from chatdb import history, loader
from chatdb.db import connect_params, describe_connect_error, mask_password, open_database
from chatdb.errors import ChatdbError

DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_ATTEMPTS = 3
# Key of the advisory lock every chatdb migrator takes; advisory locks are
# per database, so one constant serialises migrators of the same database.
MIGRATION_LOCK_KEY = 0x63686174_64620002
LOCK_NOT_AVAILABLE = "55P03"


class _FileRouter(Router):
    """peewee-migrate's router reading files through chatdb's loader (one parser)."""

    def read(self, name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        migration = loader.load(Path(self.migrate_dir), name)
        return migration.migrate, migration.rollback


@dataclass(frozen=True)
class Status:
    target: str
    server_version: str
    applied: list[history.Applied]
    pending: list[str]
    alembic_version: list[str] | None


class Runner:
    """Migrations of one directory against one database URL."""

    def __init__(
        self,
        url: str,
        directory: Path | str = "migrations",
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.url = url
        self.directory = Path(directory)
        self.lock_timeout = lock_timeout
        self.attempts = attempts
        self.log = log
        self.database = open_database(url)
        self._router = _FileRouter(self.database, migrate_dir=self.directory)

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
        alembic = None
        if self.database.execute_sql("SELECT to_regclass('alembic_version')").fetchone()[0]:
            alembic = [
                row[0]
                for row in self.database.execute_sql(
                    "SELECT version_num FROM alembic_version"
                ).fetchall()
            ]
        return Status(
            target=mask_password(self.url),
            server_version=version,
            applied=self.applied(),
            pending=self.pending(),
            alembic_version=alembic,
        )

    # -- writing -------------------------------------------------------------

    def migrate(self, target: str | None = None) -> list[str]:
        """Apply pending migrations in order, up to and including ``target``."""
        names = loader.names(self.directory)
        if target is not None and target not in names:
            raise ChatdbError(f"unknown migration {target!r}; `chatdb status` lists them")
        self._refuse_read_only()
        with self.migration_lock():
            history.ensure(self.database)
            done = [a.name for a in self.applied()]
            todo = [name for name in names if name not in done]
            if target is not None and target in done:
                todo = []
            ran: list[str] = []
            for name in todo:
                self._run(loader.load(self.directory, name), done + ran, upgrade=True)
                ran.append(name)
                if name == target:
                    break
            return ran

    def rollback(self, count: int = 1) -> list[str]:
        """Roll back the last ``count`` applied migrations, newest first."""
        if count < 1:
            raise ChatdbError(f"--count must be at least 1, got {count}")
        self._refuse_read_only()
        with self.migration_lock():
            done = [a.name for a in self.applied()]
            if count > len(done):
                raise ChatdbError(
                    f"cannot roll back {count} migration(s): only {len(done)} applied"
                    + (f" ({', '.join(done)})" if done else "")
                )
            ran: list[str] = []
            for index in range(len(done) - 1, len(done) - 1 - count, -1):
                name = done[index]
                if not (self.directory / f"{name}.py").exists():
                    raise ChatdbError(
                        f"applied migration {name} has no file in {self.directory}; "
                        "restore the file to roll it back"
                    )
                self._run(loader.load(self.directory, name), done[: index + 1], upgrade=False)
                ran.append(name)
            return ran

    # -- execution -----------------------------------------------------------

    def _state(self, names: list[str]) -> Migrator:
        """The schema state after ``names``, replayed without touching the database."""
        migrator = Migrator(self.database)
        for name in names:
            self._router.run_one(name, migrator, fake=True)
        return migrator

    def _run(self, migration: loader.MigrationFile, replay: list[str], *, upgrade: bool) -> None:
        """Run one migration (or its rollback), retrying on lock timeouts.

        ``replay`` is the history whose state the migration starts from: the
        migrations before it to apply it, up to and including it to roll it back.
        """
        verb = "applying" if upgrade else "rolling back"
        self.log(f"{verb} {migration.name}")
        for attempt in range(1, self.attempts + 1):
            migrator = self._state(replay)
            try:
                if migration.atomic:
                    self._run_atomic(migration, migrator, upgrade=upgrade)
                else:
                    self._run_outside_transaction(migration, migrator, upgrade=upgrade)
                return
            except pw.DatabaseError as exc:
                if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                    raise self._failure(migration, exc, verb) from exc
                holders = self._lock_holders()
                if attempt == self.attempts:
                    raise ChatdbError(
                        f"{verb} {migration.name}: gave up after {attempt} attempts of "
                        f"{self.lock_timeout:g}s waiting for a lock held by {holders}; "
                        "end that transaction or retry later (the database is unchanged)"
                    ) from exc
                self.log(f"{migration.name}: lock wait timed out ({holders}); retrying")
                time.sleep(min(2.0**attempt, 10.0))
            except ChatdbError:
                raise
            except Exception as exc:
                raise self._failure(migration, exc, verb) from exc

    def _apply(self, migration: loader.MigrationFile, migrator: Migrator, upgrade: bool) -> None:
        function = migration.migrate if upgrade else migration.rollback
        function(migrator, self.database, fake=False)

    def _record(self, migration: loader.MigrationFile, *, upgrade: bool) -> None:
        if upgrade:
            history.record(self.database, migration.name, migration.checksum)
        else:
            history.unrecord(self.database, migration.name)

    def _run_atomic(
        self, migration: loader.MigrationFile, migrator: Migrator, *, upgrade: bool
    ) -> None:
        with self.database.atomic():
            self.database.execute_sql(
                f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'"
            )
            self._apply(migration, migrator, upgrade)
            migrator()
            self._record(migration, upgrade=upgrade)

    def _run_outside_transaction(
        self, migration: loader.MigrationFile, migrator: Migrator, *, upgrade: bool
    ) -> None:
        """Each step in its own implicit transaction; steps must be idempotent."""
        self._apply(migration, migrator, upgrade)
        operations, migrator.__ops__ = list(migrator.__ops__), []
        self.database.execute_sql(f"SET lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
        try:
            for operation in operations:
                operation.run() if hasattr(operation, "run") else operation()
            with self.database.atomic():
                self._record(migration, upgrade=upgrade)
        finally:
            self.database.execute_sql("RESET lock_timeout")

    def _failure(self, migration: loader.MigrationFile, exc: Exception, verb: str) -> ChatdbError:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if migration.atomic:
            after = "its transaction was rolled back, the database is as it was before it"
        else:
            after = (
                "it runs outside a transaction: finished steps stay, and running the "
                "same command again completes it"
            )
        return ChatdbError(f"{verb} {migration.name} failed: {cause} ({after})")

    def _lock_holders(self) -> str:
        rows = self.database.execute_sql(
            """
            SELECT DISTINCT a.pid, a.state, left(a.query, 60), c.relname
            FROM pg_locks l
            JOIN pg_stat_activity a ON a.pid = l.pid
            JOIN pg_class c ON c.oid = l.relation
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = 'public'
              AND a.datname = current_database()
            ORDER BY a.pid
            """
        ).fetchall()
        if not rows:
            return "another session (it has finished since)"
        return "; ".join(
            f"pid {pid} ({state}: {query!r}) on {rel}" for pid, state, query, rel in rows
        )

    def _refuse_read_only(self) -> None:
        standby, read_only = self.database.execute_sql(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        ).fetchone()
        if standby or read_only == "on":
            why = "is a hot standby" if standby else "has default_transaction_read_only on"
            raise ChatdbError(
                f"{mask_password(self.url)} {why} and cannot be migrated; "
                "point --database or DATABASE_URL at the primary"
            )

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[None]:
        """Hold the migrator lock in an open transaction on a connection of its own."""
        try:
            conn = psycopg2.connect(**connect_params(self.url))
        except psycopg2.OperationalError as exc:
            raise ChatdbError(describe_connect_error(self.url, exc)) from exc
        try:
            with conn.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = 0")
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                if not cursor.fetchone()[0]:
                    self.log("waiting for another migrator to finish")
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            yield
        finally:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            conn.close()


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a (Peewee-wrapped) psycopg2 error."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "pgcode", None)
        if code:
            return code
    return None
