"""The chat schema as Peewee models.

Table names, column names, column order, types and nullability follow the
legacy database exactly; ``chatdb create`` against these models must find
nothing to do, so every change here needs its migration (which it writes).

At head the database itself guarantees what the legacy backend left to its
ORM, and the models say so too: foreign keys are ``on_delete='CASCADE'``,
server-side defaults are declared as ``DEFAULT`` constraints next to the
equivalent Python defaults (``uuid4`` is what ``gen_random_uuid()`` makes,
``utc_now`` is ``now()``), and every foreign key and listing path has its
``ix_<table>_<columns>`` index.

What peewee's ``create_table`` cannot say, a model says in ``Meta``:
``schema_sql`` lists statements that complete its table (the search trigger
and its function, a legacy constraint name). ``chatdb create`` builds every
model of this module, plus those statements, in a scratch database and
compares the catalog with what the migrations leave.

The models are bound to :data:`chatdb.db.routing.ROUTER`, which sends each
query to the database of the moment (see :mod:`chatdb.db.routing`), so one
process can use several databases side by side.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import peewee as pw
from playhouse.postgres_ext import DateTimeTZField, TSVectorField

from chatdb.db.routing import ROUTER
from chatdb.schema.content import prepare_content
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType
from chatdb.schema.fields import EnumField, JsonTextField, VarCharField


def utc_now() -> dt.datetime:
    """Timezone-aware now, matching the database's ``now()``."""
    return dt.datetime.now(dt.UTC)


def server_default(expression: str) -> list[pw.Node]:
    """The column's database-side default, as Peewee spells it in DDL."""
    return [pw.SQL(f"DEFAULT {expression}")]


DEFAULT_TITLE = "New chat"
RANDOM_UUID = "gen_random_uuid()"
NOW = "now()"


def uuid_key() -> pw.UUIDField[uuid.UUID]:
    """A uuid primary key, made by Python or, for plain SQL inserts, by the database."""
    return pw.UUIDField(
        primary_key=True, default=uuid.uuid4, constraints=server_default(RANDOM_UUID)
    )


class Thread(pw.Model):
    thread_id = uuid_key()
    vlab_id = pw.UUIDField(null=True)
    project_id = pw.UUIDField(null=True)
    title = VarCharField(default=DEFAULT_TITLE, constraints=server_default(f"'{DEFAULT_TITLE}'"))
    creation_date = DateTimeTZField(default=utc_now, constraints=server_default(NOW))
    update_date = DateTimeTZField(default=utc_now, constraints=server_default(NOW))
    user_id = pw.UUIDField()

    class Meta:
        table_name = "threads"


Thread.add_index(Thread.user_id, Thread.update_date.desc(), name="ix_threads_user_id_update_date")
Thread.add_index(Thread.vlab_id, name="ix_threads_vlab_id")
Thread.add_index(Thread.project_id, name="ix_threads_project_id")


# Only user and assistant turns are searchable; their content is a JSON
# document whose top-level "content" is the text. Invalid JSON fails (22P02).
SEARCH_FUNCTION = """
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
$fn$
"""
SEARCH_TRIGGER = """
CREATE TRIGGER messages_search_vector_trigger
    BEFORE INSERT OR UPDATE ON messages
    FOR EACH ROW EXECUTE FUNCTION update_messages_search_vector()
"""


class Message(pw.Model):
    message_id = uuid_key()
    creation_date = DateTimeTZField(default=utc_now, constraints=server_default(NOW))
    content = JsonTextField()
    thread = pw.ForeignKeyField(
        Thread,
        field="thread_id",
        column_name="thread_id",
        backref="messages",
        index=False,
        on_delete="CASCADE",
    )
    entity = EnumField(Entity)
    is_complete = pw.BooleanField()
    search_vector = TSVectorField(null=True, index=False)
    if TYPE_CHECKING:  # the details, made by the children's foreign keys (backrefs)
        tool_calls: Iterable[ToolCall]
        tool_selections: Iterable[ToolSelection]
        token_consumptions: Iterable[TokenConsumption]
        complexity_estimations: Iterable[ComplexityEstimation]

    class Meta:
        table_name = "messages"
        schema_sql = (SEARCH_FUNCTION, SEARCH_TRIGGER)

    def save(self, *args: Any, **kwargs: Any) -> int | bool:
        """Check the content first: the search trigger would fail on what it cannot parse."""
        self.content = prepare_content(self.entity, self.content)
        return super().save(*args, **kwargs)


Message.add_index(Message.search_vector, name="ix_messages_search_vector", using="GIN")
Message.add_index(Message.thread, Message.creation_date, name="ix_messages_thread_id_creation_date")


def message_key(backref: str) -> pw.ForeignKeyField:
    """A child row's ``message_id``: deleting the message deletes the row."""
    return pw.ForeignKeyField(
        Message,
        field="message_id",
        column_name="message_id",
        backref=backref,
        index=False,
        on_delete="CASCADE",
    )


class ToolCall(pw.Model):
    tool_call_id = VarCharField(primary_key=True)
    name = VarCharField()
    arguments = JsonTextField()
    validated = pw.BooleanField(null=True)
    message = message_key("tool_calls")

    class Meta:
        table_name = "tool_calls"


class ToolSelection(pw.Model):
    id = uuid_key()
    message = message_key("tool_selections")
    tool_name = VarCharField()

    class Meta:
        table_name = "tool_selection"


class TokenConsumption(pw.Model):
    id = uuid_key()
    message = message_key("token_consumptions")
    type = EnumField(TokenType)
    task = EnumField(Task)
    count = pw.IntegerField()
    model = VarCharField()

    class Meta:
        table_name = "token_consumption"


class ComplexityEstimation(pw.Model):
    id = uuid_key()
    complexity = pw.IntegerField(null=True)
    model = VarCharField()
    reasoning = EnumField(ReasoningLevels, null=True)
    message = message_key("complexity_estimations")

    class Meta:
        table_name = "complexity_estimation"


class AlembicVersion(pw.Model):
    """The legacy backend's revision marker, kept so its tooling still reads it."""

    version_num = pw.CharField(max_length=32, primary_key=True)

    class Meta:
        table_name = "alembic_version"
        # Alembic's name for the key, kept from the legacy schema.
        schema_sql = (
            "ALTER TABLE alembic_version RENAME CONSTRAINT alembic_version_pkey "
            "TO alembic_version_pkc",
        )


# Deleting a message must not scan its children: each child table leads an index with it.
for _child in (ToolCall, ToolSelection, TokenConsumption, ComplexityEstimation):
    _child.add_index(_child.message, name=f"ix_{_child._meta.table_name}_message_id")
del _child

MODELS: tuple[type[pw.Model], ...] = (
    Thread,
    Message,
    ToolCall,
    ToolSelection,
    TokenConsumption,
    ComplexityEstimation,
    AlembicVersion,
)


def bind(database: pw.Database | None) -> None:
    """Use ``database`` where no ``chatdb.Database`` is current or open (tools and benchmarks);
    ``None`` forgets it."""
    ROUTER.initialize(database)


for _model in MODELS:
    _model.bind(ROUTER, bind_refs=False, bind_backrefs=False)
del _model
