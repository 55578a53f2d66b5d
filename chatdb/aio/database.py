"""An explicit async database: ``await chatdb.aio.connect(url)``, with its own asyncpg pool.

The twin of :class:`chatdb.Database`: the same calls as coroutine methods
(``await db.add_messages(...)``), on this database whatever else is open.
``async with db.transaction():`` runs a block in one transaction on one
connection, with ``db`` current for the module-level functions of
:mod:`chatdb.aio`; ``async with db:`` does the same and closes ``db`` after,
as ``with db:`` does in the sync API.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg

from chatdb.aio import chats, reads
from chatdb.aio.session import ASYNC, atomic
from chatdb.db.connect import describe_connect_error
from chatdb.db.pool import DEFAULT_MAX_CONNECTIONS, DEFAULT_WAIT
from chatdb.db.target import resolve_url
from chatdb.db.urls import connect_params, mask_password
from chatdb.errors import ConnectionFailed, InvalidInput

P = ParamSpec("P")
R = TypeVar("R")
# libpq parameters and their asyncpg names; others have no asyncpg equivalent.
_PARAMS = {
    "host": "host",
    "hostaddr": "host",
    "port": "port",
    "user": "user",
    "password": "password",
    "dbname": "database",
    "sslmode": "ssl",
    "connect_timeout": "timeout",
}


def _method(
    function: Callable[P, Awaitable[R]],
) -> Callable[Concatenate[Database, P], Coroutine[Any, Any, R]]:
    """``function`` as a coroutine method that runs it on its own database."""

    async def method(self: Database, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with ASYNC.using(self):
            return await function(*args, **kwargs)

    method.__name__ = function.__name__
    method.__qualname__ = f"Database.{function.__name__}"
    method.__doc__ = function.__doc__
    return method


class Database:
    """One PostgreSQL database at chatdb's head, with its own asyncpg pool and the API."""

    def __init__(self, url: str, pool: asyncpg.Pool, wait: float):
        self.target = mask_password(url)
        self._url = url
        self._pool = pool
        self._wait = wait
        self._held: contextvars.ContextVar[asyncpg.Connection | None] = contextvars.ContextVar(
            "chatdb_aio_connection", default=None
        )
        self._scopes: contextvars.ContextVar[tuple[AbstractAsyncContextManager[Any], ...]] = (
            contextvars.ContextVar("chatdb_aio_scopes", default=())
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the block: the one this context's transaction holds, else the pool's."""
        held = self._held.get()
        if held is not None:
            yield held
            return
        try:
            connection = await self._pool.acquire(timeout=self._wait)
        except TimeoutError:
            raise ConnectionFailed(
                f"every connection of the pool to {self.target} stayed in use for "
                f"{self._wait:g} s; pass a larger max_connections to connect() or hold "
                "connections for less time"
            ) from None
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConnectionFailed(describe_connect_error(self._url, exc)) from None
        try:
            yield connection
        finally:
            await self._pool.release(connection)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """The block in one transaction on one connection, with this database current."""
        async with self.connection() as connection, atomic(connection, "transaction"):
            token = self._held.set(connection)
            try:
                with ASYNC.using(self):
                    yield self
            finally:
                self._held.reset(token)

    async def __aenter__(self) -> Database:
        scope = self.transaction()
        await scope.__aenter__()
        self._scopes.set((*self._scopes.get(), scope))  # per task, as the transaction is
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        *outer, scope = self._scopes.get()
        self._scopes.set(tuple(outer))
        try:
            await scope.__aexit__(*exc_info)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every connection of the pool (waiting for those in use); the database is closed."""
        ASYNC.unregister(self)
        await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool (its size, for monitoring)."""
        return self._pool

    create_thread = _method(chats.create_thread)
    get_thread = _method(chats.get_thread)
    update_thread = _method(chats.update_thread)
    list_threads = _method(chats.list_threads)
    delete_thread = _method(chats.delete_thread)
    add_message = _method(chats.add_message)
    add_messages = _method(chats.add_messages)
    add_message_details = _method(chats.add_message_details)
    get_message = _method(chats.get_message)
    list_messages = _method(chats.list_messages)
    delete_message = _method(chats.delete_message)
    search_messages = _method(reads.search_messages)
    token_usage = _method(reads.token_usage)
    reindex_search = _method(reads.reindex_search)


async def connect(
    url: str | None = None,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    wait: float = DEFAULT_WAIT,
) -> Database:
    """A :class:`Database` for ``url``, else ``DATABASE_URL``, else the embedded server.

    One connection is opened now, so that a bad target fails here with one
    clear line (:class:`~chatdb.errors.ConnectionFailed`); the pool grows to at
    most ``max_connections``, and a call waits up to ``wait`` seconds for a
    free connection. Nothing is bound globally.
    """
    target = await asyncio.to_thread(resolve_url, url)  # may start the embedded server
    try:
        pool = await asyncpg.create_pool(
            min_size=1, max_size=max_connections, **asyncpg_params(target)
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ConnectionFailed(describe_connect_error(target, exc)) from None
    database = Database(target, pool, wait)
    ASYNC.register(database)
    return database


def asyncpg_params(url: str) -> dict[str, Any]:
    """asyncpg's connection arguments for a libpq URL; ``InvalidInput`` for what it lacks."""
    params: dict[str, Any] = {}
    settings: dict[str, str] = {}
    for key, value in connect_params(url).items():
        if key == "application_name":
            settings[key] = value
        elif key in _PARAMS:
            params[_PARAMS[key]] = float(value) if key == "connect_timeout" else value
        else:
            raise InvalidInput(
                f"the async API cannot use the connection parameter {key!r} of "
                f"{mask_password(url)}; leave it out of the URL for chatdb.aio"
            )
    if "port" in params:
        params["port"] = int(params["port"])
    return {**params, "server_settings": settings} if settings else params
