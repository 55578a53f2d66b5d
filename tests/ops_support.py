"""Helpers for the safe-operations tests: database state, one-line errors, test migrations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from chatdb import catalog
from chatdb.db.connect import make_database
from chatdb.db.embedded import EmbeddedServer
from chatdb.migrate import history, write_snapshots
from chatdb.migrate.lock import LOCK_APPLICATION_NAME
from tests.conftest import MIGRATIONS

# A migration step ending the session that holds the migrator lock (waits up to 10 s for it).
KILL_THE_LOCK = (
    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
    f"WHERE application_name = '{LOCK_APPLICATION_NAME}' AND datname = current_database()"
)


def state(url: str) -> tuple[str, list[tuple[str, str | None]]]:
    """The whole schema (as JSON) and the history (name, checksum): 'the database as it was'."""
    db = make_database(url)
    with db.connection_context():
        schema = catalog.read_catalog(db).to_json()
        rows = [(a.name, a.checksum) for a in history.applied(db)]
    return schema, rows


def applied_names(url: str) -> list[str]:
    return [name for name, _ in state(url)[1]]


def execute(url: str, *statements: str) -> None:
    db = make_database(url)
    with db.connection_context():
        for statement in statements:
            db.execute_sql(statement)


def one_line_error(result: subprocess.CompletedProcess[str], url: str | None = None) -> str:
    """The refusal rule: non-zero exit, exactly one `error:` line, no traceback, no password."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    password = urlsplit(url).password if url else None
    if password:
        assert password not in result.stdout + result.stderr
    return lines[0]


def migrations_with(
    directory: Path, extra: dict[str, str], snapshot_url: str | None = None
) -> Path:
    """A copy of the project's migrations plus ``extra`` files (name -> source).

    With ``snapshot_url`` (an empty database), the copy's schema snapshots are
    regenerated so the extra migrations have theirs too.
    """
    shutil.copytree(MIGRATIONS, directory)
    (directory / "conf.py").unlink()
    for name, source in extra.items():
        (directory / f"{name}.py").write_text(source)
    if snapshot_url:
        write_snapshots.write_all(snapshot_url, directory)
    return directory


def sql_migration(upgrade: str, downgrade: str, *, atomic: bool = True) -> str:
    """Source of a migration running raw SQL both ways."""
    return (
        f"atomic = {atomic}\n\n\n"
        f"def migrate(migrator, database, *, fake=False):\n    migrator.sql({upgrade!r})\n\n\n"
        f"def rollback(migrator, database, *, fake=False):\n    migrator.sql({downgrade!r})\n"
    )


def no_wait(attempt: int) -> float:
    """Back-off between lock retries (``Runner(backoff=...)``): none, tests never sleep."""
    return 0.0


def chatdb_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "chatdb", *args]


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, **extra}


def reachable_dir(prefix: str) -> Path:
    """A short temporary directory the embedded server's system user can use (as root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def server_user() -> str | None:
    """The unprivileged user servers started by tests run as, when the tests run as root."""
    if os.geteuid() != 0:
        return None
    probe = reachable_dir("chatdb-user-")
    try:
        return EmbeddedServer(probe).service_user
    finally:
        shutil.rmtree(probe, ignore_errors=True)
