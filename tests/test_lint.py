"""``chatdb lint``: one test per rule (a finding, and ``# chatdb: allow`` silencing it)."""

from __future__ import annotations

import shutil

import pytest

from chatdb.catalog import snapshots
from chatdb.migrate.lint import RULES, lint
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
        "migrator.sql(\"UPDATE messages SET entity = 'SYSTEM' WHERE message_id IN "
        '(SELECT message_id FROM messages WHERE false LIMIT 1000)")',
        True,
    ),
    # The four squawk rules, and the rest of what a team writes by hand.
    "check-not-valid": (
        "migrator.sql('ALTER TABLE threads ADD CONSTRAINT c CHECK (length(title) > 0)')",
        True,
    ),
    "unique-constraint": (
        "migrator.sql('ALTER TABLE threads ADD CONSTRAINT u UNIQUE (title)')",
        True,
    ),
    "required-column": ("migrator.sql('ALTER TABLE threads ADD COLUMN k integer NOT NULL')", True),
    "concurrent-drop-index": ("migrator.sql('DROP INDEX IF EXISTS ix_threads_vlab_id')", True),
    "concurrent-in-transaction": (
        "migrator.sql('CREATE INDEX CONCURRENTLY ix_x ON messages (is_complete)')",
        True,
    ),
    "unbatched-write": (
        "migrator.sql(\"UPDATE messages SET content = upper(content) WHERE entity = 'USER'\")",
        False,
    ),
    "python-step": ("migrator.run(print, 'hello')", False),
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
        "operations.remove_index(migrator, 'ix_threads_project_id'); "
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


# Every operation of peewee-migrate's Migrator, as a migration file would call it.
STOCK_OPERATIONS = {
    "add_index": "migrator.add_index('threads', 'title', unique=False)",
    "drop_index": "migrator.drop_index('messages', 'is_complete')",
    "add_fields": "migrator.add_fields('threads', note=pw.CharField(null=True))",
    "remove_fields": "migrator.remove_fields('threads', 'title')",
    "rename_field": "migrator.rename_field('threads', 'title', 'heading')",
    "change_fields": "migrator.change_fields('threads', title=pw.TextField())",
    "add_not_null": "migrator.add_not_null('threads', 'vlab_id')",
    "drop_not_null": "migrator.drop_not_null('threads', 'title')",
    "add_default": "migrator.add_default('threads', 'title', 'untitled')",
    "rename_table": "migrator.rename_table('threads', 'conversations')",
    "create_model": "migrator.create_model(Note)",
    "remove_model": "migrator.remove_model('tool_calls')",
    "sql": "migrator.sql('ALTER TABLE threads ADD COLUMN note text')",
    "run": "migrator.run(print, 'hello')",
    "add_constraint": "migrator.add_constraint('threads', 'c', pw.Check('length(title) > 0'))",
    "drop_constraints": "migrator.drop_constraints('messages', 'messages_thread_id_fkey')",
}
NOTE_MODEL = """
class Note(pw.Model):
    text = pw.TextField()

    class Meta:
        table_name = 'note'
"""


@pytest.mark.parametrize("operation", sorted(STOCK_OPERATIONS))
@pytest.mark.parametrize("direction", ["migrate", "rollback"])
def test_every_stock_operation_is_linted_not_crashed_on(tmp_path, operation, direction):
    """Upgrade or rollback, each operation gives findings or none, never a traceback."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    path = directory / f"{NEXT}_stock.py"
    call = STOCK_OPERATIONS[operation]
    up, down = (call, "pass") if direction == "migrate" else ("pass", call)
    path.write_text(
        f"import peewee as pw\n{NOTE_MODEL}\n\ndef migrate(migrator, database, *, fake=False):\n"
        f"    {up}\n\n\ndef rollback(migrator, database, *, fake=False):\n    {down}\n"
    )
    findings = lint(path)
    assert all(f.rule in RULES and f.line for f in findings), findings
    result = run_cli("lint", str(path))
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    assert result.stdout.splitlines() == [str(f) for f in findings]


@pytest.mark.parametrize("rule", sorted(UNSAFE))
def test_rollback_is_linted_like_the_upgrade(tmp_path, rule):
    statement, atomic = UNSAFE[rule]
    path = migration(tmp_path, "pass", statement, atomic=atomic)
    findings = lint(path)
    assert [f.rule for f in findings] == [rule], findings
    assert str(findings[0]).startswith(f"{path}:9: {rule}: the rollback: ")
    path.write_text(path.read_text().replace(statement, f"{statement}  # chatdb: allow {rule}"))
    assert lint(path) == []


def test_rollback_is_linted_against_the_schema_the_migration_leaves(tmp_path):
    """A table the upgrade creates exists (with rows, by then) when the rollback runs."""
    path = migration(
        tmp_path,
        "migrator.sql('CREATE TABLE notes (id integer PRIMARY KEY, n integer)')",
        "migrator.sql('CREATE INDEX ix_n ON notes (n)')",
    )
    snapshots.path_for(path.parent, path.stem).write_text(
        snapshots.expected(path.parent, HEAD)
        .to_json()
        .replace('"tables": {', '"tables": {"notes": [], ', 1)
    )
    assert [f.rule for f in lint(path)] == ["concurrent-index"]


DO_BLOCKS = {
    "type-rewrite": "ALTER TABLE token_consumption ALTER COLUMN count TYPE bigint;",
    "check-not-valid": (
        "IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'c') THEN "
        "ALTER TABLE threads ADD CONSTRAINT c CHECK (length(title) > 0); END IF;"
    ),
    "unbatched-write": "DELETE FROM tool_calls WHERE name = 'x';",
    "concurrent-index": "EXECUTE format('CREATE INDEX ix_%s ON messages (is_complete)', 'x');",
    "concurrent-in-transaction": (
        "EXECUTE 'CREATE INDEX CONCURRENTLY ix_x ON messages (is_complete)';"
    ),
}


@pytest.mark.parametrize("rule", sorted(DO_BLOCKS))
def test_statements_inside_do_blocks_are_linted(tmp_path, rule):
    body = DO_BLOCKS[rule]
    path = migration(
        tmp_path,
        f"migrator.sql('''DO $do$ DECLARE n integer; BEGIN {body} END $do$''')",
        atomic=False,
    )
    assert [f.rule for f in lint(path)] == [rule]


def test_batched_writes_pass(tmp_path):
    path = migration(
        tmp_path,
        'migrator.sql("DELETE FROM tool_calls WHERE tool_call_id IN '
        "(SELECT tool_call_id FROM tool_calls WHERE name = 'x' LIMIT 1000)\"); "
        'migrator.sql("UPDATE messages SET is_complete = true WHERE message_id = '
        "'6d2ae0b4-5fb1-4a3b-9d55-8d1e1c6a3f10'\"); "
        "migrator.sql('UPDATE threads SET title = upper(title) WHERE creation_date "
        "BETWEEN now() - interval \\'1 day\\' AND now()')",
        atomic=False,
    )
    assert lint(path) == []
