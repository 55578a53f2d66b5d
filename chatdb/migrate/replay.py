"""The model state a migration starts from, advanced one migration at a time.

A migration function receives a peewee-migrate ``Migrator`` whose ``orm``
holds the models as the migrations before it left them. peewee-migrate
builds that state by replaying every earlier file for each migration it
runs, which is quadratic in the length of the history. Here one state
advances along a run instead: running a migration (or its rollback) moves
it by one, and every file is read once, by the caller, beforehand.

The state is model classes that migration functions change in place, so it
cannot be copied. A migration taking the state changes it; when that attempt
fails (a lock wait to retry), the next one rebuilds the state by replaying
the files already loaded, without reading any of them again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import peewee as pw
from peewee_migrate.router import BaseRouter

from chatdb.migrate import loader
from chatdb.migrate.migrator import Migrator


class _LoadedRouter(BaseRouter):
    """peewee-migrate's router over files already loaded (its replay, with its fakes)."""

    def __init__(self, database: pw.Database, files: Mapping[str, loader.MigrationFile]):
        super().__init__(database)
        self.files = files

    def read(self, name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        migration = self.files[name]
        return migration.migrate, migration.rollback


class State:
    """One migrator state for a run over ``files``: taken by a migration, then settled."""

    def __init__(self, database: pw.Database, files: Mapping[str, loader.MigrationFile]):
        self._router = _LoadedRouter(database, files)
        self._migrator: Migrator | None = None
        self._names: list[str] = []

    def take(self, names: Sequence[str]) -> Migrator:
        """A migrator holding the state after ``names``, for the caller to change.

        Advances the current state when ``names`` extends it; otherwise (it was
        taken and not settled, or the run went back) replays ``names`` afresh.
        """
        names = list(names)
        if self._migrator is None or names[: len(self._names)] != self._names:
            self._migrator, self._names = Migrator(self._router.database), []
        migrator = self._migrator
        for name in names[len(self._names) :]:
            self._router.run_one(name, migrator, fake=True)
        self._migrator = None
        return migrator

    def settle(self, migrator: Migrator, names: Sequence[str]) -> None:
        """``migrator``, taken before, now holds the state after ``names``."""
        self._migrator, self._names = migrator, list(names)
