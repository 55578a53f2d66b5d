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
# A table the statement names is not there: chatdb's schema has not been migrated in.
UNDEFINED_TABLE = "42P01"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg2 error, also when Peewee has wrapped it."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "pgcode", None)
        if code:
            return code
    return None
