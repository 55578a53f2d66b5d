"""Settings the database imposes, and interrupted steps: chatdb's steps still run, and
errors and resume commands stay true."""

from __future__ import annotations

import pytest

from chatdb.db.connect import make_database
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, load_legacy, run_cli
from tests.ops_support import applied_names, execute, migrations_with, one_line_error, sql_migration

SLOW = "SELECT pg_sleep(0.8)"


@pytest.mark.parametrize("start", ["new database", "at head"])
@pytest.mark.parametrize("setting", ["statement_timeout", "transaction_timeout"])
def test_a_database_timeout_does_not_fail_migrations(
    db_url, new_database, tmp_path, setting, start
):
    """Slow steps in one transaction (a new database) and one at a time, up and down."""
    db = make_database(db_url)
    with db.connection_context():
        version = int(db.execute_sql("SHOW server_version_num").fetchone()[0])
    if setting == "transaction_timeout" and version < 170000:
        pytest.skip("transaction_timeout exists from PostgreSQL 17 on")
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_slow_atomic": sql_migration(SLOW, SLOW),
            "901_slow_outside": sql_migration(SLOW, SLOW, atomic=False),
        },
        snapshot_url=new_database(),
    )
    d = ("--directory", str(directory), "--database", db_url)
    if start == "at head":
        assert run_cli("migrate", "--to", loader.names(MIGRATIONS)[-1], *d).returncode == 0
    execute(db_url, f"ALTER DATABASE \"{db.database}\" SET {setting} = '400ms'")
    result = run_cli("migrate", *d)
    assert result.returncode == 0, result.stderr
    assert applied_names(db_url)[-2:] == ["900_slow_atomic", "901_slow_outside"]
    result = run_cli("rollback", "--count", "2", *d)
    assert result.returncode == 0, result.stderr


def test_a_dead_connection_reports_its_cause_not_the_cleanup(db_url, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_dies": sql_migration(
                "SELECT pg_terminate_backend(pg_backend_pid())", "SELECT 1", atomic=False
            )
        },
    )
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    line = one_line_error(result, db_url)
    assert "applying 900_dies failed: server closed the connection unexpectedly" in line
    assert "connection already closed" not in line


def test_a_rollback_that_stops_half_way_names_the_command_that_finishes_it(
    db_url, new_database, tmp_path
):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_fails_back": sql_migration("SELECT 1", "SELECT current_setting('chatdb.probe')"),
            "901_fine": sql_migration("SELECT 1", "SELECT 1"),
        },
        snapshot_url=new_database(),
    )
    d = ("--directory", str(directory), "--database", db_url)
    assert run_cli("migrate", *d).returncode == 0
    before = applied_names(db_url)[-3]
    line = one_line_error(run_cli("rollback", "--count", "2", *d), db_url)
    assert (
        'rolling back 900_fails_back failed: unrecognized configuration parameter "chatdb.probe"'
        in line
    )
    assert f"rolled back before it: 901_fine; `chatdb rollback --to {before}` finishes" in line
    assert "again" not in line
    execute(db_url, f"ALTER DATABASE \"{make_database(db_url).database}\" SET chatdb.probe = 'on'")
    assert run_cli("rollback", "--to", before, *d).returncode == 0  # the command it named
    assert applied_names(db_url)[-1] == before


def test_a_statement_that_cannot_run_in_a_transaction_still_runs(db_url, tmp_path):
    """Plain steps of an atomic = False migration get a transaction; CONCURRENTLY falls back."""
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_concurrent_index": sql_migration(
                "CREATE INDEX CONCURRENTLY ix_probe ON threads (title)",
                "DROP INDEX CONCURRENTLY ix_probe",
                atomic=False,
            )
        },
    )
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    assert result.returncode == 0, result.stderr
    db = make_database(db_url)
    with db.connection_context():
        valid = db.execute_sql(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_probe'::regclass"
        ).fetchone()
    assert valid == (True,)


def test_a_database_statement_timeout_does_not_fail_the_handover(db_url, new_database, tmp_path):
    """The handover brings a legacy database to head through steps slower than the timeout."""
    load_legacy(db_url)
    database = make_database(db_url).database
    execute(db_url, f"ALTER DATABASE \"{database}\" SET statement_timeout = '400ms'")
    directory = migrations_with(
        tmp_path / "migrations",
        {"900_slow_atomic": sql_migration(SLOW, SLOW)},
        snapshot_url=new_database(),
    )
    result = run_cli("handover", "--directory", str(directory), "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert applied_names(db_url)[-1] == "900_slow_atomic"
