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
    "fill_nulls": (
        lambda m: operations.fill_nulls(m, "threads", "priority", "0"),
        ["UPDATE threads SET priority = 0 WHERE priority IS NULL"],
        ["UPDATE threads SET priority = 0 WHERE priority IS NULL"],
    ),
    "rename_constraint": (
        lambda m: operations.rename_constraint(m, "t", "a", "b"),
        ["ALTER TABLE t RENAME CONSTRAINT a TO b"],
        ["ALTER TABLE t RENAME CONSTRAINT a TO b"],
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_operation_sql_is_pinned(name):
    step, outside, inside = PINNED[name]
    assert sql(step, in_transaction=False) == outside
    assert sql(step, in_transaction=True) == inside


def test_guard_data_loss_renders_nothing_without_a_database():
    assert sql(lambda m: operations.guard_data_loss(m, tables=["t"]), in_transaction=False) == []
