"""The frame of every async data API call: which database, which connection, which errors.

As in the sync API (``chatdb.api.session``): arguments are checked first, then
the SQL runs inside :func:`session`, on the current database (context, else
the one open) with a connection of its pool, or the one a caller's
transaction holds. :func:`atomic` is a call's transaction; it knows when the
commit was under way, which decides whether a lost connection's outcome is
known. A cancelled call rolls back and gives its connection back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import asyncpg

from chatdb.api.session import lost_connection
from chatdb.db.routing import Choice
from chatdb.errors import ConnectionLost


class Target(Protocol):
    """What a call needs of an async database: its masked name and its connections."""

    target: str

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]: ...


ASYNC: Choice[Target] = Choice("chatdb_aio_database", "await chatdb.aio.connect(url)")


@asynccontextmanager
async def session(what: str, *, writes: bool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the current database for the block; a broken one is ``ConnectionLost``."""
    database = ASYNC.current()
    async with database.connection() as connection:
        try:
            yield connection
        except ConnectionLost:
            raise
        except Exception as exc:
            if not is_broken(connection):
                raise
            raise lost_connection(
                database.target, what, exc, writes=writes, in_commit=False
            ) from exc


@asynccontextmanager
async def atomic(connection: asyncpg.Connection, what: str) -> AsyncIterator[None]:
    """The block in one transaction (a savepoint inside the caller's), rolled back on any error.

    Cancellation too: the rollback runs before ``CancelledError`` goes on.
    """
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield
    except BaseException:
        if not is_broken(connection):
            with contextlib.suppress(Exception):
                await transaction.rollback()
        raise
    try:
        await transaction.commit()
    except Exception as exc:
        if not is_broken(connection):
            raise
        database = ASYNC.current()
        raise lost_connection(database.target, what, exc, writes=True, in_commit=True) from exc


def is_broken(connection: asyncpg.Connection) -> bool:
    """Whether ``connection`` is gone (the pool detaches a connection that died)."""
    try:
        return bool(connection.is_closed())
    except asyncpg.InterfaceError:
        return True
