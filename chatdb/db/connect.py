"""Opening connections: bounded, interruptible, and failing as one :class:`ConnectionFailed`.

libpq waits for a server inside C, retrying through signals, so a Ctrl-C
typed while it connects or runs a query would wait for the connect timeout
or the query's end. Two remedies, for the main thread (the only one signals
reach):

- the connect runs in a helper thread, and the main thread waits for it in
  short, interruptible steps: Ctrl-C is answered at once, and the abandoned
  attempt ends with the helper (a daemon) or the process;
- the connections it opens are remembered, so that whoever catches the
  Ctrl-C (the command line) can ask the server to cancel their running
  queries (:func:`cancel_queries`); the query then fails at once and the
  pending KeyboardInterrupt is raised.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

import peewee as pw
import psycopg2
from psycopg2.extensions import connection as Connection
from psycopg2.sql import Composable

from chatdb.db.urls import connect_params, mask_password
from chatdb.errors import ConnectionFailed, first_line

# Seconds libpq waits for a server to answer before giving up, unless the URL's
# ``connect_timeout`` or ``PGCONNECT_TIMEOUT`` says otherwise: a host that
# accepts and never answers (a dead proxy, a firewall) must not hang a command.
DEFAULT_CONNECT_TIMEOUT = 10
# How often the main thread looks up from a pending connect: the bound on answering Ctrl-C.
_POLL_SECONDS = 0.1
# The main thread's open connections: those a Ctrl-C may find in the middle of a query.
_MAIN_THREADS: weakref.WeakSet[Connection] = weakref.WeakSet()


def interruptible(connect: Callable[[], Connection]) -> Connection:
    """``connect()``, during which the main thread still answers Ctrl-C (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        return connect()  # signals reach only the main thread: nothing to answer here
    outcome: list[Connection] = []
    failure: list[BaseException] = []

    def attempt() -> None:
        try:
            outcome.append(connect())
        except BaseException as exc:  # handed to the waiting thread, raised there
            failure.append(exc)

    helper = threading.Thread(target=attempt, name="chatdb-connect", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(_POLL_SECONDS)
    if failure:
        raise failure[0]
    _MAIN_THREADS.add(outcome[0])
    return outcome[0]


def cancel_queries() -> None:
    """Ask the server to cancel whatever the main thread's connections are running.

    Safe from any thread (libpq's cancel request is made for that); an idle
    connection ignores it.
    """
    for conn in list(_MAIN_THREADS):
        if not conn.closed:
            with contextlib.suppress(psycopg2.Error):
                conn.cancel()


def bounded(params: dict[str, str]) -> dict[str, str]:
    """``params`` with chatdb's default connect timeout, unless they or the environment set one."""
    if "connect_timeout" in params or os.environ.get("PGCONNECT_TIMEOUT"):
        return params
    return {**params, "connect_timeout": str(DEFAULT_CONNECT_TIMEOUT)}


def connect_raw(params: dict[str, str]) -> Connection:
    """A psycopg2 connection from libpq keywords (``connect_params``): bounded, interruptible."""
    return interruptible(lambda: psycopg2.connect(**bounded(params)))


class _Database(pw.PostgresqlDatabase):
    """A Peewee database whose connects (and, through the command line, queries) answer Ctrl-C."""

    def _connect(self) -> Any:
        return interruptible(super()._connect)  # type: ignore[misc]


def database_args(url: str) -> tuple[str | None, dict[str, Any]]:
    """Peewee's arguments for ``url``: the database name and the other libpq parameters,
    with chatdb's default connect timeout (see :func:`bounded`)."""
    params: dict[str, Any] = bounded(connect_params(url))
    dbname = params.pop("dbname", None) or params.get("user") or os.environ.get("PGDATABASE")
    return dbname, params


def make_database(url: str) -> pw.PostgresqlDatabase:
    """An unopened Peewee database for ``url``."""
    dbname, params = database_args(url)
    return _Database(dbname, **params)


_HINTS = (
    ("Connection refused", "is the server running, and are host and port right?"),
    ("No such file or directory", "is the server running, and is the socket directory right?"),
    ("could not translate host name", "check the host name in the URL"),
    ("password authentication failed", "check the user name and password"),
    ("no password supplied", "put the password in the URL or in ~/.pgpass"),
    ("does not exist", "create it (createdb) or fix the name in the URL"),
    (
        "timeout expired",
        "is the host reachable from here? (wait longer with ?connect_timeout=SECONDS in the URL)",
    ),
)


def describe_connect_error(url: str, exc: Exception) -> str:
    """One line for a failed connection: the target (masked), libpq's reason, a hint."""
    reason = first_line(exc)
    if "failed:" in reason:
        reason = reason.split("failed:", 1)[1].strip() or reason
    reason = reason.removeprefix("FATAL:").strip()
    hint = next((h for needle, h in _HINTS if needle in reason), "check the database URL")
    return f"cannot connect to {mask_password(url)}: {reason}; {hint}"


def execute_autocommit(url: str, sql: str | Composable) -> None:
    """Run ``sql`` outside a transaction (``CREATE DATABASE`` and scripts) on a short connection."""
    conn = connect_raw(connect_params(url))
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def open_database(url: str) -> pw.PostgresqlDatabase:
    """Connect to ``url`` now, so that a bad target fails early with one clear line."""
    database = make_database(url)
    try:
        database.connect()
    except pw.OperationalError as exc:
        raise ConnectionFailed(describe_connect_error(url, exc)) from exc
    return database
