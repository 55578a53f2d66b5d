"""One call to choose the database and connect: ``chatdb.connect(url)``."""

from __future__ import annotations

from chatdb.api.database import Database
from chatdb.db.pool import DEFAULT_MAX_CONNECTIONS, DEFAULT_WAIT
from chatdb.db.target import resolve_url


def connect(
    url: str | None = None,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    wait: float = DEFAULT_WAIT,
) -> Database:
    """A :class:`Database` for ``url``, else ``DATABASE_URL``, else the embedded server.

    One connection is opened now, so that a bad target fails here with one
    clear line (:class:`~chatdb.errors.ConnectionFailed`), then lent back to
    the pool of at most ``max_connections``; a call waits up to ``wait``
    seconds for a free one. Nothing is bound globally. As a context manager
    (``with chatdb.connect() as db:``) the block runs in one transaction with
    ``db`` current, and the database is closed afterwards.
    """
    database = Database(resolve_url(url), max_connections=max_connections, wait=wait)
    database.connect()
    database.release()
    return database
