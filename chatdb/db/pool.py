"""A database with its own pool of connections, usable from many threads at once.

Peewee keeps one connection per thread; the pool lends each thread one and
takes it back when the thread is done (:meth:`Pool.release`), so a threaded
service holds only as many connections as it has calls in flight, at most
``max_connections``. A call that finds every connection busy waits up to
``wait`` seconds for one.

The pool also remembers whether the last failure of a thread happened while
committing: after a lost connection, that is the difference between "nothing
was written" and "the outcome is unknown" (:class:`chatdb.errors.ConnectionLost`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import peewee as pw
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase
from psycopg2.extensions import TRANSACTION_STATUS_UNKNOWN

from chatdb.db.connect import database_args, describe_connect_error, interruptible
from chatdb.db.routing import register, unregister, using
from chatdb.db.urls import mask_password
from chatdb.errors import ConnectionFailed

DEFAULT_MAX_CONNECTIONS = 10
DEFAULT_WAIT = 30.0  # seconds a call waits for a free connection of the pool
# A connection given back less than this many seconds ago is lent again without a round trip
# to check that the server still has it (see Pool._is_closed).
TRUSTED_FOR = 5.0


class _InterruptibleOpen(pw.PostgresqlDatabase):
    """Opens a new connection interruptibly: from the main thread, Ctrl-C is answered while it
    opens, and the command line can cancel its queries (see :mod:`chatdb.db.connect`).

    It sits below the pool's own ``_connect`` in :class:`Pool`'s method order, so lending an
    idle pooled connection costs no helper thread; only opening one does.
    """

    def _connect(self) -> Any:
        return interruptible(super()._connect)  # type: ignore[misc]  # not in the stubs


class Pool(PooledPostgresqlDatabase, _InterruptibleOpen):
    """A peewee database for ``url`` lending pooled connections; ``target`` is the masked URL."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        wait: float = DEFAULT_WAIT,
    ):
        dbname, params = database_args(url)
        super().__init__(dbname, max_connections=max_connections, timeout=wait, **params)
        self._url = url
        self.target = mask_password(url)
        self._wait = wait
        self._scopes = threading.local()
        self._commits = threading.local()
        self._given_back: dict[int, float] = {}  # connection id: when it came back (monotonic)

    def _is_closed(self, conn: Any) -> bool:
        """Whether a pooled connection is unusable, before lending it again.

        Peewee asks the server (``SELECT 1``, a round trip as long as a small
        query) every time; a connection given back less than
        :data:`TRUSTED_FOR` seconds ago is judged by its local state alone, so a
        busy pool lends connections for free. One the server dropped within
        that time fails its call with ``ConnectionLost`` (nothing written) and
        is discarded.
        """
        given_back = self._given_back.pop(id(conn), None)
        if given_back is not None and time.monotonic() - given_back < TRUSTED_FOR:
            return bool(conn.closed) or conn.info.transaction_status == TRANSACTION_STATUS_UNKNOWN
        closed: bool = super()._is_closed(conn)
        return closed

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        super()._close(conn, close_conn)
        if any(pooled is conn for *_, pooled in self._connections):  # back in the pool
            self._given_back[id(conn)] = time.monotonic()

    def connect(self, reuse_if_open: bool = False) -> bool:
        """Borrow a connection for this thread; the database counts as open until :meth:`close`."""
        try:
            opened: bool = super().connect(reuse_if_open)
        except MaxConnectionsExceeded:
            raise ConnectionFailed(
                f"every connection of the pool to {self.target} stayed in use for "
                f"{self._wait:g} s; pass a larger max_connections to chatdb.connect() or "
                "hold connections for less time"
            ) from None
        except pw.OperationalError as exc:
            raise ConnectionFailed(describe_connect_error(self._url, exc)) from exc
        register(self)
        return opened

    def release(self) -> bool:
        """Give this thread's connection back to the pool (a broken one is discarded)."""
        released: bool = super().close()
        return released

    def close(self) -> bool:
        """Give this thread's connection back; with none left in use, the database is closed."""
        released = self.release()
        if not self._in_use:
            unregister(self)
        return released

    def close_all(self) -> None:
        """Close every pooled connection; the database is no longer open."""
        super().close_all()
        unregister(self)

    def commit(self) -> Any:
        self._commits.failed = False
        try:
            return super().commit()
        except BaseException:
            self._commits.failed = True
            raise

    def commit_failed(self) -> bool:
        """Whether this thread's last commit raised (its outcome unknown if the link broke)."""
        failed: bool = getattr(self._commits, "failed", False)
        self._commits.failed = False
        return failed

    def __enter__(self) -> Pool:
        """Run the block in one transaction, with this database current for the block."""
        scope = using(self)
        scope.__enter__()
        self._scopes.stack = [*getattr(self._scopes, "stack", []), scope]
        try:
            super().__enter__()
        except BaseException:
            self._scopes.stack.pop().__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            super().__exit__(*exc_info)
        finally:
            self._scopes.stack.pop().__exit__(None, None, None)
