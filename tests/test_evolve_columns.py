"""``chatdb create`` on the column changes a team makes every week, through both front ends.

Each case edits a copy of the models, generates the migration, then applies
it, rolls it back and applies it again with ``chatdb`` or plain
``pw_migrate``: the rollback gives back the catalog exactly (by
:func:`chatdb.catalog.diff`, which compares the columns chatdb added by name)
and leaves nothing ``chatdb check`` calls drift, so later runs need no
``--ignore-drift``.
"""

from __future__ import annotations

import uuid

import pytest

from chatdb import catalog
from chatdb.db.connect import make_database
from chatdb.errors import ChatdbError
from chatdb.migrate import render_migration
from chatdb.migrate.create import create
from chatdb.migrate.executor import Runner
from tests import test_autogenerate as autogenerate
from tests.conftest import MIGRATIONS, NEXT, run_cli
from tests.ops_support import one_line_error
from tests.test_autogenerate import ENTITY_WITH_SYSTEM, MODELS, edit, execute, state
from tests.test_runners import RUNNERS, _down, _up

# The round-trip fixtures: a database at head holding rows, a copy of the migrations.
template, rows_db, project = autogenerate.template, autogenerate.rows_db, autogenerate.project
TWO_COLUMNS = (
    "    user_id = pw.UUIDField()\n",
    "    user_id = pw.UUIDField()\n    archived = pw.BooleanField(null=True)\n"
    "    note = pw.TextField(null=True)\n",
)


def rows(url: str, query: str) -> list[tuple]:
    db = make_database(url)
    with db.connection_context():
        return list(db.execute_sql(query).fetchall())


def clean(url: str, directory) -> None:
    result = run_cli("check", "--directory", str(directory), "--database", url)
    assert result.returncode == 0, result.stdout + result.stderr


def applied(runner: str, directory, url: str, **kw) -> None:
    result = _up(runner, directory, url, **kw)
    assert result.returncode == 0, result.stderr
    clean(url, directory)


def there_and_back(runner: str, url: str, directory, yes: bool = False) -> None:
    """Apply the newest migration, roll it back exactly, apply it again."""
    before = state(url)[0]
    applied(runner, directory, url, yes=yes)
    after = state(url)[0]
    result = _down(runner, directory, url, yes=yes)
    assert result.returncode == 0, result.stderr
    assert catalog.diff(before, state(url)[0]) == []
    clean(url, directory)
    applied(runner, directory, url, yes=yes)
    assert catalog.diff(after, state(url)[0]) == []


def at_first_change(server_url: str, url: str, directory, package: str) -> None:
    """Generate and apply a first migration (the columns the next one changes)."""
    made = create("first", server_url=server_url, directory=directory, models=package)
    assert made.name == f"{NEXT}_first"
    with Runner(url, directory) as runner:
        assert runner.migrate() == [made.name]


@pytest.mark.parametrize("runner", RUNNERS)
def test_dropping_a_column_that_is_not_the_last(runner, server_url, rows_db, project):
    directory, models = project
    at_first_change(server_url, rows_db, directory, models(edit(MODELS, *TWO_COLUMNS)))
    execute(rows_db, "UPDATE threads SET note = 'kept'")
    package = models(
        edit(MODELS, TWO_COLUMNS[0], TWO_COLUMNS[0] + "    note = pw.TextField(null=True)\n")
    )
    made = create("drop_archived", server_url=server_url, directory=directory, models=package)
    assert 'operations.drop_column(migrator, "threads", "archived")' in made.path.read_text()
    there_and_back(runner, rows_db, directory)
    assert rows(rows_db, "SELECT DISTINCT note FROM threads") == [("kept",)]
    # The earlier migration rolls back and forward too: no drift blocks it.
    result = _down(runner, directory, rows_db, 2, yes=True)
    assert result.returncode == 0, result.stderr
    applied(runner, directory, rows_db, yes=True)


@pytest.mark.parametrize("runner", RUNNERS)
def test_dropping_an_indexed_column(runner, server_url, rows_db, project):
    directory, models = project
    index = 'Thread.add_index(Thread.archived, name="ix_threads_archived")\n'
    at_first_change(
        server_url, rows_db, directory, models(edit(MODELS, *TWO_COLUMNS) + "\n" + index)
    )
    made = create(
        "drop_archived", server_url=server_url, directory=directory, models=models(MODELS)
    )
    source = made.path.read_text()
    migrate, rollback = source.split("def rollback")
    # Up: the index goes before its column; down: the column comes back before the index.
    assert migrate.index('remove_index(migrator, "ix_threads_archived")') < migrate.index(
        'drop_column(migrator, "threads", "archived")'
    )
    assert rollback.index('"threads", "archived", "boolean")') < rollback.index(
        "CREATE INDEX ix_threads_archived"
    )
    there_and_back(runner, rows_db, directory)


@pytest.mark.parametrize("runner", RUNNERS)
def test_dropping_a_legacy_column_that_others_follow(runner, server_url, rows_db, project):
    """Its rollback puts it back last; only the legacy contract's checks compare order."""
    directory, models = project
    package = models(
        edit(
            edit(MODELS, "    project_id = pw.UUIDField(null=True)\n", ""),
            'Thread.add_index(Thread.project_id, name="ix_threads_project_id")\n',
            "",
        )
    )
    execute(rows_db, "UPDATE threads SET project_id = vlab_id")
    made = create("drop_project", server_url=server_url, directory=directory, models=package)
    assert 'operations.drop_column(migrator, "threads", "project_id")' in made.path.read_text()
    there_and_back(runner, rows_db, directory, yes=True)
    names = [c.name for c in state(rows_db)[0].tables["threads"]]
    assert "project_id" not in names
    result = _down(runner, directory, rows_db, yes=True)
    assert result.returncode == 0, result.stderr
    names = [c.name for c in state(rows_db)[0].tables["threads"]]
    assert names[-1] == "project_id"
    baseline = catalog.Catalog.load(MIGRATIONS / "schema" / "005_scope_indexes.json")
    live = state(rows_db)[0]
    assert catalog.diff(baseline, live.without("migratehistory")) == []
    ordered = catalog.diff(baseline, live.without("migratehistory"), column_order=True)
    assert [d.kind for d in ordered] == ["column order"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_renaming_foreign_key_columns(runner, server_url, rows_db, project):
    directory, models = project
    source = edit(
        MODELS, '        column_name="thread_id",\n', '        column_name="conversation_id",\n'
    )
    source = edit(
        source,
        '    message = message_key("tool_calls")\n',
        '    message = pw.ForeignKeyField(Message, field="message_id", column_name="answer_id", '
        'backref="tool_calls", index=False, on_delete="CASCADE")\n',
    )
    renames = ["messages.thread_id:conversation_id", "tool_calls.message_id:answer_id"]
    made = create(
        "renames",
        server_url=server_url,
        directory=directory,
        models=models(source),
        renames=renames,
    )
    text = made.path.read_text()
    assert 'operations.rename_column(migrator, "messages", "thread_id", "conversation_id")' in text
    assert 'operations.rename_column(migrator, "tool_calls", "message_id", "answer_id")' in text
    for dropped in ("drop_column", "add_column", "drop_constraint", "add_constraint"):
        assert dropped not in text
    before = rows(rows_db, "SELECT message_id, thread_id FROM messages ORDER BY 1")
    there_and_back(runner, rows_db, directory)
    definitions = state(rows_db)[0].to_json()
    assert "FOREIGN KEY (conversation_id) REFERENCES threads(thread_id)" in definitions
    assert "FOREIGN KEY (answer_id) REFERENCES messages(message_id)" in definitions
    assert rows(rows_db, "SELECT message_id, conversation_id FROM messages ORDER BY 1") == before


def test_renaming_onto_an_existing_column_is_refused_before_anything(server_url, rows_db, project):
    directory, models = project
    content, content_json = (
        "    content = JsonTextField()\n",
        "    content_json = pw.TextField(null=True)\n",
    )
    package = models(edit(MODELS, "    content = JsonTextField()\n", content + content_json))
    at_first_change(server_url, rows_db, directory, package)
    files = sorted(directory.rglob("*"))
    args = ("--directory", str(directory), "--database", rows_db, "--models", models(MODELS))
    for sql in (("--sql",), ()):
        result = run_cli(
            "create",
            "swap",
            *sql,
            "--rename",
            "messages.content_json:content",
            *args,
            cwd=directory.parent,
        )
        line = one_line_error(result, rows_db)
        assert line == (
            "error: --rename messages.content_json:content: column messages.content exists "
            "already, and a column cannot be renamed onto another; drop messages.content in a "
            "migration of its own first (take it out of the models, chatdb create, migrate), "
            "then rename"
        )
        assert result.stdout == ""
    assert sorted(directory.rglob("*")) == files


def test_a_failed_proof_names_what_failed_not_a_recovery_command(server_url, project, monkeypatch):
    directory, models = project
    render = render_migration.render

    def with_a_broken_step(name, plan, previous):
        return render(name, plan, previous).replace(
            "def rollback",
            '    operations.add_index(migrator, "CREATE INDEX ix_broken ON public.threads '
            'USING btree (nope)")\n\n\ndef rollback',
        )

    monkeypatch.setattr(render_migration, "render", with_a_broken_step)
    package = models(edit(MODELS, *TWO_COLUMNS))
    with pytest.raises(ChatdbError) as raised:
        create("change", server_url=server_url, directory=directory, models=package)
    message = str(raised.value)
    assert message.startswith(
        f"the generated {NEXT}_change failed its proof on a scratch database (applying it: "
        'column "nope" does not exist); nothing was written and no database of yours was touched'
    ), message
    assert "chatdb rollback" not in message
    assert not list(directory.glob(f"{NEXT}_*"))


PRIORITY = (
    "    user_id = pw.UUIDField()\n",
    "    user_id = pw.UUIDField()\n    priority = pw.IntegerField()\n",
)


def test_a_new_not_null_column_without_a_value_is_refused_in_one_line(server_url, project):
    directory, models = project
    args = ("--directory", str(directory), "--database", server_url)
    args += ("--models", models(edit(MODELS, *PRIORITY)))
    line = one_line_error(run_cli("create", "priority", *args, cwd=directory.parent))
    assert line == (
        "error: threads.priority: a new NOT NULL column without a default needs a value for the "
        "rows already there: pass --backfill threads.priority=SQL (such as 0, 'none' or now()), "
        "or give it a default, or make it nullable"
    )
    for wrong, said in (
        ("threads.priority", "expected TABLE.COLUMN=SQL"),
        ("threads.title=1", "threads.title is not a new NOT NULL column without a default"),
    ):
        result = run_cli(
            "create",
            "priority",
            "--backfill",
            "threads.priority=0",
            "--backfill",
            wrong,
            *args,
            cwd=directory.parent,
        )
        assert said in one_line_error(result)
    assert not list(directory.glob(f"{NEXT}_*"))


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_new_not_null_column_is_backfilled(runner, server_url, rows_db, project):
    directory, models = project
    args = ("--directory", str(directory), "--database", server_url)
    args += ("--models", models(edit(MODELS, *PRIORITY)))
    result = run_cli(
        "create", "priority", "--backfill", "threads.priority=2", *args, cwd=directory.parent
    )
    assert result.returncode == 0, result.stderr
    source = (directory / f"{NEXT}_priority.py").read_text()
    migrate = source.split("def rollback")[0]
    calls = [
        'operations.add_column(migrator, "threads", "priority", "integer")',
        'operations.backfill(migrator, "threads", "priority", "2")',
        'operations.set_not_null(migrator, "threads", "priority")',
    ]
    assert [migrate.index(call) for call in calls] == sorted(migrate.index(c) for c in calls)
    assert "atomic = False" in source
    there_and_back(runner, rows_db, directory, yes=True)
    assert rows(rows_db, "SELECT DISTINCT priority FROM threads") == [(2,)]


# Counts table rewrites (an event trigger outside the schema chatdb compares).
COUNT_REWRITES = """
CREATE SCHEMA audit;
CREATE TABLE audit.rewrites (relation text);
CREATE FUNCTION audit.rewritten() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit.rewrites VALUES (pg_event_trigger_table_rewrite_oid()::regclass::text);
END $$;
CREATE EVENT TRIGGER count_rewrites ON table_rewrite EXECUTE FUNCTION audit.rewritten();
"""
TWO_LABELS = '    SYSTEM = "system"\n    DEVELOPER = "developer"\n'


@pytest.mark.parametrize("runner", RUNNERS)
def test_removing_enum_labels_rewrites_once_and_other_sessions_write_on(
    runner, server_url, rows_db, project
):
    import chatdb

    directory, models = project
    entity = ENTITY_WITH_SYSTEM.replace('    SYSTEM = "system"\n', TWO_LABELS)
    imports = "from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType\n"
    package = models(edit(MODELS, imports, entity))
    at_first_change(server_url, rows_db, directory, package)
    made = create("drop_labels", server_url=server_url, directory=directory, models=models(MODELS))
    source = made.path.read_text()
    assert source.count("operations.remove_enum_labels(") == 1
    assert '"entity",\n        ["SYSTEM", "DEVELOPER"],' in source
    execute(rows_db, COUNT_REWRITES)
    db = chatdb.connect(rows_db, max_connections=1)
    try:
        thread = db.create_thread(uuid.uuid4()).thread_id
        message = [{"thread_id": thread, "entity": "USER", "content": {"content": "hi"}}]
        db.add_messages(message)  # the pooled session has compiled the search trigger
        there_and_back(runner, rows_db, directory)
        db.add_messages(message)
        assert rows(rows_db, "SELECT relation FROM audit.rewrites") == [("messages",)] * 2
        result = _down(runner, directory, rows_db, 2)  # 006 removes both labels again
        assert result.returncode == 0, result.stderr
        db.add_messages(message)
        assert rows(rows_db, "SELECT relation FROM audit.rewrites") == [("messages",)] * 3
    finally:
        db.close_all()


REPLY_TO = (
    "    search_vector = TSVectorField(null=True, index=False)\n",
    "    search_vector = TSVectorField(null=True, index=False)\n"
    "    reply_to = pw.ForeignKeyField('self', field='message_id', column_name='{}', null=True, "
    "index=False, on_delete='SET NULL')\n",
)


@pytest.mark.parametrize("runner", RUNNERS)
def test_renaming_a_self_referencing_key(runner, server_url, rows_db, project):
    directory, models = project
    before, after = REPLY_TO
    at_first_change(
        server_url, rows_db, directory, models(edit(MODELS, before, after.format("reply_to_id")))
    )
    execute(rows_db, "UPDATE messages SET reply_to_id = message_id")
    made = create(
        "rename_reply_to",
        server_url=server_url,
        directory=directory,
        models=models(edit(MODELS, before, after.format("parent_id"))),
        renames=["messages.reply_to_id:parent_id"],
    )
    text = made.path.read_text()
    assert 'operations.rename_column(migrator, "messages", "reply_to_id", "parent_id")' in text
    assert "drop_column" not in text and "add_constraint" not in text
    there_and_back(runner, rows_db, directory)
    assert "FOREIGN KEY (parent_id) REFERENCES messages(message_id) ON DELETE SET NULL" in (
        state(rows_db)[0].to_json()
    )
    assert rows(
        rows_db, "SELECT count(*) FROM messages WHERE parent_id IS DISTINCT FROM message_id"
    ) == [(0,)]


@pytest.mark.parametrize("runner", RUNNERS)
def test_dropping_a_foreign_key_column(runner, server_url, rows_db, project):
    directory, models = project
    before, after = REPLY_TO
    at_first_change(
        server_url, rows_db, directory, models(edit(MODELS, before, after.format("reply_to_id")))
    )
    made = create(
        "drop_reply_to", server_url=server_url, directory=directory, models=models(MODELS)
    )
    migrate, rollback = made.path.read_text().split("def rollback")
    # Up: the key goes before its column; down: the column comes back before the key.
    assert migrate.index('"messages_reply_to_id_fkey"') < migrate.index(
        'drop_column(migrator, "messages", "reply_to_id")'
    )
    assert rollback.index('"messages", "reply_to_id", "uuid")') < rollback.index(
        '"messages_reply_to_id_fkey"'
    )
    there_and_back(runner, rows_db, directory)
