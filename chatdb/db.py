"""Choosing and opening the database.

The target is, in order: an explicit URL (``--database``), ``DATABASE_URL``,
then the embedded local server. Connection failures become a
:class:`ChatdbError` naming the target with its password masked.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

import peewee as pw
import psycopg2
from psycopg2.extensions import parse_dsn

from chatdb.errors import ChatdbError

ENV_VAR = "DATABASE_URL"
# SQLSTATEs a migrator retries: it gave up waiting for a lock, or lost a deadlock.
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
_SCHEMES = ("postgres", "postgresql")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg2 error, also when Peewee has wrapped it."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        code = getattr(candidate, "pgcode", None)
        if code:
            return code
    return None


def mask_password(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def resolve_url(explicit: str | None = None) -> str:
    """The URL chatdb should use: explicit, then ``DATABASE_URL``, then embedded."""
    if explicit:
        return explicit
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return from_env
    from chatdb import embedded

    return embedded.EmbeddedServer.default().ensure_running().url()


def connect_params(url: str) -> dict[str, str]:
    """libpq keywords for ``url``, or a ChatdbError saying why it is malformed."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: expected "
            "postgresql://user:password@host:port/dbname"
        )
    try:
        params = parse_dsn(url)
    except psycopg2.ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: {reason}; expected "
            "postgresql://user:password@host:port/dbname"
        ) from exc
    if not all(part.isdigit() for part in params.get("port", "0").split(",")):
        raise ChatdbError(
            f"malformed database URL {mask_password(url)!r}: port {params['port']!r} is not "
            "a number; expected postgresql://user:password@host:port/dbname"
        )
    return params


def make_database(url: str) -> pw.PostgresqlDatabase:
    """An unopened Peewee database for ``url``."""
    params = connect_params(url)
    dbname = params.pop("dbname", None) or params.get("user") or os.environ.get("PGDATABASE")
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
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    reason = lines[0] if lines else exc.__class__.__name__
    if "failed:" in reason:
        reason = reason.split("failed:", 1)[1].strip() or reason
    reason = reason.removeprefix("FATAL:").strip()
    hint = next((h for needle, h in _HINTS if needle in reason), "check the database URL")
    return f"cannot connect to {mask_password(url)}: {reason}; {hint}"


def execute_autocommit(url: str, sql: str) -> None:
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
        raise ChatdbError(describe_connect_error(url, exc)) from exc
    return database
