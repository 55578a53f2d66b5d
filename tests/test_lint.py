"""``chatdb lint``: one test per rule (a finding, and ``# chatdb: allow`` silencing it)."""

from __future__ import annotations

import shutil

import pytest

from chatdb.migrate.lint import lint
from tests.conftest import HEAD, MIGRATIONS, NEXT, run_cli

UNSAFE = {
    "concurrent-index": ("migrator.sql('CREATE INDEX ix_x ON messages (is_complete)')", True),
    "foreign-key-not-valid": (
        "migrator.sql('ALTER TABLE tool_calls ADD CONSTRAINT f FOREIGN KEY (message_id) "
        "REFERENCES messages(message_id)')",
        True,
    ),
    "set-not-null": ("migrator.sql('ALTER TABLE threads ALTER COLUMN vlab_id SET NOT NULL')", True),
    "volatile-default": (
        "migrator.sql('ALTER TABLE threads ADD COLUMN k uuid DEFAULT gen_random_uuid()')",
        True,
    ),
    "type-rewrite": (
        "migrator.sql('ALTER TABLE token_consumption ALTER COLUMN count TYPE bigint')",
        True,
    ),
    "add-value-in-transaction": (
        "migrator.sql(\"ALTER TYPE entity ADD VALUE 'SYSTEM'\"); "
        "migrator.sql(\"UPDATE messages SET entity = 'SYSTEM' WHERE false\")",
        True,
    ),
}


def migration(tmp_path, up: str, down: str = "pass", *, atomic: bool = True):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    path = directory / f"{NEXT}_probe.py"
    path.write_text(
        f"atomic = {atomic}\n\n\ndef migrate(migrator, database, *, fake=False):\n    {up}\n\n\n"
        f"def rollback(migrator, database, *, fake=False):\n    {down}\n"
    )
    return path


@pytest.mark.parametrize("rule", sorted(UNSAFE))
def test_rule_finds_and_allow_silences(tmp_path, rule):
    statement, atomic = UNSAFE[rule]
    path = migration(tmp_path, statement, atomic=atomic)
    findings = lint(path)
    assert [f.rule for f in findings] == [rule], findings
    assert str(findings[0]).startswith(f"{path}:5: {rule}: ")
    path.write_text(path.read_text().replace(statement, f"{statement}  # chatdb: allow {rule}"))
    assert lint(path) == []


def test_rollback_dropping_data_that_existed_before(tmp_path):
    path = migration(tmp_path, "pass", "migrator.sql('ALTER TABLE threads DROP COLUMN title')")
    assert [f.rule for f in lint(path)] == ["rollback-drops-data"]
    path.write_text(
        path.read_text().replace("title')", "title')  # chatdb: allow rollback-drops-data")
    )
    assert lint(path) == []


def test_safe_forms_pass(tmp_path):
    path = migration(
        tmp_path,
        "operations.add_index(migrator, "
        "'CREATE INDEX ix_x ON public.messages USING btree (is_complete)'); "
        "operations.set_not_null(migrator, 'threads', 'vlab_id'); "
        "operations.add_enum_label(migrator, 'entity', 'SYSTEM')",
        atomic=False,
    )
    path.write_text("from chatdb import operations\n" + path.read_text())
    assert lint(path) == []


def test_repository_migrations_lint_clean_and_cli_exit_status(tmp_path):
    result = run_cli("lint", *sorted(str(p) for p in MIGRATIONS.glob("0*.py")))
    assert result.returncode == 0, result.stdout + result.stderr
    path = migration(tmp_path, UNSAFE["concurrent-index"][0])
    result = run_cli("lint", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [str(lint(path)[0])]


def test_without_files_lints_the_pending_migrations_of_the_target(db_url, tmp_path):
    directory = migration(tmp_path, UNSAFE["concurrent-index"][0]).parent
    args = ("--directory", str(directory), "--database", db_url)
    assert run_cli("migrate", "--to", HEAD, *args).returncode == 0
    result = run_cli("lint", *args)
    assert result.returncode == 1
    assert [line.split(": ")[1] for line in result.stdout.splitlines()] == ["concurrent-index"]
    assert "1 migration(s) linted, 1 finding(s)" in result.stderr


STOCK = """
import peewee as pw


def migrate(migrator, database, *, fake=False):
    migrator.add_index("threads", "title", unique=False)
    migrator.drop_index("messages", "is_complete")
    migrator.add_fields("threads", note=pw.CharField(null=True))


def rollback(migrator, database, *, fake=False):
    migrator.remove_fields("threads", "note")
    migrator.drop_index("threads", "title")
"""


def test_stock_peewee_migrate_operations_are_linted_not_crashed_on(tmp_path):
    """add_index, drop_index (after the baseline's declared indexes), add_fields, remove_fields."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    path = directory / f"{NEXT}_stock.py"
    path.write_text(STOCK)
    messages = [finding.message for finding in lint(path)]
    assert any("CREATE INDEX on existing table threads" in m for m in messages), messages
    assert any("the rollback drops column threads.note" in m for m in messages), messages
    result = run_cli("lint", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
