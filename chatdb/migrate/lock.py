"""The migrator lock: one migrator at a time per database, for chatdb and plain ``pw_migrate``.

The lock is a transaction-scoped advisory lock held in an open transaction on
a connection of its own, so it also holds behind a transaction-pooling
PgBouncer (a session-level lock would be released or leak between clients
there). That connection sits idle in its transaction while the migrator
works, so it turns off, for that transaction only (``SET LOCAL``), the
timeouts a role or database may impose (``idle_in_transaction_session_timeout``,
``statement_timeout``, ``transaction_timeout``): they would end it and let a
second migrator in. Anything else can still end it (``pg_terminate_backend``,
a pooler, a restart), so the migrator calls :meth:`MigrationLock.check`
before every step and before recording history, and stops if it was lost.

Waiting is polling, with no transaction open between tries: a waiter
blocked inside a statement would hold a snapshot, and ``CREATE INDEX
CONCURRENTLY`` in the running migration waits for every older snapshot, a
deadlock PostgreSQL cannot see. Behind PgBouncer, a waiter also holds no
server connection while it sleeps. The wait is bounded; at the bound the
error names the session holding the lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import psycopg2

from chatdb.db.connect import connect_raw, describe_connect_error
from chatdb.db.urls import connect_params
from chatdb.errors import ChatdbError, ConnectionFailed, LockNotObtained, Remedy, first_line
from chatdb.migrate.defaults import DEFAULT_LOCK_WAIT

# Key of the advisory lock every chatdb migrator takes; advisory locks are
# per database, so one constant serialises migrators of the same database.
MIGRATION_LOCK_KEY = 0x63686174_64620002
# Names the lock's own connection in pg_stat_activity, so lock reports skip it.
LOCK_APPLICATION_NAME = "chatdb migration lock"
POLL_SECONDS = 0.25

# The key as pg_locks shows a bigint advisory lock: high half, low half, objsubid 1.
_GRANTED = """
    l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_KEY = (MIGRATION_LOCK_KEY >> 32, MIGRATION_LOCK_KEY & 0xFFFFFFFF)
# Timeouts a role or database may set that would end the lock's idle transaction.
_NO_TIMEOUTS = """
    SELECT set_config(name, '0', true) FROM pg_settings
    WHERE name IN ('idle_in_transaction_session_timeout', 'statement_timeout',
                   'transaction_timeout')
"""


class MigrationLock:
    """The lock held on its own connection; :meth:`check` says whether it still is."""

    def __init__(self, conn: psycopg2.extensions.connection):
        self._conn = conn

    def check(self) -> None:
        """Raise :class:`ChatdbError` unless this connection still holds the lock."""
        try:
            with self._conn.cursor() as cursor:
                mine = "l.pid = pg_backend_pid()"
                cursor.execute(f"SELECT count(*) FROM pg_locks l WHERE {_GRANTED} AND {mine}", _KEY)
                held = cursor.fetchone()[0] == 1
            reason = "its connection no longer holds it"
        except psycopg2.Error as exc:
            held, reason = False, f"its connection ended: {first_line(exc)}"
        if not held:
            raise ChatdbError(
                f"lost the migration lock ({reason}; a server restart, pg_terminate_backend "
                "or a pooler ends it); stopped before the next step so that no other "
                "migrator runs alongside, and the migration in progress was not recorded"
            )

    def release(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self._conn.rollback()
        self._conn.close()


@contextlib.contextmanager
def hold(
    url: str,
    *,
    wait: float = DEFAULT_LOCK_WAIT,
    log: Callable[[str], None] = lambda message: None,
) -> Iterator[MigrationLock]:
    """Take the migrator lock (waiting up to ``wait`` seconds), hold it, release it."""
    lock = acquire(url, wait=wait, log=log)
    try:
        yield lock
    finally:
        lock.release()


def acquire(
    url: str,
    *,
    wait: float = DEFAULT_LOCK_WAIT,
    log: Callable[[str], None] = lambda message: None,
) -> MigrationLock:
    """Take the lock or raise :class:`LockNotObtained` naming its holder after ``wait`` s."""
    params = {**connect_params(url), "application_name": LOCK_APPLICATION_NAME}
    try:
        conn = connect_raw(params)
    except psycopg2.OperationalError as exc:
        raise ConnectionFailed(describe_connect_error(url, exc)) from exc
    deadline = time.monotonic() + wait
    try:
        first = True
        while True:
            with conn.cursor() as cursor:
                cursor.execute(_NO_TIMEOUTS)
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                if cursor.fetchone()[0]:
                    return MigrationLock(conn)
            conn.rollback()
            if time.monotonic() >= deadline:
                raise LockNotObtained(
                    f"another migrator holds the migration lock ({_holder(conn)}); waited "
                    f"{wait:g}s; end that session if it is stuck "
                    "(SELECT pg_terminate_backend(pid))",
                    remedy=Remedy.WAIT_LONGER,
                )
            if first:
                log("waiting for another migrator to finish")
                first = False
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
    except BaseException:
        conn.close()
        raise


def _holder(conn: psycopg2.extensions.connection) -> str:
    """pid, application_name, client address and since when of the lock's holder."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.application_name, host(a.client_addr), "
            "to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'), "
            "round(extract(epoch FROM now() - a.xact_start))::int "
            f"FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_GRANTED}",
            _KEY,
        )
        row = cursor.fetchone()
    conn.rollback()
    if row is None:
        return "it was released just now"
    pid, application, client, since, age = row
    return (
        f"pid {pid}, application_name {application!r}, client "
        f"{client or 'local socket'}, holding it since {since} ({age}s)"
    )
