"""Token accounting: how many tokens went where, summed in the database."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import peewee as pw

from chatdb.api.checks import as_uuid, aware
from chatdb.api.session import session
from chatdb.errors import NotFound
from chatdb.schema import models
from chatdb.schema.enums import Task, TokenType, member
from chatdb.schema.models import Message, Thread


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
    query, thread = usage_query(user_id=user_id, thread_id=thread_id, since=since, until=until)
    with session("token_usage", writes=False):
        rows: list[tuple[Any, ...]] = list(query.tuples())  # type: ignore[arg-type]
        if not rows and thread is not None:
            _thread_exists(thread)
    return totals(rows)


def usage_query(
    *,
    user_id: uuid.UUID | str | None,
    thread_id: uuid.UUID | str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[pw.ModelSelect[models.TokenConsumption], uuid.UUID | None]:
    """The query :func:`token_usage` runs (arguments checked), and the thread it names."""
    owner = None if user_id is None else as_uuid(user_id, "user_id")
    thread = None if thread_id is None else as_uuid(thread_id, "thread_id")
    start = None if since is None else aware(since, "since")
    end = None if until is None else aware(until, "until")
    usage = models.TokenConsumption  # looked up when used: see chatdb.api.queries
    query = (
        usage.select(usage.model, usage.task, usage.type, pw.fn.SUM(usage.count))
        .join(Message, on=usage.message == Message.message_id)
        .group_by(usage.model, usage.task, usage.type)
        .order_by(usage.model, usage.task, usage.type)
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
    return query, thread


def totals(rows: list[tuple[Any, ...]]) -> list[TokenTotal]:
    """Rows of :func:`usage_query` (model, task label, type label, sum) as totals."""
    return [
        TokenTotal(
            model=model,
            task=member(Task, task, "TokenConsumption.task"),
            type=member(TokenType, kind, "TokenConsumption.type"),
            count=int(total),
        )
        for model, task, kind, total in rows
    ]


def _thread_exists(thread: uuid.UUID) -> None:
    if not Thread.select().where(Thread.thread_id == thread).exists():
        raise NotFound(f"no thread {thread}")
