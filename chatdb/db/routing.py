"""Which database the models and the module-level data API use.

Nothing is bound globally: the models are bound once to a router that asks,
at each use, for the database of the moment, in this order:

1. the database made current in this context (``with db:``, and every call of
   a method of ``db``): a contextvar, so threads and asyncio tasks never see
   each other's;
2. else the one open :class:`chatdb.Database` of the process (the one-database
   convenience); with several open, the call is refused (:class:`NoDatabase`)
   rather than sent to one of them silently;
3. else the database given to ``chatdb.schema.models.bind`` (the migration
   tools' and benchmarks' low-level hook).
"""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import peewee as pw

from chatdb.errors import NoDatabase

_current: contextvars.ContextVar[pw.Database | None] = contextvars.ContextVar(
    "chatdb_database", default=None
)
_open: weakref.WeakSet[pw.Database] = weakref.WeakSet()
_bound: list[pw.Database] = []


def register(database: pw.Database) -> None:
    """Count ``database`` among the open ones (from its connect to its close)."""
    _open.add(database)


def unregister(database: pw.Database) -> None:
    _open.discard(database)


@contextmanager
def using(database: pw.Database) -> Iterator[pw.Database]:
    """Make ``database`` the current one in this context for the block."""
    token = _current.set(database)
    try:
        yield database
    finally:
        _current.reset(token)


def current() -> pw.Database:
    """The database a model or module-level call uses now (see the module docstring)."""
    chosen = _current.get()
    if chosen is not None:
        return chosen
    live = list(_open)
    if len(live) == 1:
        return live[0]
    if live:
        names = ", ".join(sorted(str(getattr(d, "target", d.database)) for d in live))
        raise NoDatabase(
            f"{len(live)} databases are open ({names}), so a module-level call cannot tell "
            "which to use; call the method on the one you mean (db.list_threads(...)), "
            "use `with db:` around the calls, or close the others"
        )
    if _bound:
        return _bound[0]
    raise NoDatabase("no database is open; call chatdb.connect(url) first")


class Router(pw.DatabaseProxy):
    """A peewee database proxy whose target is :func:`current`, looked up at every use."""

    @property
    def obj(self) -> pw.Database | None:
        """The current database, or None (peewee's "not initialised") when none can be chosen."""
        try:
            return current()
        except NoDatabase:
            return None

    @obj.setter
    def obj(self, database: pw.Database | None) -> None:
        _bound[:] = [] if database is None else [database]

    def __getattr__(self, attr: str) -> Any:
        return getattr(current(), attr)


ROUTER = Router()
