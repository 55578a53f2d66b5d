# ruff: noqa: E501 -- each pinned statement stays on one line, as PostgreSQL receives it
"""The SQL of every generated operation, pinned: applied files depend on it never changing.

Rendered without a database (the state before the step), outside a
transaction (``atomic = False``) and inside one. Changing an expectation here
changes what an already-applied migration would do on its next run.
"""

from __future__ import annotations

import pytest
from peewee_migrate import Migrator

from chatdb import operations
from chatdb.migrate.offline import OfflineDatabase
from chatdb.migrate.preview import render

FK = "FOREIGN KEY (message_id) REFERENCES messages(message_id)"
FUNCTION = (
    "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.update_date := now(); RETURN NEW; END $$"
)
TRIGGER = (
    "CREATE TRIGGER touch_threads BEFORE UPDATE ON threads FOR EACH ROW EXECUTE FUNCTION touch()"
)


def sql(step, *, in_transaction: bool) -> list[str]:
    database = OfflineDatabase()
    migrator = Migrator(database)
    step(migrator)
    return [
        statement
        for operation in migrator.__ops__
        for statement, _ in render(operation, database, in_transaction=in_transaction)
    ]


PINNED = {
    "create_enum": (
        lambda m: operations.create_enum(m, "vote", ["UP", "DOWN"]),
        ["CREATE TYPE vote AS ENUM ('UP', 'DOWN')"],
        ["CREATE TYPE vote AS ENUM ('UP', 'DOWN')"],
    ),
    "drop_enum": (
        lambda m: operations.drop_enum(m, "vote"),
        ["DROP TYPE IF EXISTS vote"],
        ["DROP TYPE IF EXISTS vote"],
    ),
    "add_enum_label": (
        lambda m: operations.add_enum_label(m, "entity", "SYSTEM", after="AI_MESSAGE"),
        ["ALTER TYPE entity ADD VALUE IF NOT EXISTS 'SYSTEM' AFTER 'AI_MESSAGE'"],
        ["ALTER TYPE entity ADD VALUE IF NOT EXISTS 'SYSTEM' AFTER 'AI_MESSAGE'"],
    ),
    "rename_enum_label": (
        lambda m: operations.rename_enum_label(m, "entity", "AI_TOOL", "ASSISTANT_TOOL"),
        ["ALTER TYPE entity RENAME VALUE 'AI_TOOL' TO 'ASSISTANT_TOOL'"],
        ["ALTER TYPE entity RENAME VALUE 'AI_TOOL' TO 'ASSISTANT_TOOL'"],
    ),
    "remove_enum_label": (
        lambda m: operations.remove_enum_label(
            m,
            "entity",
            "SYSTEM",
            keep=["USER", "TOOL"],
            columns=[("messages", "entity", "'USER'::entity")],
        ),
        [
            "BEGIN",
            "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE",
            "ALTER TYPE entity RENAME TO entity__chatdb_old",
            "CREATE TYPE entity AS ENUM ('USER', 'TOOL')",
            "ALTER TABLE messages ALTER COLUMN entity DROP DEFAULT, ALTER COLUMN entity TYPE entity USING entity::text::entity, ALTER COLUMN entity SET DEFAULT 'USER'::entity",
            "DROP TYPE entity__chatdb_old",
            "COMMIT",
        ],
        [
            "ALTER TYPE entity RENAME TO entity__chatdb_old",
            "CREATE TYPE entity AS ENUM ('USER', 'TOOL')",
            "ALTER TABLE messages ALTER COLUMN entity DROP DEFAULT, ALTER COLUMN entity TYPE entity USING entity::text::entity, ALTER COLUMN entity SET DEFAULT 'USER'::entity",
            "DROP TYPE entity__chatdb_old",
        ],
    ),
    "create_table": (
        lambda m: operations.create_table(
            m,
            "feedback",
            [("id", "uuid", True, "gen_random_uuid()"), ("note", "text", False, None)],
            [("feedback_pkey", "PRIMARY KEY (id)")],
        ),
        [
            "CREATE TABLE feedback (id uuid DEFAULT gen_random_uuid() NOT NULL, note text, CONSTRAINT feedback_pkey PRIMARY KEY (id))"
        ],
        [
            "CREATE TABLE feedback (id uuid DEFAULT gen_random_uuid() NOT NULL, note text, CONSTRAINT feedback_pkey PRIMARY KEY (id))"
        ],
    ),
    "drop_table": (
        lambda m: operations.drop_table(m, "feedback"),
        ["DROP TABLE IF EXISTS feedback"],
        ["DROP TABLE IF EXISTS feedback"],
    ),
    "rename_table": (
        lambda m: operations.rename_table(m, "a", "b"),
        ["ALTER TABLE a RENAME TO b"],
        ["ALTER TABLE a RENAME TO b"],
    ),
    "add_column": (
        lambda m: operations.add_column(
            m, "threads", "archived", "boolean", not_null=True, default="false"
        ),
        ["ALTER TABLE threads ADD COLUMN archived boolean DEFAULT false NOT NULL"],
        ["ALTER TABLE threads ADD COLUMN archived boolean DEFAULT false NOT NULL"],
    ),
    "drop_column": (
        lambda m: operations.drop_column(m, "threads", "archived"),
        ["ALTER TABLE threads DROP COLUMN IF EXISTS archived"],
        ["ALTER TABLE threads DROP COLUMN IF EXISTS archived"],
    ),
    "rename_column": (
        lambda m: operations.rename_column(m, "threads", "title", "name"),
        ["ALTER TABLE threads RENAME COLUMN title TO name"],
        ["ALTER TABLE threads RENAME COLUMN title TO name"],
    ),
    "set_column_type": (
        lambda m: operations.set_column_type(m, "threads", "title", "text"),
        ["ALTER TABLE threads ALTER COLUMN title TYPE text"],
        ["ALTER TABLE threads ALTER COLUMN title TYPE text"],
    ),
    "set_column_default": (
        lambda m: operations.set_column_default(m, "threads", "title", "'x'"),
        ["ALTER TABLE threads ALTER COLUMN title SET DEFAULT 'x'"],
        ["ALTER TABLE threads ALTER COLUMN title SET DEFAULT 'x'"],
    ),
    "drop_column_default": (
        lambda m: operations.set_column_default(m, "threads", "title", None),
        ["ALTER TABLE threads ALTER COLUMN title DROP DEFAULT"],
        ["ALTER TABLE threads ALTER COLUMN title DROP DEFAULT"],
    ),
    "set_not_null": (
        lambda m: operations.set_not_null(m, "threads", "vlab_id"),
        [
            "ALTER TABLE threads ADD CONSTRAINT chatdb_nn_threads_vlab_id CHECK (vlab_id IS NOT NULL) NOT VALID",
            "ALTER TABLE threads VALIDATE CONSTRAINT chatdb_nn_threads_vlab_id",
            "ALTER TABLE threads ALTER COLUMN vlab_id SET NOT NULL",
            "ALTER TABLE threads DROP CONSTRAINT IF EXISTS chatdb_nn_threads_vlab_id",
        ],
        [
            "ALTER TABLE threads ADD CONSTRAINT chatdb_nn_threads_vlab_id CHECK (vlab_id IS NOT NULL) NOT VALID",
            "ALTER TABLE threads VALIDATE CONSTRAINT chatdb_nn_threads_vlab_id",
            "ALTER TABLE threads ALTER COLUMN vlab_id SET NOT NULL",
            "ALTER TABLE threads DROP CONSTRAINT IF EXISTS chatdb_nn_threads_vlab_id",
        ],
    ),
    "drop_not_null": (
        lambda m: operations.drop_not_null(m, "threads", "vlab_id"),
        ["ALTER TABLE threads ALTER COLUMN vlab_id DROP NOT NULL"],
        ["ALTER TABLE threads ALTER COLUMN vlab_id DROP NOT NULL"],
    ),
    "add_index": (
        lambda m: operations.add_index(
            m, "CREATE INDEX ix_m ON public.messages USING btree (is_complete)"
        ),
        ["CREATE INDEX CONCURRENTLY ix_m ON public.messages USING btree (is_complete)"],
        ["CREATE INDEX ix_m ON public.messages USING btree (is_complete)"],
    ),
    "remove_index": (
        lambda m: operations.remove_index(m, "ix_m"),
        ["DROP INDEX CONCURRENTLY IF EXISTS ix_m"],
        ["DROP INDEX IF EXISTS ix_m"],
    ),
    "rename_index": (
        lambda m: operations.rename_index(m, "ix_a", "ix_b"),
        ["ALTER INDEX ix_a RENAME TO ix_b"],
        ["ALTER INDEX ix_a RENAME TO ix_b"],
    ),
    "add_constraint": (
        lambda m: operations.add_constraint(m, "tool_calls", "f", FK),
        [
            "BEGIN",
            "LOCK TABLE tool_calls IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE NOWAIT",
            "ALTER TABLE tool_calls ADD CONSTRAINT f FOREIGN KEY (message_id) REFERENCES messages(message_id) NOT VALID",
            "COMMIT",
            "ALTER TABLE tool_calls VALIDATE CONSTRAINT f",
        ],
        [
            "ALTER TABLE tool_calls ADD CONSTRAINT f FOREIGN KEY (message_id) REFERENCES messages(message_id) NOT VALID",
            "ALTER TABLE tool_calls VALIDATE CONSTRAINT f",
        ],
    ),
    "drop_constraint": (
        lambda m: operations.drop_constraint(m, "tool_calls", "f", FK),
        [
            "BEGIN",
            "LOCK TABLE tool_calls IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE NOWAIT",
            "ALTER TABLE tool_calls DROP CONSTRAINT IF EXISTS f",
            "COMMIT",
        ],
        ["ALTER TABLE tool_calls DROP CONSTRAINT IF EXISTS f"],
    ),
    "replace_constraint": (
        lambda m: operations.replace_constraint(m, "tool_calls", "f", FK + " ON DELETE RESTRICT"),
        [
            "BEGIN",
            "LOCK TABLE tool_calls IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE NOWAIT",
            "ALTER TABLE tool_calls DROP CONSTRAINT f, ADD CONSTRAINT f FOREIGN KEY (message_id) REFERENCES messages(message_id) ON DELETE RESTRICT NOT VALID",
            "COMMIT",
            "ALTER TABLE tool_calls VALIDATE CONSTRAINT f",
        ],
        [
            "ALTER TABLE tool_calls DROP CONSTRAINT f, ADD CONSTRAINT f FOREIGN KEY (message_id) REFERENCES messages(message_id) ON DELETE RESTRICT NOT VALID",
            "ALTER TABLE tool_calls VALIDATE CONSTRAINT f",
        ],
    ),
    "remove_enum_labels": (
        lambda m: operations.remove_enum_labels(
            m,
            "mood",
            ["sad", "angry"],
            keep=["calm"],
            columns=[
                ("moods", "now", None),
                ("moods", "usual", "'calm'::mood"),
                ("days", "m", None),
            ],
        ),
        [
            "BEGIN",
            "LOCK TABLE moods IN ACCESS EXCLUSIVE MODE",
            "LOCK TABLE days IN ACCESS EXCLUSIVE MODE NOWAIT",
            "ALTER TYPE mood RENAME TO mood__chatdb_old",
            "CREATE TYPE mood AS ENUM ('calm')",
            "ALTER TABLE moods ALTER COLUMN usual DROP DEFAULT, ALTER COLUMN now TYPE mood USING now::text::mood, ALTER COLUMN usual TYPE mood USING usual::text::mood, ALTER COLUMN usual SET DEFAULT 'calm'::mood",
            "ALTER TABLE days ALTER COLUMN m TYPE mood USING m::text::mood",
            "DROP TYPE mood__chatdb_old",
            "COMMIT",
        ],
        [
            "ALTER TYPE mood RENAME TO mood__chatdb_old",
            "CREATE TYPE mood AS ENUM ('calm')",
            "ALTER TABLE moods ALTER COLUMN usual DROP DEFAULT, ALTER COLUMN now TYPE mood USING now::text::mood, ALTER COLUMN usual TYPE mood USING usual::text::mood, ALTER COLUMN usual SET DEFAULT 'calm'::mood",
            "ALTER TABLE days ALTER COLUMN m TYPE mood USING m::text::mood",
            "DROP TYPE mood__chatdb_old",
        ],
    ),
    "rename_constraint": (
        lambda m: operations.rename_constraint(m, "t", "a", "b"),
        ["ALTER TABLE t RENAME CONSTRAINT a TO b"],
        ["ALTER TABLE t RENAME CONSTRAINT a TO b"],
    ),
    "change_column_type": (
        lambda m: operations.change_column_type(
            m, "token_consumption", "count", "bigint", not_null=True, default="0"
        ),
        [
            "BEGIN",
            "LOCK TABLE token_consumption IN ACCESS EXCLUSIVE MODE",
            "ALTER TABLE token_consumption ADD COLUMN chatdb_new_count bigint",
            "CREATE OR REPLACE FUNCTION chatdb_sync_token_consumption_count() RETURNS trigger LANGUAGE plpgsql AS $chatdb$ BEGIN NEW.chatdb_new_count := (SELECT count::bigint FROM (SELECT (NEW).*) AS chatdb_row); RETURN NEW; END $chatdb$",
            "CREATE OR REPLACE TRIGGER chatdb_sync_token_consumption_count BEFORE INSERT OR UPDATE ON token_consumption FOR EACH ROW EXECUTE FUNCTION chatdb_sync_token_consumption_count()",
            "COMMIT",
            "UPDATE token_consumption SET chatdb_new_count = count::bigint WHERE chatdb_new_count IS NULL AND count IS NOT NULL",
            "ALTER TABLE token_consumption ADD CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count CHECK (chatdb_new_count IS NOT NULL) NOT VALID",
            "ALTER TABLE token_consumption VALIDATE CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count",
            "BEGIN",
            "LOCK TABLE token_consumption IN ACCESS EXCLUSIVE MODE",
            "ALTER TABLE token_consumption ALTER COLUMN chatdb_new_count SET NOT NULL",
            "DROP TRIGGER chatdb_sync_token_consumption_count ON token_consumption",
            "ALTER TABLE token_consumption RENAME COLUMN count TO chatdb_old_count",
            "ALTER TABLE token_consumption RENAME COLUMN chatdb_new_count TO count",
            "ALTER TABLE token_consumption ALTER COLUMN count SET DEFAULT 0",
            "ALTER TABLE token_consumption DROP COLUMN chatdb_old_count",
            "DROP FUNCTION chatdb_sync_token_consumption_count()",
            "ALTER TABLE token_consumption DROP CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count",
            "COMMIT",
        ],
        [
            "ALTER TABLE token_consumption ADD COLUMN chatdb_new_count bigint",
            "CREATE OR REPLACE FUNCTION chatdb_sync_token_consumption_count() RETURNS trigger LANGUAGE plpgsql AS $chatdb$ BEGIN NEW.chatdb_new_count := (SELECT count::bigint FROM (SELECT (NEW).*) AS chatdb_row); RETURN NEW; END $chatdb$",
            "CREATE OR REPLACE TRIGGER chatdb_sync_token_consumption_count BEFORE INSERT OR UPDATE ON token_consumption FOR EACH ROW EXECUTE FUNCTION chatdb_sync_token_consumption_count()",
            "UPDATE token_consumption SET chatdb_new_count = count::bigint WHERE chatdb_new_count IS NULL AND count IS NOT NULL",
            "ALTER TABLE token_consumption ADD CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count CHECK (chatdb_new_count IS NOT NULL) NOT VALID",
            "ALTER TABLE token_consumption VALIDATE CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count",
            "ALTER TABLE token_consumption ALTER COLUMN chatdb_new_count SET NOT NULL",
            "DROP TRIGGER chatdb_sync_token_consumption_count ON token_consumption",
            "ALTER TABLE token_consumption RENAME COLUMN count TO chatdb_old_count",
            "ALTER TABLE token_consumption RENAME COLUMN chatdb_new_count TO count",
            "ALTER TABLE token_consumption ALTER COLUMN count SET DEFAULT 0",
            "ALTER TABLE token_consumption DROP COLUMN chatdb_old_count",
            "DROP FUNCTION chatdb_sync_token_consumption_count()",
            "ALTER TABLE token_consumption DROP CONSTRAINT chatdb_nn_token_consumption_chatdb_new_count",
        ],
    ),
    "copy_rows": (
        lambda m: operations.copy_rows(
            m, "messages", "bodies", {"id": "message_id", "body": "content"}, match="id"
        ),
        [
            "INSERT INTO bodies (id, body) SELECT message_id AS id, content AS body FROM messages "
            "WHERE NOT EXISTS (SELECT 1 FROM bodies WHERE bodies.id = message_id) "
            "ON CONFLICT DO NOTHING",
        ],
        [
            "INSERT INTO bodies (id, body) SELECT message_id AS id, content AS body FROM messages "
            "WHERE NOT EXISTS (SELECT 1 FROM bodies WHERE bodies.id = message_id) "
            "ON CONFLICT DO NOTHING",
        ],
    ),
    "backfill": (
        lambda m: operations.backfill(m, "messages", "words", "length(content)"),
        [
            "UPDATE messages SET words = length(content) WHERE words IS NULL",
        ],
        [
            "UPDATE messages SET words = length(content) WHERE words IS NULL",
        ],
    ),
    "create_function": (
        lambda m: operations.create_function(m, FUNCTION),
        [
            "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.update_date := now(); RETURN NEW; END $$",
        ],
        [
            "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.update_date := now(); RETURN NEW; END $$",
        ],
    ),
    "drop_function": (
        lambda m: operations.drop_function(m, FUNCTION),
        [
            "DROP FUNCTION IF EXISTS touch()",
        ],
        [
            "DROP FUNCTION IF EXISTS touch()",
        ],
    ),
    "create_trigger": (
        lambda m: operations.create_trigger(m, TRIGGER),
        [
            "CREATE OR REPLACE TRIGGER touch_threads BEFORE UPDATE ON threads FOR EACH ROW EXECUTE FUNCTION touch()",
        ],
        [
            "CREATE OR REPLACE TRIGGER touch_threads BEFORE UPDATE ON threads FOR EACH ROW EXECUTE FUNCTION touch()",
        ],
    ),
    "drop_trigger": (
        lambda m: operations.drop_trigger(m, TRIGGER),
        [
            "DROP TRIGGER IF EXISTS touch_threads ON threads",
        ],
        [
            "DROP TRIGGER IF EXISTS touch_threads ON threads",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_operation_sql_is_pinned(name):
    step, outside, inside = PINNED[name]
    assert sql(step, in_transaction=False) == outside
    assert sql(step, in_transaction=True) == inside


def test_guard_data_loss_renders_nothing_without_a_database():
    assert sql(lambda m: operations.guard_data_loss(m, tables=["t"]), in_transaction=False) == []
