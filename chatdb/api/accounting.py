"""Token accounting: how many tokens went where, summed in the database."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import peewee as pw

from chatdb.api.chats import as_uuid
from chatdb.schema.enums import Task, TokenType
from chatdb.schema.models import Message, Thread, TokenConsumption


@dataclass(frozen=True)
class TokenTotal:
    """Tokens of one kind consumed by one model for one task."""

    model: str
    task: Task
    type: TokenType
    count: int


def token_usage(
    *,
    user_id: uuid.UUID | str | None = None,
    thread_id: uuid.UUID | str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[TokenTotal]:
    """Token counts summed by model, task and token type, ordered by those three.

    Filters combine: a user's, a thread's, messages created from ``since``
    (inclusive) to ``until`` (exclusive); none means the whole database.
    """
    total = pw.fn.SUM(TokenConsumption.count).alias("total")
    query = (
        TokenConsumption.select(
            TokenConsumption.model, TokenConsumption.task, TokenConsumption.type, total
        )
        .join(Message, on=TokenConsumption.message == Message.message_id)
        .group_by(TokenConsumption.model, TokenConsumption.task, TokenConsumption.type)
        .order_by(TokenConsumption.model, TokenConsumption.task, TokenConsumption.type)
    )
    if user_id is not None:
        query = query.join(Thread, on=Message.thread == Thread.thread_id).where(
            Thread.user_id == as_uuid(user_id, "user_id")
        )
    if thread_id is not None:
        query = query.where(Message.thread == as_uuid(thread_id, "thread_id"))
    if since is not None:
        query = query.where(Message.creation_date >= _aware(since, "since"))
    if until is not None:
        query = query.where(Message.creation_date < _aware(until, "until"))
    return [
        TokenTotal(
            model=row.model,
            task=row.task,
            type=row.type,
            count=int(row.total),  # type: ignore[attr-defined]  # the sum's alias
        )
        for row in query
    ]


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")
    return moment
