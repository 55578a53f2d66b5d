"""`--sql` prints what would run, changes nothing, and psql running it equals `chatdb migrate`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatdb.db.embedded import EmbeddedServer
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import migrations_with, one_line_error, reachable_dir, state

NAMES = loader.names(MIGRATIONS)
TRANSACTION_TIMEOUT = "FROM pg_settings WHERE name = 'transaction_timeout';"
LOCAL_SETTINGS = [
    "SET LOCAL lock_timeout = '5000ms';",
    "SET LOCAL statement_timeout = 0;",
    f"SELECT set_config(name, '0', true) {TRANSACTION_TIMEOUT}",
]
SESSION_SETTINGS = [
    "SET lock_timeout = '5000ms';",
    "SET statement_timeout = 0;",
    f"SELECT set_config(name, '0', false) {TRANSACTION_TIMEOUT}",
]


@pytest.fixture(scope="module")
def psql() -> Iterator[Path]:
    """The embedded distribution's psql (the same client on every machine)."""
    home = reachable_dir("chatdb-psql-")
    try:
        yield EmbeddedServer(home).tool("psql")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def printed(url: str, *args: str) -> str:
    before = state(url)
    result = run_cli(*args, "--sql", "--database", url)
    assert result.returncode == 0, result.stderr
    assert state(url) == before, "--sql changed the database"
    return result.stdout


def through_psql(psql: Path, url: str, script: str) -> None:
    subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=script,
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )


def migrate(url: str, *args: str) -> None:
    result = run_cli("migrate", *args, "--database", url)
    assert result.returncode == 0, result.stderr


def test_the_baseline_on_an_empty_database(new_database, psql):
    printed_db, migrated_db = new_database(), new_database()
    script = printed(printed_db, "migrate", "--to", "001_baseline")
    assert script.splitlines()[0] == "BEGIN;"  # creating the history table
    assert script.splitlines()[1].startswith("SELECT pg_advisory_xact_lock(")
    through_psql(psql, printed_db, script)
    migrate(migrated_db, "--to", "001_baseline")
    assert state(printed_db) == state(migrated_db)


def test_the_whole_chain_on_an_empty_database(new_database, psql):
    printed_db, migrated_db = new_database(), new_database()
    through_psql(psql, printed_db, printed(printed_db, "migrate"))
    migrate(migrated_db)
    assert state(printed_db) == state(migrated_db)
    assert [name for name, _ in state(printed_db)[1]] == NAMES


def test_pending_migrations_after_the_baseline(new_database, psql):
    printed_db, migrated_db = new_database(), new_database()
    for url in (printed_db, migrated_db):
        migrate(url, "--to", "001_baseline")
    script = printed(printed_db, "migrate")
    through_psql(psql, printed_db, script)
    migrate(migrated_db)
    assert state(printed_db) == state(migrated_db)
    assert [name for name, _ in state(printed_db)[1]] == NAMES


def test_transaction_boundaries(db_url):
    """Atomic migrations in BEGIN/COMMIT with their history row; others without BEGIN."""
    migrate(db_url, "--to", "001_baseline")
    script = printed(db_url, "migrate")
    blocks = ("\n" + script).split("\n-- applying ")[1:]
    assert [block.split("\n", 1)[0].split(" ")[0] for block in blocks] == NAMES[1:]
    for name, block in zip(NAMES[1:], blocks, strict=True):
        lines = block.splitlines()[1:]
        record = "INSERT INTO migratehistory (name, migrated_at, checksum, adopted_from) VALUES "
        assert any(line.startswith(f"{record}('{name}', now(), '") for line in lines), name
        opening = ["BEGIN;", *LOCAL_SETTINGS]
        if loader.load(MIGRATIONS, name).atomic:
            assert lines[: len(opening)] == opening, name
            assert lines[-1] == "COMMIT;"
        else:  # plain statements in transactions, session settings around the others
            session = SESSION_SETTINGS
            assert lines[: len(opening)] == opening or lines[: len(session)] == session, name
            assert lines.count(session[0]) == lines.count("RESET lock_timeout;"), name
            resets = f"SELECT set_config(name, reset_val, false) {TRANSACTION_TIMEOUT}"
            assert lines.count(session[-1]) == lines.count(resets), name
            assert lines[-len(opening) - 2 :] == [*opening, lines[-2], "COMMIT;"]
            assert lines[-2].startswith(record)


def test_rollback_sql_matches_rollback(new_database, psql):
    printed_db, rolled_db = new_database(), new_database()
    for url in (printed_db, rolled_db):
        migrate(url)
    count = str(len(NAMES) - 1)  # everything but the baseline: no data-loss refusal
    script = printed(printed_db, "rollback", "--count", count)
    assert f"DELETE FROM migratehistory WHERE name = '{NAMES[-1]}';" in script
    through_psql(psql, printed_db, script)
    result = run_cli("rollback", "--count", count, "--database", rolled_db)
    assert result.returncode == 0, result.stderr
    assert state(printed_db) == state(rolled_db)


def test_rollback_sql_refuses_like_rollback(db_url):
    migrate(db_url, "--to", "001_baseline")
    line = one_line_error(run_cli("rollback", "--sql", "--database", db_url), db_url)
    assert "001_baseline is the first migration" in line
    script = printed(db_url, "rollback", "--yes")
    assert "DROP TABLE complexity_estimation" in script


def test_a_python_step_that_cannot_print_its_sql_is_refused_by_name(db_url, tmp_path):
    source = (
        "def migrate(migrator, database, *, fake=False):\n"
        "    migrator.run(print, 'side effect')\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n    pass\n"
    )
    directory = migrations_with(tmp_path / "migrations", {"900_python": source})
    migrate(db_url, "--directory", str(directory), "--to", NAMES[-1])
    result = run_cli("migrate", "--sql", "--directory", str(directory), "--database", db_url)
    line = one_line_error(result, db_url)
    assert "cannot print the SQL of migration step" in line
    assert "sql(database, in_transaction)" in line


def test_every_migration_on_an_empty_database(new_database, psql):
    """The whole chain from nothing prints, changing nothing, and applies through psql."""
    printed_db, migrated_db = new_database(), new_database()
    before = state(printed_db)
    result = run_cli("migrate", "--sql", "--database", printed_db)
    assert state(printed_db) == before
    assert result.returncode == 0, result.stderr
    through_psql(psql, printed_db, result.stdout)
    migrate(migrated_db)
    assert state(printed_db) == state(migrated_db)
