"""Real PostgreSQL for every test, through chatdb's own pytest plugin (chatdb.testing.plugin).

The plugin starts a throwaway embedded server (here requiring a password),
unless ``CHATDB_TEST_DATABASE_URL`` names an external server to use instead:
a URL whose user may create databases. Every test that asks for one gets a
database of its own, dropped afterwards. The names below are the suite's
older names for the plugin's fixtures.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import peewee as pw
import psycopg2
import pytest

from chatdb.db.connect import execute_autocommit, make_database
from chatdb.migrate import loader
from chatdb.migrate.location import migrations_dir
from chatdb.schema import models

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = migrations_dir()  # the code under test's own, as every command uses
HEAD = loader.names(MIGRATIONS)[-1]  # the latest migration
NEXT = f"{int(HEAD[:3]) + 1:03d}"  # the number the next migration gets
# pg_dump --schema-only of databases the legacy backend's own Alembic chain
# built, one per revision, oldest first; the last is the legacy head.
LEGACY_DUMPS = sorted((Path(__file__).resolve().parent / "legacy_dumps").glob("*.sql"))
# The suite's own server checks passwords, so authentication failures are real.
TEST_PASSWORD = "chatdb-test-pw"


@pytest.fixture(autouse=True)
def _forget_bound_database() -> Iterator[None]:
    """A test's ``models.bind(database)`` (the low-level hook) ends with the test."""
    yield
    models.bind(None)


@pytest.fixture(scope="session")
def chatdb_server_password() -> str:
    return TEST_PASSWORD


@pytest.fixture(scope="session")
def server_url(chatdb_server_url: str) -> str:
    """Admin URL of the PostgreSQL server the suite uses."""
    return chatdb_server_url


@pytest.fixture
def new_database(chatdb_new_database: Callable[..., str]) -> Callable[..., str]:
    """A factory of fresh, empty databases; all are dropped after the test."""
    return chatdb_new_database


@pytest.fixture
def db_url(new_database) -> str:
    """URL of an empty database of this test's own."""
    return new_database()


@pytest.fixture
def database(db_url: str) -> Iterator[pw.PostgresqlDatabase]:
    db = make_database(db_url)
    db.connect()
    yield db
    db.close()


@pytest.fixture(scope="session")
def tools(server_url: str) -> Iterator[Callable[[str], Path]]:
    """pg_dump, pg_restore and psql of the test server's own major version.

    A dump from a newer pg_dump carries settings an older server refuses
    (PostgreSQL 18's ``SET transaction_timeout`` on 15), so the tools follow
    the server: a system installation of its version, else the embedded
    server's (the suite's own server is that one).
    """
    with psycopg2.connect(server_url) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        major = int(cursor.fetchone()[0]) // 10000
    conn.close()
    system = Path(f"/usr/lib/postgresql/{major}/bin")
    if (system / "pg_restore").exists():
        yield lambda name: system / name
        return
    from chatdb.db.embedded import EmbeddedServer
    from tests.ops_support import reachable_dir

    home = reachable_dir("chatdb-pgtools-")  # as root, a home the server's user can reach
    yield EmbeddedServer(home).tool
    shutil.rmtree(home, ignore_errors=True)


def pg_dump_schema(tools: Callable[[str], Path], url: str) -> str:
    """``pg_dump --schema-only`` of a database, as text.

    pg_dump 18 (and 17.6, 15.14 on) brackets its output with ``\\restrict``
    lines holding a random key; they go, the rest is compared byte for byte.
    """
    result = subprocess.run(
        [str(tools("pg_dump")), "--schema-only", f"--dbname={url}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return re.sub(r"^\\(un)?restrict .*\n", "", result.stdout, flags=re.M)


def load_legacy(url: str, dump: Path = LEGACY_DUMPS[-1]) -> None:
    """Load a real legacy database (by default the legacy head) into an empty database."""
    execute_autocommit(url, dump.read_text())


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path_factory) -> None:
    """No test reads the developer's DATABASE_URL or touches their embedded server."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CHATDB_HOME", str(tmp_path_factory.getbasetemp() / "no-embedded"))


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    program: str = "chatdb",
    in_process: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a console command from the repo root, in this process unless told otherwise.

    ``chatdb`` commands run in-process through the same click entry point
    as the console script (exit status, stdout and stderr captured exactly as
    a user sees them), which keeps the suite fast; ``in_process=False`` (and
    every other program, such as ``pw_migrate``) runs a real subprocess, for
    what only a process shows: the interpreter's start, signals, tracebacks.
    """
    if program == "chatdb" and in_process:
        return _run_in_process(list(args), env or {}, cwd)
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    command = (
        [sys.executable, "-m", "chatdb"]
        if program == "chatdb"
        else [str(Path(sys.executable).parent / program)]
    )
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **env} if env else base,
        timeout=300,
        check=False,
    )


def _run_in_process(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    from chatdb.cli.main import cli

    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)
    code: int | str | None = 0
    try:
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                cli.main(args, prog_name="chatdb", standalone_mode=True)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        err.write(code + "\n")
        code = 1
    return subprocess.CompletedProcess(["chatdb", *args], code or 0, out.getvalue(), err.getvalue())
