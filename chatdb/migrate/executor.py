"""The executor behind every front end: load, refuse, plan, and walk the plan.

``chatdb migrate``/``rollback`` (and ``--sql``), the handover and its undo,
and plain ``pw_migrate`` all come here. A run loads every migration file
before anything runs, refuses what must not go on before any write (a
read-only target, a role that cannot do every step, drift, edited applied
files, data loss not confirmed), builds its :mod:`~chatdb.migrate.plan` and
hands each step to the one apply step (:mod:`chatdb.migrate.apply`), under
the migrator lock (:mod:`chatdb.migrate.lock`). Writes go to a
:class:`~chatdb.migrate.sink.Sink`: the database, or ``--sql``'s recorder.
A database without tables gets the whole plan in one transaction
(:meth:`Runner._run_together`). It returns what it did and raises errors
carrying fields; the command line words them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from chatdb.catalog import Catalog, lookup, read_catalog, snapshots
from chatdb.catalog.legacy_version import alembic_revisions
from chatdb.db.connect import open_database
from chatdb.db.sqlstate import (
    ACTIVE_SQL_TRANSACTION,
    DEADLOCK_DETECTED,
    LOCK_NOT_AVAILABLE,
    UNSAFE_NEW_ENUM_VALUE_USAGE,
    sqlstate,
)
from chatdb.db.urls import mask_password
from chatdb.errors import ChatdbError, Remedy, TamperDetected, TargetReadOnly, first_line
from chatdb.migrate import (
    confirmation,
    data_loss,
    guards,
    history,
    history_check,
    loader,
    location,
    plan,
    privileges,
    verify,
)
from chatdb.migrate import lock as migration_lock
from chatdb.migrate.apply import (
    DEFAULT_ATTEMPTS,
    Applier,
    Live,
    StepFailed,
    default_backoff,
    transaction,
)
from chatdb.migrate.defaults import DEFAULT_LOCK_TIMEOUT
from chatdb.migrate.lock import DEFAULT_LOCK_WAIT
from chatdb.migrate.replay import State
from chatdb.migrate.sink import Sink

# What stops a plan from running in one transaction, though each migration runs alone.
_NOT_IN_ONE_TRANSACTION = (
    ACTIVE_SQL_TRANSACTION,
    UNSAFE_NEW_ENUM_VALUE_USAGE,
    LOCK_NOT_AVAILABLE,
    DEADLOCK_DETECTED,
)


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
        self.attempts = attempts
        self.log = log
        self.backoff = backoff
        self.database = open_database(url)

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
        files = {m.name: m for m in loader.load_all(self.directory)}  # all import, or no write
        if target is not None and target not in files:
            raise ChatdbError(f"unknown migration {target!r}; `chatdb status` lists them")
        with confirmation.confirmed(yes), self._writing(sink, files) as (out, applier):
            applied = self.applied()
            history_check.refuse(applied, list(files), "migrate")
            if not applied:
                self._refuse_unmanaged_schema(list(files))
            done = [a.name for a in applied]
            following = next((files[n] for n in files if n not in done), None)
            guards.refuse_drift(
                self.database, self.directory, applied, following,
                verb="migrate", ignore=ignore_drift, log=self.log,
            )  # fmt: skip
            steps = plan.upgrade(files, done, target)
            if steps and isinstance(out, Live):
                self.refuse_unprivileged("migrate", steps[-1].name)
            if (
                not done
                and steps
                and isinstance(out, Live)
                and lookup.holds_no_tables(self.database, but=history.TABLE)
            ):
                together = self._run_together(steps, out, applier)
                if together is not None:
                    return together
                applier.replay = State(self.database, files)
            if not history.is_complete(self.database):
                history.create(out)
            self._refuse_tampered(applied, accept_changed, out, "migrate")
            ran: list[str] = []
            for step in steps:
                try:
                    applier.apply(step, out)
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
                ran.append(step.name)
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
        files = {m.name: m for m in loader.load_all(self.directory)}  # all import, or no write
        with confirmation.confirmed(yes), self._writing(sink, files) as (out, applier):
            applied = self.applied()
            history_check.refuse(applied, list(files), "roll back")
            done = [a.name for a in applied]
            first = plan.first_to_roll_back(done, list(files), count, to)
            if isinstance(out, Live):
                self.refuse_unprivileged("roll back", done[first - 1] if first else None)
            self._refuse_tampered(applied, accept_changed, out, "roll back")
            guards.refuse_drift(
                self.database, self.directory, applied, files.get(done[-1]) if done else None,
                verb="roll back", ignore=ignore_drift, log=self.log,
            )  # fmt: skip
            if not confirmation.is_confirmed():
                data_loss.refuse_rollback(self.database, self.directory, done, first, files)
            ran: list[str] = []
            for step in plan.rollback(files, done, first):
                again = resume or _finish_rollback(done, first, len(step.replay) - 1, yes)
                try:
                    applier.apply(step, out, again=again)
                except ChatdbError as exc:
                    if sink is not None or not ran:
                        raise
                    # The same error (its kind and fields kept), saying what ran before it.
                    told = type(exc).__new__(type(exc))
                    told.__dict__.update(vars(exc))
                    told.args = (
                        f"{exc}; rolled back before it: {', '.join(ran)}; {again} finishes "
                        "what was asked",
                    )
                    raise told from exc
                ran.append(step.name)
            return ran

    # -- refusals ------------------------------------------------------------

    def refuse_unprivileged(self, doing: str, until: str | None, since: str | None = None) -> None:
        """Refuse, before any write, unless the role can take the schema to ``until``.

        It must own what the migrations up to ``since`` (default: the applied
        ones) left, by their stored catalog (else the live one; history table
        included), and may create in the schema if the plan creates a table,
        type or function (or the history).
        """
        if since is None:
            applied = self.applied()
            since = applied[-1].name if applied else None
        objects = self._stored_or_live(since) if since else Catalog()
        after = self._stored_or_live(until) if until else Catalog()
        new = {*after.tables, *after.enums, *after.functions} - {
            *objects.tables,
            *objects.enums,
            *objects.functions,
        }
        create = bool(new) or not history.is_complete(self.database)
        where = f"{doing} {mask_password(self.url)}"
        privileges.refuse(self.database, objects, where, [history.TABLE], create=create)

    def _stored_or_live(self, name: str) -> Catalog:
        if snapshots.path_for(self.directory, name).exists():
            return snapshots.expected(self.directory, name)
        return read_catalog(self.database)

    @contextlib.contextmanager
    def _writing(
        self, sink: Sink | None, files: dict[str, loader.MigrationFile]
    ) -> Iterator[tuple[Sink, Applier]]:
        """Where the run writes (the live database under the migrator lock, or the given
        sink as it is), and the apply step for it."""
        replay = State(self.database, files)
        if sink is not None:
            yield sink, self._applier(replay, None)
            return
        self.refuse_read_only()
        with self.migration_lock() as held:
            yield Live(self.database), self._applier(replay, held)

    def _applier(self, replay: State, lock: migration_lock.MigrationLock | None) -> Applier:
        return Applier(
            self.database, replay, lock=lock, lock_timeout=self.lock_timeout,
            attempts=self.attempts, backoff=self.backoff, log=self.log,
        )  # fmt: skip

    def _refuse_unmanaged_schema(self, names: list[str]) -> None:
        """No history, yet the chat tables exist: running the first migration would collide."""
        legacy = alembic_revisions(self.database)
        if legacy is not None:
            raise ChatdbError(
                f"{mask_password(self.url)} is a legacy Alembic database (alembic_version "
                f"{', '.join(legacy) or 'empty'}) that chatdb does not manage yet; adopt it "
                "with `chatdb handover --dry-run`, then `chatdb handover`"
            )
        present = [name for name in lookup.tables(self.database) if name != history.TABLE]
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
                "restore the file(s) as applied",
                remedy=Remedy.ACCEPT_CHANGED,
            )
        with out.atomic():
            for migration in changed:
                path = self.directory / f"{migration.name}.py"
                history.rechecksum(out, migration.name, loader.checksum(path))
                self.log(f"accepted the current file of {migration.name}")

    # -- execution -----------------------------------------------------------

    def _run_together(
        self, steps: list[plan.Step], out: Live, applier: Applier
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
        current = steps[0]
        try:
            with transaction(out):
                applier.set_local(out)
                if not history.is_complete(self.database):
                    history.create(out)
                for current in steps:
                    self.log(f"applying {current.name}")
                    applier.run_inside(current, out, check_each_operation=False)
                    ran.append(current.name)
        except ChatdbError:
            raise
        except Exception as exc:
            if sqlstate(exc) not in _NOT_IN_ONE_TRANSACTION:
                raise StepFailed(
                    f"applying {current.name} failed: {first_line(exc)} (a database without "
                    "tables is migrated in one transaction; it was rolled back, the database "
                    "is as it was)",
                    cause=first_line(exc),
                ) from exc
            self.log(
                f"{current.name} cannot run in one transaction with the others "
                f"({first_line(exc)}); rolled back, applying the migrations one at a time"
            )
            return None
        return ran

    def refuse_read_only(self) -> None:
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


def _finish_rollback(done: list[str], first: int, index: int, yes: bool) -> str:
    """The command that finishes a rollback to ``done[:first]`` stopped at ``done[index]``."""
    command = (
        f"chatdb rollback --to {done[first - 1]}"
        if first
        else (f"chatdb rollback --count {index + 1}")
    )
    return f"`{command}{' --yes' if yes else ''}`"
