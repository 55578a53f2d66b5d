"""The reads of the data API as Peewee queries, shared by the sync and the async API.

The sync API runs them with Peewee; the async one renders them (``query.sql()``)
and runs the same SQL on its own driver, then builds the same model instances
(:func:`rows_to_models`). One place says what each read selects and in which
order. The detail tables' models are looked up when a read runs, not at import:
removing one from chatdb/schema (to generate its migration) leaves ``import chatdb``
and every other read working.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

import peewee as pw

from chatdb.schema import models
from chatdb.schema.models import Message, Thread

M = TypeVar("M", bound=pw.Model)


def thread_by_id(key: uuid.UUID) -> pw.ModelSelect[Thread]:
    return Thread.select().where(Thread.thread_id == key)


def message_by_id(key: uuid.UUID) -> pw.ModelSelect[Message]:
    return Message.select().where(Message.message_id == key)


def message_details() -> list[tuple[str, pw.ModelSelect[Any]]]:
    """(backref, query) for each kind of detail of a message, in the order they are listed."""
    return [
        ("tool_calls", models.ToolCall.select().order_by(models.ToolCall.tool_call_id)),
        (
            "tool_selections",
            models.ToolSelection.select().order_by(
                models.ToolSelection.tool_name, models.ToolSelection.id
            ),
        ),
        (
            "complexity_estimations",
            models.ComplexityEstimation.select().order_by(
                models.ComplexityEstimation.model, models.ComplexityEstimation.id
            ),
        ),
        (
            "token_consumptions",
            models.TokenConsumption.select().order_by(
                models.TokenConsumption.model,
                models.TokenConsumption.task,
                models.TokenConsumption.type,
            ),
        ),
    ]


def rows_to_models(model: type[M], rows: Sequence[Sequence[Any]]) -> list[M]:
    """Instances of ``model`` from rows of ``model.select()`` (every column, in order)."""
    fields = model._meta.sorted_fields
    made = []
    for row in rows:
        values = zip(fields, row, strict=True)
        made.append(model(**{field.name: field.python_value(_plain(v)) for field, v in values}))
    return made


def _plain(value: object) -> object:
    """A driver's own UUID type as the standard library's."""
    return uuid.UUID(int=value.int) if isinstance(value, uuid.UUID) else value
