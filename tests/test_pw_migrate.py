"""Unmodified ``pw_migrate`` works from the repo root through migrations/conf.py."""

from __future__ import annotations

from chatdb.db.connect import make_database
from chatdb.migrate import history, loader
from tests.conftest import MIGRATIONS, run_cli
from tests.ops_support import execute, one_line_error, state
from tests.test_refusals import THREAD


def _applied(url: str) -> list[str]:
    db = make_database(url)
    with db.connection_context():
        return [a.name for a in history.applied(db)]


def _has_table(url: str, table: str) -> bool:
    db = make_database(url)
    with db.connection_context():
        return db.execute_sql("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def test_migrate_list_rollback_through_database_url(db_url):
    env = {"DATABASE_URL": db_url}
    result = run_cli("migrate", program="pw_migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert _applied(db_url)[0] == "001_baseline"
    assert _has_table(db_url, "messages")

    listed = run_cli("list", program="pw_migrate", env=env)
    assert "- [x] 001_baseline" in listed.stdout

    count = len(_applied(db_url))
    allowed = {**env, "CHATDB_ALLOW_DATA_LOSS": "1"}  # it drops the whole schema
    result = run_cli("rollback", "--count", str(count), program="pw_migrate", env=allowed)
    assert result.returncode == 0, result.stderr
    assert _applied(db_url) == []
    assert not _has_table(db_url, "messages")


def test_explicit_database_wins_over_conf_and_environment(new_database):
    from_env, explicit = new_database(), new_database()
    result = run_cli(
        "migrate", "--database", explicit, program="pw_migrate", env={"DATABASE_URL": from_env}
    )
    assert result.returncode == 0, result.stderr
    assert _has_table(explicit, "messages")
    assert not _has_table(from_env, "messages")


def test_history_table_has_unique_names_for_plain_pw_migrate(db_url):
    assert run_cli("migrate", program="pw_migrate", env={"DATABASE_URL": db_url}).returncode == 0
    db = make_database(db_url)
    with db.connection_context():
        row = db.execute_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'migratehistory_name_key'"
        ).fetchone()
    assert row == ("UNIQUE (name)",)


def test_bad_url_gives_one_line(db_url):
    result = run_cli(
        "list", program="pw_migrate", env={"DATABASE_URL": "postgresql://u:s3cret@127.0.0.1:1/x"}
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "target: database x on 127.0.0.1:1 as u (from DATABASE_URL)",
        "error: cannot connect to postgresql://u:***@127.0.0.1:1/x: Connection refused; "
        "is the server running, and are host and port right?",
    ]


def test_plain_pw_migrate_records_checksums_as_chatdb_does(db_url):
    assert run_cli("migrate", program="pw_migrate", env={"DATABASE_URL": db_url}).returncode == 0
    db = make_database(db_url)
    with db.connection_context():
        recorded = {a.name: a.checksum for a in history.applied(db)}
    assert recorded == {
        name: loader.checksum(MIGRATIONS / f"{name}.py") for name in loader.names(MIGRATIONS)
    }


def test_plain_pw_migrate_rollback_refuses_data_loss_unless_allowed(db_url):
    env = {"DATABASE_URL": db_url}
    assert run_cli("migrate", "--to", "001_baseline", "--database", db_url).returncode == 0
    execute(db_url, THREAD)
    before = state(db_url)
    line = one_line_error(run_cli("rollback", "--count", "1", program="pw_migrate", env=env))
    assert "001_baseline is the first migration" in line and "table threads" in line
    assert "CHATDB_ALLOW_DATA_LOSS=1" in line
    assert state(db_url) == before

    allowed = {**env, "CHATDB_ALLOW_DATA_LOSS": "1"}
    result = run_cli("rollback", "--count", "1", program="pw_migrate", env=allowed)
    assert result.returncode == 0, result.stderr
    assert _applied(db_url) == [] and not _has_table(db_url, "threads")
