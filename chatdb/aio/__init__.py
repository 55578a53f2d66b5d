"""chatdb's data API for asyncio: the same names and semantics as ``chatdb``'s, awaited.

``db = await chatdb.aio.connect(url)`` gives a :class:`Database` with its own
asyncpg pool; ``await db.add_messages(...)`` and the other methods run on it.
The module-level functions (``await chatdb.aio.add_messages(...)``) are the
one-database convenience, choosing the database as the sync API does: the one
current in the task (``async with db.transaction():``), else the one open.
Arguments, errors and results are those of the sync API (the checks, the
statements and the models are shared); a cancelled call rolls its
transaction back and gives its connection back to the pool.
"""

from __future__ import annotations

from chatdb.aio.chats import (
    add_message,
    add_message_details,
    add_messages,
    create_thread,
    delete_message,
    delete_thread,
    get_message,
    get_thread,
    list_messages,
    list_threads,
    update_thread,
)
from chatdb.aio.database import Database, connect
from chatdb.aio.reads import reindex_search, search_messages, token_usage

__all__ = [
    "Database",
    "add_message",
    "add_message_details",
    "add_messages",
    "connect",
    "create_thread",
    "delete_message",
    "delete_thread",
    "get_message",
    "get_thread",
    "list_messages",
    "list_threads",
    "reindex_search",
    "search_messages",
    "token_usage",
    "update_thread",
]
