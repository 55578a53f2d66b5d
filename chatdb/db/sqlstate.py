"""SQLSTATE codes chatdb acts on, and reading them off an exception."""

from __future__ import annotations

# SQLSTATEs a migrator retries: it gave up waiting for a lock, or lost a deadlock.
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
# A statement PostgreSQL runs only outside a transaction block was sent inside one.
ACTIVE_SQL_TRANSACTION = "25001"
# An enum label added in this transaction was used before the transaction committed.
UNSAFE_NEW_ENUM_VALUE_USAGE = "55P04"
# statement_timeout (or a cancel request) stopped the statement.
QUERY_CANCELED = "57014"
# A row with the same key exists; a row names a parent that does not.
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg2 or asyncpg error, also when Peewee has wrapped it."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "pgcode", None) or getattr(candidate, "sqlstate", None)
        if code:
            return code
    return None


def constraint_name(exc: BaseException) -> str | None:
    """The constraint a psycopg2 or asyncpg error names, also when Peewee has wrapped it."""
    for candidate in (exc, exc.__cause__, exc.__context__, *exc.args[:1]):
        name = getattr(getattr(candidate, "diag", None), "constraint_name", None) or getattr(
            candidate, "constraint_name", None
        )
        if name:
            return str(name)
    return None
