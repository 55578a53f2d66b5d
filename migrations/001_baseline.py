"""Baseline: the chat schema exactly as the legacy Alembic head 6d8986f38d7b left it.

The DDL is explicit SQL so that constraint names, column types and the absence
of server defaults match the legacy catalog to the letter; the models below
only give peewee-migrate the same picture (for ``create --auto``). A frozen
picture of this moment: it never imports ``chatdb.models``.

A legacy database adopted by ``chatdb handover`` records this migration as
applied without running it.
"""

import enum

import peewee as pw
from peewee_migrate import Migrator
from playhouse.postgres_ext import DateTimeTZField, TSVectorField

from chatdb.fields import EnumField, VarCharField

LEGACY_HEAD = "6d8986f38d7b"

ENUM_LABELS = {
    "entity": ("USER", "AI_TOOL", "TOOL", "AI_MESSAGE"),
    "task": ("CHAT_COMPLETION", "TOOL_SELECTION", "CALL_WITHIN_TOOL"),
    "tokentype": ("INPUT_NONCACHED", "INPUT_CACHED", "COMPLETION"),
    "reasoninglevels": ("NONE", "MINIMAL", "LOW", "MEDIUM", "HIGH"),
}

UPGRADE = """
CREATE TYPE entity AS ENUM ('USER', 'AI_TOOL', 'TOOL', 'AI_MESSAGE');
CREATE TYPE task AS ENUM ('CHAT_COMPLETION', 'TOOL_SELECTION', 'CALL_WITHIN_TOOL');
CREATE TYPE tokentype AS ENUM ('INPUT_NONCACHED', 'INPUT_CACHED', 'COMPLETION');
CREATE TYPE reasoninglevels AS ENUM ('NONE', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH');

CREATE TABLE threads (
    thread_id uuid NOT NULL,
    vlab_id uuid,
    project_id uuid,
    title varchar NOT NULL,
    creation_date timestamptz NOT NULL,
    update_date timestamptz NOT NULL,
    user_id uuid NOT NULL,
    CONSTRAINT threads_pkey PRIMARY KEY (thread_id)
);

CREATE TABLE messages (
    message_id uuid NOT NULL,
    creation_date timestamptz NOT NULL,
    content varchar NOT NULL,
    thread_id uuid NOT NULL,
    entity entity NOT NULL,
    is_complete boolean NOT NULL,
    search_vector tsvector,
    CONSTRAINT messages_pkey PRIMARY KEY (message_id),
    CONSTRAINT messages_thread_id_fkey FOREIGN KEY (thread_id) REFERENCES threads (thread_id)
);
CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector);

CREATE TABLE tool_calls (
    tool_call_id varchar NOT NULL,
    name varchar NOT NULL,
    arguments varchar NOT NULL,
    validated boolean,
    message_id uuid NOT NULL,
    CONSTRAINT tool_calls_pkey PRIMARY KEY (tool_call_id),
    CONSTRAINT tool_calls_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

CREATE TABLE tool_selection (
    id uuid NOT NULL,
    message_id uuid NOT NULL,
    tool_name varchar NOT NULL,
    CONSTRAINT tool_selection_pkey PRIMARY KEY (id),
    CONSTRAINT tool_selection_message_id_fkey
        FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

CREATE TABLE token_consumption (
    id uuid NOT NULL,
    message_id uuid NOT NULL,
    type tokentype NOT NULL,
    task task NOT NULL,
    count integer NOT NULL,
    model varchar NOT NULL,
    CONSTRAINT token_consumption_pkey PRIMARY KEY (id),
    CONSTRAINT token_consumption_message_id_fkey
        FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

CREATE TABLE complexity_estimation (
    id uuid NOT NULL,
    complexity integer,
    model varchar NOT NULL,
    reasoning reasoninglevels,
    message_id uuid NOT NULL,
    CONSTRAINT complexity_estimation_pkey PRIMARY KEY (id),
    CONSTRAINT complexity_estimation_message_id_fkey
        FOREIGN KEY (message_id) REFERENCES messages (message_id)
);

CREATE TABLE alembic_version (
    version_num varchar(32) NOT NULL,
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) VALUES ('6d8986f38d7b');

-- Only user and assistant turns are searchable; their content is a JSON
-- document whose top-level "content" is the text. Invalid JSON fails (22P02).
CREATE FUNCTION update_messages_search_vector() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    IF NEW.entity IN ('USER', 'AI_MESSAGE') THEN
        NEW.search_vector := to_tsvector(
            'english', coalesce(NEW.content::jsonb ->> 'content', '')
        );
    ELSE
        NEW.search_vector := to_tsvector('english', '');
    END IF;
    RETURN NEW;
END
$fn$;

CREATE TRIGGER messages_search_vector_trigger
    BEFORE INSERT OR UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION update_messages_search_vector();
"""

DOWNGRADE = """
DROP TABLE complexity_estimation, token_consumption, tool_selection, tool_calls,
    messages, threads, alembic_version;
DROP FUNCTION update_messages_search_vector();
DROP TYPE reasoninglevels, tokentype, task, entity;
"""


def _enum(type_name, **kwargs):
    return EnumField(enum.Enum(type_name, ENUM_LABELS[type_name]), type_name=type_name, **kwargs)


def _models(migrator):
    """Declare the baseline tables to peewee-migrate without emitting its DDL."""

    @migrator.create_model
    class Thread(pw.Model):
        thread_id = pw.UUIDField(primary_key=True)
        vlab_id = pw.UUIDField(null=True)
        project_id = pw.UUIDField(null=True)
        title = VarCharField()
        creation_date = DateTimeTZField()
        update_date = DateTimeTZField()
        user_id = pw.UUIDField()

        class Meta:
            table_name = "threads"

    @migrator.create_model
    class Message(pw.Model):
        message_id = pw.UUIDField(primary_key=True)
        creation_date = DateTimeTZField()
        content = VarCharField()
        thread = pw.ForeignKeyField(Thread, field="thread_id", column_name="thread_id", index=False)
        entity = _enum("entity")
        is_complete = pw.BooleanField()
        search_vector = TSVectorField(null=True, index=False)

        class Meta:
            table_name = "messages"

    Message.add_index(Message.search_vector, name="ix_messages_search_vector", using="GIN")

    def child_fk():
        return pw.ForeignKeyField(
            Message, field="message_id", column_name="message_id", index=False
        )

    @migrator.create_model
    class ToolCall(pw.Model):
        tool_call_id = VarCharField(primary_key=True)
        name = VarCharField()
        arguments = VarCharField()
        validated = pw.BooleanField(null=True)
        message = child_fk()

        class Meta:
            table_name = "tool_calls"

    @migrator.create_model
    class ToolSelection(pw.Model):
        id = pw.UUIDField(primary_key=True)
        message = child_fk()
        tool_name = VarCharField()

        class Meta:
            table_name = "tool_selection"

    @migrator.create_model
    class TokenConsumption(pw.Model):
        id = pw.UUIDField(primary_key=True)
        message = child_fk()
        type = _enum("tokentype")
        task = _enum("task")
        count = pw.IntegerField()
        model = VarCharField()

        class Meta:
            table_name = "token_consumption"

    @migrator.create_model
    class ComplexityEstimation(pw.Model):
        id = pw.UUIDField(primary_key=True)
        complexity = pw.IntegerField(null=True)
        model = VarCharField()
        reasoning = _enum("reasoninglevels", null=True)
        message = child_fk()

        class Meta:
            table_name = "complexity_estimation"

    @migrator.create_model
    class AlembicVersion(pw.Model):
        version_num = pw.CharField(max_length=32, primary_key=True)

        class Meta:
            table_name = "alembic_version"


def migrate(migrator: Migrator, database: pw.Database, *, fake=False):
    with migrator.fake():
        _models(migrator)
    migrator.sql(UPGRADE)


def rollback(migrator: Migrator, database: pw.Database, *, fake=False):
    with migrator.fake():
        for table in (
            "complexity_estimation",
            "token_consumption",
            "tool_selection",
            "tool_calls",
            "messages",
            "threads",
            "alembic_version",
        ):
            migrator.remove_model(table)
    migrator.sql(DOWNGRADE)
