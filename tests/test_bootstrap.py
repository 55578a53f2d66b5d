"""A database without tables is migrated in one transaction; any other, one migration at a time."""

from __future__ import annotations

from chatdb.db.connect import make_database
from chatdb.migrate import loader
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import (
    KILL_THE_LOCK,
    applied_names,
    execute,
    migrations_with,
    one_line_error,
    sql_migration,
    state,
)

NO_TABLES = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'i')"
)


def value(url: str, sql: str) -> object:
    db = make_database(url)
    with db.connection_context():
        return db.execute_sql(sql).fetchone()[0]


def transactions(url: str) -> object:
    """How many transactions wrote the history rows (each row keeps its writer's xmin)."""
    return value(url, "SELECT count(DISTINCT xmin::text) FROM migratehistory")


def migrate(url: str, *args: str) -> str:
    result = run_cli("migrate", *args, "--database", url)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_a_new_database_gets_the_whole_plan_in_one_transaction(new_database):
    together, stepwise = new_database(), new_database()
    migrate(together)
    migrate(stepwise, "--to", "001_baseline")
    migrate(stepwise)
    assert transactions(together) == 1
    assert transactions(stepwise) == len(loader.names(MIGRATIONS))
    assert state(together) == state(stepwise)
    check = run_cli("check", "--database", together)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_target_bounds_the_one_transaction(db_url):
    migrate(db_url, "--to", "002_database_defaults")
    assert applied_names(db_url) == ["001_baseline", "002_database_defaults"]
    assert transactions(db_url) == 1


def test_a_database_with_a_table_is_migrated_one_migration_at_a_time(db_url):
    execute(db_url, "CREATE TABLE someone_elses (id int)")
    migrate(db_url)
    assert transactions(db_url) == len(loader.names(MIGRATIONS))


def test_a_step_that_needs_no_transaction_falls_back_to_one_at_a_time(db_url, tmp_path):
    extra = sql_migration(
        "CREATE INDEX CONCURRENTLY ix_threads_title ON threads (title)",
        "DROP INDEX CONCURRENTLY ix_threads_title",
        atomic=False,
    )
    directory = migrations_with(tmp_path / "migrations", {"900_raw_concurrent_index": extra})
    stderr = migrate(db_url, "--directory", str(directory))
    assert (
        "900_raw_concurrent_index cannot run in one transaction with the others (CREATE INDEX"
        " CONCURRENTLY cannot run inside a transaction block); rolled back, applying the"
        " migrations one at a time"
    ) in stderr
    names = loader.names(directory)
    assert applied_names(db_url) == names
    assert transactions(db_url) == len(names)
    index = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_threads_title'::regclass"
    assert value(db_url, index) is True


def test_a_failing_migration_leaves_a_new_database_as_it_was(db_url, tmp_path):
    breaks = sql_migration("CREATE TABLE half (id int); SELECT 1 / 0", "DROP TABLE half")
    directory = migrations_with(tmp_path / "migrations", {"900_breaks": breaks})
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    line = one_line_error(result, db_url)
    assert "applying 900_breaks failed: division by zero (a database without tables is" in line
    assert "it was rolled back, the database is as it was" in line
    assert value(db_url, NO_TABLES) == 0  # not even the history table


def test_a_lock_lost_during_the_one_transaction_commits_nothing(db_url, tmp_path):
    directory = migrations_with(
        tmp_path / "migrations", {"900_kill_the_lock": sql_migration(KILL_THE_LOCK, "SELECT 1")}
    )
    result = run_cli("migrate", "--directory", str(directory), "--database", db_url)
    assert "lost the migration lock" in one_line_error(result, db_url)
    assert value(db_url, NO_TABLES) == 0
