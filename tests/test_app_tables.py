"""An application's own tables next to chatdb's: its own schema, its own migrations.

chatdb reads and compares only the ``public`` schema; an application that keeps
its tables, types, functions and migration history in a schema of its own
(docs/MIGRATION_WORKFLOW.md, "An application's own tables") never shows as
drift, and chatdb migrates and rolls back past it.
"""

from __future__ import annotations

import shutil

from peewee_migrate import Router

from chatdb.db.connect import make_database
from tests.conftest import HEAD, MIGRATIONS, run_cli

APP_MIGRATION = """
def migrate(migrator, database, *, fake=False):
    migrator.sql("CREATE EXTENSION IF NOT EXISTS citext SCHEMA notes_app")
    migrator.sql("CREATE TYPE notes_app.mood AS ENUM ('calm', 'busy')")
    migrator.sql(
        "CREATE TABLE notes_app.notes (id serial PRIMARY KEY, thread_id uuid NOT NULL "
        "REFERENCES public.threads (thread_id) ON DELETE CASCADE, mood notes_app.mood, "
        "body text NOT NULL, author notes_app.citext)"
    )
    migrator.sql("CREATE INDEX ix_notes_thread_id ON notes_app.notes (thread_id)")


def rollback(migrator, database, *, fake=False):
    migrator.sql("DROP TABLE notes_app.notes")
    migrator.sql("DROP TYPE notes_app.mood")
    migrator.sql("DROP EXTENSION citext")
"""

APP_MODELS = """
import peewee as pw


class Note(pw.Model):
    body = pw.TextField()

    class Meta:
        table_name = "notes"
"""


def install_app(url: str, directory) -> list[str]:
    """What the application's deploy does: its schema, then its own peewee-migrate history."""
    database = make_database(url)
    with database.connection_context():
        database.execute_sql("CREATE SCHEMA IF NOT EXISTS notes_app")
        router = Router(database, directory, migrate_table="history", schema="notes_app")
        router.run()
        return router.done


def test_an_applications_own_schema_is_never_drift(db_url, tmp_path):
    args = ("--database", db_url)
    assert run_cli("migrate", *args).returncode == 0
    app = tmp_path / "app_migrations"
    app.mkdir()
    (app / "001_notes.py").write_text(APP_MIGRATION)
    assert install_app(db_url, app) == ["001_notes"]

    check = run_cli("check", *args)
    assert check.returncode == 0 and "clean" in check.stdout, check.stdout + check.stderr
    for command in (("rollback",), ("migrate",)):
        result = run_cli(*command, *args)
        assert result.returncode == 0, result.stderr
    result = run_cli("create", "probe", "--sql", *args)
    assert result.returncode == 0 and "no change" in result.stdout, result.stderr

    database = make_database(db_url)
    with database.connection_context():
        history = [row[0] for row in database.execute_sql("SELECT name FROM migratehistory")]
        notes = database.execute_sql("SELECT count(*) FROM notes_app.notes").fetchone()[0]
    assert history[-1] == HEAD and "001_notes" not in history
    assert notes == 0


def test_create_given_only_an_applications_models_refuses_without_a_rename(
    server_url, tmp_path, monkeypatch
):
    """Never "--rename alembic_version:notes", never a plan dropping chatdb's tables."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "app_models.py").write_text(APP_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ("--directory", str(directory), "--database", server_url, "--models", "app_models")
    result = run_cli("create", "notes", *args, cwd=tmp_path)
    assert result.returncode == 1
    assert "alembic_version:" not in result.stderr and "--rename" not in result.stderr
    assert "own PostgreSQL schema" in result.stderr
    assert [line.startswith("error: ") for line in result.stderr.splitlines()].count(True) == 1
    assert sorted(p.name for p in directory.glob("0*.py")) == sorted(
        p.name for p in MIGRATIONS.glob("0*.py")
    )
