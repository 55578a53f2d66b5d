"""Token accounting: how many tokens went where, summed in the database."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import peewee as pw

from chatdb.api.checks import as_uuid, aware
from chatdb.api.session import session
from chatdb.errors import NotFound
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
    A ``thread_id`` that names no thread is :class:`~chatdb.errors.NotFound`.
    """
    owner = None if user_id is None else as_uuid(user_id, "user_id")
    thread = None if thread_id is None else as_uuid(thread_id, "thread_id")
    start = None if since is None else aware(since, "since")
    end = None if until is None else aware(until, "until")
    total = pw.fn.SUM(TokenConsumption.count).alias("total")
    query = (
        TokenConsumption.select(
            TokenConsumption.model, TokenConsumption.task, TokenConsumption.type, total
        )
        .join(Message, on=TokenConsumption.message == Message.message_id)
        .group_by(TokenConsumption.model, TokenConsumption.task, TokenConsumption.type)
        .order_by(TokenConsumption.model, TokenConsumption.task, TokenConsumption.type)
    )
    if owner is not None:
        query = query.join(Thread, on=Message.thread == Thread.thread_id).where(
            Thread.user_id == owner
        )
    if thread is not None:
        query = query.where(Message.thread == thread)
    if start is not None:
        query = query.where(Message.creation_date >= start)
    if end is not None:
        query = query.where(Message.creation_date < end)
    with session("token_usage", writes=False):
        rows = list(query)
        if not rows and thread is not None and not Thread.get_or_none(Thread.thread_id == thread):
            raise NotFound(f"no thread {thread}")
    return [
        TokenTotal(
            model=row.model,
            task=row.task,
            type=row.type,
            count=int(row.total),  # type: ignore[attr-defined]  # the sum's alias
        )
        for row in rows
    ]
