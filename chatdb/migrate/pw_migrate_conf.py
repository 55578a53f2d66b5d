"""What ``migrations/conf.py`` gives plain ``pw_migrate``.

peewee-migrate lets ``conf.py``'s ``DATABASE`` override ``--database``; chatdb
reads ``--database`` from the command line itself, so an explicit URL still
wins, then ``DATABASE_URL``, then the embedded server (unless
``CHATDB_EMBEDDED=0``). The file is found through ``--directory``, so
``pw_migrate list --directory "$(chatdb migrations-dir)"`` works from anywhere. The history table is
created in chatdb's shape first, so plain ``pw_migrate`` runs get its unique
migration names too.

Plain ``pw_migrate`` must not be a way around what ``chatdb migrate``
guarantees, so ``migrate``, ``rollback`` and ``merge`` also:

- take chatdb's migrator lock (:mod:`chatdb.migrate.lock`), waiting up to
  ``CHATDB_LOCK_WAIT`` seconds (default 300), and check it is still held
  before every migration and before recording it;
- record each migration with the sha256 checksum of its file, as chatdb does;
- read files through chatdb's loader (strict names, regular files only);
- refuse a rollback that drops data or the first migration
  (:mod:`chatdb.migrate.data_loss`) unless ``CHATDB_ALLOW_DATA_LOSS=1``.

peewee-migrate builds its router from ``peewee_migrate.cli.Router`` after
reading ``conf.py``; :func:`install` puts :class:`GuardedRouter` there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import peewee as pw
import peewee_migrate.cli
from peewee_migrate import Migrator
from peewee_migrate.router import Router

from chatdb.db.connect import open_database
from chatdb.db.target import choose
from chatdb.errors import ChatdbError
from chatdb.migrate import data_loss, history, loader
from chatdb.migrate import lock as migration_lock

LOCK_WAIT_ENV = "CHATDB_LOCK_WAIT"
# pw_migrate commands that write schema or history.
_WRITERS = frozenset({"migrate", "rollback", "merge"})


def explicit_database(argv: Sequence[str]) -> str | None:
    """The value of ``--database`` on a ``pw_migrate`` command line, if any."""
    for index, arg in enumerate(argv):
        if arg == "--database" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--database="):
            return arg.split("=", 1)[1]
    return None


def refuse_autodetection(argv: Sequence[str]) -> None:
    """Stop ``pw_migrate create --auto``: it would write files that fail or miss changes.

    Its autodetection compares field names, so it misses enum labels, server
    defaults and lock-safe DDL; ``chatdb create`` compares catalogs.
    """
    if "create" in argv and any(arg == "--auto" or arg.startswith("--auto=") for arg in argv):
        sys.exit(
            "error: pw_migrate create --auto does not see enum labels, server defaults or "
            "lock-safe DDL in chatdb's models; run `chatdb create NAME` instead"
        )


def database_for(argv: Sequence[str]) -> pw.Database:
    """The database plain ``pw_migrate`` should use, named on stderr; one line on failure."""
    refuse_autodetection(argv)
    try:
        target = choose(explicit_database(argv))
        print(target.describe(), file=sys.stderr)
        database = open_database(target.url())
        history.ensure(database)
        install(target.url(), database)
    except ChatdbError as exc:
        sys.exit(f"error: {exc}")
    return database


def install(url: str, database: pw.Database) -> None:
    """For a writing command: take the lock, run the guards, make pw_migrate use our router."""
    context = click.get_current_context(silent=True)
    command = context.command.name if context is not None else None
    if command not in _WRITERS:
        return
    assert context is not None
    GuardedRouter.held = migration_lock.acquire(
        url, wait=_lock_wait(), wait_hint=f"{LOCK_WAIT_ENV}=SECONDS"
    )
    directory = Path(context.params.get("directory") or "migrations")
    if command == "rollback":
        done = [a.name for a in history.applied(database)]
        count = context.params.get("count", 1)
        if 0 < count <= len(done) and not data_loss.allowed_by_environment():
            files = {m.name: m for m in loader.load_all(directory)}
            data_loss.refuse(
                database,
                directory,
                done,
                len(done) - count,
                files,
                f"set {data_loss.ALLOW_DATA_LOSS_ENV}=1",
            )
    peewee_migrate.cli.Router = GuardedRouter  # type: ignore[misc]


def _lock_wait() -> float:
    raw = os.environ.get(LOCK_WAIT_ENV)
    if raw is None:
        return migration_lock.DEFAULT_LOCK_WAIT
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise ChatdbError(f"{LOCK_WAIT_ENV}={raw!r} is not a number of seconds") from None


class GuardedRouter(Router):
    """peewee-migrate's router under chatdb's lock, loader and history records."""

    held: migration_lock.MigrationLock | None = None

    def read(self, name: str) -> tuple[Any, Any]:
        migration = loader.load(Path(self.migrate_dir), name)
        return migration.migrate, migration.rollback

    def run_one(
        self,
        name: str,
        migrator: Migrator,
        *,
        fake: bool = True,
        downgrade: bool = False,
        force: bool = False,
    ) -> str:
        """As peewee-migrate's, checking the lock and recording chatdb's checksum."""
        if fake:
            return super().run_one(name, migrator, fake=fake, downgrade=downgrade, force=force)
        try:
            self._check_lock()
            migration = loader.load(Path(self.migrate_dir), name)
            with self.database.transaction():
                self.logger.info("Rolling back %s" if downgrade else 'Migrate "%s"', name)
                function = migration.rollback if downgrade else migration.migrate
                function(migrator, self.database, fake=False)
                migrator()
                self._check_lock()
                if downgrade:
                    history.unrecord(self.database, name)
                else:
                    history.record(self.database, name, migration.checksum)
            self.logger.info("Done %s", name)
            return name
        except ChatdbError as exc:
            sys.exit(f"error: {exc}")
        except Exception:
            self.logger.exception("%s failed: %s", "Rollback" if downgrade else "Migration", name)
            raise

    def _check_lock(self) -> None:
        if self.held is not None:
            self.held.check()
