"""Throwaway PostgreSQL servers for test suites and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from chatdb.db.embedded import DATABASE_NAME, SUPERUSER, EmbeddedServer


class PasswordServer(EmbeddedServer):
    """An embedded server whose superuser needs ``password`` (SCRAM), even on the socket.

    chatdb's own suite uses it so that authentication failures are real.
    """

    def __init__(self, home: Path | str, password: str):
        super().__init__(home)
        self.password = password

    def url(self, database: str = DATABASE_NAME) -> str:
        return (
            super()
            .url(database)
            .replace(f"//{SUPERUSER}@", f"//{SUPERUSER}:{quote(self.password, safe='')}@", 1)
        )

    @contextlib.contextmanager
    def _initdb_auth(self) -> Iterator[list[str]]:
        # initdb runs as the server's user, which must be able to read the file.
        password_file = self.home / ".initdb-password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o644)
        try:
            yield ["--auth=scram-sha-256", f"--pwfile={password_file}"]
        finally:
            password_file.unlink(missing_ok=True)


@contextlib.contextmanager
def temporary_server(
    prefix: str = "chatdb-", *, password: str | None = None
) -> Iterator[EmbeddedServer]:
    """A throwaway server in a new temporary directory, removed afterwards.

    For test suites and benchmarks, which must never touch a developer's own
    embedded database; with ``password``, a :class:`PasswordServer`.
    """
    home = tempfile.mkdtemp(prefix=prefix)
    server = PasswordServer(home, password) if password else EmbeddedServer(home)
    try:
        yield server.ensure_running()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
