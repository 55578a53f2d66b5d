"""Opening connections: failures become one :class:`ConnectionFailed` naming the masked target."""

from __future__ import annotations

import os
from typing import Any

import peewee as pw
import psycopg2
from psycopg2.sql import Composable

from chatdb.db.urls import connect_params, mask_password
from chatdb.errors import ConnectionFailed, first_line


def database_args(url: str) -> tuple[str | None, dict[str, Any]]:
    """Peewee's arguments for ``url``: the database name and the other libpq parameters."""
    params: dict[str, Any] = dict(connect_params(url))
    dbname = params.pop("dbname", None) or params.get("user") or os.environ.get("PGDATABASE")
    return dbname, params


def make_database(url: str) -> pw.PostgresqlDatabase:
    """An unopened Peewee database for ``url``."""
    dbname, params = database_args(url)
    return pw.PostgresqlDatabase(dbname, **params)


_HINTS = (
    ("Connection refused", "is the server running, and are host and port right?"),
    ("No such file or directory", "is the server running, and is the socket directory right?"),
    ("could not translate host name", "check the host name in the URL"),
    ("password authentication failed", "check the user name and password"),
    ("no password supplied", "put the password in the URL or in ~/.pgpass"),
    ("does not exist", "create it (createdb) or fix the name in the URL"),
    ("timeout expired", "is the host reachable from here?"),
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
    conn = psycopg2.connect(url)
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
