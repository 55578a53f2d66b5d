"""Plain ``pw_migrate`` as a front end of chatdb's executor (``migrations/conf.py``).

peewee-migrate lets ``conf.py``'s ``DATABASE`` override ``--database``; chatdb
reads ``--database`` from the command line itself, so an explicit URL still
wins, then ``DATABASE_URL``, then the embedded server (unless
``CHATDB_EMBEDDED=0``). The file is found through ``--directory``, so
``pw_migrate list --directory "$(chatdb migrations-dir)"`` works from
anywhere. The history table is created in chatdb's shape first.

``pw_migrate migrate`` and ``rollback`` do not run migrations themselves:
:class:`ExecutorRouter` hands the whole plan to the same
:class:`~chatdb.migrate.executor.Runner` that ``chatdb migrate`` uses, so
every guard holds by construction (every file loaded before any runs, edited
applied files and drift refused, the migrator lock checked before each step,
``lock_timeout`` with retries, ``atomic = False`` migrations outside a
transaction, data loss refused unless ``CHATDB_ALLOW_DATA_LOSS=1``). What is
left to this module is the wording: refusals are one line, with the ways on
that ``pw_migrate`` users have (environment variables, not ``chatdb``'s flags).
``merge`` rewrites files and history: it only takes the migrator lock.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
import peewee as pw
import peewee_migrate.cli
from peewee_migrate.router import Router

from chatdb.cli import remedies
from chatdb.db.connect import open_database
from chatdb.db.target import choose
from chatdb.errors import ChatdbError
from chatdb.migrate import history, loader
from chatdb.migrate import lock as migration_lock
from chatdb.migrate.defaults import DEFAULT_LOCK_TIMEOUT
from chatdb.migrate.executor import Runner

LOCK_WAIT_ENV = "CHATDB_LOCK_WAIT"
LOCK_TIMEOUT_ENV = "CHATDB_LOCK_TIMEOUT"


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
        _fail(
            "pw_migrate create --auto does not see enum labels, server defaults or "
            "lock-safe DDL in chatdb's models; run `chatdb create NAME` instead"
        )


def database_for(argv: Sequence[str]) -> pw.Database:
    """The database plain ``pw_migrate`` should use, named on stderr; one line on failure."""
    refuse_autodetection(argv)
    try:
        target = choose(explicit_database(argv))
        print(target.describe(), file=sys.stderr)
        url = target.url()
        database = open_database(url)
        history.ensure(database)
        _install(url, database)
    except ChatdbError as exc:
        _fail(remedies.words(exc, remedies.PW_MIGRATE))
    return database


def _install(url: str, database: pw.Database) -> None:
    """Make ``pw_migrate``'s commands build :class:`ExecutorRouter` for this URL."""
    context = click.get_current_context(silent=True)
    command = context.command.name if context is not None else None
    if command in ("migrate", "rollback"):
        assert context is not None
        ExecutorRouter.url = url
        ExecutorRouter.count = count = context.params.get("count", 1)
        applied = len(history.applied(database))
        if command == "rollback" and count > applied:  # pw_migrate's own check has a traceback
            _fail(f"cannot roll back {count} migration(s): only {applied} applied")
        peewee_migrate.cli.Router = ExecutorRouter  # type: ignore[misc]
    elif command == "merge":
        ExecutorRouter.held = migration_lock.acquire(url, wait=_seconds(LOCK_WAIT_ENV, None))


class ExecutorRouter(Router):
    """peewee-migrate's router whose ``run`` and ``rollback`` are chatdb's executor."""

    url: str = ""
    count: int = 1
    held: migration_lock.MigrationLock | None = None  # merge's lock, for the process
    _rolled_back = False

    def read(self, name: str) -> tuple[Any, Any]:
        migration = loader.load(Path(self.migrate_dir), name)
        return migration.migrate, migration.rollback

    def run(self, name: str | None = None, *, fake: bool = False) -> list[str]:
        if fake:
            _fail(
                "pw_migrate migrate --fake records migrations as applied without running them, "
                "which leaves a history that does not describe the schema; chatdb does not "
                "allow it (a legacy database is adopted with `chatdb handover`)"
            )
        return self._execute(lambda runner: runner.migrate(name))

    def rollback(self) -> None:
        """``pw_migrate rollback --count N`` calls this N times: the first call rolls back N.

        One plan for the whole count, as ``chatdb rollback --count N``: its
        data-loss check covers every migration it undoes before the first write.
        """
        if not ExecutorRouter._rolled_back:
            ExecutorRouter._rolled_back = True
            self._execute(lambda runner: runner.rollback(self.count))

    def _execute(self, work: Callable[[Runner], list[str]]) -> list[str]:
        log = self.logger.info
        try:
            with Runner(
                self.url,
                Path(self.migrate_dir),
                lock_timeout=_seconds(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT),
                lock_wait=_seconds(LOCK_WAIT_ENV, None),
                log=log,
            ) as runner:
                return work(runner)
        except ChatdbError as exc:
            _fail(remedies.words(exc, remedies.PW_MIGRATE))


def _seconds(variable: str, default: float | None) -> float:
    """A duration from the environment: a finite, non-negative number of seconds."""
    raw = os.environ.get(variable)
    if raw is None:
        return migration_lock.DEFAULT_LOCK_WAIT if default is None else default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 86400:
        _fail(f"{variable}={raw!r} is not a number of seconds between 0 and 86400")
    return max(value, 0.1) if variable == LOCK_TIMEOUT_ENV else value


def _fail(message: str) -> NoReturn:
    sys.exit(f"error: {message}")
