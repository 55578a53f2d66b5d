"""A PostgreSQL server and scratch databases for benchmarks.

Benchmarks never touch a developer's data: they start a throwaway embedded
server in a temporary directory (stopped and removed afterwards), or use the
server named by ``--server URL`` (an admin URL whose user may create
databases), and work in databases they create and drop themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import Iterator

import psycopg2

from chatdb.db.connect import execute_autocommit
from chatdb.db.urls import with_database
from chatdb.testing.servers import temporary_server


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        metavar="URL",
        help="admin URL of a PostgreSQL server to use (default: a throwaway embedded server)",
    )


@contextlib.contextmanager
def server(url: str | None = None) -> Iterator[str]:
    """Yield the admin URL of ``url``'s server, or of a throwaway embedded one."""
    if url:
        yield url
        return
    with temporary_server("chatdb-bench-") as embedded:
        yield embedded.url("postgres")


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str = "chatdb_bench") -> Iterator[str]:
    """Yield the URL of a new empty database on the server; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    execute_autocommit(admin_url, f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield with_database(admin_url, name)
    finally:
        execute_autocommit(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def copy_database(admin_url: str, source_url: str, prefix: str = "chatdb_bench") -> str:
    """A new database cloned from ``source_url``'s (file copy: fast); the caller drops it."""
    source = psycopg2.extensions.parse_dsn(source_url)["dbname"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    execute_autocommit(
        admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{source}" STRATEGY FILE_COPY'
    )
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    execute_autocommit(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
