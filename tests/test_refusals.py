"""Each refusal: one `error:` line, non-zero exit, no traceback, masked password, no change."""

from __future__ import annotations

import json
import os
import subprocess

import psycopg2
import pytest

from chatdb.db.connect import make_database
from chatdb.errors import LockNotObtained
from chatdb.migrate import loader
from chatdb.migrate.executor import Runner
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import (
    applied_names,
    chatdb_command,
    execute,
    migrations_with,
    no_wait,
    one_line_error,
    sql_migration,
    state,
)

THREAD = (
    "INSERT INTO threads (thread_id, title, creation_date, update_date, user_id) "
    "VALUES (gen_random_uuid(), 't', now(), now(), gen_random_uuid())"
)


def refused(url: str, *args: str) -> str:
    """Run a command that must refuse; check the database did not change; return the line."""
    before = state(url)
    line = one_line_error(run_cli(*args, "--database", url), url)
    assert state(url) == before
    return line


def test_default_transaction_read_only_is_refused_before_anything(db_url):
    database = make_database(db_url).database
    execute(db_url, f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    line = refused(db_url, "migrate")
    assert "read-only (default_transaction_read_only is on)" in line
    assert "nothing was tried" in line
    assert refused(db_url, "rollback") == line


def test_rollback_of_the_baseline_needs_yes_even_when_empty(db_url):
    assert run_cli("migrate", "--to", "001_baseline", "--database", db_url).returncode == 0
    line = refused(db_url, "rollback")
    assert "001_baseline is the first migration: it drops the whole schema" in line
    assert "--yes" in line and "hold data" not in line
    done = run_cli("rollback", "--yes", "--database", db_url)
    assert done.returncode == 0, done.stderr
    assert applied_names(db_url) == []


def test_rollback_of_the_baseline_with_rows_names_the_tables(db_url):
    assert run_cli("migrate", "--database", db_url).returncode == 0
    execute(db_url, THREAD)
    count = str(len(applied_names(db_url)))
    line = refused(db_url, "rollback", "--count", count)
    assert "table threads" in line and "hold data" in line
    assert "table messages" not in line  # empty tables are named only as part of the schema


def test_rollback_dropping_a_column_with_values_needs_yes(db_url, new_database, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_probe_column": sql_migration(
                "ALTER TABLE threads ADD COLUMN probe text",
                "ALTER TABLE threads DROP COLUMN probe",
            ),
            "901_probe_table": sql_migration("CREATE TABLE probe (id int)", "DROP TABLE probe"),
        },
        snapshot_url=new_database(),
    )
    d = ("--directory", str(directory))
    assert run_cli("migrate", *d, "--database", db_url).returncode == 0
    execute(db_url, THREAD, "INSERT INTO probe VALUES (1)")

    # An empty table can go; a column that is NULL everywhere too.
    execute(db_url, "DELETE FROM probe")
    assert run_cli("rollback", *d, "--database", db_url).returncode == 0
    assert run_cli("migrate", *d, "--database", db_url).returncode == 0
    execute(db_url, "INSERT INTO probe VALUES (1)", "UPDATE threads SET probe = 'kept'")

    line = refused(db_url, "rollback", *d, "--count", "2")
    assert "901_probe_table would drop table probe" in line
    assert "900_probe_column would drop column threads.probe" in line
    line = refused(db_url, "rollback", *d, "--to", "001_baseline")
    assert "table probe" in line
    assert (
        run_cli("rollback", *d, "--to", "001_baseline", "--yes", "--database", db_url).returncode
        == 0
    )
    assert applied_names(db_url) == ["001_baseline"]


@pytest.mark.parametrize(
    "args,expected",
    [
        (("--count", "99"), "cannot roll back 99 migration(s): only "),
        (("--to", "042_nothing"), "--to 042_nothing: unknown migration; applied: 001_baseline"),
        (("--count", "1", "--to", "001_baseline"), "give either --count or --to, not both"),
        (("--count", "0"), "'--count': 0 is not in the range 1<=x<=10000"),
    ],
)
def test_rollback_arguments_out_of_range(db_url, args, expected):
    assert run_cli("migrate", "--database", db_url).returncode == 0
    assert expected in refused(db_url, "rollback", *args)


def test_rollback_to_a_migration_that_is_not_applied(db_url):
    assert run_cli("migrate", "--to", "001_baseline", "--database", db_url).returncode == 0
    pending = json.loads(run_cli("status", "--json", "--database", db_url).stdout)["pending"]
    if not pending:
        pytest.skip("the project has a single migration")
    line = refused(db_url, "rollback", "--to", pending[-1])
    assert f"--to {pending[-1]}: that migration is not applied" in line


def test_a_migration_that_raises_half_way_names_itself_and_the_cause(db_url, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_breaks": sql_migration(
                "CREATE TABLE half (id int); INSERT INTO half VALUES (1); SELECT 1 / 0",
                "DROP TABLE half",
            )
        },
    )
    d = ("--directory", str(directory))
    assert run_cli("migrate", *d, "--to", "001_baseline", "--database", db_url).returncode == 0
    line = one_line_error(run_cli("migrate", *d, "--database", db_url), db_url)
    assert "applying 900_breaks failed: division by zero" in line
    assert "the database is as it was before it" in line
    # Everything before the broken migration was applied and stays; the broken one left nothing.
    after_schema, after_history = state(db_url)
    assert "half" not in after_schema
    assert [name for name, _ in after_history] == loader.names(MIGRATIONS)


def test_lock_timeout_expiry_says_who_held_the_lock(db_url, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations",
        {
            "900_needs_lock": sql_migration(
                "ALTER TABLE threads ADD COLUMN probe int", "ALTER TABLE threads DROP COLUMN probe"
            )
        },
    )
    d = ("--directory", str(directory))
    last = _last_project_migration(directory)
    assert run_cli("migrate", *d, "--to", last, "--database", db_url).returncode == 0
    holder = psycopg2.connect(db_url, application_name="long reporting job")
    before = state(db_url)
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE threads IN ACCESS SHARE MODE")
        runner = Runner(db_url, directory, lock_timeout=0.2, backoff=no_wait)
        with runner, pytest.raises(LockNotObtained) as raised:
            runner.migrate()
    finally:
        holder.close()
    assert state(db_url) == before
    line = str(raised.value)
    assert "applying 900_needs_lock: gave up after 3 attempts of 0.2s" in line
    assert "idle in transaction" in line and "LOCK TABLE threads" in line
    assert "holding threads" in line
    assert run_cli("migrate", *d, "--database", db_url).returncode == 0


def _last_project_migration(directory) -> str:
    return sorted(p.stem for p in directory.glob("0*.py"))[-1]


@pytest.mark.parametrize("problem", ["missing", "empty", "broken"])
def test_bad_migrations_directory(db_url, tmp_path, problem):
    directory = tmp_path / "migrations"
    if problem != "missing":
        directory.mkdir()
    if problem == "broken":
        (directory / "001_broken.py").write_text("def migrate(:\n")
    line = refused(db_url, "migrate", "--directory", str(directory))
    expected = {
        "missing": "does not exist",
        "empty": "holds no migrations",
        "broken": "does not import: SyntaxError",
    }[problem]
    assert expected in line


def test_a_migration_name_cannot_smuggle_sql_into_the_printed_script(db_url, tmp_path):
    directory = migrations_with(tmp_path / "migrations", {})
    (directory / "900_x\nDROP TABLE threads;--.py").write_text(
        sql_migration("SELECT 1", "SELECT 1")
    )
    result = run_cli("migrate", "--sql", "--directory", str(directory), "--database", db_url)
    line = one_line_error(result, db_url)
    assert "may hold only digits, lower-case letters and underscores" in line
    assert "DROP TABLE threads" not in result.stdout


def test_a_directory_that_is_a_file_says_so(db_url, tmp_path):
    path = tmp_path / "migrations.py"
    path.write_text("")
    line = refused(db_url, "migrate", "--directory", str(path))
    assert f"migrations directory {path} is a file, not a directory" in line


def test_a_fifo_named_like_a_migration_is_refused_not_waited_on(db_url, tmp_path):
    directory = migrations_with(tmp_path / "migrations", {})
    os.mkfifo(directory / "900_pipe.py")
    try:
        result = subprocess.run(
            chatdb_command("migrate", "--directory", str(directory), "--database", db_url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("migrate blocked reading the FIFO")
    assert "900_pipe.py is not a regular file" in one_line_error(result, db_url)
    assert applied_names(db_url) == []
