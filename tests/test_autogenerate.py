"""``chatdb create`` round trips: edit a copy of the models, generate, lint, apply, roll back.

Each kind of change is made to a copy of ``chatdb/schema/models.py`` in a
temporary package; the generated migration is applied to a database holding
rows in every table, must leave ``chatdb check`` clean and a second
``create`` with nothing to do, takes rows in the new schema, and its
rollback refuses while rows would be lost, then restores the catalog and
every row exactly.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chatdb import catalog
from chatdb.db.connect import execute_autocommit, make_database
from chatdb.db.urls import with_database
from chatdb.errors import ChatdbError
from chatdb.migrate import history, verify
from chatdb.migrate.create import create
from chatdb.migrate.executor import Runner
from chatdb.migrate.lint import lint
from chatdb.testing import dataset
from tests.conftest import HEAD, MIGRATIONS, NEXT, REPO, run_cli
from tests.test_migration_walk import fingerprint

MODELS = (REPO / "chatdb" / "schema" / "models.py").read_text()
ENTITY_WITH_SYSTEM = """import enum

from chatdb.schema.enums import ReasoningLevels, Task, TokenType


class Entity(enum.Enum):
    USER = "user"
    AI_TOOL = "ai_tool"
    TOOL = "tool"
    AI_MESSAGE = "ai_message"
    SYSTEM = "system"


class Vote(enum.Enum):
    UP = "up"
    DOWN = "down"
"""
FEEDBACK = """

class Feedback(pw.Model):
    id = uuid_key()
    message = message_key("feedback")
    vote = EnumField(Vote)
    created = DateTimeTZField(default=utc_now, constraints=server_default(NOW))

    class Meta:
        table_name = "feedback"


Feedback.add_index(Feedback.message, name="ix_feedback_message_id")
Message.add_index(Message.is_complete, name="ix_messages_is_complete")
"""


def edit(source: str, old: str, new: str) -> str:
    assert old in source, old
    return source.replace(old, new, 1)


def expand(source: str) -> str:
    """A new enum label and enum, a table using both, columns (nullable, with a constant
    default, with a volatile default), an index on messages."""
    source = edit(
        source,
        "from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType\n",
        ENTITY_WITH_SYSTEM,
    )
    source = edit(
        source,
        "    user_id = pw.UUIDField()\n",
        "    user_id = pw.UUIDField()\n    archived = pw.BooleanField(null=True)\n"
        '    pinned = pw.BooleanField(default=False, constraints=server_default("false"))\n'
        "    token = pw.UUIDField(null=True, constraints=server_default(RANDOM_UUID))\n",
    )
    return source + FEEDBACK


def tighten(source: str) -> str:
    """NOT NULL, a new default, a delete rule, a widened varchar, a dropped column."""
    source = edit(
        source, "    vlab_id = pw.UUIDField(null=True)\n", "    vlab_id = pw.UUIDField()\n"
    )
    source = edit(source, 'DEFAULT_TITLE = "New chat"', 'DEFAULT_TITLE = "Untitled"')
    source = edit(
        source,
        '    message = message_key("tool_calls")\n',
        '    message = pw.ForeignKeyField(Message, field="message_id", column_name="message_id",'
        ' backref="tool_calls", index=False, on_delete="RESTRICT")\n',
    )
    source = edit(
        source,
        "pw.CharField(max_length=32, primary_key=True)",
        "pw.CharField(max_length=64, primary_key=True)",
    )
    return edit(
        source,
        "    count = pw.IntegerField()\n    model = VarCharField()\n",
        "    count = pw.IntegerField()\n",
    )


def rename(source: str) -> str:
    """Table, column and enum label renames (told), an enum label removed."""
    source = edit(source, 'table_name = "tool_selection"', 'table_name = "tool_selections"')
    source = edit(source, "    arguments = JsonTextField()\n", "    parameters = JsonTextField()\n")
    source = edit(
        source,
        "from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType\n",
        ENTITY_WITH_SYSTEM.replace('    AI_TOOL = "ai_tool"\n', '    ASSISTANT_TOOL = "ai_tool"\n')
        .replace('    SYSTEM = "system"\n', "")
        .replace("ReasoningLevels, ", ""),
    )
    return edit(
        source,
        "from chatdb.schema.fields import EnumField, JsonTextField, VarCharField\n",
        "from chatdb.schema.fields import EnumField, JsonTextField, VarCharField\n\n\n"
        "class ReasoningLevels(enum.Enum):\n    NONE = 'none'\n    LOW = 'low'\n"
        "    MEDIUM = 'medium'\n    HIGH = 'high'\n",
    )


def contract(source: str) -> str:
    """Drop a table (and its enum) and an index; add a foreign key; drop NOT NULL, a default."""
    start = source.index("class ComplexityEstimation(pw.Model):")
    end = source.index("class AlembicVersion(pw.Model):")
    source = source[:start] + source[end:]
    source = edit(source, ", TokenConsumption, ComplexityEstimation):", ", TokenConsumption):")
    source = edit(source, "    ComplexityEstimation,\n", "")
    source = edit(
        source,
        "Message.add_index(Message.thread, Message.creation_date, "
        'name="ix_messages_thread_id_creation_date")\n',
        "",
    )
    source = edit(
        source,
        "    creation_date = DateTimeTZField(default=utc_now, constraints=server_default(NOW))\n"
        "    content = JsonTextField()\n",
        "    creation_date = DateTimeTZField(default=utc_now)\n    content = JsonTextField()\n",
    )
    return edit(
        source,
        "    tool_name = VarCharField()\n",
        "    tool_name = VarCharField(null=True)\n"
        "    tool_call = pw.ForeignKeyField(ToolCall, field='tool_call_id', "
        "column_name='tool_call_id', null=True, index=False, on_delete='SET NULL')\n",
    )


@pytest.fixture(scope="session")
def template(server_url: str):
    """A database at head with rows in every table, copied for each test."""
    name = f"chatdb_autogen_{uuid.uuid4().hex[:8]}"
    execute_autocommit(server_url, f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = with_database(server_url, name)
    dataset.build(url, messages=200, seed=5)
    with Runner(url, MIGRATIONS) as runner:
        runner.migrate()
        runner.database.execute_sql(
            "UPDATE threads SET vlab_id = gen_random_uuid() WHERE vlab_id IS NULL"
        )
        runner.database.execute_sql(
            "UPDATE complexity_estimation SET reasoning = 'LOW' WHERE reasoning = 'MINIMAL'"
        )
    yield name
    execute_autocommit(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def rows_db(server_url, template):
    name = f"chatdb_test_{uuid.uuid4().hex[:12]}"
    execute_autocommit(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield with_database(server_url, name)
    execute_autocommit(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the migrations, and a function writing an altered models package."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(tmp_path))

    def models(source: str) -> str:
        package = f"models_{uuid.uuid4().hex[:8]}"
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(source)
        return package

    return directory, models


def state(url: str):
    db = make_database(url)
    with db.connection_context():
        return catalog.read_catalog(db).without(history.TABLE), fingerprint(db)


def execute(url: str, *statements: str) -> None:
    db = make_database(url)
    with db.connection_context():
        for statement in statements:
            db.execute_sql(statement)


def test_current_models_and_migrations_agree(server_url, tmp_path):
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    before = sorted(p.name for p in directory.rglob("*"))
    result = create("probe", server_url=server_url, directory=directory)
    assert result.name is None
    assert sorted(p.name for p in directory.rglob("*")) == before


def assert_ruff_clean(path: Path) -> None:
    """A generated file passes the repository's own checks untouched."""
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in ([ruff, "check", str(path)], [ruff, "format", "--check", str(path)]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def round_trip(server_url, url, directory, package, renames=(), yes=False):
    """Generate, lint, apply, check; returns the catalog and rows before."""
    before = state(url)
    made = create(
        "change", server_url=server_url, directory=directory, models=package, renames=renames
    )
    assert made.path is not None and made.path.exists()
    assert lint(made.path) == []
    assert_ruff_clean(made.path)
    assert run_cli("lint", str(made.path)).returncode == 0
    with Runner(url, directory) as runner:
        assert runner.migrate(yes=yes) == [made.name]
        assert verify.check(runner.database, directory).clean
    assert create("again", server_url=server_url, directory=directory, models=package).name is None
    return made, before


def test_expand_enum_label_new_enum_table_column_index(server_url, rows_db, project):
    directory, models = project
    made, before = round_trip(server_url, rows_db, directory, models(expand(MODELS)))
    source = made.path.read_text()
    assert "atomic = False" in source
    for call in (
        'operations.create_enum(migrator, "vote", ["UP", "DOWN"])',
        'operations.add_enum_label(migrator, "entity", "SYSTEM", after="AI_MESSAGE")',
        'operations.add_column(migrator, "threads", "archived", "boolean")',
        '"threads", "pinned", "boolean", not_null=True, default="false")',
        'operations.add_column(migrator, "threads", "token", "uuid")',
        'operations.set_column_default(migrator, "threads", "token", "gen_random_uuid()")',
        "CREATE INDEX ix_messages_is_complete ON public.messages USING btree (is_complete)",
        "REFERENCES messages(message_id) ON DELETE CASCADE",
    ):
        assert call in source
    message = dataset_message(rows_db)
    execute(
        rows_db,
        "INSERT INTO feedback (message_id, vote) SELECT message_id, 'UP' FROM messages LIMIT 1",
        f"UPDATE messages SET entity = 'SYSTEM' WHERE message_id = '{message}'",
        "UPDATE threads SET archived = true",
    )
    with Runner(rows_db, directory) as runner:
        with pytest.raises(
            ChatdbError,
            match=r"would drop table feedback, column threads\.archived, column threads\.pinned",
        ):
            runner.rollback()
        execute(rows_db, "DELETE FROM feedback", "UPDATE threads SET archived = NULL")
        # pinned holds only its default now: dropping it is a decision (--yes), not an accident.
        with pytest.raises(
            ChatdbError, match=f"rows still use it: messages.entity \\(message_id {message}\\)"
        ):
            runner.rollback(yes=True)
        execute(
            rows_db, f"UPDATE messages SET entity = 'AI_MESSAGE' WHERE message_id = '{message}'"
        )
        assert runner.rollback(yes=True) == [made.name]
    after = state(rows_db)
    assert catalog.diff(before[0], after[0]) == []
    assert after[1] == before[1]


def dataset_message(url: str) -> str:
    db = make_database(url)
    with db.connection_context():
        return str(
            db.execute_sql(
                "SELECT message_id FROM messages WHERE entity = 'AI_MESSAGE' LIMIT 1"
            ).fetchone()[0]
        )


def test_tighten_not_null_default_delete_rule_widening_drop_column(server_url, rows_db, project):
    directory, models = project
    made, before = round_trip(server_url, rows_db, directory, models(tighten(MODELS)), yes=True)
    source = made.path.read_text()
    for call in (
        'operations.guard_data_loss(migrator, tables=[], columns=[("token_consumption", "model")])',
        'operations.set_not_null(migrator, "threads", "vlab_id")',
        '"threads", "title", "\'Untitled\'::character varying")',
        '"alembic_version", "version_num", "character varying(64)")',
        "ON DELETE RESTRICT",
        'operations.drop_column(migrator, "token_consumption", "model")',
    ):
        assert call in source, call
    execute(
        rows_db,
        f"INSERT INTO threads (user_id, vlab_id) VALUES ('{uuid.uuid4()}', '{uuid.uuid4()}')",
    )
    execute(rows_db, "DELETE FROM threads WHERE title = 'Untitled'")
    with Runner(rows_db, directory) as runner:
        # The dropped NOT NULL column comes back empty: it cannot be NOT NULL while rows exist.
        with pytest.raises(ChatdbError, match="chatdb_nn_token_consumption_model"):
            runner.rollback()
        execute(rows_db, "DELETE FROM token_consumption")
        assert runner.rollback() == [made.name]
    after = state(rows_db)
    assert catalog.diff(before[0], after[0]) == []
    assert {t for t in before[1] if before[1][t] != after[1][t]} == {"token_consumption"}


def test_contract_drop_table_enum_index_add_foreign_key_drop_not_null_and_default(
    server_url, rows_db, project
):
    directory, models = project
    package = models(contract(MODELS))
    made = create("change", server_url=server_url, directory=directory, models=package)
    source = made.path.read_text()
    for call in (
        'tables=["complexity_estimation"]',
        'operations.drop_table(migrator, "complexity_estimation")',
        'operations.drop_enum(migrator, "reasoninglevels")',
        'operations.remove_index(migrator, "ix_messages_thread_id_creation_date")',
        '"tool_selection_tool_call_id_fkey"',
        "ON DELETE SET NULL",
        'operations.drop_not_null(migrator, "tool_selection", "tool_name")',
        'operations.set_column_default(migrator, "messages", "creation_date", None)',
    ):
        assert call in source, call
    assert lint(made.path) == []
    before = state(rows_db)
    args = ("--directory", str(directory), "--database", rows_db)
    refused = run_cli("migrate", *args)
    assert refused.returncode == 1
    assert "refusing to drop table complexity_estimation, which hold data" in refused.stderr
    assert state(rows_db) == before
    assert run_cli("migrate", "--yes", *args).returncode == 0
    assert run_cli("check", *args).returncode == 0
    again = create("again", server_url=server_url, directory=directory, models=package)
    assert again.name is None
    execute(
        rows_db,
        "INSERT INTO tool_selection (message_id, tool_call_id) "
        "SELECT message_id, tool_call_id FROM tool_calls LIMIT 1",
    )
    refused = run_cli("rollback", *args)
    assert refused.returncode == 1
    assert "would drop column tool_selection.tool_call_id, which hold data" in refused.stderr
    execute(rows_db, "DELETE FROM tool_selection WHERE tool_name IS NULL")
    assert run_cli("rollback", *args).returncode == 0, run_cli("check", *args).stdout
    after = state(rows_db)
    assert catalog.diff(before[0], after[0]) == []
    # The dropped table comes back empty; every other row is as it was.
    assert {t for t in before[1] if before[1][t] != after[1][t]} == {"complexity_estimation"}


def test_dropping_a_column_that_holds_data_is_refused_unless_yes(server_url, rows_db, project):
    directory, models = project
    create("change", server_url=server_url, directory=directory, models=models(tighten(MODELS)))
    with Runner(rows_db, directory) as runner:
        with pytest.raises(ChatdbError, match=r"refusing to drop column token_consumption.model"):
            runner.migrate()
        assert len(runner.pending()) == 1
        assert verify.check(runner.database, directory).clean
        assert runner.migrate(yes=True) == [f"{NEXT}_change"]


def test_renames_when_told_and_label_removal(server_url, rows_db, project):
    directory, models = project
    package = models(rename(MODELS))
    with pytest.raises(ChatdbError, match=r"--rename tool_selection:tool_selections"):
        create("change", server_url=server_url, directory=directory, models=package)
    told = ["tool_selection:tool_selections"]
    for missing in ("tool_calls.arguments:parameters", "entity.AI_TOOL:entity.ASSISTANT_TOOL"):
        with pytest.raises(ChatdbError, match=rf"--rename {missing}"):
            create(
                "change", server_url=server_url, directory=directory, models=package, renames=told
            )
        told.append(missing)
    assert not list(directory.glob(f"{NEXT}_*"))
    made, before = round_trip(
        server_url,
        rows_db,
        directory,
        package,
        renames=[
            "tool_selection:tool_selections",
            "entity.AI_TOOL:entity.ASSISTANT_TOOL",
            "tool_calls.arguments:parameters",
        ],
    )
    source = made.path.read_text()
    for call in (
        'operations.rename_table(migrator, "tool_selection", "tool_selections")',
        '"tool_selections", "tool_selection_pkey", "tool_selections_pkey"',
        'operations.rename_enum_label(migrator, "entity", "AI_TOOL", "ASSISTANT_TOOL")',
        "operations.remove_enum_label(  # chatdb: allow type-rewrite",
        'operations.rename_column(migrator, "tool_calls", "arguments", "parameters")',
        '"tool_selections": "tool_selection"',
        '"tool_calls.parameters": "tool_calls.arguments"',
    ):
        assert call in source, call
    execute(
        rows_db,
        "INSERT INTO tool_selections (message_id, tool_name) "
        "SELECT message_id, 'x' FROM messages LIMIT 1",
    )
    execute(rows_db, "DELETE FROM tool_selections WHERE tool_name = 'x'")
    with Runner(rows_db, directory) as runner:
        assert runner.rollback() == [made.name]
    after = state(rows_db)
    assert catalog.diff(before[0], after[0]) == []
    assert before[1] == {k: v for k, v in after[1].items()}


def test_generated_migration_runs_under_plain_pw_migrate(server_url, rows_db, project):
    directory, models = project
    made = create(
        "change", server_url=server_url, directory=directory, models=models(expand(MODELS))
    )
    before = state(rows_db)
    args = ("--directory", str(directory), "--database", rows_db)
    result = run_cli("migrate", *args, program="pw_migrate", cwd=directory.parent)
    assert result.returncode == 0, result.stderr
    check = run_cli("check", *args)
    assert check.returncode == 0, check.stdout + check.stderr
    result = run_cli("rollback", *args, program="pw_migrate", cwd=directory.parent)
    assert "would drop column threads.pinned, which hold data" in result.stderr  # the guard
    allowed = {"CHATDB_ALLOW_DATA_LOSS": "1"}
    result = run_cli("rollback", *args, program="pw_migrate", cwd=directory.parent, env=allowed)
    assert result.returncode == 0, result.stderr
    assert made.name
    assert catalog.diff(before[0], state(rows_db)[0]) == []


def test_cli_create_empty_sql_and_no_change(server_url, project):
    directory, models = project
    args = ("--directory", str(directory), "--database", server_url)
    result = run_cli("create", "probe", *args)
    assert result.returncode == 0, result.stderr
    assert "no change" in result.stdout
    result = run_cli(
        "create", "probe", "--sql", "--models", models(expand(MODELS)), *args, cwd=directory.parent
    )
    assert result.returncode == 0, result.stderr
    assert "ALTER TYPE entity ADD VALUE IF NOT EXISTS 'SYSTEM' AFTER 'AI_MESSAGE';" in result.stdout
    assert not list(directory.glob(f"{NEXT}_*"))
    result = run_cli("create", "hand_written", "--empty", *args)
    assert result.returncode == 0, result.stderr
    assert_ruff_clean(directory / f"{NEXT}_hand_written.py")
    assert (directory / "schema" / f"{NEXT}_hand_written.json").read_text() == (
        directory / "schema" / f"{HEAD}.json"
    ).read_text()
