"""A PostgreSQL server and scratch databases for benchmarks.

Benchmarks never touch a developer's data: they start a throwaway embedded
server in a temporary directory (stopped and removed afterwards), or use the
server named by ``--server URL`` (an admin URL whose user may create
databases), and work in databases they create and drop themselves.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from bench.vocabulary import english
from chatdb.db.urls import connect_params, with_database
from chatdb.legacy import handover
from chatdb.migrate import history
from chatdb.migrate.executor import Runner
from chatdb.testing import dataset
from chatdb.testing.admin import create_database, drop_database
from chatdb.testing.servers import temporary_server

__all__ = [
    "add_server_option",
    "copy_database",
    "drop_database",
    "head_copy",
    "legacy_database",
    "scratch_database",
    "server",
]


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
    url = create_database(admin_url, prefix)
    try:
        yield url
    finally:
        drop_database(admin_url, url)


def copy_database(admin_url: str, source_url: str, prefix: str = "chatdb_bench") -> str:
    """A new database cloned from ``source_url``'s (file copy: fast); the caller drops it."""
    source = connect_params(source_url)["dbname"]
    return create_database(admin_url, prefix, template=source, file_copy=True)


def head_copy(admin_url: str, legacy_url: str) -> str:
    """A copy of the legacy database ``legacy_url`` handed over to head; the caller drops it.

    A database ``chatdb.testing.dataset`` built carries chatdb's baseline
    history; without it, it is a legacy database, as in the field.
    """
    url = copy_database(admin_url, legacy_url)
    with Runner(url) as runner:
        history.drop(runner.database)
        handover.handover(runner)
    return url


def legacy_database(admin_url: str, scratch_url: str, name: str | None, messages: int) -> str:
    """The URL of the legacy database ``name`` on the server, reused as it is, or else of one
    of ``messages`` messages of English text built into the empty ``scratch_url``."""
    if name:
        return with_database(admin_url, name)
    dataset.build(scratch_url, messages, messages // 10, vocabulary=english())
    return scratch_url
