"""The schema at head: cascade deletes, database-side defaults, an index per foreign key and
listing path, and models that say the same."""

from __future__ import annotations

import uuid

import peewee as pw
import pytest

from chatdb import catalog
from chatdb.migrate.executor import Runner
from chatdb.schema import models
from tests.conftest import MIGRATIONS

FOREIGN_KEYS = {
    (
        "messages",
        "messages_thread_id_fkey",
    ): "FOREIGN KEY (thread_id) REFERENCES threads(thread_id)",
    **{
        (
            table,
            f"{table}_message_id_fkey",
        ): "FOREIGN KEY (message_id) REFERENCES messages(message_id)"
        for table in ("tool_calls", "tool_selection", "token_consumption", "complexity_estimation")
    },
}
DEFAULTS = {
    ("threads", "thread_id"): "gen_random_uuid()",
    ("threads", "title"): "'New chat'::character varying",
    ("threads", "creation_date"): "now()",
    ("threads", "update_date"): "now()",
    ("messages", "message_id"): "gen_random_uuid()",
    ("messages", "creation_date"): "now()",
    ("tool_selection", "id"): "gen_random_uuid()",
    ("token_consumption", "id"): "gen_random_uuid()",
    ("complexity_estimation", "id"): "gen_random_uuid()",
}
INDEXES = {
    "ix_messages_thread_id_creation_date": "messages USING btree (thread_id, creation_date)",
    "ix_threads_user_id_update_date": "threads USING btree (user_id, update_date DESC)",
    "ix_threads_vlab_id": "threads USING btree (vlab_id)",
    "ix_threads_project_id": "threads USING btree (project_id)",
    **{
        f"ix_{table}_message_id": f"{table} USING btree (message_id)"
        for table in ("tool_calls", "tool_selection", "token_consumption", "complexity_estimation")
    },
}


@pytest.fixture
def head(db_url) -> pw.PostgresqlDatabase:
    with Runner(db_url, MIGRATIONS) as runner:
        runner.migrate()
        yield runner.database


def _one(db: pw.Database, sql: str, *params: object) -> tuple:
    return db.execute_sql(sql, params or None).fetchone()


def test_catalog_at_head_has_cascades_defaults_and_indexes(head):
    live = catalog.read_catalog(head)
    for (table, name), definition in FOREIGN_KEYS.items():
        assert live.constraints[table][name] == f"{definition} ON DELETE CASCADE"
    defaults = {
        (table, column.name): column.default
        for table, columns in live.tables.items()
        for column in columns
        if column.default is not None and table != "migratehistory"
    }
    assert defaults == DEFAULTS
    for name, definition in INDEXES.items():
        assert live.indexes[name].definition == f"CREATE INDEX {name} ON public.{definition}"
        assert live.indexes[name].valid
    # Every foreign key column leads some index, so deleting a parent never scans a child.
    leading = {(ix.table, ix.columns.split(",")[0]) for ix in live.indexes.values()}
    for table, name in FOREIGN_KEYS:
        column = "thread_id" if table == "messages" else "message_id"
        assert (table, column) in leading, name


def test_plain_insert_into_threads_works_at_head_only(new_database):
    url = new_database()
    with Runner(url, MIGRATIONS) as runner:
        runner.migrate("001_baseline")
        with pytest.raises(pw.IntegrityError, match="null value"), runner.database.atomic():
            runner.database.execute_sql("INSERT INTO threads (user_id) VALUES (gen_random_uuid())")
        runner.migrate()
        db = runner.database
        thread_id, title, created, updated = _one(
            db,
            "INSERT INTO threads (user_id) VALUES (gen_random_uuid()) "
            "RETURNING thread_id, title, creation_date, update_date",
        )
        assert uuid.UUID(str(thread_id)).version == 4
        assert title == "New chat"
        assert created is not None and created == updated
        message_id = _one(
            db,
            "INSERT INTO messages (thread_id, content, entity, is_complete) "
            "VALUES (%s, '{\"content\": \"hi\"}', 'USER', true) RETURNING message_id",
            thread_id,
        )[0]
        for sql in (
            "INSERT INTO tool_selection (message_id, tool_name) VALUES (%s, 'web-search')",
            "INSERT INTO complexity_estimation (message_id, model) VALUES (%s, 'm')",
            "INSERT INTO token_consumption (message_id, type, task, count, model) "
            "VALUES (%s, 'COMPLETION', 'CHAT_COMPLETION', 1, 'm')",
        ):
            db.execute_sql(sql, (message_id,))


def _family(db: pw.Database) -> tuple[str, list[str]]:
    """A thread with two messages, each with a row in every child table."""
    thread = _one(db, "INSERT INTO threads (user_id) VALUES (gen_random_uuid()) RETURNING *")[0]
    messages = []
    for _ in range(2):
        message = _one(
            db,
            "INSERT INTO messages (thread_id, content, entity, is_complete) "
            "VALUES (%s, '{}', 'AI_TOOL', true) RETURNING message_id",
            thread,
        )[0]
        db.execute_sql(
            "INSERT INTO tool_calls (tool_call_id, name, arguments, message_id) "
            "VALUES (%s, 'web-search', '{}', %s)",
            (uuid.uuid4().hex, message),
        )
        db.execute_sql(
            "INSERT INTO tool_selection (message_id, tool_name) VALUES (%s, 'web-search')",
            (message,),
        )
        db.execute_sql(
            "INSERT INTO complexity_estimation (message_id, model) VALUES (%s, 'm')", (message,)
        )
        db.execute_sql(
            "INSERT INTO token_consumption (message_id, type, task, count, model) "
            "VALUES (%s, 'COMPLETION', 'CHAT_COMPLETION', 1, 'm')",
            (message,),
        )
        messages.append(message)
    return thread, messages


CHILDREN = ("tool_calls", "tool_selection", "complexity_estimation", "token_consumption")


def _counts(db: pw.Database) -> dict[str, int]:
    return {
        table: _one(db, f"SELECT count(*) FROM {table}")[0]
        for table in ("threads", "messages", *CHILDREN)
    }


def test_deleting_a_thread_deletes_its_messages_and_their_children(head):
    doomed, doomed_messages = _family(head)
    kept, _ = _family(head)
    head.execute_sql("DELETE FROM threads WHERE thread_id = %s", (doomed,))
    assert _counts(head) == {"threads": 1, "messages": 2, **dict.fromkeys(CHILDREN, 2)}
    assert _one(head, "SELECT count(*) FROM messages WHERE thread_id = %s", kept)[0] == 2
    for table in CHILDREN:
        left = f"SELECT count(*) FROM {table} WHERE message_id IN (%s, %s)"
        assert _one(head, left, *doomed_messages)[0] == 0, table
    head.execute_sql("DELETE FROM messages WHERE thread_id = %s", (kept,))
    assert _counts(head) == {"threads": 1, "messages": 0, **dict.fromkeys(CHILDREN, 0)}


def test_deleting_a_thread_at_the_baseline_is_refused(new_database):
    """The check above can fail: without cascades the same DELETE violates a foreign key."""
    with Runner(new_database(), MIGRATIONS) as runner:
        runner.migrate("001_baseline")
        db = runner.database
        db.execute_sql(
            "INSERT INTO threads VALUES (%s, NULL, NULL, 't', now(), now(), %s)",
            (str(uuid.uuid4()), str(uuid.uuid4())),
        )
        thread = _one(db, "SELECT thread_id FROM threads")[0]
        db.execute_sql(
            "INSERT INTO messages VALUES (%s, now(), '{}', %s, 'TOOL', true)",
            (str(uuid.uuid4()), thread),
        )
        with pytest.raises(pw.IntegrityError, match="messages_thread_id_fkey"):
            db.execute_sql("DELETE FROM threads WHERE thread_id = %s", (thread,))


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (
            "SELECT * FROM messages WHERE thread_id = %s ORDER BY creation_date",
            "ix_messages_thread_id_creation_date",
        ),
        (
            "SELECT * FROM threads WHERE user_id = %s ORDER BY update_date DESC LIMIT 20",
            "ix_threads_user_id_update_date",
        ),
        (
            "SELECT * FROM token_consumption WHERE message_id = %s",
            "ix_token_consumption_message_id",
        ),
    ],
)
def test_listing_paths_read_through_their_index_in_order(head, query, index):
    # On empty tables the planner would rather scan; forbid that to see which path it has.
    head.execute_sql("SET enable_seqscan = off")
    head.execute_sql("SET enable_bitmapscan = off")
    plan = "\n".join(
        row[0] for row in head.execute_sql(f"EXPLAIN {query}", (str(uuid.uuid4()),)).fetchall()
    )
    assert index in plan
    assert "Sort" not in plan


def test_models_declare_what_the_database_holds(head):
    """Model defaults, cascades and index names match the head catalog."""
    models.bind(head)
    live = catalog.read_catalog(head)
    columns = {(t, c.name): c for t, cols in live.tables.items() for c in cols}
    for model in models.MODELS:
        table = model._meta.table_name
        for field in model._meta.sorted_fields:
            declared = [str(c.sql) for c in field.constraints or [] if "DEFAULT" in str(c.sql)]
            default = columns[(table, field.column_name)].default
            if declared:
                assert declared[0].removeprefix("DEFAULT ") in {default, default.split("::")[0]}
            else:
                assert default is None, (table, field.column_name)
            if isinstance(field, pw.ForeignKeyField):
                assert field.on_delete == "CASCADE"
        for index in model._meta.fields_to_index():
            assert live.indexes[index._name].table == table
    thread = models.Thread.create(user_id=uuid.uuid4())
    assert models.Thread.get_by_id(thread.thread_id).title == "New chat"
