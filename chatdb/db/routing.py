"""Which database the models and the module-level data API use.

Nothing is bound globally. Each API (sync, async) has a :class:`Choice`, which
picks the database of the moment, in this order:

1. the database made current in this context (``with db:``, and every call of
   a method of ``db``): a contextvar, so threads and asyncio tasks never see
   each other's;
2. else the one open database of the process (the one-database convenience);
   with several open, the call is refused (:class:`NoDatabase`) rather than
   sent to one of them silently;
3. else, for the sync API, the database given to ``chatdb.schema.models.bind``
   (the migration tools' and benchmarks' low-level hook).

The models are bound once to :data:`ROUTER`, which asks :data:`SYNC` at every use.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import peewee as pw

from chatdb.errors import NoDatabase

D = TypeVar("D")


class Choice(Generic[D]):
    """The open databases of one API, and the one current in each context."""

    def __init__(self, name: str, connect_hint: str):
        self._current: contextvars.ContextVar[D | None] = contextvars.ContextVar(name, default=None)
        # Held strongly: ``chatdb.connect(url)`` as a statement keeps its database open.
        self._open: list[Any] = []
        self._hint = connect_hint
        self.bound: list[D] = []

    def register(self, database: D) -> None:
        """Count ``database`` among the open ones (from its connect to its close)."""
        if not any(database is known for known in self._open):
            self._open.append(database)

    def unregister(self, database: D) -> None:
        self._open[:] = [known for known in self._open if known is not database]

    @contextmanager
    def using(self, database: D) -> Iterator[D]:
        """Make ``database`` the current one in this context for the block."""
        token = self._current.set(database)
        try:
            yield database
        finally:
            self._current.reset(token)

    def current(self) -> D:
        """The database a module-level call uses now (see the module docstring)."""
        chosen = self._current.get()
        if chosen is not None:
            return chosen
        live: list[D] = list(self._open)
        if len(live) == 1:
            return live[0]
        if live:
            names = ", ".join(sorted(str(getattr(d, "target", d)) for d in live))
            raise NoDatabase(
                f"{len(live)} databases are open ({names}), so a module-level call cannot tell "
                "which to use; call the method on the one you mean (db.list_threads(...)), "
                "make one current around the calls, or close the others"
            )
        if self.bound:
            return self.bound[0]
        raise NoDatabase(f"no database is open; call {self._hint} first")


SYNC: Choice[pw.Database] = Choice("chatdb_database", "chatdb.connect(url)")
register, unregister, using, current = SYNC.register, SYNC.unregister, SYNC.using, SYNC.current


class Router(pw.DatabaseProxy):
    """A peewee database proxy whose target is :data:`SYNC`'s choice, looked up at every use."""

    @property
    def obj(self) -> pw.Database | None:
        """The current database, or None (peewee's "not initialised") when none can be chosen."""
        try:
            return current()
        except NoDatabase:
            return None

    @obj.setter
    def obj(self, database: pw.Database | None) -> None:
        SYNC.bound[:] = [] if database is None else [database]

    def __getattr__(self, attr: str) -> Any:
        return getattr(current(), attr)


ROUTER = Router()
