"""One call for scripts: choose the database, connect, and bind the models to it."""

from __future__ import annotations

import peewee as pw

from chatdb.db.connect import open_database
from chatdb.db.target import resolve_url
from chatdb.schema.models import bind


def connect(url: str | None = None) -> pw.PostgresqlDatabase:
    """Connect to ``url``, else ``DATABASE_URL``, else the embedded server; bind the models.

    The database is returned open. Used as a context manager (``with
    chatdb.connect() as db:``) it runs the block in a transaction and closes
    the connection afterwards.
    """
    database = open_database(resolve_url(url))
    bind(database)
    return database
