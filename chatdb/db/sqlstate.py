"""SQLSTATE codes chatdb acts on, and reading them off an exception."""

from __future__ import annotations

# SQLSTATEs a migrator retries: it gave up waiting for a lock, or lost a deadlock.
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
# A statement PostgreSQL runs only outside a transaction block was sent inside one.
ACTIVE_SQL_TRANSACTION = "25001"
# An enum label added in this transaction was used before the transaction committed.
UNSAFE_NEW_ENUM_VALUE_USAGE = "55P04"
# A column or table a statement names does not exist (yet; or chatdb's schema is not there).
UNDEFINED_COLUMN = "42703"
UNDEFINED_TABLE = "42P01"
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


def detail(exc: BaseException) -> str | None:
    """PostgreSQL's DETAIL line of a psycopg2 error (which row, which key), if it sent one."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        diag = getattr(candidate, "diag", None)
        text = getattr(diag, "message_detail", None)
        if text:
            return " ".join(str(text).split())
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
