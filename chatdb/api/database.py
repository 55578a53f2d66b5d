"""An explicit database: ``chatdb.connect(url)`` returns one, with its own connection pool.

Each :class:`Database` carries the whole data API as methods
(``db.add_messages(...)``), which run on that database whatever else is open,
so one process can use several side by side. It is also a peewee database
(``db.execute_sql``, ``db.atomic()``, ``with db:`` for one transaction, with
``db`` current for the module-level functions and the models inside the
block). The module-level functions (``chatdb.add_messages(...)``) are the
one-database convenience: see :mod:`chatdb.db.routing` for how they choose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from chatdb.api import accounting, chats, reindex, search
from chatdb.db.pool import Pool
from chatdb.db.routing import using

P = ParamSpec("P")
R = TypeVar("R")


def _method(function: Callable[P, R]) -> Callable[Concatenate[Database, P], R]:
    """``function`` as a method that runs it on its own database."""

    def method(self: Database, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with using(self):
            return function(*args, **kwargs)

    method.__name__ = function.__name__
    method.__qualname__ = f"Database.{function.__name__}"
    method.__doc__ = function.__doc__
    return method


class Database(Pool):
    """One PostgreSQL database at chatdb's head, with its own pool and the data API as methods."""

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
    search_messages = _method(search.search_messages)
    token_usage = _method(accounting.token_usage)
    reindex_search = _method(reindex.reindex_search)
