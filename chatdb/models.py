"""The chat schema as Peewee models.

Table names, column names, column order, types and nullability follow the
legacy database exactly; ``pw_migrate create --auto`` against these models
must find nothing to do, so every change here needs its migration.

The models carry no database: ``chatdb.connect()`` (or ``bind(database)``)
binds them, so one process can point them wherever it needs.
"""

from __future__ import annotations

import datetime as dt
import uuid

import peewee as pw
from playhouse.postgres_ext import DateTimeTZField, TSVectorField

from chatdb.enums import Entity, ReasoningLevels, Task, TokenType
from chatdb.fields import EnumField, VarCharField


def utc_now() -> dt.datetime:
    """Timezone-aware now, matching the database's ``now()``."""
    return dt.datetime.now(dt.timezone.utc)


class Thread(pw.Model):
    thread_id = pw.UUIDField(primary_key=True, default=uuid.uuid4)
    vlab_id = pw.UUIDField(null=True)
    project_id = pw.UUIDField(null=True)
    title = VarCharField()
    creation_date = DateTimeTZField(default=utc_now)
    update_date = DateTimeTZField(default=utc_now)
    user_id = pw.UUIDField()

    class Meta:
        table_name = "threads"


class Message(pw.Model):
    message_id = pw.UUIDField(primary_key=True, default=uuid.uuid4)
    creation_date = DateTimeTZField(default=utc_now)
    content = VarCharField()
    thread = pw.ForeignKeyField(
        Thread, field="thread_id", column_name="thread_id", backref="messages", index=False
    )
    entity = EnumField(Entity)
    is_complete = pw.BooleanField()
    search_vector = TSVectorField(null=True, index=False)

    class Meta:
        table_name = "messages"


Message.add_index(Message.search_vector, name="ix_messages_search_vector", using="GIN")


class ToolCall(pw.Model):
    tool_call_id = VarCharField(primary_key=True)
    name = VarCharField()
    arguments = VarCharField()
    validated = pw.BooleanField(null=True)
    message = pw.ForeignKeyField(
        Message, field="message_id", column_name="message_id", backref="tool_calls", index=False
    )

    class Meta:
        table_name = "tool_calls"


class ToolSelection(pw.Model):
    id = pw.UUIDField(primary_key=True, default=uuid.uuid4)
    message = pw.ForeignKeyField(
        Message,
        field="message_id",
        column_name="message_id",
        backref="tool_selections",
        index=False,
    )
    tool_name = VarCharField()

    class Meta:
        table_name = "tool_selection"


class TokenConsumption(pw.Model):
    id = pw.UUIDField(primary_key=True, default=uuid.uuid4)
    message = pw.ForeignKeyField(
        Message,
        field="message_id",
        column_name="message_id",
        backref="token_consumptions",
        index=False,
    )
    type = EnumField(TokenType)
    task = EnumField(Task)
    count = pw.IntegerField()
    model = VarCharField()

    class Meta:
        table_name = "token_consumption"


class ComplexityEstimation(pw.Model):
    id = pw.UUIDField(primary_key=True, default=uuid.uuid4)
    complexity = pw.IntegerField(null=True)
    model = VarCharField()
    reasoning = EnumField(ReasoningLevels, null=True)
    message = pw.ForeignKeyField(
        Message,
        field="message_id",
        column_name="message_id",
        backref="complexity_estimations",
        index=False,
    )

    class Meta:
        table_name = "complexity_estimation"


class AlembicVersion(pw.Model):
    """The legacy backend's revision marker, kept so its tooling still reads it."""

    version_num = pw.CharField(max_length=32, primary_key=True)

    class Meta:
        table_name = "alembic_version"


MODELS: tuple[type[pw.Model], ...] = (
    Thread,
    Message,
    ToolCall,
    ToolSelection,
    TokenConsumption,
    ComplexityEstimation,
    AlembicVersion,
)


def bind(database: pw.Database) -> None:
    """Point every model at ``database``."""
    database.bind(MODELS, bind_refs=False, bind_backrefs=False)
