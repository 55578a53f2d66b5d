"""One migrator at a time: eight at once (direct and through PgBouncer), plain pw_migrate
racing, and a migrator killed with SIGKILL half-way through a migration."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from chatdb.db.connect import make_database
from chatdb.db.urls import connect_params
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, REPO, run_cli
from tests.ops_support import (
    KILL_THE_LOCK,
    applied_names,
    chatdb_command,
    clean_env,
    execute,
    migrations_with,
    one_line_error,
    reachable_dir,
    server_user,
    sql_migration,
    state,
)

PARALLEL = 8


def _start_all(commands: list[list[str]], env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Start every command at once; wait for all; (returncode, stdout, stderr) each."""
    processes = [
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=240)
        results.append((process.returncode, out, err))
    return results


def _history_rows(url: str) -> list[str]:
    db = make_database(url)
    with db.connection_context():
        return [row[0] for row in db.execute_sql("SELECT name FROM migratehistory ORDER BY id")]


def _eight_chatdb_migrates(url: str) -> None:
    results = _start_all([chatdb_command("migrate", "--database", url)] * PARALLEL, clean_env())
    for code, _out, err in results:
        assert code == 0, err
    applied = [line for _code, out, _err in results for line in out.splitlines()]
    names = loader.names(MIGRATIONS)
    # Each migration was applied by exactly one process, and recorded exactly once.
    reported = [n for line in applied for n in line.split(": ", 1)[-1].split(", ") if n in names]
    assert sorted(reported) == names
    assert _history_rows(url) == names


def test_eight_migrators_at_once_apply_each_migration_once(db_url):
    _eight_chatdb_migrates(db_url)


# -- through PgBouncer in transaction pooling mode -----------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pgbouncer(server_url: str) -> Iterator[str]:
    """A PgBouncer (pool_mode=transaction) on loopback in front of the test server.

    Yields a URL template: format it with a database name.
    """
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        pytest.fail("pgbouncer is not installed (.ci/run installs the Debian package)")
    backend = connect_params(server_url)
    port = _free_port()
    home = reachable_dir("chatdb-pgbouncer-")
    backend_conn = " ".join(
        f"{key}={value}" for key, value in backend.items() if key != "dbname" and value
    )
    (home / "pgbouncer.ini").write_text(
        f"""[databases]
* = {backend_conn}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 20
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {home}/pgbouncer.log
pidfile = {home}/pgbouncer.pid
"""
    )
    user = server_user()
    command = [binary, "-q", str(home / "pgbouncer.ini")]
    if user is not None:
        shutil.chown(home, user)
        command[1:1] = ["-u", user]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = home / "pgbouncer.log"
                    detail = log.read_text() if log.exists() else process.stderr.read()
                    pytest.fail(f"pgbouncer did not start: {detail}")
                time.sleep(0.1)
        yield f"postgresql://chatdb@127.0.0.1:{port}/{{}}"
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(home, ignore_errors=True)


def test_eight_migrators_at_once_through_pgbouncer_transaction_pooling(db_url, pgbouncer):
    url = pgbouncer.format(make_database(db_url).database)
    assert run_cli("status", "--database", url).returncode == 0
    _eight_chatdb_migrates(url)
    assert _history_rows(db_url) == loader.names(MIGRATIONS)


# -- plain pw_migrate ---------------------------------------------------------------


def test_plain_pw_migrate_racing_never_records_twice_nor_half_applies(db_url):
    env = clean_env(DATABASE_URL=db_url)
    pw_migrate = str(Path(sys.executable).parent / "pw_migrate")
    results = _start_all([[pw_migrate, "migrate"]] * 4, env)
    winners = [r for r in results if r[0] == 0]
    assert winners, [r[2][-500:] for r in results]
    # Whatever lost the race left nothing half-done: the history is a prefix of the files,
    # without duplicates, and the catalog is the one that prefix produces.
    names = loader.names(MIGRATIONS)
    recorded = _history_rows(db_url)
    assert recorded == names[: len(recorded)]
    check = run_cli("check", "--database", db_url)
    assert check.returncode == 0, check.stdout
    # A re-run finishes the job.
    again = run_cli("migrate", program="pw_migrate", env={"DATABASE_URL": db_url})
    assert again.returncode == 0, again.stderr
    assert _history_rows(db_url) == names


# -- SIGKILL in the middle of a migration -----------------------------------------------

SLOW = """
def migrate(migrator, database, *, fake=False):
    migrator.sql("CREATE TABLE slow_probe (id int)")
    migrator.sql("INSERT INTO slow_probe VALUES (1)")
    migrator.sql(
        "SELECT pg_sleep(coalesce(current_setting('chatdb_test.sleep', true), '0')::float)"
    )


def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP TABLE slow_probe")
"""


def _sleeping(url: str) -> bool:
    db = make_database(url)
    with db.connection_context():
        row = db.execute_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE '%%pg_sleep%%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    return row[0] > 0


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_sigkill_half_way_leaves_the_database_as_before_that_migration(db_url, tmp_path):
    directory = migrations_with(tmp_path / "migrations", {"900_slow": SLOW})
    before_slow = loader.names(MIGRATIONS)[-1]
    d = ("--directory", str(directory))
    assert run_cli("migrate", *d, "--to", before_slow, "--database", db_url).returncode == 0
    before = state(db_url)

    # The server notices the dead client within 100 ms, even mid-statement.
    slow_env = clean_env(
        PGOPTIONS="-c chatdb_test.sleep=120 -c client_connection_check_interval=100"
    )
    process = subprocess.Popen(
        chatdb_command("migrate", *d, "--database", db_url),
        cwd=REPO,
        env=slow_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _sleeping(db_url), "the slow migration to start")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    _wait_for(lambda: not _sleeping(db_url), "the server to end the orphaned transaction")

    assert state(db_url) == before
    result = run_cli("migrate", *d, "--database", db_url)
    assert result.returncode == 0, result.stderr
    assert "900_slow" in result.stdout
    assert applied_names(db_url)[-1] == "900_slow"


def _pool_settings(url: str, clients: int) -> set[tuple[str, str]]:
    """(statement_timeout, lock_timeout) on as many server connections as ``clients`` can pin."""
    conns = [psycopg2.connect(url) for _ in range(clients)]
    try:
        seen = set()
        for (
            conn
        ) in conns:  # each holds its transaction open, so each gets its own server connection
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
                )
                seen.add(cursor.fetchone())
        return seen
    finally:
        for conn in conns:
            conn.close()


def test_imposed_statement_timeout_behind_pgbouncer_is_overridden_without_leaking(
    db_url, new_database, pgbouncer, tmp_path
):
    name = make_database(db_url).database
    execute(db_url, f"ALTER DATABASE \"{name}\" SET statement_timeout = '400ms'")
    slow = "SELECT pg_sleep(0.8)"
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_slow_atomic": sql_migration(slow, slow),
            "901_slow_outside": sql_migration(slow, slow, atomic=False),
        },
        snapshot_url=new_database(),
    )
    url = pgbouncer.format(name)
    result = run_cli("migrate", "--directory", str(directory), "--database", url)
    assert result.returncode == 0, result.stderr
    assert applied_names(db_url)[-2:] == ["900_slow_atomic", "901_slow_outside"]
    assert _pool_settings(url, 20) == {("400ms", "0")}


def test_a_lock_lost_behind_pgbouncer_stops_the_migrator(db_url, pgbouncer, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_kill_the_lock": sql_migration(KILL_THE_LOCK, "SELECT 1", atomic=False),
            "901_later": sql_migration("CREATE TABLE later (id int)", "DROP TABLE later"),
        },
    )
    url = pgbouncer.format(make_database(db_url).database)
    # At head first: on a database without tables the whole plan is one transaction.
    assert run_cli("migrate", "--database", url).returncode == 0
    result = run_cli("migrate", "--directory", str(directory), "--database", url)
    assert "lost the migration lock" in one_line_error(result)
    assert applied_names(db_url)[-1] == loader.names(MIGRATIONS)[-1]
