"""Throwaway PostgreSQL servers for test suites and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from chatdb.db.embedded import EmbeddedServer


@contextlib.contextmanager
def temporary_server(
    prefix: str = "chatdb-", *, password: str | None = None
) -> Iterator[EmbeddedServer]:
    """A throwaway server in a new temporary directory, removed afterwards.

    For the test suite and the benchmarks, which must never touch a
    developer's own embedded database.
    """
    home = tempfile.mkdtemp(prefix=prefix)
    server = EmbeddedServer(home, password=password)
    try:
        yield server.ensure_running()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
