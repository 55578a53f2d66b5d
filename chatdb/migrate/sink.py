"""Where the migration engine's writes go: the database, or a printer (``--sql``).

Its own module so that :mod:`chatdb.migrate.history` (which writes through
it) and :mod:`chatdb.migrate.executor` (which chooses one) both import it
without importing each other.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol


class Statements(Protocol):
    """What writing SQL needs: statements, and transactions around them.

    A ``peewee.Database`` is one; so is every :class:`Sink`.
    """

    def atomic(self) -> contextlib.AbstractContextManager[Any]: ...

    def execute_sql(self, sql: str, params: Any = None) -> Any: ...


class Sink(Statements, Protocol):
    """A migration run's writes: the database itself, or a printer (``--sql``)."""

    def run(self, operation: Any, *, in_transaction: bool) -> None:
        """One queued migrator operation: a peewee ``Operation`` or a callable."""

    def note(self, text: str) -> None:
        """Which migration the following writes belong to."""
