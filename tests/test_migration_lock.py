"""The migrator lock: lost, facing role timeouts, waited for with a bound, taken by pw_migrate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest

from chatdb.db.connect import make_database
from chatdb.errors import LockNotObtained
from chatdb.migrate.executor import Runner
from chatdb.migrate.lock import LOCK_APPLICATION_NAME, MIGRATION_LOCK_KEY
from tests.conftest import run_cli
from tests.ops_support import (
    KILL_THE_LOCK,
    applied_names,
    execute,
    migrations_with,
    one_line_error,
    sql_migration,
    state,
)


def _has_table(url: str, table: str) -> bool:
    db = make_database(url)
    with db.connection_context():
        return db.execute_sql("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


@contextmanager
def _held_elsewhere(url: str) -> Iterator[tuple[int, str]]:
    """Another session holding the migrator lock, as a running migrator does: (pid, client)."""
    conn = psycopg2.connect(url, application_name="stuck deploy")
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s), pg_backend_pid(), "
                "coalesce(host(inet_client_addr()), 'local socket')",
                (MIGRATION_LOCK_KEY,),
            )
            yield cursor.fetchone()[1:]
    finally:
        conn.close()


def test_a_lost_lock_stops_the_migrator_before_its_next_step(db_url, tmp_path):
    steps = (
        "atomic = False\n\n\n"
        "def migrate(migrator, database, *, fake=False):\n"
        f"    migrator.sql({KILL_THE_LOCK!r})\n"
        "    migrator.sql('CREATE TABLE after_the_kill (id int)')\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n"
        "    migrator.sql('DROP TABLE IF EXISTS after_the_kill')\n"
    )
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_kill_the_lock": steps,
            "901_later": sql_migration("CREATE TABLE later (id int)", "DROP TABLE later"),
        },
    )
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    line = one_line_error(result, db_url)
    assert "lost the migration lock (its connection ended" in line
    assert not _has_table(db_url, "after_the_kill") and not _has_table(db_url, "later")
    assert "900_kill_the_lock" not in applied_names(db_url)


def test_role_timeouts_do_not_end_the_lock(db_url, tmp_path):
    database = make_database(db_url).database
    execute(db_url, f'ALTER DATABASE "{database}" SET idle_in_transaction_session_timeout = 200')
    still_held = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_stat_activity "
        f"WHERE application_name = '{LOCK_APPLICATION_NAME}' AND datname = current_database()) "
        "THEN RAISE EXCEPTION 'the lock connection is gone'; END IF; END $$"
    )
    steps = (
        "atomic = False\n\n\n"
        "def migrate(migrator, database, *, fake=False):\n"
        "    migrator.sql('SELECT pg_sleep(1)')\n"
        f"    migrator.sql({still_held!r})\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n"
        "    pass\n"
    )
    directory = migrations_with(tmp_path / "migrations", {"900_idle_lock": steps})
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert applied_names(db_url)[-1] == "900_idle_lock"


def test_waiting_for_the_lock_is_bounded_and_names_the_holder(db_url):
    before = state(db_url)
    with _held_elsewhere(db_url) as (pid, client):
        line = one_line_error(
            run_cli("migrate", "--lock-wait", "0.5", "--database", db_url), db_url
        )
        with Runner(db_url, lock_wait=0) as runner, pytest.raises(LockNotObtained):
            runner.migrate()
    assert "another migrator holds the migration lock" in line
    assert f"pid {pid}, application_name 'stuck deploy', client {client}, holding it since" in line
    assert "waited 0.5s; end that session if it is stuck" in line
    assert line.endswith("; or wait longer with --lock-wait SECONDS")
    assert state(db_url) == before


def test_plain_pw_migrate_takes_the_same_lock(db_url):
    env = {"DATABASE_URL": db_url, "CHATDB_LOCK_WAIT": "0.5"}
    with _held_elsewhere(db_url) as (pid, _client):
        result = run_cli("migrate", program="pw_migrate", env=env)
    line = one_line_error(result, db_url)
    assert f"pid {pid}" in line and "wait longer with CHATDB_LOCK_WAIT=SECONDS" in line
    assert not _has_table(db_url, "threads")
    assert run_cli("migrate", program="pw_migrate", env=env).returncode == 0
    assert _has_table(db_url, "threads")
