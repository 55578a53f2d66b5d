"""A database that is never connected: rendering a migration's SQL without a server.

``chatdb lint FILES`` and ``chatdb create --sql`` need the statements a
migration would send to a database at the state just before it. peewee
renders SQL from an unconnected database object; the catalog-reading steps of
:mod:`chatdb.migrate.operations` see this class and assume that state
instead of asking (nothing of theirs is done yet, no row exists).
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from chatdb.errors import ChatdbError


class _NoRows:
    """The answer to a catalog question offline: nothing found."""

    def fetchall(self) -> list[Any]:
        return []

    def fetchone(self) -> None:
        return None


class OfflineDatabase(pw.PostgresqlDatabase):
    """Renders SQL like PostgreSQL; refuses to run any but catalog reads, which find nothing."""

    def __init__(self) -> None:
        super().__init__(None)

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        # playhouse's rename_table asks for the table's key columns and their
        # sequence first: offline there are none (chat tables have uuid keys).
        if sql.split()[0].upper() == "SELECT":
            return _NoRows()
        raise ChatdbError(f"no database here to run {sql.split()[0]} on (offline rendering)")

    # playhouse's migrator introspects before some steps (drop_column looks for the
    # foreign keys it must drop first); offline there are none to find: PostgreSQL
    # drops a column's own constraints and indexes with it.
    def get_foreign_keys(self, table: str, schema: str | None = None) -> list[Any]:
        return []

    def get_indexes(self, table: str, schema: str | None = None) -> list[Any]:
        return []


def is_offline(database: pw.Database) -> bool:
    return isinstance(database, OfflineDatabase)
